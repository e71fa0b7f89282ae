// Shared by the pybind11 adapters of the CPU core (core_module.cpp) and of the CUDA module
// (cuda_module.cpp): the checks that turn Python arguments into the plain structs of
// csrc/core/types.h. Arrays must have exactly the expected dtype, shape and C-contiguity (no silent
// conversion); every failure is a TypeError/ValueError that names the argument.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "core/kind_names.h"
#include "core/param_layout.h"

namespace plrnn::bind {

namespace py = pybind11;

inline std::string shape_str(const std::vector<index_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

template <typename S>
const char* dtype_name() {
  if constexpr (std::is_same_v<S, float>) return "float32";
  else if constexpr (std::is_same_v<S, double>) return "float64";
  else return "int64";
}

inline std::string type_name(const py::handle& obj) {
  return std::string(py::str(py::type::handle_of(obj).attr("__name__")));
}

// `obj` as an array, after checking that it is one (never reinterpret an unchecked handle).
inline py::array as_array(const py::handle& obj, const std::string& name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(name + ": expected a numpy.ndarray, got " + type_name(obj));
  return py::reinterpret_borrow<py::array>(obj);
}

// A read-only view of `obj` as a C-contiguous S array of exactly `shape`, or an exception that
// names the argument.
template <typename S>
const S* view(const py::handle& obj, const std::string& name, const std::vector<index_t>& shape) {
  auto a = as_array(obj, name);
  if (!a.dtype().is(py::dtype::of<S>()))
    throw py::type_error(name + ": expected dtype " + dtype_name<S>() + ", got " + std::string(py::str(a.dtype())));
  std::vector<index_t> got(a.shape(), a.shape() + a.ndim());
  if (got != shape)
    throw py::value_error(name + ": expected shape " + shape_str(shape) + ", got " + shape_str(got));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(name + ": must be C-contiguous (pass numpy.ascontiguousarray(" + name + "))");
  return static_cast<const S*>(a.data());
}

// A writable view of an output buffer `obj` (C-contiguous S array of exactly `shape`).
template <typename S>
S* view_out(const py::handle& obj, const std::string& name, const std::vector<index_t>& shape) {
  const S* p = view<S>(obj, name, shape);
  if (!as_array(obj, name).writeable())
    throw py::value_error(name + ": output array is read-only");
  return const_cast<S*>(p);
}

template <typename S>
py::array_t<S> new_array(const std::vector<index_t>& shape) {
  return py::array_t<S>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
}

inline std::vector<index_t> shape_of(const ParamShape& ps) {
  return ps.vector ? std::vector<index_t>{ps.rows} : std::vector<index_t>{ps.rows, ps.cols};
}

// Typed entries of a configuration dict: the type is checked before the cast.
inline index_t cfg_int(const py::dict& cfg, const char* key, index_t dflt) {
  if (!cfg.contains(key) || cfg[key].is_none()) return dflt;
  const py::object v = cfg[key];
  if (!PyIndex_Check(v.ptr()) || py::isinstance<py::bool_>(v))
    throw py::type_error(std::string("config: '") + key + "' must be an integer, got " + type_name(v));
  const auto i = py::reinterpret_steal<py::object>(PyNumber_Index(v.ptr()));
  if (!i) throw py::error_already_set();
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow != 0 || value > (1ll << 40) || value < -(1ll << 40))
    throw py::value_error(std::string("config: '") + key + "' is out of range, got " + std::string(py::str(v)));
  return static_cast<index_t>(value);
}

inline std::string cfg_str(const py::dict& cfg, const char* key, const char* dflt) {
  if (!cfg.contains(key)) {
    if (dflt == nullptr) throw py::value_error(std::string("config: '") + key + "' is required");
    return dflt;
  }
  const py::object v = cfg[key];
  if (!py::isinstance<py::str>(v))
    throw py::type_error(std::string("config: '") + key + "' must be a string, got " + type_name(v));
  return v.cast<std::string>();
}

inline bool cfg_bool(const py::dict& cfg, const char* key) {
  if (!cfg.contains(key)) return false;
  const py::object v = cfg[key];
  if (!py::isinstance<py::bool_>(v))
    throw py::type_error(std::string("config: '") + key + "' must be a bool, got " + type_name(v));
  return v.cast<bool>();
}

inline ModelSpec parse_spec(const py::dict& cfg) {
  auto get_int = [&](const char* key, index_t dflt) { return cfg_int(cfg, key, dflt); };
  ModelSpec spec;
  const std::string kind = cfg_str(cfg, "kind", nullptr);
  const bool clipped = cfg_bool(cfg, "clipped");
  const auto k = kind_from_name(kind, clipped);  // the names of csrc/kinds.h
  if (!k) throw py::value_error("kind: unknown model kind '" + kind + "' (" + kind_name_list() + ")");
  spec.kind = *k;
  const std::string obs = cfg_str(cfg, "obs", "identity");
  if (obs == "identity") spec.obs = Obs::Identity;
  else if (obs == "linear") spec.obs = Obs::Linear;
  else if (obs == "none") spec.obs = Obs::None;
  else throw py::value_error("obs: unknown observation model '" + obs + "' (identity, linear, none)");
  spec.dims.M = get_int("M", 0);
  spec.dims.N = get_int("N", 0);
  spec.dims.K = get_int("K", 0);
  spec.dims.P = get_int("P", 0);
  spec.dims.Bb = get_int("bases", 0);
  spec.dims.H = get_int("hidden", 0);
  check_spec(spec);
  return spec;
}

// The model configuration of a call: a ModelSpec object (parsed once, when a model is made:
// plrnn_native.models.PLRNN keeps one; registered by the CPU module, see def_model_spec) or a dict,
// parsed here.
inline ModelSpec spec_of(const py::handle& cfg) {
  if (py::isinstance<ModelSpec>(cfg)) return cfg.cast<ModelSpec>();
  if (!py::isinstance<py::dict>(cfg))
    throw py::type_error("config: expected a dict or a plrnn_native._core.ModelSpec, got " + type_name(cfg));
  return parse_spec(py::reinterpret_borrow<py::dict>(cfg));
}

// The Python class of the parsed configuration (CPU module; the CUDA module imports it from there).
inline void def_model_spec(py::module_& m) {
  py::class_<ModelSpec>(m, "ModelSpec",
                        "A model configuration parsed and checked once (kind, observation, sizes): what the native "
                        "calls take as `config` (a dict is parsed on every call instead).")
      .def(py::init([](const py::dict& cfg) { return parse_spec(cfg); }), py::arg("config"))
      .def_property_readonly("M", [](const ModelSpec& s) { return s.dims.M; })
      .def_property_readonly("N", [](const ModelSpec& s) { return s.dims.N; })
      .def_property_readonly("K", [](const ModelSpec& s) { return s.dims.K; })
      .def("__repr__", [](const ModelSpec& s) {
        return "ModelSpec(kind=" + std::to_string(static_cast<int>(s.kind)) + ", obs=" +
               std::to_string(static_cast<int>(s.obs)) + ", M=" + std::to_string(s.dims.M) + ", N=" +
               std::to_string(s.dims.N) + ", K=" + std::to_string(s.dims.K) + ")";
      });
}

// The forcing mode by name; tau and alpha as given (their values are check_forcing's, which the core's
// check_call runs once per call, csrc/core/param_layout.h).
inline ForcingSpec parse_forcing(const std::string& mode, index_t tau, double alpha) {
  ForcingSpec f;
  if (mode == "none") f.mode = Forcing::None;
  else if (mode == "sparse") f.mode = Forcing::Sparse;
  else if (mode == "generalized") f.mode = Forcing::Generalized;
  else throw py::value_error("forcing: unknown mode '" + mode + "' (none, sparse, generalized)");
  f.tau = tau;
  f.alpha = alpha;
  return f;
}

// Views of every parameter of the spec in `params`; `prefix` goes before the names in messages.
template <typename S>
Params<S> parse_params(const ModelSpec& spec, const py::dict& params, const std::string& prefix = "") {
  Params<S> p;
  auto slots = param_slots(p);
  for (int id = 0; id < kNumParams; ++id) {
    const auto ps = param_shape(spec, id);
    if (!ps.present) continue;
    const char* name = param_name(id);
    if (!params.contains(name)) throw py::value_error(prefix + "params: missing parameter '" + name + "'");
    *slots[id] = view<S>(params[name], prefix + name, shape_of(ps));
  }
  return p;
}

// Zeroed gradient arrays for every parameter of the spec, pointed to by `g`.
template <typename S>
py::dict new_grads(const ModelSpec& spec, Grads<S>& g) {
  py::dict out;
  auto slots = param_slots(g);
  for (int id = 0; id < kNumParams; ++id) {
    const auto ps = param_shape(spec, id);
    if (!ps.present) continue;
    auto arr = new_array<S>(shape_of(ps));
    if (arr.size()) std::fill(arr.mutable_data(), arr.mutable_data() + arr.size(), S(0));
    *slots[id] = arr.mutable_data();
    out[param_name(id)] = arr;
  }
  return out;
}

// External inputs s [B, T, K] (nullptr when K == 0; an s given for K == 0 must have K = 0 columns).
template <typename S>
const S* parse_inputs(const ModelSpec& spec, const py::object& s, index_t B, index_t T) {
  const index_t K = spec.dims.K;
  if (K > 0) {
    if (s.is_none()) throw py::value_error("s: the model has K=" + std::to_string(K) + " inputs, s is required");
    return view<S>(s, "s", {B, T, K});
  }
  if (!s.is_none()) view<S>(s, "s", {B, T, 0});
  return nullptr;
}

// Shared by rollout and loss_and_grad: checks x, s against the spec, and Binv [M, N] exactly when the
// call needs it (needs_binv, core/param_layout.h; it is ignored otherwise).
template <typename S>
Batch<S> parse_batch(const ModelSpec& spec, const py::array& x, const py::object& s, const py::object& Binv,
                     const ForcingSpec& f) {
  if (x.ndim() != 3) throw py::value_error("x: expected a 3-d array (B, T, N), got ndim=" + std::to_string(x.ndim()));
  Batch<S> b;
  b.B = x.shape(0);
  b.T = x.shape(1);
  const auto& d = spec.dims;
  b.x = view<S>(x, "x", {b.B, b.T, d.N});
  b.s = parse_inputs<S>(spec, s, b.B, b.T);
  if (needs_binv(spec, f)) {
    if (Binv.is_none()) throw py::value_error("Binv: required for forcing with the linear observation model");
    b.Binv = view<S>(Binv, "Binv", {d.M, d.N});
  }
  return b;
}

// Missing values: a 0/1 mask of the batch's shape [B, T, N], or nullptr for none. `supported`: whether
// the backend (named `backend`) takes masks.
template <typename S>
const S* parse_mask(const ModelSpec& spec, const py::object& mask, index_t B, index_t T, bool supported,
                    const char* backend) {
  if (mask.is_none()) return nullptr;
  if (!supported)
    throw py::value_error(std::string("mask: missing values are not supported by the ") + backend +
                          " backend (use device='cpu')");
  const S* m = view<S>(mask, "mask", {B, T, spec.dims.N});
  const index_t n = B * T * spec.dims.N;
  for (index_t i = 0; i < n; ++i)
    if (m[i] != S(0) && m[i] != S(1)) throw py::value_error("mask: entries must be 0 (missing) or 1 (observed)");
  return m;
}

// The MAR units: a 1-d contiguous int64 array (its values are checked by check_mar, csrc/regularizers/mar.h).
inline const index_t* parse_units(const py::array& units) {
  if (!units.dtype().is(py::dtype::of<index_t>()) || units.ndim() != 1 || !(units.flags() & py::array::c_style))
    throw py::type_error("units: expected a 1-d contiguous int64 array");
  return static_cast<const index_t*>(units.data());
}

// Arguments of a free run: z0 [B, M], inputs [B, T, K] and process noise [B, T, M] (or null).
template <typename S>
struct GenerateArgs {
  index_t B = 0, T = 0;
  const S* z0 = nullptr;
  const S* s = nullptr;
  const S* eps = nullptr;
};

template <typename S>
GenerateArgs<S> parse_generate(const ModelSpec& spec, const py::array& z0, index_t T, const py::object& s,
                               const py::object& eps) {
  if (z0.ndim() != 2) throw py::value_error("z0: expected a 2-d array (B, M), got ndim=" + std::to_string(z0.ndim()));
  if (T < 1) throw py::value_error("T: must be >= 1, got " + std::to_string(T));
  GenerateArgs<S> g;
  g.B = z0.shape(0);
  g.T = T;
  g.z0 = view<S>(z0, "z0", {g.B, spec.dims.M});
  g.s = parse_inputs<S>(spec, s, g.B, T);
  g.eps = eps.is_none() ? nullptr : view<S>(eps, "eps", {g.B, T, spec.dims.M});
  return g;
}

}  // namespace plrnn::bind
