// A host-side stand-in for <cuda_runtime.h>: the CUDA emulator of plrnn_native (docs/gpu.md,
// "The CPU emulator"). Only the emulated build puts this directory on the include path; nvcc builds
// never see it.
//
// What it provides:
//   * the qualifiers (__global__, __device__, __shared__, ...) as plain C++;
//   * dim3, and threadIdx / blockIdx / blockDim / gridDim / warpSize of the emulated thread that runs;
//   * __syncthreads (and the _and/_or/_count forms), warp shuffles, votes and __syncwarp with their
//     real per-warp semantics, atomics, the integer intrinsics the kernels use;
//   * the runtime API the project calls (allocation, copies, memset, device properties and attributes,
//     function attributes, occupancy, streams, events, errors);
//   * cuemu::launch, which the preprocessing step (preprocess.py) substitutes for k<<<g, b, s>>>(args),
//     and cuemu::dynamic_shared_memory for `extern __shared__ T name[];`.
// Each CUDA thread runs as a coroutine (its own stack); the threads of a block switch at barriers and
// warp collectives, so a missing barrier gives deterministic wrong results. emulator.cpp has the
// scheduler, the checks and the error reports.
#pragma once

#include <math.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define CUDART_VERSION 13000
#define PLRNN_CUDA_EMULATED 1

// ---- qualifiers ----------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __grid_constant__
#define __constant__
#define __align__(n) alignas(n)
// A block's threads run one after another on one OS thread and the blocks of a launch run one after
// another, so a function-local static is exactly one block's shared variable.
#define __shared__ static

// ---- errors, types -------------------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  std::size_t sharedMemPerBlock;
  std::size_t sharedMemPerBlockOptin;
  std::size_t sharedMemPerMultiprocessor;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major;
  int minor;
  int multiProcessorCount;
};

struct CUstream_st;
typedef CUstream_st* cudaStream_t;
struct CUevent_st;
typedef CUevent_st* cudaEvent_t;

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

// ---- runtime API (emulator.cpp) ------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaMalloc(void** ptr, std::size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

namespace cuemu {

// ---- the emulated thread that runs (emulator.cpp) -------------------------------------------------
struct ThreadState {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
extern thread_local const ThreadState* current_thread;
// Called outside a kernel: an error (reported, then std::terminate).
[[noreturn]] void outside_kernel(const char* what);
inline const ThreadState& thread_state(const char* what) {
  if (current_thread == nullptr) outside_kernel(what);
  return *current_thread;
}

// Barriers and warp collectives, with the call site for the reports.
enum class BarrierOp { Sync, And, Or, Count };
int barrier(BarrierOp op, int predicate, const char* file, int line);
enum class WarpOp { Shfl, ShflUp, ShflDown, ShflXor, Ballot, Any, All, Sync };
std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t value, int arg, int width, const char* file,
                              int line);

template <class T>
inline std::uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type wider than 8 bytes");
  std::uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
inline T from_bits(std::uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

// ---- launches ------------------------------------------------------------------------------------
struct LaunchConfig {
  dim3 grid, block;
  std::size_t shared_bytes;
  cudaStream_t stream;
  LaunchConfig(dim3 g, dim3 b, std::size_t s = 0, cudaStream_t st = nullptr)
      : grid(g), block(b), shared_bytes(s), stream(st) {}
};

// Pointer-typed kernel arguments, checked against the device allocation table at launch.
struct PointerArg {
  const void* ptr;
  int index;
};

// Runs body() once per thread of every block; returns the launch's error (also kept for
// cudaGetLastError). `kernel` identifies the function for cudaFuncSetAttribute.
cudaError_t run_launch(const char* name, const void* kernel, const LaunchConfig& cfg, const PointerArg* ptrs,
                       int n_ptrs, const std::function<void()>& body, const char* file, int line);

template <class P>
inline void collect_pointer(PointerArg* out, int& n, int index, const P& value) {
  if constexpr (std::is_pointer<P>::value) out[n++] = PointerArg{static_cast<const void*>(value), index};
}

template <class... P, class... A>
cudaError_t launch_impl(const char* name, void (*kernel)(P...), const LaunchConfig& cfg, const char* file, int line,
                        A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong number of arguments");
  // the arguments are converted to the parameter types once, like the real launch's parameter buffer
  std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  PointerArg ptrs[sizeof...(P) + 1];
  int n = 0;
  std::apply([&](const auto&... v) {
    int index = 0;
    (collect_pointer(ptrs, n, index++, v), ...);
  }, params);
  const std::function<void()> body = [&]() { std::apply(kernel, params); };
  return run_launch(name, reinterpret_cast<const void*>(kernel), cfg, ptrs, n, body, file, line);
}

// Dynamic shared memory of the running block (`extern __shared__` is rewritten to use it).
void* dynamic_shared_memory();

// Function attributes (cudaFuncSetAttribute) by kernel address.
cudaError_t set_function_attribute(const void* kernel, cudaFuncAttribute attr, int value);
int occupancy_blocks_per_sm(const void* kernel, int block_size, std::size_t dynamic_smem);

}  // namespace cuemu

template <class F>
inline cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute attr, int value) {
  return cuemu::set_function_attribute(reinterpret_cast<const void*>(kernel), attr, value);
}
template <class F>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, F* kernel, int block_size,
                                                                 std::size_t dynamic_smem) {
  if (blocks == nullptr) return cudaErrorInvalidValue;
  *blocks = cuemu::occupancy_blocks_per_sm(reinterpret_cast<const void*>(kernel), block_size, dynamic_smem);
  return cudaSuccess;
}

