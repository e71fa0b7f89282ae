// The one binding of the native trainers (csrc/training/train_options.h): _core.Trainer (the CPU's
// HostTrainer, csrc/training/train_step.h) and _cuda.Trainer (DeviceTrainer, cuda/training/train_step.h)
// have the same name, constructor arguments, methods, checks and dtype rule (the dtype of the parameter A);
// each module calls def_trainer<Trainer, Run>(m, doc) with its trainer class and the way it runs native work
// (the CPU: interruptibly, Ctrl-C raising KeyboardInterrupt; CUDA: without the GIL).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model_api.h"
#include "model_args.h"
#include "training/train_options.h"

namespace plrnn::bind {

namespace py = pybind11;

template <typename Trainer, typename Run>
class PyTrainer {
 public:
  PyTrainer(const py::object& cfg, const py::dict& params, const py::list& xs, const py::list& ss, const py::list& masks,
            index_t batch_size, index_t seq_len, const std::string& forcing, index_t tau, double alpha,
            double grad_clip, const std::string& optimizer, double beta1, double beta2, double eps,
            double teacher_noise, std::uint64_t seed, const py::object& mar_units, double mar_weight,
            const std::string& mar_reduce, int device)
      : spec_(spec_of(cfg)), f64_(!is_f32(param_A(params), "A")) {
    Run::check_device(device);
    TrainOptions o;
    o.device = device;
    o.batch_size = batch_size;
    o.seq_len = seq_len;
    o.forcing = parse_forcing(forcing, tau, alpha);
    o.grad_clip = grad_clip;
    if (optimizer != "adam" && optimizer != "radam")
      throw py::value_error("optimizer: expected 'adam' or 'radam', got '" + optimizer + "'");
    o.radam = optimizer == "radam";
    o.beta1 = beta1;
    o.beta2 = beta2;
    o.eps = eps;
    o.teacher_noise = teacher_noise;
    o.seed = seed;
    o.mar_weight = mar_weight;
    if (mar_reduce != "sum" && mar_reduce != "mean")
      throw py::value_error("mar_reduce: expected 'sum' or 'mean', got '" + mar_reduce + "'");
    o.mar_mean = mar_reduce == "mean";
    if (!mar_units.is_none()) {
      auto ua = as_array(mar_units, "mar_units");
      if (ua.ndim() != 1) throw py::value_error("mar_units: expected a 1-d array");
      const index_t* u = view<index_t>(ua, "mar_units", {static_cast<index_t>(ua.shape(0))});
      o.mar_units.assign(u, u + ua.shape(0));
    }
    if (xs.size() != ss.size() || xs.size() != masks.size())
      throw py::value_error("ss, masks: one input series (or None) and one mask (or None) per data series");
    TrainingSeries data;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const std::string nm = "x[" + std::to_string(i) + "]";
      const py::array xa = as_array(xs[i], nm);
      if (xa.ndim() != 2) throw py::value_error(nm + ": expected shape [T, N]");
      const index_t T = xa.shape(0);
      data.lengths.push_back(T);
      keep_.append(xa);
      data.x.push_back(series<const void*>(xa, nm, {T, spec_.dims.N}));
      data.s.push_back(spec_.dims.K > 0
                           ? series<const void*>(ss[i], "s[" + std::to_string(i) + "]", {T, spec_.dims.K})
                           : nullptr);
      if (spec_.dims.K > 0) keep_.append(ss[i]);
      if (masks[i].is_none()) {
        data.mask.push_back(nullptr);
      } else {
        data.mask.push_back(series<const void*>(masks[i], "masks[" + std::to_string(i) + "]", {T, spec_.dims.N}));
        keep_.append(masks[i]);
      }
    }
    const auto host = arrays(params);
    impl_ = Run::run([&] { return std::make_unique<Trainer>(spec_, f64_, host, data, o); });
  }

