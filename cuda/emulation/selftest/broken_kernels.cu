// Deliberately broken kernels (and their correct twins) that the CUDA emulator must flag: the proof
// that its checks can fail (tests/test_cuda_emulator.py runs every case in its own process).
//
//   cuda_emulator_selftest CASE
//
// prints "launch: <error name> <message>" for the launch's error and "result: ok|wrong" where the case
// checks results, and exits 0 (launch succeeded, results right), 1 (an error was reported) or
// 3 (launch succeeded, results wrong). `cuda_emulator_selftest list` prints the case names;
// `cuda_emulator_selftest asan` prints 1 when built with AddressSanitizer.
// Written in CUDA: it compiles with nvcc as well as through the emulator's preprocessing.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace {

constexpr int kThreads = 64;

// ---- kernels ---------------------------------------------------------------------------------------

// out[i] = in[i] + in[(i + 1) % n], staged through shared memory; `sync` selects the barrier.
__global__ void neighbour_sum(const int* in, int* out, bool sync) {
  extern __shared__ int buf[];
  const int i = threadIdx.x, n = blockDim.x;
  buf[i] = in[blockIdx.x * n + i];
  if (sync) __syncthreads();
  out[blockIdx.x * n + i] = buf[i] + buf[(i + 1) % n];
}

// Writes shared element i + shift: shift = 1 runs one past the end of the dynamic allocation.
__global__ void shifted_store(int* out, int shift) {
  extern __shared__ int buf[];
  const int i = threadIdx.x;
  buf[i + shift] = i;
  __syncthreads();
  out[i] = buf[i];
}

// A static __shared__ array indexed by threadIdx: out of bounds when the block is larger than it.
__global__ void static_shared_store(int* out) {
  __shared__ int buf[32];
  buf[threadIdx.x] = static_cast<int>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = buf[threadIdx.x % 32];
}

// Warp sum by xor shuffles; `lanes` < 32: only the first `lanes` lanes of each warp take part.
__global__ void warp_sum(const int* in, int* out, int lanes) {
  int v = in[threadIdx.x];
  if (static_cast<int>(threadIdx.x % 32) < lanes)
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  out[threadIdx.x] = v;
}

