// Parameter gradients from the BPTT tape: every gradient is a sum over the rows r (one row per
// sequence and step) of an outer product (dL/dW = sum_r G_r Phi_r^T, ...) or of an elementwise term
// (dL/dA = sum_r G_r .* U_r, ...). Both reductions split the rows into a fixed number of chunks,
// write one partial result per chunk, and sum the chunks in chunk order (sum_splits_kernel): no
// atomics, so the gradient is bit-for-bit reproducible on one device.
// Device code: included by rollout/engine.cu and vi/log_joint.cu.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>

#include "core/cuda_check.cuh"
#include "core/device_buffer.cuh"

namespace plrnn::cuda {

// A [rows, cols] view of a [B, T', ld] array: row r is sequence r / per, time (r % per) + off, so the
// same tape rows (r = b (T-1) + t-1) can be matched with rows of x, s or z ([B, T, *]: per = T-1,
// stride = T, off = 1). Element (r, c) = p[((r / per) * stride + r % per + off) * ld + c].
template <typename S>
struct RowView {
  const S* p = nullptr;
  long long ld = 0, per = 1, stride = 1, off = 0;
  __device__ __forceinline__ S operator()(long long r, int c) const {
    const long long q = r / per;
    return p[((q * stride) + (r - q * per) + off) * ld + c];
  }
};
template <typename S>
RowView<S> tape_view(const S* p, long long ld) {  // [rows, ld] contiguous
  RowView<S> v;
  v.p = p;
  v.ld = ld;
  v.per = 1;
  v.stride = 1;
  return v;
}
template <typename S>
RowView<S> steps_view(const S* p, long long ld, long long T) {  // rows t = 1..T-1 of [B, T, ld]
  RowView<S> v;
  v.p = p;
  v.ld = ld;
  v.per = T - 1;
  v.stride = T;
  v.off = 1;
  return v;
}

constexpr int kTile = 32;      // output tile of the outer-product reduction
constexpr int kTileRows = 8;   // threadIdx.y extent: each thread owns kTile / kTileRows outputs

// part[z, i, j] = sum over rows r of chunk z of X(r, i) * Y(r, j)        grid (nj/32, ni/32, splits)
template <typename S>
__global__ void outer_reduce_kernel(RowView<S> X, RowView<S> Y, long long rows, int ni, int nj,
                                    long long rows_per_split, S* part) {
  __shared__ S xs[kTile][kTile + 1];
  __shared__ S ys[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int i0 = blockIdx.y * kTile, j0 = blockIdx.x * kTile;
  const long long r_begin = blockIdx.z * rows_per_split;
  const long long r_end = min(rows, r_begin + rows_per_split);
  S acc[kTile / kTileRows] = {};
  for (long long r0 = r_begin; r0 < r_end; r0 += kTile) {
    for (int k = ty; k < kTile; k += kTileRows) {
      const long long r = r0 + k;
      const bool ok = r < r_end;
      xs[k][tx] = (ok && i0 + tx < ni) ? X(r, i0 + tx) : S(0);
      ys[k][tx] = (ok && j0 + tx < nj) ? Y(r, j0 + tx) : S(0);
    }
    __syncthreads();
    for (int k = 0; k < kTile; ++k) {
      const S y = ys[k][tx];
#pragma unroll
      for (int q = 0; q < kTile / kTileRows; ++q) acc[q] += xs[k][ty + kTileRows * q] * y;
    }
    __syncthreads();
  }
#pragma unroll
  for (int q = 0; q < kTile / kTileRows; ++q) {
    const int i = i0 + ty + kTileRows * q, j = j0 + tx;
    if (i < ni && j < nj) part[(std::size_t(blockIdx.z) * ni + i) * nj + j] = acc[q];
  }
}

// part[z, c] = sum over rows r of chunk z of f(r, c)                        grid (ncols/32, splits)
template <typename S, class Fn>
__global__ void column_reduce_kernel(Fn f, long long rows, int ncols, long long rows_per_split, S* part) {
  __shared__ S red[kTileRows][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * kTile + tx;
  const long long r_begin = blockIdx.y * rows_per_split;
  const long long r_end = min(rows, r_begin + rows_per_split);
  S acc = 0;
  if (c < ncols)
    for (long long r = r_begin + ty; r < r_end; r += kTileRows) acc += f(r, c);
  red[ty][tx] = acc;
  __syncthreads();
  if (ty == 0 && c < ncols) {
    S s = red[0][tx];
    for (int k = 1; k < kTileRows; ++k) s += red[k][tx];
    part[std::size_t(blockIdx.y) * ncols + c] = s;
  }
}

// out[e] = scale * sum_z part[z, e] (chunk order); zero_diag_n > 0: out is [n, n] with a zero diagonal.
template <typename S>
__global__ void sum_splits_kernel(const S* part, int splits, long long n, S scale, int zero_diag_n, S* out) {
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    S s = 0;
    for (int z = 0; z < splits; ++z) s += part[z * n + e];
    if (zero_diag_n > 0 && e / zero_diag_n == e % zero_diag_n) s = S(0);
    out[e] = scale * s;
  }
}

// f(r, c) = X(r, c) * Y(r, c), or X(r, c) without Y
template <typename S>
struct ProductTerm {
  RowView<S> X, Y;
  bool has_y = false;
  __device__ __forceinline__ S operator()(long long r, int c) const { return has_y ? X(r, c) * Y(r, c) : X(r, c); }
};

// Dendritic basis gradients, column c = i * Bb + b of [M, Bb]:
//   alpha part:  R_ri (relu(U_ri - theta_ib) [- relu(U_ri)])    (summed over i afterwards)
//   theta part:  R_ri 1[U_ri > theta_ib]                          (times -alpha_b afterwards)
template <typename S, bool Clipped, bool ThetaPart>
struct DendriticTerm {
  const S* U;      // [rows, M]
  const S* R;      // [rows, M]
  const S* theta;  // [M, Bb]
  int M, Bb;
  __device__ __forceinline__ S operator()(long long r, int c) const {
    const int i = c / Bb;
    const S u = U[r * M + i], rr = R[r * M + i], d = u - theta[c];
    if constexpr (ThetaPart) {
      return d > S(0) ? rr : S(0);
    } else {
      S v = d > S(0) ? d : S(0);
      if constexpr (Clipped) v -= u > S(0) ? u : S(0);
      return rr * v;
    }
  }
};

// g_alpha[b] = sum_i pa[i, b];  g_theta[i, b] = -alpha[b] pt[i, b]
template <typename S>
__global__ void dendritic_finish_kernel(const S* pa, const S* pt, const S* alpha, int M, int Bb, S* g_alpha,
                                        S* g_theta) {
  const int tid = blockIdx.x * blockDim.x + threadIdx.x;
  if (tid < Bb) {
    S s = 0;
    for (int i = 0; i < M; ++i) s += pa[i * Bb + tid];
    g_alpha[tid] = s;
  }
  for (int c = tid; c < M * Bb; c += gridDim.x * blockDim.x) g_theta[c] = -alpha[c % Bb] * pt[c];
}

// Number of row chunks: enough blocks to fill the device (about 4 per SM), at least 32 rows each,
// and at most `max_part` partial elements.
inline int choose_splits(long long rows, long long tiles, long long out_elems, int sms, long long max_part) {
  long long s = std::max<long long>(1, (4LL * sms + tiles - 1) / std::max<long long>(tiles, 1));
  s = std::min<long long>(s, std::max<long long>(1, rows / 32));
  s = std::min<long long>(s, std::max<long long>(1, max_part / std::max<long long>(out_elems, 1)));
  return static_cast<int>(std::min<long long>(s, 1024));
}

inline int grid_for(long long n, int threads) {
  return static_cast<int>(std::min<long long>((n + threads - 1) / threads, 4096));
}

// out[i, j] = sum over rows r of X(r, i) Y(r, j) ([ni, nj], overwritten; zero_diag_n > 0: zero diagonal), in a
// fixed order: row chunks reduced into `part` (grown as needed), then summed in chunk order.
template <typename S, class X, class Y>
void reduce_outer(DeviceBuffer<S>& part_buf, int sms, const X& x, const Y& y, long long rows, int ni, int nj, S* out,
                  int zero_diag_n) {
  if (ni == 0 || nj == 0) return;
  const long long tiles = (long long)((nj + kTile - 1) / kTile) * ((ni + kTile - 1) / kTile);
  const long long n = (long long)ni * nj;
  const int splits = choose_splits(rows, tiles, n, sms, 1LL << 24);
  const long long per = (rows + splits - 1) / splits;
  S* part = part_buf.reserve(std::size_t(splits) * std::size_t(n));
  const dim3 grid((nj + kTile - 1) / kTile, (ni + kTile - 1) / kTile, splits);
  outer_reduce_kernel<S><<<grid, dim3(kTile, kTileRows)>>>(x, y, rows, ni, nj, per, part);
  PLRNN_CUDA_CHECK_LAUNCH("outer_reduce_kernel");
  sum_splits_kernel<S><<<grid_for(n, 256), 256>>>(part, splits, n, S(1), zero_diag_n, out);
  PLRNN_CUDA_CHECK_LAUNCH("sum_splits_kernel");
}

// out[c] = sum over rows r of f(r, c) ([ncols], overwritten), in the same fixed order.
template <typename S, class Fn>
void reduce_columns(DeviceBuffer<S>& part_buf, int sms, const Fn& f, long long rows, int ncols, S* out) {
  if (ncols == 0) return;
  const long long tiles = (ncols + kTile - 1) / kTile;
  const int splits = choose_splits(rows, tiles, ncols, sms, 1LL << 24);
  const long long per = (rows + splits - 1) / splits;
  S* part = part_buf.reserve(std::size_t(splits) * std::size_t(ncols));
  const dim3 grid(static_cast<unsigned>(tiles), splits);
  column_reduce_kernel<S, Fn><<<grid, dim3(kTile, kTileRows)>>>(f, rows, ncols, per, part);
  PLRNN_CUDA_CHECK_LAUNCH("column_reduce_kernel");
  sum_splits_kernel<S><<<grid_for(ncols, 256), 256>>>(part, splits, ncols, S(1), 0, out);
  PLRNN_CUDA_CHECK_LAUNCH("sum_splits_kernel");
}

}  // namespace plrnn::cuda
