// pybind11 adapter of the probabilistic PLRNN's log-joint (csrc/vi/log_joint.h, cuda/vi/log_joint.cu),
// one template for both modules as model_api.h is: def_vi<Backend>(m) checks every array (dtype,
// contiguity, shape, finite where scored) once, here, allocates the gradients and calls the backend's
// host API (csrc/api.h, or cuda/api.h with the device index last) through Backend::run (without the GIL).
//
// A Backend provides, besides what model_api.h asks for (kName, check_device, run):
//   vi_log_joint<S>(spec, p, latent, obs, B, T, z, s, w, grads, gz, device)
// Both modules' Python function takes `device` last, as the model API does (the CPU core's one device is 0).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/types.h"
#include "model_args.h"
#include "vi/vi_types.h"

namespace plrnn::bind {

namespace py = pybind11;

inline py::dict vi_section(const py::dict& d, const char* key, const std::string& where) {
  if (!d.contains(key)) throw py::value_error(where + ": missing '" + key + "'");
  const py::object v = d[key];
  if (!py::isinstance<py::dict>(v)) throw py::type_error(where + "['" + key + "']: expected a dict, got " + type_name(v));
  return py::reinterpret_borrow<py::dict>(v);
}

inline py::object vi_item(const py::dict& d, const char* key, const std::string& where, bool required = true) {
  if (!d.contains(key)) {
    if (required) throw py::value_error(where + ": missing '" + key + "'");
    return py::none();
  }
  return d[key];
}

template <typename S>
void vi_check_finite(const S* a, index_t n, const S* mask, const std::string& name) {
  for (index_t i = 0; i < n; ++i)
    if ((!mask || mask[i] != S(0)) && !std::isfinite(a[i]))
      throw py::value_error(name + ": non-finite value at flat index " + std::to_string(i) +
                            (mask ? " (an observed entry; mark missing entries in the mask)" : ""));
}

template <typename S>
const S* vi_mask(const py::object& m, const std::string& name, const std::vector<index_t>& shape) {
  if (m.is_none()) return nullptr;
  const S* p = view<S>(m, name, shape);
  index_t n = 1;
  for (index_t d : shape) n *= d;
  for (index_t i = 0; i < n; ++i)
    if (p[i] != S(0) && p[i] != S(1)) throw py::value_error(name + ": entries must be 0 or 1");
  return p;
}

template <class Backend, typename S>
py::tuple vi_log_joint_impl(const ModelSpec& spec, const py::dict& params, const py::dict& latent, const py::array& z_arr,
                            const py::object& s_obj, const py::dict& channels, double floor, double w_latent,
                            double w_obs, bool grad, int device) {
  if (spec.obs != Obs::None) throw py::value_error("config: the latent model of the log-joint has obs 'none'");
  if (!(std::isfinite(floor) && floor > 0)) throw py::value_error("floor: must be finite and > 0");
  if (!(std::isfinite(w_latent) && w_latent >= 0)) throw py::value_error("w_latent: must be finite and >= 0");
  if (!(std::isfinite(w_obs) && w_obs >= 0)) throw py::value_error("w_obs: must be finite and >= 0");
  const index_t M = spec.dims.M;
  if (z_arr.ndim() != 3) throw py::value_error("z: expected a 3-d array (B, T, M), got ndim=" + std::to_string(z_arr.ndim()));
  const index_t B = z_arr.shape(0), T = z_arr.shape(1);
  if (B < 1 || T < 1) throw py::value_error("z: need B >= 1 and T >= 1");
  const S* z = view<S>(z_arr, "z", {B, T, M});
  vi_check_finite(z, B * T * M, static_cast<const S*>(nullptr), "z");
  const S* s = parse_inputs<S>(spec, s_obj, B, T);
  if (s) vi_check_finite(s, B * T * spec.dims.K, static_cast<const S*>(nullptr), "s");
  const Params<S> p = parse_params<S>(spec, params);

  vi::Latent<S> lat;
  lat.mu0 = view<S>(vi_item(latent, "mu0", "latent"), "latent['mu0']", {M});
  lat.log_sigma0 = view<S>(vi_item(latent, "log_sigma0", "latent"), "latent['log_sigma0']", {M});
  lat.log_sigma_z = view<S>(vi_item(latent, "log_sigma_z", "latent"), "latent['log_sigma_z']", {M});

  vi::Observations<S> obs;
  py::dict grads;
  Grads<S> g;
  auto out = [&](const std::string& key, const std::vector<index_t>& shape) -> S* {
    if (!grad) return nullptr;
    auto a = new_array<S>(shape);
    if (a.size()) std::fill(a.mutable_data(), a.mutable_data() + a.size(), S(0));
    grads[py::str(key)] = a;
    return a.mutable_data();
  };
  for (const auto& item : channels) {
    const std::string name = py::str(item.first);
    const std::string where = "channels['" + name + "']";
    if (!py::isinstance<py::dict>(item.second)) throw py::type_error(where + ": expected a dict");
    const py::dict ch = py::reinterpret_borrow<py::dict>(item.second);
    auto arg = [&](const char* key) { return where + "['" + key + "']"; };
    if (name == "gaussian" || name == "fmri") {
      vi::GaussianChannel<S>& c = name == "gaussian" ? obs.gaussian : obs.fmri;
      const py::array Bm = as_array(vi_item(ch, "B", where), arg("B"));
      if (Bm.ndim() != 2) throw py::value_error(arg("B") + ": expected a 2-d array (N, M)");
      c.N = Bm.shape(0);
      if (c.N < 1) throw py::value_error(arg("B") + ": need N >= 1 rows");
      c.B = view<S>(Bm, arg("B"), {c.N, M});
      const py::array J = as_array(vi_item(ch, "J", where), arg("J"));
      if (J.ndim() != 2) throw py::value_error(arg("J") + ": expected a 2-d array (N, R)");
      c.R = J.shape(1);
      c.J = view<S>(J, arg("J"), {c.N, c.R});
      c.log_sigma = view<S>(vi_item(ch, "log_sigma", where), arg("log_sigma"), {c.N});
      c.mask = vi_mask<S>(vi_item(ch, "mask", where, false), arg("mask"), {B, T, c.N});
      c.x = view<S>(vi_item(ch, "x", where), arg("x"), {B, T, c.N});
      vi_check_finite(c.x, B * T * c.N, c.mask, arg("x"));
      if (c.R > 0) {
        c.r = view<S>(vi_item(ch, "r", where), arg("r"), {B, T, c.R});
        vi_check_finite(c.r, B * T * c.R, static_cast<const S*>(nullptr), arg("r"));
      }
      if (name == "fmri") {
        const py::array h = as_array(vi_item(ch, "hrf", where), arg("hrf"));
        if (h.ndim() != 1 || h.shape(0) < 1) throw py::value_error(arg("hrf") + ": expected a 1-d kernel of >= 1 taps");
        c.taps = h.shape(0);
        c.hrf = view<S>(h, arg("hrf"), {c.taps});
        vi_check_finite(c.hrf, c.taps, static_cast<const S*>(nullptr), arg("hrf"));
      }
      c.gB = out(name + ".B", {c.N, M});
      c.gJ = out(name + ".J", {c.N, c.R});
      c.g_log_sigma = out(name + ".log_sigma", {c.N});
    } else if (name == "poisson") {
      vi::PoissonChannel<S>& c = obs.poisson;
      const py::array G = as_array(vi_item(ch, "G", where), arg("G"));
      if (G.ndim() != 2 || G.shape(0) < 1) throw py::value_error(arg("G") + ": expected a 2-d array (N, M), N >= 1");
      c.N = G.shape(0);
      c.G = view<S>(G, arg("G"), {c.N, M});
      c.g = view<S>(vi_item(ch, "g", where), arg("g"), {c.N});
      c.mask = vi_mask<S>(vi_item(ch, "mask", where, false), arg("mask"), {B, T, c.N});
      c.q = view<S>(vi_item(ch, "q", where), arg("q"), {B, T, c.N});
      for (index_t i = 0; i < B * T * c.N; ++i)
        if ((!c.mask || c.mask[i] != S(0)) && !(std::isfinite(c.q[i]) && c.q[i] >= 0 && std::floor(c.q[i]) == c.q[i]))
          throw py::value_error(arg("q") + ": counts must be finite integers >= 0 where observed (flat index " +
                                std::to_string(i) + ")");
      c.gG = out("poisson.G", {c.N, M});
      c.gg = out("poisson.g", {c.N});
    } else if (name == "categorical") {
      vi::CategoricalChannel<S>& c = obs.categorical;
      const py::array beta = as_array(vi_item(ch, "beta", where), arg("beta"));
      if (beta.ndim() != 2 || beta.shape(0) < 1)
        throw py::value_error(arg("beta") + ": expected a 2-d array (classes - 1, M) with >= 1 row");
      c.classes = beta.shape(0) + 1;
      c.beta = view<S>(beta, arg("beta"), {c.classes - 1, M});
      c.c = view<std::int64_t>(vi_item(ch, "c", where), arg("c"), {B, T});
      for (index_t i = 0; i < B * T; ++i)
        if (c.c[i] >= c.classes || c.c[i] < -1)
          throw py::value_error(arg("c") + ": class " + std::to_string(c.c[i]) + " outside [0, " +
                                std::to_string(c.classes) + ") (-1: missing)");
      c.g_beta = out("categorical.beta", {c.classes - 1, M});
    } else {
      throw py::value_error("channels: unknown modality '" + name + "' (gaussian, fmri, poisson, categorical)");
    }
    for (const auto& key : ch) {  // a misspelt key must not pass silently
      static const std::vector<std::string> known = {"B", "J", "log_sigma", "x", "mask", "r", "hrf", "G", "g", "q", "beta", "c"};
      const std::string k = py::str(key.first);
      if (std::find(known.begin(), known.end(), k) == known.end())
        throw py::value_error(where + ": unknown key '" + k + "'");
    }
  }
  S* gz = nullptr;
  py::object gz_obj = py::none();
  if (grad) {
    py::dict model_grads = new_grads<S>(spec, g);
    for (const auto& kv : model_grads) grads[kv.first] = kv.second;
    lat.g_mu0 = out("mu0", {M});
    lat.g_log_sigma0 = out("log_sigma0", {M});
    lat.g_log_sigma_z = out("log_sigma_z", {M});
    auto a = new_array<S>({B, T, M});
    gz = a.mutable_data();
    gz_obj = a;
  }
  vi::Weights w;
  w.latent = w_latent;
  w.obs = w_obs;
  w.floor = floor;
  const vi::LogJoint r = Backend::run([&] {
    return Backend::template vi_log_joint<S>(spec, p, lat, obs, B, T, z, s, w, grad ? &g : nullptr, gz, device);
  });
  py::dict parts;
  parts["latent"] = r.latent;
  if (obs.gaussian.N) parts["gaussian"] = r.gaussian;
  if (obs.fmri.N) parts["fmri"] = r.fmri;
  if (obs.poisson.N) parts["poisson"] = r.poisson;
  if (obs.categorical.classes) parts["categorical"] = r.categorical;
  return py::make_tuple(r.total, parts, grad ? py::object(grads) : py::object(py::none()), gz_obj);
}

// The call of both modules: scalar type from z (float32 / float64), the device checked first.
template <class Backend>
py::tuple vi_log_joint_call(const py::object& cfg, const py::dict& params, const py::dict& latent, const py::array& z,
                            const py::object& s, const py::dict& channels, double floor, double w_latent,
                            double w_obs, bool grad, int device) {
  const auto spec = spec_of(cfg);
  Backend::check_device(device);
  const py::array za = as_array(z, "z");
  if (za.dtype().is(py::dtype::of<float>()))
    return vi_log_joint_impl<Backend, float>(spec, params, latent, za, s, channels, floor, w_latent, w_obs, grad, device);
  if (za.dtype().is(py::dtype::of<double>()))
    return vi_log_joint_impl<Backend, double>(spec, params, latent, za, s, channels, floor, w_latent, w_obs, grad, device);
  throw py::type_error("z: expected dtype float32 or float64, got " + std::string(py::str(za.dtype())));
}

template <class Backend>
void def_vi(py::module_& m) {
  const std::string doc = std::string("Log-joint of the probabilistic PLRNN at z [B,T,M] (docs/probabilistic.md; ") +
                          Backend::kName + "): (total, parts, grads by name or None, d total / dz [B,T,M] or None).";
  m.def("vi_log_joint", &vi_log_joint_call<Backend>, py::arg("config"), py::arg("params"), py::arg("latent"),
        py::arg("z").noconvert(), py::arg("s") = py::none(), py::arg("channels") = py::dict(),
        py::arg("floor") = 1e-3, py::arg("w_latent") = 1.0, py::arg("w_obs") = 1.0, py::arg("grad") = true,
        py::arg("device") = 0, doc.c_str());
}

}  // namespace plrnn::bind
