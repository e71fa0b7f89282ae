// pybind11 adapter for the CUDA module. Importing it never fails for lack of a GPU: the runtime is
// linked statically and a missing driver becomes "unavailable" with a reason.
//
// Entry points: device discovery, the exhaustive fixed-point search, the model API shared with the CPU
// module through one template (model_api.h: param_shapes, rollout, loss_and_grad, generate, mar_penalty,
// with the same arguments, `device` last), the log-joint of the probabilistic PLRNN (vi_binding.h, `device`
// last), and Trainer (device-resident training steps, cuda/training/train_step.h's DeviceTrainer; its
// binding is shared with the CPU's: trainer_binding.h).
//
// The adapter checks the arrays (dtype, contiguity, shape: no silent conversion) and the limits of the
// kernels before anything touches the GPU, so a caller's mistake is a TypeError/ValueError naming the
// argument on every machine; only then does a missing GPU raise RuntimeError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <memory>
#include <type_traits>
#include <vector>

#include "analysis/fixed_points.cuh"
#include "api.h"
#include "core/device_info.h"
#include "model_api.h"
#include "model_args.h"
#include "trainer_binding.h"
#include "training/train_step.h"
#include "vi_binding.h"

namespace py = pybind11;
using plrnn::index_t;
using namespace plrnn::bind;

