// Error checking for CUDA runtime calls and kernel launches (after faiss's DeviceUtils): every call
// and every launch goes through a macro that turns a failure into a C++ exception naming the call,
// file and line. Included by .cu files only (it needs cuda_runtime.h).
//
// Hunting an asynchronous fault: build with -DPLRNN_CUDA_SYNC_CHECK, or set the environment variable
// PLRNN_CUDA_SYNC_CHECK=1, and every PLRNN_CUDA_CHECK_LAUNCH() also synchronises the device, so the
// error surfaces at the launch that caused it.
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace plrnn::cuda::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what + " failed: " +
                           cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

inline void check(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess) throw_cuda_error(err, what, file, line);
}

// Whether to synchronise after each launch (compile-time switch or environment variable).
inline bool sync_after_launch() {
#ifdef PLRNN_CUDA_SYNC_CHECK
  return true;
#else
  static const bool on = [] {
    const char* v = std::getenv("PLRNN_CUDA_SYNC_CHECK");
    return v != nullptr && *v != '\0' && std::string(v) != "0";
  }();
  return on;
#endif
}

inline void check_launch(const char* kernel, const char* file, int line) {
  check(cudaGetLastError(), (std::string("launch of ") + kernel).c_str(), file, line);
  if (sync_after_launch())
    check(cudaDeviceSynchronize(), (std::string("kernel ") + kernel + " (synchronised)").c_str(), file, line);
}

}  // namespace plrnn::cuda::detail

// PLRNN_CUDA_CHECK(cudaMalloc(&p, bytes));
#define PLRNN_CUDA_CHECK(expr) ::plrnn::cuda::detail::check((expr), #expr, __FILE__, __LINE__)
// my_kernel<<<grid, block, smem>>>(args); PLRNN_CUDA_CHECK_LAUNCH("my_kernel");
#define PLRNN_CUDA_CHECK_LAUNCH(kernel_name) \
  ::plrnn::cuda::detail::check_launch(kernel_name, __FILE__, __LINE__)
