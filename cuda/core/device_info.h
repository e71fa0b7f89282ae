// Device discovery for the CUDA module. Plain C++ interface (no CUDA headers), so the binding
// compiles with the host compiler.
#pragma once
#include <string>
#include <vector>

namespace plrnn::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;       // compute capability
  std::size_t total_memory = 0;   // bytes
  int multiprocessors = 0;
};

// Number of usable devices; 0 (with `reason` set) when there is no driver or no GPU.
int device_count(std::string* reason);
DeviceInfo device_info(int index);
// Makes `device` current for the calling thread: the one place the device index is checked against the
// machine (std::invalid_argument for a bad index, std::runtime_error "device: CUDA is unavailable (...)").
void select_device(int device);
// The CUDA runtime version this module was built with, e.g. 13000.
int runtime_version();

}  // namespace plrnn::cuda
