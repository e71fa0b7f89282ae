// The one binding of the model API shared by both native modules: _core (CPU, core_module.cpp) and
// _cuda (cuda_module.cpp) each call def_model_api<Backend>(m) with a small Backend adapter, so the
// calls param_shapes, rollout, loss_and_grad, generate and mar_penalty have the same Python-visible
// names, arguments, output buffers, checks and dtype rule on both.
//
// A Backend provides:
//   static constexpr const char* kName;        // in messages: "CPU core" / "CUDA"
//   static constexpr bool kMasks;              // missing-value masks supported
//   static void check_device(int device);      // ValueError for an index the backend cannot take
//   template <class Fn> static auto run(Fn&&); // runs a native call without the GIL (and interruptibly)
//   rollout<S> / loss_and_grad<S> / generate<S> / mar_penalty<S>: the host API of csrc/api.h and
//   cuda/api.h with the device index as a trailing argument.
//
// Dtype rule (one, for both): the scalar type of a call is the dtype of its main array (x, z0, or the
// parameter A for mar_penalty); every other array must match it exactly.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "model_args.h"

namespace plrnn::bind {

namespace py = pybind11;

// The scalar type of a call: true for float32, false for float64, TypeError otherwise.
inline bool is_f32(const py::array& a, const char* name) {
  if (a.dtype().is(py::dtype::of<float>())) return true;
  if (a.dtype().is(py::dtype::of<double>())) return false;
  throw py::type_error(std::string(name) + ": expected dtype float32 or float64, got " + std::string(py::str(a.dtype())));
}

// The parameter A of `params`, whose dtype is the scalar type of a parameter-only call.
inline py::array param_A(const py::dict& params) {
  if (!params.contains("A")) throw py::value_error("params: missing parameter 'A'");
  return as_array(params["A"], "A");
}

template <class Backend>
struct ModelApi {
  template <typename S>
  static py::tuple rollout(const ModelSpec& spec, const py::dict& params, const py::array& x, const py::object& s,
                           const ForcingSpec& f, const py::object& Binv, bool return_latent,
                           const py::object& xhat_out, const py::object& z_out, const py::object& mask, int device) {
    auto p = parse_params<S>(spec, params);
    auto b = parse_batch<S>(spec, x, s, Binv, f);
    b.mask = parse_mask<S>(spec, mask, b.B, b.T, Backend::kMasks, Backend::kName);
    const std::vector<index_t> xshape{b.B, b.T, spec.dims.N}, zshape{b.B, b.T, spec.dims.M};
    py::object xhat = xhat_out.is_none() ? py::object(new_array<S>(xshape)) : xhat_out;
    b.xhat = view_out<S>(xhat, xhat_out.is_none() ? "xhat" : "out", xshape);
    py::object z = py::none();
    if (return_latent || !z_out.is_none()) {
      z = z_out.is_none() ? py::object(new_array<S>(zshape)) : z_out;
      b.z = view_out<S>(z, z_out.is_none() ? "z" : "latent_out", zshape);
    }
    const auto r = Backend::run([&] { return Backend::template rollout<S>(spec, p, f, b, device); });
    return py::make_tuple(r.loss, xhat, z);
  }

  template <typename S>
  static py::tuple loss_and_grad(const ModelSpec& spec, const py::dict& params, const py::array& x,
                                 const py::object& s, const ForcingSpec& f, const py::object& Binv,
                                 const py::object& mask, int device) {
    auto p = parse_params<S>(spec, params);
    auto b = parse_batch<S>(spec, x, s, Binv, f);
    b.mask = parse_mask<S>(spec, mask, b.B, b.T, Backend::kMasks, Backend::kName);
    Grads<S> g;
    py::dict grads = new_grads<S>(spec, g);
    const auto r = Backend::run([&] { return Backend::template loss_and_grad<S>(spec, p, f, b, g, device); });
    return py::make_tuple(r.loss, grads);
  }

  template <typename S>
  static py::tuple generate(const ModelSpec& spec, const py::dict& params, const py::array& z0, index_t T,
                            const py::object& s, const py::object& eps, int device) {
    auto p = parse_params<S>(spec, params);
    const auto a = parse_generate<S>(spec, z0, T, s, eps);
    auto z = new_array<S>({a.B, T, spec.dims.M});
    auto xhat = new_array<S>({a.B, T, spec.dims.N});
    S* zp = z.mutable_data();
    S* xp = xhat.mutable_data();
    Backend::run([&] { Backend::template generate<S>(spec, p, a.B, T, a.z0, a.s, a.eps, zp, xp, device); });
    return py::make_tuple(z, xhat);
  }

