// pybind11 adapter for the CUDA module. Importing it never fails for lack of a GPU: the runtime is
// linked statically and a missing driver becomes "unavailable" with a reason.
#include <pybind11/pybind11.h>

#include "device_info.h"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "plrnn_native CUDA module: device discovery (kernels: see cuda/).";
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
    return d;
  }, py::arg("index"));
  m.attr("runtime_version") = plrnn::cuda::runtime_version();
}
