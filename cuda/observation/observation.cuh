// The observation models on the device, forward beside gradient: what csrc/observation/observation.h
// does on [M, nb] blocks, stated here for the rows of one thread block of the rollout and BPTT kernels
// (cuda/rollout/rollout_bptt.cuh). A row is one sequence's [M] state in shared memory; x and the
// residuals are [N] rows.
//   identity: xhat = z[:N],  z_0 = [x_0; L x_0],  force(z, x, a) = [(1-a) z[:N] + a x; z[N:]]
//   linear:   xhat = B z,    z_0 = L x_0,         force(z, x, a) = z + a Binv (x - B z)
// Binv is an input and is not differentiated; B is, also inside the forcing: the backward writes
// Ebar = E - a Binv^T dL/du (linear), so that dL/dB is one outer-product sum over the tape, and
// dL/dL is the sum of G0 x_0^T; both reductions run on the host side (Engine::param_grads).
// The device runs without masks (missing values are a CPU-core feature).
//
// `Args` is RolloutArgs<S> (rollout_bptt.cuh): sizes M, N and the pointers L, Bm, Bt, Binv, Binvt,
// E, Ebar. Block-wide functions are called by every thread of the block.
#pragma once
#include <cstddef>

#include "core/types.h"

namespace plrnn::cuda {

template <typename S, Obs OB>
struct DeviceObs;

template <typename S>
struct DeviceObs<S, Obs::Identity> {
  // fwd: element i of z_0 from x_0 [N]
  template <class Args>
  __device__ static S init(const Args& a, const S* x0, int i) {
    const int N = a.N;
    S acc = 0;
    if (i < N) {
      acc = x0[i];
    } else {
      for (int n = 0; n < N; ++n) acc += a.L[(i - N) * N + n] * x0[n];
    }
    return acc;
  }

  // fwd: xhat_n of the state row z [M]
  template <class Args>
  __device__ static S observe(const Args&, const S* z, int n) {
    return z[n];
  }

  // fwd, block-wide, before force at a weight w != 0: the residuals the forcing pulls with
  // (linear only; the identity forcing reads x directly)
  template <class Args>
  __device__ static void force_residuals(const Args&, int, const S*, const S*, std::size_t, S*) {}

  // fwd: element i of u = force(z, x, w), w != 0, for the row z [M], x [N] and its residual row
  template <class Args>
  __device__ static S force(const Args& a, const S* z, const S* x, const S*, S w, int i) {
    S v = z[i];
    if (i < a.N) v = (S(1) - w) * v + w * x[i];
    return v;
  }

  // grad: element i of g + (d xhat / d z)^T e for the row's scaled residuals e [N]
  template <class Args>
  __device__ static S observe_grad(const Args& a, S g, const S* e, int i) {
    if (i < a.N) g += e[i];
    return g;
  }

  // grad, block-wide: gu <- (d force / d z)^T gu for the ns rows at weight w != 0 (the forcing of the
  // states at step t-1 >= 1); rows0 is the tape row of row 0's step t-1, tape rows of one row are
  // `stride` apart. The caller puts a barrier after it.
  template <class Args>
  __device__ static void force_grad(const Args& a, int ns, std::size_t, std::size_t, S w, S* gu, S*) {
    const int M = a.M, N = a.N;
    for (int it = threadIdx.x; it < ns * N; it += blockDim.x) {
      const int q = it / N, n = it - q * N;
      gu[q * M + n] *= (S(1) - w);
    }
  }

  // grad, block-wide: the tape rows whose state is not forced (Ebar = E, linear only)
  template <class Args>
  __device__ static void unforced_grad(const Args&, int, std::size_t, std::size_t) {}
};

template <typename S>
struct DeviceObs<S, Obs::Linear> {
  template <class Args>
  __device__ static S init(const Args& a, const S* x0, int i) {
    S acc = 0;
    for (int n = 0; n < a.N; ++n) acc += a.L[i * a.N + n] * x0[n];
    return acc;
  }

  template <class Args>
  __device__ static S observe(const Args& a, const S* z, int n) {
    S acc = 0;
    for (int m = 0; m < a.M; ++m) acc += a.Bt[m * a.N + n] * z[m];
    return acc;
  }

  // rv [ns, N] = x - B z for the ns rows z [ns, M] and their data rows x + q * x_stride [N]; ends with
  // a barrier
  template <class Args>
  __device__ static void force_residuals(const Args& a, int ns, const S* z, const S* x, std::size_t x_stride,
                                         S* rv) {
    const int N = a.N;
    for (int it = threadIdx.x; it < ns * N; it += blockDim.x) {
      const int q = it / N, n = it - q * N;
      rv[q * N + n] = x[q * x_stride + n] - observe(a, z + q * a.M, n);
    }
    __syncthreads();
  }

  template <class Args>
  __device__ static S force(const Args& a, const S* z, const S*, const S* rv, S w, int i) {
    S acc = 0;
    for (int n = 0; n < a.N; ++n) acc += a.Binvt[n * a.M + i] * rv[n];
    return z[i] + w * acc;
  }

  template <class Args>
  __device__ static S observe_grad(const Args& a, S g, const S* e, int i) {
    S acc = 0;
    for (int n = 0; n < a.N; ++n) acc += a.Bm[n * a.M + i] * e[n];
    return g + acc;
  }

  // gu <- gu - w B^T (Binv^T gu);  Ebar_{t-1} = E_{t-1} - w Binv^T gu  (tq [ns, N] scratch)
  template <class Args>
  __device__ static void force_grad(const Args& a, int ns, std::size_t rows0, std::size_t stride, S w, S* gu,
                                    S* tq) {
    const int M = a.M, N = a.N;
    for (int it = threadIdx.x; it < ns * N; it += blockDim.x) {
      const int q = it / N, n = it - q * N;
      S acc = 0;
      for (int i = 0; i < M; ++i) acc += a.Binv[i * N + n] * gu[q * M + i];
      tq[q * N + n] = acc;
      const std::size_t row = rows0 + q * stride;
      a.Ebar[row * N + n] = a.E[row * N + n] - w * acc;
    }
    __syncthreads();
    for (int it = threadIdx.x; it < ns * M; it += blockDim.x) {
      const int q = it / M, i = it - q * M;
      S acc = 0;
      for (int n = 0; n < N; ++n) acc += a.Bm[n * M + i] * tq[q * N + n];
      gu[q * M + i] -= w * acc;
    }
  }

  // Ebar = E on the ns tape rows rows0 + q * stride
  template <class Args>
  __device__ static void unforced_grad(const Args& a, int ns, std::size_t rows0, std::size_t stride) {
    const int N = a.N;
    for (int it = threadIdx.x; it < ns * N; it += blockDim.x) {
      const int q = it / N, n = it - q * N;
      const std::size_t row = rows0 + q * stride;
      a.Ebar[row * N + n] = a.E[row * N + n];
    }
  }
};

}  // namespace plrnn::cuda
