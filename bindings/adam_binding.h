// _core.adam_step: the shared Adam/RAdam update (csrc/training/adam.h, its host loop adam_host.h) for the
// Python optimiser (python/plrnn_native/optim.py). CPU module only.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model_args.h"
#include "training/adam_host.h"

namespace plrnn::bind {

namespace py = pybind11;

// The shared Adam/RAdam update (csrc/training/adam.h) on a dict of arrays, for the Python optimiser
// (python/plrnn_native/optim.py: the trainers whose loop is in Python). Each array keeps its own dtype
// (float32 or float64); grads, m and v match it in dtype and shape. No clipping here (the caller clips).
template <typename S>
void adam_arrays(const py::array& p, const py::array& g, const py::array& m, const py::array& v, const std::string& k,
                 const training::AdamCoeffs& c) {
  const std::vector<index_t> shape(p.shape(), p.shape() + p.ndim());
  S* pp = view_out<S>(p, "params['" + k + "']", shape);
  const S* gp = view<S>(g, "grads['" + k + "']", shape);
  S* mp = view_out<S>(m, "m['" + k + "']", shape);
  S* vp = view_out<S>(v, "v['" + k + "']", shape);
  const training::AdamStep<S> st(c, 0.0);
  training::apply_all(st, pp, mp, vp, gp, static_cast<std::size_t>(p.size()));
}

inline void def_adam(py::module_& m) {
  m.def("adam_step", [](const py::dict& params, const py::dict& grads, const py::dict& mom1, const py::dict& mom2,
                        double lr, double beta1, double beta2, double eps, bool radam, std::int64_t t) {
    if (t < 1) throw py::value_error("t: the step count after this step, >= 1; got " + std::to_string(t));
    const training::AdamCoeffs c = training::adam_coeffs(lr, beta1, beta2, eps, radam, t, 0.0);
    for (auto item : params) {
      const std::string k = py::str(item.first);
      for (const py::dict* d : {&grads, &mom1, &mom2})
        if (!d->contains(item.first)) throw py::value_error("grads, m, v: missing '" + k + "'");
      const py::array p = as_array(item.second, "params['" + k + "']");
      if (p.dtype().is(py::dtype::of<float>()))
        adam_arrays<float>(p, as_array(grads[item.first], k), as_array(mom1[item.first], k), as_array(mom2[item.first], k), k, c);
      else if (p.dtype().is(py::dtype::of<double>()))
        adam_arrays<double>(p, as_array(grads[item.first], k), as_array(mom1[item.first], k), as_array(mom2[item.first], k), k, c);
      else
        throw py::type_error("params['" + k + "']: expected dtype float32 or float64, got " + std::string(py::str(p.dtype())));
    }
  }, py::arg("params"), py::arg("grads"), py::arg("m"), py::arg("v"), py::arg("lr"), py::arg("beta1"),
     py::arg("beta2"), py::arg("eps"), py::arg("radam"), py::arg("t"),
     "One Adam/RAdam update in place (csrc/training/adam.h; t: the step count after it).");
}

}  // namespace plrnn::bind
