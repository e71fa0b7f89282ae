// pybind11 adapter for the CPU core: checks the arrays (dtype, contiguity, shape — no silent
// conversion), allocates the outputs, releases the GIL and calls csrc/api.h. The model API shared with
// the CUDA module (rollout, loss_and_grad, generate, mar_penalty, param_shapes) is the one template of
// model_api.h; the supervised path and the CPU fixed-point solver are this module's own.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "analysis/fixed_points.h"
#include "analysis/lyapunov.h"
#include "api.h"
#include "core/fma_peak.h"
#include "core/kernel_rates.h"
#include "observation/pinv.h"
#include "rollout/lane_bptt.h"
#include "adam_binding.h"
#include "interrupt.h"
#include "model_api.h"
#include "model_args.h"
#include "trainer_binding.h"
#include "training/train_step.h"
#include "vi_binding.h"

namespace py = pybind11;
using plrnn::index_t;
using namespace plrnn::bind;

namespace {

// The CPU core as a Backend of the shared model binding (model_api.h): one device (index 0), masks
// supported, native calls interruptible (Ctrl-C) without the GIL.
struct CpuBackend {
  static constexpr const char* kName = "CPU core";
  static constexpr bool kMasks = true;
  static void check_device(int device) {
    if (device != 0) throw py::value_error("device: the CPU core has one device (0), got " + std::to_string(device));
  }
  template <class Fn>
  static auto run(Fn&& fn) { return call_interruptible(std::forward<Fn>(fn)); }
  template <typename S>
  static plrnn::LossResult rollout(const plrnn::ModelSpec& spec, const plrnn::Params<S>& p,
                                   const plrnn::ForcingSpec& f, const plrnn::Batch<S>& b, int) {
    return plrnn::rollout<S>(spec, p, f, b);
  }
  template <typename S>
  static plrnn::LossResult loss_and_grad(const plrnn::ModelSpec& spec, const plrnn::Params<S>& p,
                                         const plrnn::ForcingSpec& f, const plrnn::Batch<S>& b,
                                         const plrnn::Grads<S>& g, int) {
    return plrnn::loss_and_grad<S>(spec, p, f, b, g);
  }
  template <typename S>
  static void generate(const plrnn::ModelSpec& spec, const plrnn::Params<S>& p, index_t B, index_t T, const S* z0,
                       const S* s, const S* eps, S* z, S* xhat, int) {
    plrnn::generate<S>(spec, p, B, T, z0, s, eps, z, xhat);
  }
  template <typename S>
  static double mar_penalty(const plrnn::ModelSpec& spec, const plrnn::Params<S>& p, const index_t* units,
                            index_t n_units, double weight, bool mean, const plrnn::Grads<S>& g, int) {
    return plrnn::mar_penalty<S>(spec, p, units, n_units, weight, mean, g);
  }
  template <typename S>
  static plrnn::vi::LogJoint vi_log_joint(const plrnn::ModelSpec& spec, const plrnn::Params<S>& p,
                                          const plrnn::vi::Latent<S>& latent, const plrnn::vi::Observations<S>& obs,
                                          index_t B, index_t T, const S* z, const S* s, const plrnn::vi::Weights& w,
                                          const plrnn::Grads<S>* grads, S* gz, int) {
    return plrnn::vi_log_joint<S>(spec, p, latent, obs, B, T, z, s, w, grads, gz);
  }
};

// Supervised model: mask [B, T] fixes the batch and length; targets [B, T, O] (MSE) or int64
// labels [B, T] (cross-entropy), checked where the mask is nonzero.
template <typename S>
py::tuple supervised_impl(const plrnn::ModelSpec& spec, const py::dict& params, const py::array& Bo,
                          const py::array& bo, const py::object& s, const py::object& z0, const py::array& mask,
                          const py::object& target, const std::string& loss, bool grad, bool return_y,
                          bool return_z) {
  auto p = parse_params<S>(spec, params);
  const auto& d = spec.dims;
  if (Bo.ndim() != 2) throw py::value_error("B: expected a 2-d readout matrix (O, M), got ndim=" + std::to_string(Bo.ndim()));
  plrnn::ReadoutSet<const S> r;
  r.O = Bo.shape(0);
  r.B = view<S>(Bo, "B", {r.O, d.M});
  r.b = view<S>(bo, "b", {r.O});
  if (mask.ndim() != 2) throw py::value_error("mask: expected a 2-d array (B, T), got ndim=" + std::to_string(mask.ndim()));
  plrnn::SupervisedBatch<S> b;
  b.B = mask.shape(0);
  b.T = mask.shape(1);
  b.mask = view<S>(mask, "mask", {b.B, b.T});
  for (index_t i = 0; i < b.B * b.T; ++i)
    if (!(b.mask[i] >= S(0)) || !std::isfinite(b.mask[i]))
      throw py::value_error("mask: weights must be finite and >= 0 (entry " + std::to_string(i) + ")");
  b.s = parse_inputs<S>(spec, s, b.B, b.T);
  if (!z0.is_none()) b.z0 = view<S>(z0, "z0", {b.B, d.M});
  plrnn::SupLoss kind;
  if (loss == "mse") {
    kind = plrnn::SupLoss::MSE;
    if (!target.is_none()) b.target = view<S>(target, "target", {b.B, b.T, r.O});
  } else if (loss == "ce") {
    kind = plrnn::SupLoss::CrossEntropy;
    if (!target.is_none()) {
      b.labels = view<std::int64_t>(target, "target", {b.B, b.T});
      for (index_t i = 0; i < b.B * b.T; ++i)
        if (b.mask[i] != S(0) && (b.labels[i] < 0 || b.labels[i] >= r.O))
          throw py::value_error("target: class label " + std::to_string(b.labels[i]) + " at (" + std::to_string(i / b.T) +
                                ", " + std::to_string(i % b.T) + ") is outside [0, O=" + std::to_string(r.O) + ")");
    }
  } else {
    throw py::value_error("loss: expected 'mse' or 'ce', got '" + loss + "'");
  }
  py::object y = py::none(), z = py::none(), gz0 = py::none(), grads = py::none();
  if (return_y) {
    auto a = new_array<S>({b.B, b.T, r.O});
    b.y = a.mutable_data();
    y = a;
  }
  if (return_z) {
    auto a = new_array<S>({b.B, b.T, d.M});
    b.z = a.mutable_data();
    z = a;
  }
  plrnn::Grads<S> g;
  plrnn::ReadoutSet<S> rg;
  S* gz0p = nullptr;
  if (grad) {
    py::dict gd = new_grads<S>(spec, g);
    auto gB = new_array<S>({r.O, d.M});
    auto gb = new_array<S>({r.O});
    auto gz = new_array<S>({b.B, d.M});
    rg.O = r.O;
    rg.B = gB.mutable_data();
    rg.b = gb.mutable_data();
    gz0p = gz.mutable_data();
    gd["B"] = gB;
    gd["b"] = gb;
    gz0 = gz;
    grads = gd;
  }
  const auto res = call_interruptible([&] {
    return plrnn::supervised<S>(spec, p, r, kind, b, grad ? &g : nullptr, grad ? &rg : nullptr, gz0p);
  });
  return py::make_tuple(res.loss, res.weight, grads, gz0, y, z);
}

// The generic piecewise-linear form (python/plrnn_native/piecewise.py) as a PiecewiseMap; the
// arrays stay owned by the caller's objects for the duration of the call.
plrnn::PiecewiseMap parse_form(const py::array& J0, const py::array& b, const py::array& U, const py::array& V,
                               const py::list& breakpoints, const py::list& slopes, const py::list& intercepts) {
  plrnn::PiecewiseMap map;
  if (J0.ndim() != 2) throw py::value_error("J0: expected a 2-d array [M, M]");
  map.M = J0.shape(0);
  map.n = py::len(breakpoints);
  map.J0 = view<double>(J0, "J0", {map.M, map.M});
  map.b = view<double>(b, "b", {map.M});
  map.U = view<double>(U, "U", {map.M, map.n});
  map.V = view<double>(V, "V", {map.M, map.n});
  if (static_cast<index_t>(py::len(slopes)) != map.n || static_cast<index_t>(py::len(intercepts)) != map.n)
    throw py::value_error("slopes: need one array of slopes and of intercepts per switch unit");
  auto as_vector = [](const py::handle& h, const std::string& name, index_t size) {
    // the type is checked before the handle is read as an array (a list here must raise, not crash)
    const index_t n = size >= 0 ? size : static_cast<index_t>(as_array(h, name).size());
    const double* p = view<double>(h, name, {n});
    return std::vector<double>(p, p + n);
  };
  for (index_t j = 0; j < map.n; ++j) {
    const std::string idx = "[" + std::to_string(j) + "]";
    map.breakpoints.push_back(as_vector(breakpoints[j], "breakpoints" + idx, -1));
    const index_t pieces = static_cast<index_t>(map.breakpoints.back().size()) + 1;
    map.slopes.push_back(as_vector(slopes[j], "slopes" + idx, pieces));
    map.intercepts.push_back(as_vector(intercepts[j], "intercepts" + idx, pieces));
  }
  return map;
}

py::tuple point_set_to_python(const plrnn::PointSet& ps, index_t M, index_t n) {
  const index_t count = ps.count(), k = ps.period;
  const index_t listed = n > 0 ? static_cast<index_t>(ps.degenerate.size()) / (k * n) : 0;
  auto points = new_array<double>(k == 1 ? std::vector<index_t>{count, M} : std::vector<index_t>{count, k, M});
  auto pieces = py::array_t<std::int32_t>(k == 1 ? std::vector<py::ssize_t>{count, n} : std::vector<py::ssize_t>{count, k, n});
  auto degenerate = py::array_t<std::int32_t>(k == 1 ? std::vector<py::ssize_t>{listed, n} : std::vector<py::ssize_t>{listed, k, n});
  std::copy(ps.points.begin(), ps.points.end(), points.mutable_data());
  std::copy(ps.pieces.begin(), ps.pieces.end(), pieces.mutable_data());
  std::copy(ps.degenerate.begin(), ps.degenerate.end(), degenerate.mutable_data());
  return py::make_tuple(points, pieces, degenerate, ps.n_degenerate, ps.visited);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  def_model_spec(m);  // first: every call below takes it as `config`
  m.doc() = "plrnn_native CPU core (C++/Eigen). Use the Python API in plrnn_native; shapes: docs/model.md.";
  init_interrupts();
  def_vi<CpuBackend>(m);

  def_model_api<CpuBackend>(m);
  def_adam(m);
  m.def("kinds", [] {
    py::list out;
    for (const plrnn::KindName& k : plrnn::kKindNames)
      out.append(py::dict(py::arg("name") = k.name, py::arg("clipped") = k.clipped, py::arg("family") = k.family,
                          py::arg("zero_diag_W") = k.zero_diag_W));
    return out;
  }, "Every model kind as {name, clipped, family, zero_diag_W}, in the order of csrc/kinds.h (the one list).");
  m.def("check_forcing", [](const std::string& mode, index_t tau, double alpha) { check_forcing(parse_forcing(mode, tau, alpha)); },
        py::arg("mode"), py::arg("tau"), py::arg("alpha"),
        "ValueError naming tau or alpha where the forcing mode does not take their value (csrc/core/param_layout.h).");
  m.def("initial_state", [](const plrnn::ModelSpec& spec, const py::dict& params, const py::array& x0) {
    if (x0.ndim() != 2) throw py::value_error("x0: expected a 2-d array (B, N), got ndim=" + std::to_string(x0.ndim()));
    const index_t B = x0.shape(0);
    auto run = [&](auto tag) -> py::array {
      using S = decltype(tag);
      const auto p = parse_params<S>(spec, params);
      const S* x = view<S>(x0, "x0", {B, spec.dims.N});
      auto z0 = new_array<S>({B, spec.dims.M});
      plrnn::initial_state<S>(spec, p, B, x, z0.mutable_data());
      return z0;
    };
    return is_f32(x0, "x0") ? run(float{}) : run(double{});
  }, py::arg("config"), py::arg("params"), py::arg("x0"),
        "z0 [B, M] of x0 [B, N] (csrc/api.h: each sequence's from its own x0 alone); the one routine of "
        "PLRNN.initial_state on every backend.");
  m.def("pinv_B", [](const py::array& B) {
    if (B.ndim() != 2) throw py::value_error("B: expected a 2-d array [N, M]");
    const index_t N = B.shape(0), M = B.shape(1);
    auto run = [&](auto tag) -> py::array {
      using S = decltype(tag);
      const auto in = py::array_t<S, py::array::c_style | py::array::forcecast>::ensure(B);
      py::array_t<S> out({M, N});
      plrnn::pinv_B<S>(in.data(), N, M, out.mutable_data());
      return out;
    };
    return is_f32(B, "B") ? run(float{}) : run(double{});
  }, py::arg("B"), "pinv(B) [M, N] of B [N, M] in B's dtype (float64 complete orthogonal decomposition, "
                   "csrc/observation/pinv.h): the forcing operator every trainer and PLRNN.pinv_B use.");
  m.def("ode_integrate", [](const std::string& system, const std::vector<double>& params, const py::array& u0,
                            double t0, double t1, double rtol, double atol, const py::object& t_eval) {
    const index_t n = plrnn::ode_dimension(system, params);
    for (double v : params)
      if (!std::isfinite(v)) throw py::value_error("params: must be finite");
    if (!u0.dtype().is(py::dtype::of<double>()) || u0.ndim() != 1 || u0.shape(0) != n)
      throw py::value_error("u0: expected a float64 array of shape [" + std::to_string(n) + "]");
    py::array_t<double> u({n});
    std::copy_n(py::array_t<double>::ensure(u0).data(), n, u.mutable_data());  // dtype checked above
    for (index_t i = 0; i < n; ++i)
      if (!std::isfinite(u.data()[i])) throw py::value_error("u0: must be finite");
    if (!std::isfinite(t0) || !std::isfinite(t1) || !(t1 > t0))
      throw py::value_error("t0, t1: need finite t0 < t1");
    if (!(rtol > 0) || !std::isfinite(rtol)) throw py::value_error("rtol: must be finite and > 0");
    if (!(atol > 0) || !std::isfinite(atol)) throw py::value_error("atol: must be finite and > 0");
    py::array_t<double> times;
    index_t k = 0;
    if (!t_eval.is_none()) {
      const auto te = py::array::ensure(t_eval);
      if (!te || !te.dtype().is(py::dtype::of<double>()) || te.ndim() != 1)
        throw py::value_error("t_eval: expected a 1-d float64 array");
      times = py::array_t<double, py::array::c_style>::ensure(te);
      k = times.shape(0);
      const double* tv = times.data();
      for (index_t i = 0; i < k; ++i) {
        if (!(tv[i] >= t0 && tv[i] <= t1)) throw py::value_error("t_eval: the times must lie in [t0, t1]");
        if (i > 0 && !(tv[i] > tv[i - 1])) throw py::value_error("t_eval: the times must increase strictly");
      }
    }
    py::object states = py::none();
    double* out = nullptr;
    if (!t_eval.is_none()) {
      py::array_t<double> o({k, n});
      out = o.mutable_data();
      states = o;
    }
    const double* tv = t_eval.is_none() ? nullptr : times.data();
    double* up = u.mutable_data();
    call_interruptible([&] { plrnn::ode_integrate(system, params, t0, t1, up, rtol, atol, tv, k, out); });
    return py::make_tuple(u, states);
  }, py::arg("system"), py::arg("params"), py::arg("u0"), py::arg("t0"), py::arg("t1"), py::arg("rtol"),
     py::arg("atol"), py::arg("t_eval") = py::none(),
     "(u(t1) [n], u(t_eval) [k, n] or None): a built-in benchmark ODE integrated by DOP853 (csrc/data/dop853.h, "
     "the steps of SciPy's solve_ivp); RuntimeError when the step size underflows or the state is not finite.");
  def_trainer<plrnn::HostTrainer, CpuBackend>(
      m, "The CPU trainer (csrc/training/train_step.h): many optimiser steps per native call (counter-based batch "
         "sampling, forward + BPTT, MAR, clipping, Adam/RAdam); the interface of the CUDA module's Trainer.");

  m.def("supervised", [](const py::object& cfg, const py::dict& params, const py::array& B, const py::array& b,
                         const py::object& s, const py::object& z0, const py::array& mask, const py::object& target,
                         const std::string& loss, bool grad, bool return_y, bool return_z) {
    const auto spec = spec_of(cfg);
    return is_f32(mask, "mask") ? supervised_impl<float>(spec, params, B, b, s, z0, mask, target, loss, grad, return_y, return_z)
                                : supervised_impl<double>(spec, params, B, b, s, z0, mask, target, loss, grad, return_y, return_z);
  }, py::arg("config"), py::arg("params"), py::arg("B").noconvert(), py::arg("b").noconvert(), py::arg("s") = py::none(),
     py::arg("z0") = py::none(), py::arg("mask").noconvert(), py::arg("target") = py::none(), py::arg("loss") = "mse",
     py::arg("grad") = false, py::arg("return_y") = true, py::arg("return_z") = false,
     "Supervised model (obs 'none'): (loss, mask sum, grads incl. B, b or None, dL/dz0 [B,M] or None, y [B,T,O] or None, z [B,T,M] or None).");

  m.def("count_regions", [](const py::list& slopes) {
    plrnn::PiecewiseMap map;
    for (const auto& s : slopes) map.slopes.emplace_back(py::len(s));
    return plrnn::count_regions(map);
  }, py::arg("slopes"), "Number of linear regions (0 when it exceeds 63 bits).");

  m.def("fixed_points_exhaustive", [](const py::array& J0, const py::array& b, const py::array& U, const py::array& V,
                                      const py::list& breakpoints, const py::list& slopes, const py::list& intercepts,
                                      int refactor_every, const py::object& progress) {
    const auto map = parse_form(J0, b, U, V, breakpoints, slopes, intercepts);
    const auto ps = call_interruptible([&] { return plrnn::exhaustive_fixed_points(map, refactor_every); }, progress);
    return point_set_to_python(ps, map.M, map.n);
  }, py::arg("J0"), py::arg("b"), py::arg("U"), py::arg("V"), py::arg("breakpoints"), py::arg("slopes"),
     py::arg("intercepts"), py::arg("refactor_every") = 256, py::arg("progress") = py::none(),
     "All fixed points of a piecewise-linear map: (points [c,M], pieces [c,n], degenerate [d,n], n_degenerate, visited).\n"
     "Interruptible (Ctrl-C); progress(regions_visited) is called every few ms when given.");

  m.def("cycles_exhaustive", [](const py::array& J0, const py::array& b, const py::array& U, const py::array& V,
                                const py::list& breakpoints, const py::list& slopes, const py::list& intercepts, int k,
                                const py::object& progress) {
    const auto map = parse_form(J0, b, U, V, breakpoints, slopes, intercepts);
    const auto ps = call_interruptible([&] { return plrnn::exhaustive_cycles(map, k); }, progress);
    return point_set_to_python(ps, map.M, map.n);
  }, py::arg("J0"), py::arg("b"), py::arg("U"), py::arg("V"), py::arg("breakpoints"), py::arg("slopes"),
     py::arg("intercepts"), py::arg("k"), py::arg("progress") = py::none(),
     "All k-cycles with primitive region sequences: (points [c,k,M], pieces [c,k,n], degenerate [d,k,n], n_degenerate, visited).\n"
     "Interruptible (Ctrl-C); progress(sequences_solved) is called every few ms when given.");

  m.def("lyapunov_frame", [](const py::array& J, const py::array& Q, index_t first, index_t transient, index_t total,
                             index_t renorm_every) {
    if (Q.ndim() != 2) throw py::value_error("Q: expected a 2-d array [M, k], got " + std::to_string(Q.ndim()) + " dimensions");
    if (J.ndim() != 3) throw py::value_error("J: expected a 3-d array [n, M, M], got " + std::to_string(J.ndim()) + " dimensions");
    const index_t M = Q.shape(0), k = Q.shape(1), n = J.shape(0);
    const double* j = view<double>(J, "J", {n, M, M});
    const double* q = view<double>(Q, "Q", {M, k});
    if (!std::all_of(j, j + n * M * M, [](double v) { return std::isfinite(v); }))
      throw py::value_error("J: contains NaN or inf");
    if (!std::all_of(q, q + M * k, [](double v) { return std::isfinite(v); }))
      throw py::value_error("Q: contains NaN or inf");
    if (transient < 0 || total < 1 || renorm_every < 1)
      throw py::value_error("schedule: need transient >= 0, total >= 1, renorm_every >= 1");
    auto frame = new_array<double>({M, k});
    auto log_growth = new_array<double>({k});
    std::copy(q, q + M * k, frame.mutable_data());
    std::fill(log_growth.mutable_data(), log_growth.mutable_data() + k, 0.0);
    const plrnn::FrameSchedule schedule{transient, total, renorm_every};
    double* f = frame.mutable_data();
    double* g = log_growth.mutable_data();
    call_interruptible([&] { plrnn::propagate_frame(j, first, n, M, k, schedule, f, g); });
    return py::make_tuple(frame, log_growth);
  }, py::arg("J").noconvert(), py::arg("Q").noconvert(), py::arg("first"), py::arg("transient"), py::arg("total"),
     py::arg("renorm_every"),
     "(Q [M,k], log_growth [k]): the orthonormal frame Q carried through the Jacobians J [n,M,M] (float64) of the "
     "steps first .. first+n-1 of a Lyapunov run (csrc/analysis/lyapunov.h: Q <- J_s Q, Householder QR where the "
     "schedule says) and the sum of log|R_ii| over the QRs after the transient. Interruptible (Ctrl-C).");

  m.def("fma_peak_flops", [](const std::string& dtype, double seconds) {
    if (!(seconds > 0 && seconds <= 10)) throw py::value_error("seconds: must be in (0, 10]");
    if (dtype != "float32" && dtype != "float64")
      throw py::value_error("dtype: must be 'float32' or 'float64', got '" + dtype + "'");
    py::gil_scoped_release nogil;
    return dtype == "float32" ? plrnn::fma_peak_flops<float>(seconds)
                              : plrnn::fma_peak_flops<double>(seconds);
  }, py::arg("dtype") = "float32", py::arg("seconds") = 0.2,
     "FMA throughput (flop/s, 2 per FMA) of the calling thread in the SIMD width of this build.");

  m.def("kernel_rates", [](const std::string& dtype, long M, long B, long T, double seconds) {
    if (dtype != "float32" && dtype != "float64")
      throw py::value_error("dtype: must be 'float32' or 'float64', got '" + dtype + "'");
    if (!(seconds > 0 && seconds <= 10)) throw py::value_error("seconds: must be in (0, 10]");
    if (M < 1 || M > 4096) throw py::value_error("M: must be in [1, 4096]");
    if (B < 1 || B > 4096) throw py::value_error("B: must be in [1, 4096]");
    if (T < 2 || T > 100000) throw py::value_error("T: must be in [2, 100000]");
    const auto [b0, b1] = plrnn::chunk_range(B, plrnn::batch_chunks(B), 0);
    if (double(M) * double(T - 1) * double(b1 - b0) > double(1L << 25))
      throw py::value_error("M, B, T: the probe's arrays [M, (T - 1) B / chunks] would hold more than 2^25 values");
    const plrnn::KernelRates r = call_interruptible([&] {
      return dtype == "float32" ? plrnn::kernel_rates<float>(M, B, T, seconds)
                                : plrnn::kernel_rates<double>(M, B, T, seconds);
    });
    py::dict out;
    out["product_flops"] = r.product;
    out["weight_grad_flops"] = r.weight_grad;
    out["nb"] = r.nb;
    out["cols"] = r.cols;
    return out;
  }, py::arg("dtype"), py::arg("M"), py::arg("B"), py::arg("T"), py::arg("seconds") = 0.2,
     "For benchmarks: flop/s (2 per FMA) on the calling thread of the standard PLRNN step's two matrix kernels "
     "on their own (csrc/core/kernel_rates.h): the per-step product of a packed [M, M] matrix with one chunk's "
     "[M, nb] block ('product_flops') and the gradient of W over the chunk's (T - 1) nb columns "
     "('weight_grad_flops'); 'nb', 'cols' the chunk's sequences and columns. Each timed for about 2 x seconds; "
     "interruptible (Ctrl-C).");

  m.def("get_num_threads", &plrnn::get_num_threads);
  m.def("set_num_threads", &plrnn::set_num_threads, py::arg("n"));
  m.def(
      "_set_lane_time_loop", [](bool on) { return plrnn::lane_time_loop_switch().exchange(on); }, py::arg("on"),
      "For tests and benchmarks: use the lane-resident time loop (rollout/lane_bptt.h) where it applies "
      "(the default) or always the general one; returns the previous setting.");
}