  template <typename S>
  static py::tuple mar_penalty(const ModelSpec& spec, const py::dict& params, const py::array& units, double weight,
                               bool mean, int device) {
    auto p = parse_params<S>(spec, params);
    const index_t* u = parse_units(units);
    Grads<S> g;
    py::dict grads = new_grads<S>(spec, g);
    const double value = Backend::run(
        [&] { return Backend::template mar_penalty<S>(spec, p, u, units.shape(0), weight, mean, g, device); });
    return py::make_tuple(value, grads);
  }
};

template <class Backend>
void def_model_api(py::module_& m) {
  using Api = ModelApi<Backend>;
  const std::string where = std::string(" (") + Backend::kName + ")";

  m.def("param_shapes", [](const py::object& cfg) {
    const auto spec = spec_of(cfg);
    py::dict out;
    for (int id = 0; id < kNumParams; ++id) {
      const auto ps = param_shape(spec, id);
      if (ps.present) out[param_name(id)] = py::tuple(py::cast(shape_of(ps)));
    }
    return out;
  }, py::arg("config"), "Names and shapes of the parameters of a model configuration.");

  m.def("rollout", [](const py::object& cfg, const py::dict& params, const py::array& x, const py::object& s,
                      const std::string& forcing, index_t tau, double alpha, const py::object& Binv,
                      bool return_latent, const py::object& xhat_out, const py::object& z_out,
                      const py::object& mask, int device) {
    const auto spec = spec_of(cfg);
    const auto f = parse_forcing(forcing, tau, alpha);
    Backend::check_device(device);
    return is_f32(x, "x")
               ? Api::template rollout<float>(spec, params, x, s, f, Binv, return_latent, xhat_out, z_out, mask, device)
               : Api::template rollout<double>(spec, params, x, s, f, Binv, return_latent, xhat_out, z_out, mask, device);
  }, py::arg("config"), py::arg("params"), py::arg("x").noconvert(), py::arg("s") = py::none(),
     py::arg("forcing") = "none", py::arg("tau") = 1, py::arg("alpha") = 0.0, py::arg("Binv") = py::none(),
     py::arg("return_latent") = false, py::arg("out") = py::none(), py::arg("latent_out") = py::none(),
     py::arg("mask") = py::none(), py::arg("device") = 0,
     ("Rollout with teacher forcing" + where + ": (loss, xhat [B,T,N], z [B,T,M] or None); optional output "
      "buffers; mask [B,T,N] of 0/1 marks missing entries.").c_str());

  m.def("loss_and_grad", [](const py::object& cfg, const py::dict& params, const py::array& x, const py::object& s,
                            const std::string& forcing, index_t tau, double alpha, const py::object& Binv,
                            const py::object& mask, int device) {
    const auto spec = spec_of(cfg);
    const auto f = parse_forcing(forcing, tau, alpha);
    Backend::check_device(device);
    return is_f32(x, "x") ? Api::template loss_and_grad<float>(spec, params, x, s, f, Binv, mask, device)
                          : Api::template loss_and_grad<double>(spec, params, x, s, f, Binv, mask, device);
  }, py::arg("config"), py::arg("params"), py::arg("x").noconvert(), py::arg("s") = py::none(),
     py::arg("forcing") = "none", py::arg("tau") = 1, py::arg("alpha") = 0.0, py::arg("Binv") = py::none(),
     py::arg("mask") = py::none(), py::arg("device") = 0,
     ("MSE loss over the observed entries at t >= 1 and its exact gradient (BPTT)" + where +
      ": (loss, {name: grad}).").c_str());

  m.def("generate", [](const py::object& cfg, const py::dict& params, const py::array& z0, index_t T,
                       const py::object& s, const py::object& eps, int device) {
    const auto spec = spec_of(cfg);
    Backend::check_device(device);
    return is_f32(z0, "z0") ? Api::template generate<float>(spec, params, z0, T, s, eps, device)
                            : Api::template generate<double>(spec, params, z0, T, s, eps, device);
  }, py::arg("config"), py::arg("params"), py::arg("z0").noconvert(), py::arg("T"), py::arg("s") = py::none(),
     py::arg("eps") = py::none(), py::arg("device") = 0,
     ("Free run from z0 [B,M]" + where + ": (z [B,T,M], xhat [B,T,N]).").c_str());

  m.def("mar_penalty", [](const py::object& cfg, const py::dict& params, const py::array& units, double weight,
                          const std::string& reduce, int device) {
    const auto spec = spec_of(cfg);
    if (reduce != "sum" && reduce != "mean") throw py::value_error("reduce: must be 'sum' or 'mean', got '" + reduce + "'");
    Backend::check_device(device);
    const bool mean = reduce == "mean";
    return is_f32(param_A(params), "A") ? Api::template mar_penalty<float>(spec, params, units, weight, mean, device)
                                        : Api::template mar_penalty<double>(spec, params, units, weight, mean, device);
  }, py::arg("config"), py::arg("params"), py::arg("units"), py::arg("weight"), py::arg("reduce") = "sum",
     py::arg("device") = 0,
     ("Manifold-attractor penalty and its gradient" + where + ": (value, {name: grad}).").c_str());
}

}  // namespace plrnn::bind
