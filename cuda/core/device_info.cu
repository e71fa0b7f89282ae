#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "core/device_info.h"

#include "core/cuda_check.cuh"
#include "core/errors.h"

namespace plrnn::cuda {

int device_count(std::string* reason) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (reason) *reason = std::string("CUDA runtime: ") + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error state
    return 0;
  }
  if (n == 0 && reason) *reason = "no CUDA device found";
  return n;
}

DeviceInfo device_info(int index) {
  cudaDeviceProp prop{};
  const cudaError_t err = cudaGetDeviceProperties(&prop, index);
  if (err != cudaSuccess)
    throw std::invalid_argument(std::string("device: ") + cudaGetErrorString(err));
  DeviceInfo info;
  info.index = index;
  info.name = prop.name;
  info.major = prop.major;
  info.minor = prop.minor;
  info.total_memory = prop.totalGlobalMem;
  info.multiprocessors = prop.multiProcessorCount;
  return info;
}

void select_device(int device) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("device: CUDA is unavailable (CUDA runtime: ") + cudaGetErrorString(err) + ")");
  }
  if (n == 0) throw std::runtime_error("device: CUDA is unavailable (no CUDA device found)");
  PLRNN_CHECK(device >= 0 && device < n, "device: index ", device, " out of range (", n, " CUDA device(s))");
  PLRNN_CUDA_CHECK(cudaSetDevice(device));
}

int runtime_version() { return CUDART_VERSION; }

}  // namespace plrnn::cuda
