// RAII device memory for the CUDA engine: a typed buffer that grows on demand (never shrinks, so a
// training loop allocates only on its first step) and host<->device copies that are all checked.
// Included by .cu files only.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "core/cuda_check.cuh"

namespace plrnn::cuda {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t n) { reserve(n); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), cap_(std::exchange(o.cap_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      cap_ = std::exchange(o.cap_, 0);
    }
    return *this;
  }

  // At least n elements (contents are lost when it grows). Returns the device pointer.
  T* reserve(std::size_t n) {
    if (n > cap_) {
      release();
      PLRNN_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), n * sizeof(T)));
      cap_ = n;
    }
    return ptr_;
  }
  T* data() const { return ptr_; }
  std::size_t capacity() const { return cap_; }

  void upload(const T* host, std::size_t n) {
    reserve(n);
    if (n) PLRNN_CUDA_CHECK(cudaMemcpy(ptr_, host, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  void download(T* host, std::size_t n) const {
    if (n) PLRNN_CUDA_CHECK(cudaMemcpy(host, ptr_, n * sizeof(T), cudaMemcpyDeviceToHost));
  }
  void zero(std::size_t n) {
    reserve(n);
    if (n) PLRNN_CUDA_CHECK(cudaMemset(ptr_, 0, n * sizeof(T)));
  }

 private:
  void release() {
    if (ptr_) cudaFree(ptr_);  // no check: destructors must not throw (a failed free leaks at worst)
    ptr_ = nullptr;
    cap_ = 0;
  }
  T* ptr_ = nullptr;
  std::size_t cap_ = 0;
};

}  // namespace plrnn::cuda