  py::tuple step(double lr, double alpha, std::int64_t adam_t, std::uint64_t step_index) {
    const StepResult r = Run::run([&] { return impl_->step(lr, alpha, adam_t, step_index); });
    return py::make_tuple(r.loss, r.grad_norm, r.updated, r.params_finite);
  }
  // (loss, grad_norm, updated, params_finite) arrays of the steps taken (run_steps: stops after the
  // first step that was not applied or left a non-finite parameter).
  py::tuple run(index_t steps, double lr, double alpha, std::int64_t adam_t0, std::uint64_t step0) {
    if (steps < 1) throw py::value_error("steps: must be >= 1, got " + std::to_string(steps));
    const std::vector<StepResult> r = Run::run([&] { return impl_->run(steps, lr, alpha, adam_t0, step0); });
    const index_t n = static_cast<index_t>(r.size());
    auto loss = new_array<double>({n}), norm = new_array<double>({n});
    auto updated = py::array_t<bool>(n), finite = py::array_t<bool>(n);
    for (index_t i = 0; i < n; ++i) {
      loss.mutable_data()[i] = r[i].loss;
      norm.mutable_data()[i] = r[i].grad_norm;
      updated.mutable_data()[i] = r[i].updated;
      finite.mutable_data()[i] = r[i].params_finite;
    }
    return py::make_tuple(loss, norm, updated, finite);
  }
  void get_params(const py::dict& out) { impl_->get_params(out_arrays(out)); }
  void set_params(const py::dict& in) { impl_->set_params(arrays(in)); }
  void get_moments(const py::dict& m, const py::dict& v) { impl_->get_moments(out_arrays(m), out_arrays(v)); }
  void set_moments(const py::dict& m, const py::dict& v) { impl_->set_moments(arrays(m), arrays(v)); }
  void get_grads(const py::dict& out) { impl_->get_grads(out_arrays(out)); }

 private:
  template <typename P>
  P series(const py::handle& obj, const std::string& name, const std::vector<index_t>& shape) {
    if (f64_) return view<double>(obj, name, shape);
    return view<float>(obj, name, shape);
  }
  HostArrays arrays(const py::dict& d) {
    HostArrays out{};
    if (f64_) {
      auto p = parse_params<double>(spec_, d);
      auto slots = param_slots(p);
      for (int id = 0; id < kNumParams; ++id) out[id] = *slots[id];
    } else {
      auto p = parse_params<float>(spec_, d);
      auto slots = param_slots(p);
      for (int id = 0; id < kNumParams; ++id) out[id] = *slots[id];
    }
    return out;
  }
  HostOutArrays out_arrays(const py::dict& d) {
    for (auto item : d)
      if (!as_array(item.second, std::string(py::str(item.first))).writeable())
        throw py::value_error(std::string(py::str(item.first)) + ": output array is read-only");
    const auto c = arrays(d);
    HostOutArrays out{};
    for (int id = 0; id < kNumParams; ++id) out[id] = const_cast<void*>(c[id]);
    return out;
  }

  ModelSpec spec_;
  bool f64_;
  py::list keep_;
  std::unique_ptr<Trainer> impl_;
};

template <typename Trainer, typename Run>
void def_trainer(py::module_& m, const char* doc) {
  using T = PyTrainer<Trainer, Run>;
  py::class_<T>(m, "Trainer", doc)
      .def(py::init<const py::object&, const py::dict&, const py::list&, const py::list&, const py::list&, index_t,
                    index_t, const std::string&, index_t, double, double, const std::string&, double, double, double,
                    double, std::uint64_t, const py::object&, double, const std::string&, int>(),
           py::arg("cfg"), py::arg("params"), py::arg("xs"), py::arg("ss"), py::arg("masks"), py::arg("batch_size"),
           py::arg("seq_len"), py::arg("forcing"), py::arg("tau"), py::arg("alpha"), py::arg("grad_clip"),
           py::arg("optimizer"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("teacher_noise"),
           py::arg("seed"), py::arg("mar_units"), py::arg("mar_weight"), py::arg("mar_reduce"), py::arg("device") = 0)
      .def("step", &T::step, py::arg("lr"), py::arg("alpha"), py::arg("adam_t"), py::arg("step_index"),
           "One step: (loss, grad_norm, updated, params_finite).")
      .def("run", &T::run, py::arg("steps"), py::arg("lr"), py::arg("alpha"), py::arg("adam_t0"), py::arg("step0"),
           "Up to `steps` steps in one call: arrays (loss, grad_norm, updated, params_finite) of those taken.")
      .def("get_params", &T::get_params, py::arg("out"))
      .def("set_params", &T::set_params, py::arg("params"))
      .def("get_moments", &T::get_moments, py::arg("m"), py::arg("v"))
      .def("set_moments", &T::set_moments, py::arg("m"), py::arg("v"))
      .def("get_grads", &T::get_grads, py::arg("out"));
}


}  // namespace plrnn::bind