// ---- built-in variables --------------------------------------------------------------------------
#define threadIdx (::cuemu::thread_state("threadIdx").thread_idx)
#define blockIdx (::cuemu::thread_state("blockIdx").block_idx)
#define blockDim (::cuemu::thread_state("blockDim").block_dim)
#define gridDim (::cuemu::thread_state("gridDim").grid_dim)
constexpr int warpSize = 32;

// ---- barriers and warp collectives ---------------------------------------------------------------
inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  cuemu::barrier(cuemu::BarrierOp::Sync, 1, file, line);
}
inline int __syncthreads_and(int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cuemu::barrier(cuemu::BarrierOp::And, p, file, line);
}
inline int __syncthreads_or(int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cuemu::barrier(cuemu::BarrierOp::Or, p, file, line);
}
inline int __syncthreads_count(int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return cuemu::barrier(cuemu::BarrierOp::Count, p, file, line);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  cuemu::warp_collective(cuemu::WarpOp::Sync, mask, 0, 0, 32, file, line);
}
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
  return cuemu::from_bits<T>(cuemu::warp_collective(cuemu::WarpOp::Shfl, mask, cuemu::to_bits(v), src, width, file, line));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                        int line = __builtin_LINE()) {
  return cuemu::from_bits<T>(
      cuemu::warp_collective(cuemu::WarpOp::ShflUp, mask, cuemu::to_bits(v), int(delta), width, file, line));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                          int line = __builtin_LINE()) {
  return cuemu::from_bits<T>(
      cuemu::warp_collective(cuemu::WarpOp::ShflDown, mask, cuemu::to_bits(v), int(delta), width, file, line));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32, const char* file = __builtin_FILE(),
                         int line = __builtin_LINE()) {
  return cuemu::from_bits<T>(
      cuemu::warp_collective(cuemu::WarpOp::ShflXor, mask, cuemu::to_bits(v), lane_mask, width, file, line));
}
inline unsigned __ballot_sync(unsigned mask, int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return static_cast<unsigned>(cuemu::warp_collective(cuemu::WarpOp::Ballot, mask, p != 0, 0, 32, file, line));
}
inline int __any_sync(unsigned mask, int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return static_cast<int>(cuemu::warp_collective(cuemu::WarpOp::Any, mask, p != 0, 0, 32, file, line));
}
inline int __all_sync(unsigned mask, int p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return static_cast<int>(cuemu::warp_collective(cuemu::WarpOp::All, mask, p != 0, 0, 32, file, line));
}

// ---- atomics: the threads of the emulator never run at the same time, so a plain read-modify-write
// is atomic; each returns the old value, like CUDA's.
namespace cuemu {
template <class T, class F>
inline T read_modify_write(T* p, F f) {
  const T old = *p;
  *p = f(old);
  return old;
}
}  // namespace cuemu
template <class T, class U>
inline T atomicAdd(T* p, U v) { return cuemu::read_modify_write(p, [&](T o) { return static_cast<T>(o + static_cast<T>(v)); }); }
template <class T, class U>
inline T atomicSub(T* p, U v) { return cuemu::read_modify_write(p, [&](T o) { return static_cast<T>(o - static_cast<T>(v)); }); }
template <class T, class U>
inline T atomicExch(T* p, U v) { return cuemu::read_modify_write(p, [&](T) { return static_cast<T>(v); }); }
template <class T, class U>
inline T atomicMin(T* p, U v) { return cuemu::read_modify_write(p, [&](T o) { return static_cast<T>(v) < o ? static_cast<T>(v) : o; }); }
template <class T, class U>
inline T atomicMax(T* p, U v) { return cuemu::read_modify_write(p, [&](T o) { return o < static_cast<T>(v) ? static_cast<T>(v) : o; }); }
template <class T, class U>
inline T atomicOr(T* p, U v) { return cuemu::read_modify_write(p, [&](T o) { return static_cast<T>(o | static_cast<T>(v)); }); }
template <class T, class U>
inline T atomicAnd(T* p, U v) { return cuemu::read_modify_write(p, [&](T o) { return static_cast<T>(o & static_cast<T>(v)); }); }
template <class T, class U>
inline T atomicXor(T* p, U v) { return cuemu::read_modify_write(p, [&](T o) { return static_cast<T>(o ^ static_cast<T>(v)); }); }
template <class T, class U, class V>
inline T atomicCAS(T* p, U compare, V v) {
  return cuemu::read_modify_write(p, [&](T o) { return o == static_cast<T>(compare) ? static_cast<T>(v) : o; });
}

// ---- device functions of the CUDA math and integer libraries -------------------------------------
template <class A, class B, class = std::enable_if_t<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(b) < static_cast<C>(a) ? static_cast<C>(b) : static_cast<C>(a);
}
template <class A, class B, class = std::enable_if_t<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(b) : static_cast<C>(a);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline long long __mul64hi(long long a, long long b) {
  return static_cast<long long>((static_cast<__int128>(a) * b) >> 64);
}
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline double sinpi(double x) { return ::sin(M_PI * x); }
inline double cospi(double x) { return ::cos(M_PI * x); }
inline float sinpif(float x) { return static_cast<float>(::sin(M_PI * static_cast<double>(x))); }
inline float cospif(float x) { return static_cast<float>(::cos(M_PI * static_cast<double>(x))); }
inline double rsqrt(double x) { return 1.0 / ::sqrt(x); }
inline float rsqrtf(float x) { return 1.0f / ::sqrtf(x); }