namespace {

// Whether this module was built on the CPU emulator (cuda/emulation/): its kernels run on the CPU, for tests.
#ifdef PLRNN_CUDA_EMULATION
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

void check_device_index(int device) {
  if (device < 0) throw py::value_error("device: must be >= 0, got " + std::to_string(device));
}

// `obj` as a C-contiguous float64 array with `ndim` dimensions, or an exception naming `name`.
py::array f64_array(const py::handle& obj, const std::string& name, int ndim) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(name + ": expected a numpy.ndarray, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().is(py::dtype::of<double>()))
    throw py::type_error(name + ": expected dtype float64, got " + std::string(py::str(a.dtype())) +
                         " (convert with .astype(numpy.float64))");
  if (a.ndim() != ndim)
    throw py::value_error(name + ": expected a " + std::to_string(ndim) + "-D array, got shape " +
                          shape_str(std::vector<index_t>(a.shape(), a.shape() + a.ndim())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(name + ": must be C-contiguous (pass numpy.ascontiguousarray(" + name + "))");
  return a;
}

void expect_shape(const py::array& a, const std::string& name, const std::vector<index_t>& shape,
                  const std::string& hint = "") {
  const std::vector<index_t> got(a.shape(), a.shape() + a.ndim());
  if (got != shape)
    throw py::value_error(name + ": expected shape " + shape_str(shape) + ", got " + shape_str(got) + hint);
}

py::tuple fixed_points_exhaustive(const py::handle& J0_, const py::handle& b_, const py::handle& U_,
                                  const py::handle& V_, const py::handle& beta_, const py::handle& slopes_,
                                  const py::handle& intercepts_, int device, std::int64_t max_points,
                                  double piece_tol) {
  namespace pc = plrnn::cuda;
  const py::array J0 = f64_array(J0_, "J0", 2);
  const py::ssize_t M = J0.shape(0);
  expect_shape(J0, "J0", {M, M});
  if (M < 1 || M > pc::kFixedPointsMaxM)
    throw py::value_error("J0: the CUDA fixed-point solver needs 1 <= M <= " +
                          std::to_string(pc::kFixedPointsMaxM) + ", got M=" + std::to_string(M) +
                          " (use the CPU solver)");
  const py::array b = f64_array(b_, "b", 1);
  expect_shape(b, "b", {M});
  const py::array U = f64_array(U_, "U", 2);
  const py::ssize_t n = U.shape(1);
  expect_shape(U, "U", {M, n});
  if (n > pc::kFixedPointsMaxUnits)
    throw py::value_error("U: the CUDA fixed-point solver handles at most " +
                          std::to_string(pc::kFixedPointsMaxUnits) + " switch units (2^" +
                          std::to_string(pc::kFixedPointsMaxUnits) + " regions), got n=" + std::to_string(n));
  const py::array V = f64_array(V_, "V", 2);
  expect_shape(V, "V", {M, n});
  const py::array beta = f64_array(beta_, "beta", 1);
  expect_shape(beta, "beta", {n}, " (one breakpoint per switch unit)");
  const std::string two_pieces =
      " (the CUDA solver takes switch units with exactly two pieces: standard PLRNN, ALRNN, unclipped "
      "shallow PLRNN; use the CPU solver for dendritic and clipped kinds)";
  const py::array slopes = f64_array(slopes_, "slopes", 2);
  expect_shape(slopes, "slopes", {n, 2}, two_pieces);
  const py::array intercepts = f64_array(intercepts_, "intercepts", 2);
  expect_shape(intercepts, "intercepts", {n, 2}, two_pieces);
  check_device_index(device);
  if (max_points < 0) throw py::value_error("max_points: must be >= 0, got " + std::to_string(max_points));

  pc::TwoPieceMap map;
  map.M = static_cast<int>(M);
  map.n = static_cast<int>(n);
  map.J0 = static_cast<const double*>(J0.data());
  map.b = static_cast<const double*>(b.data());
  map.U = static_cast<const double*>(U.data());
  map.V = static_cast<const double*>(V.data());
  map.beta = static_cast<const double*>(beta.data());
  map.slopes = static_cast<const double*>(slopes.data());
  map.intercepts = static_cast<const double*>(intercepts.data());
  pc::FixedPointOptions options;
  options.device = device;
  options.max_points = max_points;
  options.piece_tol = piece_tol;

  pc::FixedPointCandidates found;
  {
    py::gil_scoped_release nogil;
    found = pc::fixed_points_exhaustive(map, options);  // invalid_argument -> ValueError, else RuntimeError
  }
  if (found.overflowed())
    throw std::runtime_error("max_points: the search found " + std::to_string(found.n_candidates) +
                             " candidates, more than max_points=" + std::to_string(max_points) +
                             "; call again with a larger max_points");

  const py::ssize_t count = static_cast<py::ssize_t>(found.count());
  py::array_t<double> points({count, M});
  py::array_t<std::uint8_t> pieces({count, n});
  std::copy(found.points.begin(), found.points.end(), points.mutable_data());
  std::uint8_t* pc_out = pieces.mutable_data();
  for (py::ssize_t r = 0; r < count; ++r)
    for (py::ssize_t j = 0; j < n; ++j)
      pc_out[r * n + j] = static_cast<std::uint8_t>((found.regions[r] >> j) & 1u);
  return py::make_tuple(points, pieces, found.n_degenerate, found.regions_visited);
}


// ---- model API: the CUDA host API (cuda/api.h) as a Backend of the shared binding (model_api.h) -------
struct CudaBackend {
  static constexpr const char* kName = "CUDA";
  static constexpr bool kMasks = false;
  static void check_device(int device) { check_device_index(device); }
  template <class Fn>
  static auto run(Fn&& fn) {
    py::gil_scoped_release nogil;
    return fn();
  }
  template <typename S>
  static plrnn::LossResult rollout(const plrnn::ModelSpec& spec, const plrnn::Params<S>& p,
                                   const plrnn::ForcingSpec& f, const plrnn::Batch<S>& b, int device) {
    return plrnn::cuda::rollout<S>(spec, p, f, b, device);
  }
  template <typename S>
  static plrnn::LossResult loss_and_grad(const plrnn::ModelSpec& spec, const plrnn::Params<S>& p,
                                         const plrnn::ForcingSpec& f, const plrnn::Batch<S>& b,
                                         const plrnn::Grads<S>& g, int device) {
    return plrnn::cuda::loss_and_grad<S>(spec, p, f, b, g, device);
  }
  template <typename S>
  static void generate(const plrnn::ModelSpec& spec, const plrnn::Params<S>& p, index_t B, index_t T, const S* z0,
                       const S* s, const S* eps, S* z, S* xhat, int device) {
    plrnn::cuda::generate<S>(spec, p, B, T, z0, s, eps, z, xhat, device);
  }
  template <typename S>
  static double mar_penalty(const plrnn::ModelSpec& spec, const plrnn::Params<S>& p, const index_t* units,
                            index_t n_units, double weight, bool mean, const plrnn::Grads<S>& g, int device) {
    return plrnn::cuda::mar_penalty<S>(spec, p, units, n_units, weight, mean, g, device);
  }
  template <typename S>
  static plrnn::vi::LogJoint vi_log_joint(const plrnn::ModelSpec& spec, const plrnn::Params<S>& p,
                                          const plrnn::vi::Latent<S>& latent, const plrnn::vi::Observations<S>& obs,
                                          index_t B, index_t T, const S* z, const S* s, const plrnn::vi::Weights& w,
                                          const plrnn::Grads<S>* grads, S* gz, int device) {
    return plrnn::cuda::vi_log_joint<S>(spec, p, latent, obs, B, T, z, s, w, grads, gz, device);
  }
};

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  py::module_::import("plrnn_native._core");  // registers ModelSpec, which the calls below take as `config`
  m.doc() = "plrnn_native CUDA module: device discovery, exhaustive fixed-point search, rollout/BPTT/MAR and "
            "device-resident training (kernels: cuda/).";
  m.def("device_count", [] { return plrnn::cuda::device_count(nullptr); });
  m.def("unavailable_reason", [] {
    std::string reason;
    return plrnn::cuda::device_count(&reason) > 0 ? std::string() : reason;
  });
  m.def("device_info", [](int index) {
    const auto info = plrnn::cuda::device_info(index);
    py::dict d;
    d["index"] = info.index;
    d["name"] = info.name;
    d["compute_capability"] = py::make_tuple(info.major, info.minor);
    d["total_memory"] = info.total_memory;
    d["multiprocessors"] = info.multiprocessors;
    d["emulated"] = kEmulated;
    return d;
  }, py::arg("index"));
  m.def("fixed_points_exhaustive", &fixed_points_exhaustive, py::arg("J0"), py::arg("b"), py::arg("U"),
        py::arg("V"), py::arg("beta"), py::arg("slopes"), py::arg("intercepts"), py::arg("device") = 0,
        py::arg("max_points") = 100000, py::arg("piece_tol") = 1e-7,
        "Fixed-point candidates of a piecewise-linear map whose switch units have two pieces,\n"
        "visiting all 2^n regions on the GPU:\n"
        "(points [k, M] float64, pieces [k, n] uint8, n_degenerate, regions_visited).\n"
        "Arrays are float64, C-contiguous: J0 [M, M], b [M], U [M, n], V [M, n] (column j is v_j),\n"
        "beta [n], slopes [n, 2], intercepts [n, 2]; piece 0: a <= beta, piece 1: a > beta, a = v_j . z.\n"
        "A candidate passes the piece check up to piece_tol * (1 + |a|): re-verify candidates exactly.\n"
        "Sorted by region code (bit j = piece of unit j). RuntimeError when CUDA is unavailable or\n"
        "more than max_points candidates were found.");
  def_model_api<CudaBackend>(m);
  def_vi<CudaBackend>(m);
  def_trainer<plrnn::cuda::DeviceTrainer, CudaBackend>(
      m, "Device-resident training steps (cuda/training/train_step.h): data, parameters, gradients and Adam "
         "moments on the GPU; the interface of the CPU module's Trainer (bindings/trainer_binding.h).");
  m.attr("runtime_version") = plrnn::cuda::runtime_version();
  m.attr("emulated") = kEmulated;
}