// Threads at or above `active` return before the barrier.
__global__ void barrier_after_return(int* out, int active) {
  if (static_cast<int>(threadIdx.x) >= active) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

// The two halves of the block wait at different barriers.
__global__ void divergent_barriers(int* out) {
  if (threadIdx.x < 32) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

// Half of each warp waits at a full-warp shuffle, the other half at a block barrier: neither can complete.
__global__ void shuffle_against_barrier(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x % 32 < 16) {
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = v;
}

// Thread i reads in[i + 1] when `past` is set: the last thread reads one past the end of `in`.
__global__ void global_read(const int* in, int* out, bool past) {
  const int i = threadIdx.x;
  out[i] = in[past ? i + 1 : i];
}

__global__ void fill(int* out, int v) { out[threadIdx.x] = v; }

// ---- host side -------------------------------------------------------------------------------------

int report(cudaError_t err) {
  if (err != cudaSuccess) {
    std::printf("launch: %s %s\n", cudaGetErrorName(err), cudaGetErrorString(err));
    return 1;
  }
  std::printf("launch: cudaSuccess\n");
  return 0;
}

int check(bool ok) {
  std::printf("result: %s\n", ok ? "ok" : "wrong");
  return ok ? 0 : 3;
}

struct Device {
  std::vector<void*> owned;
  ~Device() {
    for (void* p : owned) cudaFree(p);
  }
  int* ints(std::size_t n, const std::vector<int>& init = {}) {
    void* p = nullptr;
    if (cudaMalloc(&p, n * sizeof(int)) != cudaSuccess) return nullptr;
    owned.push_back(p);
    if (!init.empty()) cudaMemcpy(p, init.data(), init.size() * sizeof(int), cudaMemcpyHostToDevice);
    return static_cast<int*>(p);
  }
};

std::vector<int> download(const int* d, std::size_t n) {
  std::vector<int> h(n);
  cudaMemcpy(h.data(), d, n * sizeof(int), cudaMemcpyDeviceToHost);
  return h;
}

std::vector<int> iota(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = 3 * i + 1;
  return v;
}

int neighbour_case(bool sync) {
  Device d;
  const int blocks = 3, n = blocks * kThreads;
  const std::vector<int> host = iota(n);
  int* in = d.ints(n, host);
  int* out = d.ints(n);
  neighbour_sum<<<blocks, kThreads, kThreads * sizeof(int)>>>(in, out, sync);
  if (report(cudaGetLastError())) return 1;
  const std::vector<int> got = download(out, n);
  bool ok = true;
  for (int b = 0; b < blocks; ++b)
    for (int i = 0; i < kThreads; ++i)
      ok = ok && got[b * kThreads + i] == host[b * kThreads + i] + host[b * kThreads + (i + 1) % kThreads];
  return check(ok);
}

int shifted_case(int shift) {
  Device d;
  int* out = d.ints(kThreads);
  shifted_store<<<1, kThreads, kThreads * sizeof(int)>>>(out, shift);
  return report(cudaGetLastError());
}

int static_shared_case(int threads) {
  Device d;
  int* out = d.ints(threads);
  static_shared_store<<<1, threads>>>(out);
  return report(cudaGetLastError());
}

int warp_case(int lanes) {
  Device d;
  const std::vector<int> host = iota(kThreads);
  int* in = d.ints(kThreads, host);
  int* out = d.ints(kThreads);
  warp_sum<<<1, kThreads>>>(in, out, lanes);
  if (report(cudaGetLastError())) return 1;
  const std::vector<int> got = download(out, kThreads);
  bool ok = true;
  for (int w = 0; w < kThreads / 32; ++w) {
    int s = 0;
    for (int l = 0; l < 32; ++l) s += host[w * 32 + l];
    for (int l = 0; l < 32; ++l) ok = ok && got[w * 32 + l] == s;
  }
  return check(ok);
}

int return_case(int active) {
  Device d;
  int* out = d.ints(kThreads);
  barrier_after_return<<<1, kThreads>>>(out, active);
  return report(cudaGetLastError());
}

int global_read_case(bool past) {
  Device d;
  const std::vector<int> host = iota(kThreads);
  int* in = d.ints(kThreads, host);
  int* out = d.ints(kThreads);
  global_read<<<1, kThreads>>>(in, out, past);
  return report(cudaGetLastError());
}

int host_pointer_case(bool host) {
  Device d;
  std::vector<int> h(kThreads);
  int* target = host ? h.data() : d.ints(kThreads);
  fill<<<1, kThreads>>>(target, 7);
  return report(cudaGetLastError());
}

int memcpy_case(std::size_t extra) {
  Device d;
  int* p = d.ints(kThreads);
  std::vector<int> h(kThreads + extra, 1);
  return report(cudaMemcpy(p, h.data(), h.size() * sizeof(int), cudaMemcpyHostToDevice));
}

int block_size_case(int threads) {
  Device d;
  int* out = d.ints(threads);
  fill<<<1, threads>>>(out, 1);
  return report(cudaGetLastError());
}

// Dynamic shared memory above the default per-block limit (48 KiB) is refused without the attribute;
// with it, the opt-in limit is accepted and anything above it refused.
int smem_limit_case(const std::string& mode) {
  Device d;
  int* out = d.ints(kThreads);
  int optin = 0, standard = 0;
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
  cudaDeviceGetAttribute(&standard, cudaDevAttrMaxSharedMemoryPerBlock, 0);
  const std::size_t bytes = mode == "no_attribute" ? std::size_t(standard) + 4
                            : mode == "above_optin" ? std::size_t(optin) + 4
                                                    : std::size_t(optin);
  if (mode != "no_attribute") {
    const cudaError_t e = cudaFuncSetAttribute(shifted_store, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(bytes));
    if (e != cudaSuccess) return report(e);
  }
  shifted_store<<<1, kThreads, bytes>>>(out, 0);
  return report(cudaGetLastError());
}

const std::map<std::string, std::function<int()>>& cases() {
  static const std::map<std::string, std::function<int()>> c = {
      {"barrier_present", [] { return neighbour_case(true); }},
      {"missing_barrier", [] { return neighbour_case(false); }},
      {"shared_in_bounds", [] { return shifted_case(0); }},
      {"shared_out_of_bounds", [] { return shifted_case(1); }},
      {"static_shared_in_bounds", [] { return static_shared_case(32); }},
      {"static_shared_out_of_bounds", [] { return static_shared_case(kThreads); }},
      {"shuffle_all_lanes", [] { return warp_case(32); }},
      {"shuffle_some_lanes", [] { return warp_case(16); }},
      {"barrier_all_threads", [] { return return_case(kThreads); }},
      {"barrier_after_return", [] { return return_case(kThreads / 2); }},
      {"divergent_barriers", [] {
         Device d;
         int* out = d.ints(kThreads);
         divergent_barriers<<<1, kThreads>>>(out);
         return report(cudaGetLastError());
       }},
      {"deadlock", [] {
         Device d;
         int* out = d.ints(kThreads);
         shuffle_against_barrier<<<1, kThreads>>>(out);
         return report(cudaGetLastError());
       }},
      {"global_in_bounds", [] { return global_read_case(false); }},
      {"global_out_of_bounds", [] { return global_read_case(true); }},
      {"device_pointer_argument", [] { return host_pointer_case(false); }},
      {"host_pointer_argument", [] { return host_pointer_case(true); }},
      {"memcpy_in_bounds", [] { return memcpy_case(0); }},
      {"memcpy_past_allocation", [] { return memcpy_case(1); }},
      {"block_1024", [] { return block_size_case(1024); }},
      {"block_1025", [] { return block_size_case(1025); }},
      {"smem_no_attribute", [] { return smem_limit_case("no_attribute"); }},
      {"smem_optin", [] { return smem_limit_case("optin"); }},
      {"smem_above_optin", [] { return smem_limit_case("above_optin"); }},
  };
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CASE | list | asan\n", argv[0]);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "list") {
    for (const auto& kv : cases()) std::printf("%s\n", kv.first.c_str());
    return 0;
  }
  if (name == "asan") {
#if defined(__SANITIZE_ADDRESS__)
    std::printf("1\n");
#else
    std::printf("0\n");
#endif
    return 0;
  }
  const auto it = cases().find(name);
  if (it == cases().end()) {
    std::fprintf(stderr, "unknown case '%s' (see '%s list')\n", name.c_str(), argv[0]);
    return 2;
  }
  return it->second();
}
