// Counter-based random numbers of the training loops, shared by the CPU (training/train_step.cpp) and
// the CUDA (cuda/training/train_step.cu) trainers and mirrored by the NumPy reference
// (python/plrnn_native/training.py: CounterSampler). A batch depends only on (seed, step index): resuming
// needs no generator state, and every backend draws the same windows for the same seed.
//
// Window of batch slot b at step k: idx = floor(draw(seed, k, b, 0) * n_windows / 2^64) over all
// (series i, start t0) pairs with 0 <= t0 <= len_i - seq_len, in series order (every window equally
// likely). Teacher noise of flat batch element e: Box-Muller on draw(seed, k, e, 1) and draw(seed, k, e, 2).
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define PLRNN_HD __host__ __device__ __forceinline__
#else
#define PLRNN_HD inline
#endif

namespace plrnn::training {

using u64 = unsigned long long;

PLRNN_HD u64 splitmix64(u64 x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

PLRNN_HD u64 draw(u64 seed, u64 step, u64 a, u64 b) {
  return splitmix64(splitmix64(splitmix64(splitmix64(seed) ^ step) ^ a) ^ b);
}

// (0, 1]: the top 53 bits
PLRNN_HD double uniform01(u64 h) { return (double((h >> 11) + 1)) * (1.0 / 9007199254740992.0); }

// floor(h * n / 2^64): an index in [0, n) from a 64-bit draw
PLRNN_HD u64 scale_to(u64 h, u64 n) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(h, n);
#else
  return static_cast<u64>((static_cast<unsigned __int128>(h) * n) >> 64);
#endif
}

// The flat window index of batch slot b at step k, of n_windows in all.
PLRNN_HD u64 window_index(u64 seed, u64 step, u64 b, u64 n_windows) {
  return scale_to(draw(seed, step, b, 0), n_windows);
}

// The series of flat window index idx: the last i with prefix[i] <= idx (prefix[0] = 0, prefix[i+1] =
// prefix[i] + the window count of series i).
PLRNN_HD int series_of(const long long* prefix, int n_series, long long idx) {
  int lo = 0, hi = n_series - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (prefix[mid] <= idx) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// A standard normal for flat batch element e at step k (teacher noise).
PLRNN_HD double normal(u64 seed, u64 step, u64 e) {
  const double u1 = uniform01(draw(seed, step, e, 1));
  const double u2 = uniform01(draw(seed, step, e, 2));
#if defined(__CUDA_ARCH__)
  return sqrt(-2.0 * log(u1)) * cospi(2.0 * u2);
#else
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
#endif
}

}  // namespace plrnn::training
