// The persistent, fused rollout (forward) and BPTT (backward) kernels of every model kind, side by
// side. Device code: included by the .cu files that instantiate it (cuda/models/<kind>.cu, through
// rollout/launch.cuh, after defining the kind's DeviceModel) and by the engine (rollout/engine.cu), which
// launches it through the dispatch shared with the CPU core (csrc/core/kind_dispatch.h).
//
// Layout (docs/gpu.md has the picture):
//   * one thread block owns a group of `nb` sequences for the whole time loop: there is one launch
//     for the forward and one for the backward, not one per step;
//   * the big matrices (W, or W1 and W2 for the shallow kind) sit in shared memory when they fit in
//     the device's opt-in shared memory per block ("persistent" path), otherwise the same kernel
//     reads them from global memory, where they stay L2-resident ("global-weights" path, large M);
//   * the per-sequence vectors of the current step (z, u, phi, s, ...) always live in shared memory;
//   * thread `it` of a step computes output (q, i) = (it / M, it % M): one unit of one sequence, a
//     dot product over a matrix row stored so that consecutive threads read consecutive addresses
//     (the forward reads transposed copies Wt, W1t, W2t, Ct, Bt, Binvt prepared by the engine; the
//     backward reads the row-major originals, since it multiplies by the transposes);
//   * the forward writes the tape the backward needs ([B, T-1, dim] arrays, row b*(T-1) + t-1 for
//     step t): U (state after forcing, the step's input), Phi (phi(U), or the hidden activation of
//     the shallow kind), V (W2 U, shallow), E (scaled residuals), and the pre-forcing states z;
//   * the backward walks the steps in reverse and writes G (dL/dz_t), R (W^T G for the dendritic
//     kind; Delta for the shallow kind), D1 (clipped shallow), Ebar (linear observation: E minus the
//     forcing term, so dL/dB is one outer-product sum) and G0 (dL/dz_0). The parameter gradients are
//     then sums of outer products over all rows, formed by the reduction kernels of param_grads.cuh
//     in a fixed order (no atomics: results are reproducible bit for bit on one device).
//
// Conventions are those of docs/model.md and the CPU core (csrc/rollout/bptt.h): the forcing weight
// a(t') acts on the state at t' before step t'+1, the loss is the mean over B (T-1) N entries, B is
// differentiated inside the forcing and Binv is not.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "core/types.h"
#include "observation/observation.cuh"
#include "rollout/forcing.cuh"

namespace plrnn::cuda {

// Everything the two kernels read and write, device pointers (nullptr where unused).
template <typename S>
struct RolloutArgs {
  // sizes
  int M = 0, N = 0, K = 0, H = 0, Bb = 0, P = 0;
  int B = 0, T = 0;
  int nb = 1;                    // sequences per block
  bool weights_in_smem = false;  // persistent path (big matrices in shared memory)
  // forcing schedule: a runtime value, one uniform branch per step
  int forcing = 0;               // Forcing::None / Sparse / Generalized
  long long tau = 1;
  S alpha_tf = 0;                // generalized forcing weight
  S grad_scale = 0;              // 2 / (B (T-1) N)
  // parameters, row-major as in docs/model.md
  const S* A = nullptr;      // [M]
  const S* W = nullptr;      // [M, M]
  const S* h = nullptr;      // [M]      (h1 for shallow)
  const S* alpha = nullptr;  // [Bb]
  const S* theta = nullptr;  // [M, Bb]
  const S* W1 = nullptr;     // [M, H]
  const S* W2 = nullptr;     // [H, M]
  const S* h2 = nullptr;     // [H]
  const S* Bm = nullptr;     // [N, M]   observation matrix B
  const S* Binv = nullptr;   // [M, N]
  const S* L = nullptr;      // [M-N, N] identity, [M, N] linear
  // transposed copies read by the forward
  const S* Wt = nullptr;     // [M, M]   Wt[j, i] = W[i, j]
  const S* W1t = nullptr;    // [H, M]
  const S* W2t = nullptr;    // [M, H]
  const S* Ct = nullptr;     // [K, M]
  const S* Bt = nullptr;     // [M, N]
  const S* Binvt = nullptr;  // [N, M]
  // data
  const S* x = nullptr;      // [B, T, N]  (nullptr: free run)
  const S* s = nullptr;      // [B, T, K]
  const S* z0 = nullptr;     // [B, M]     given initial states (free run), else init(x_0)
  const S* eps = nullptr;    // [B, T, M]  process noise (free run)
  // outputs
  S* xhat = nullptr;         // [B, T, N]
  S* z = nullptr;            // [B, T, M]  pre-forcing states
  // tape, [B, T-1, dim]
  S* U = nullptr;            // M
  S* Phi = nullptr;          // M (W-phi kinds) or H (shallow)
  S* V = nullptr;            // H (shallow)
  S* E = nullptr;            // N  grad_scale * (xhat_t - x_t)
  S* Ebar = nullptr;         // N  linear observation: E_t - a_t Binv^T dL/du_t
  S* G = nullptr;            // M  dL/dz_t
  S* R = nullptr;            // M  W^T G (dendritic) or H Delta (shallow)
  S* D1 = nullptr;           // H  clipped shallow: the relu(W2 u + h2) part of Delta
  S* G0 = nullptr;           // [B, M] dL/dz_0
  double* sse_part = nullptr;  // [gridDim.x] per-block sum of squared errors
};

// Elements of the big matrices that the persistent path keeps in shared memory.
inline __host__ __device__ std::size_t big_matrix_elems(bool shallow, int M, int H) {
  return shallow ? 2 * std::size_t(M) * H : std::size_t(M) * M;
}
// Elements of the per-sequence buffers of one block (forward: z, u, phi, s, resid; backward: g,
// gu, delta, tq). The forward/backward needs are merged so one plan serves both kernels.
inline __host__ __device__ std::size_t buffer_elems(bool shallow, int nb, int M, int N, int K, int H) {
  const std::size_t F = shallow ? H : M;
  return std::size_t(nb) * (2 * std::size_t(M) + F + K + N);
}
// Byte offset of the per-thread double reduction buffer, and the total dynamic shared memory.
inline __host__ __device__ std::size_t reduce_offset(std::size_t elems, std::size_t elem_size) {
  return (elems * elem_size + 15) / 16 * 16;
}
inline __host__ __device__ std::size_t smem_bytes(bool in_smem, bool shallow, int nb, int M, int N, int K,
                                                  int H, int threads, std::size_t elem_size) {
  const std::size_t elems = (in_smem ? big_matrix_elems(shallow, M, H) : 0) + buffer_elems(shallow, nb, M, N, K, H);
  return reduce_offset(elems, elem_size) + std::size_t(threads) * sizeof(double);
}

// ---- the kind-specific maths: DeviceModel<S, KD>, specialised per kind in cuda/models/<kind>.cu (the
// files named as csrc/models/), forward beside gradient, before that file instantiates the kernels.
//   W phi(z) kinds (standard, alrnn, dendritic):
//     alpha_total(a)           a per-call constant of the kind (dendritic: sum_b alpha_b; else 0)
//     phi(a, u, i, alpha_sum)  fwd:  phi_i(u)
//     dphi(a, u, i, alpha_sum) grad: phi_i'(u)   (relu'(0) = 0)
//   W1 act(W2 z + h2) kinds (shallow):
//     alpha_total(a)           0
//     hidden(v, h2)            fwd:  the hidden activation at v = (W2 u)_j
//     dhidden(v, h2, r, d1)    grad: Delta_j = act'(v) r for r = (W1^T g)_j; d1 = the relu(v + h2) part
template <typename S, Kind KD>
struct DeviceModel;

// Copies n elements global -> shared with the whole block.
template <typename S>
__device__ __forceinline__ void block_copy(S* dst, const S* src, std::size_t n) {
  for (std::size_t e = threadIdx.x; e < n; e += blockDim.x) dst[e] = src[e];
}

// Deterministic block sum of one double per thread (fixed pairing order); result in red[0].
__device__ __forceinline__ void block_sum(double* red, double v) {
  const int tid = threadIdx.x, nt = blockDim.x;
  red[tid] = v;
  __syncthreads();
  for (int stride = 1; stride < nt; stride *= 2) {
    if (tid % (2 * stride) == 0 && tid + stride < nt) red[tid] += red[tid + stride];
    __syncthreads();
  }
}

// The step's forward F(u, s) for the ns rows of a block, the one device statement of it (the rollout
// forward below and the VI transitions, cuda/vi/log_joint.cuh). The caller has put each row's u
// [ns, M], s [ns, K] and, for the W-phi kinds, phi(u) [ns, M] (in ph) in shared memory, followed by a
// barrier. The callers read the matrices in their own layouts (the rollout forward: the transposed
// copies, so that consecutive threads read consecutive addresses; VI: row-major) through
//   w2(j, k) = W2[j, k] (shallow)   wf(i, j) = W[i, j] or W1[i, j]   c(i, k) = C[i, k]
// and take the results through
//   on_hidden(q, j, v, f)  shallow: v = (W2 u)_j and f = hidden(v), after ph[q, j] = f
//   out(q, i, x)           x = F(u, s)_i = (W phi(u))_i (or (W1 hidden)_i) + A_i u_i + h_i + (C s)_i
// The shallow kinds have a block barrier after the hidden layer; there is none at the end.
template <typename S, Kind KD, class W2At, class WfAt, class CAt, class OnHidden, class Out>
__device__ __forceinline__ void step_rows(const RolloutArgs<S>& m, int ns, const S* u, S* ph, const S* sx,
                                          W2At w2, WfAt wf, CAt c, OnHidden on_hidden, Out out) {
  constexpr bool kShallow = is_shallow(KD);
  const int M = m.M, K = m.K, H = m.H, F = kShallow ? H : M, tid = threadIdx.x, nt = blockDim.x;
  if constexpr (kShallow) {
    for (int it = tid; it < ns * H; it += nt) {
      const int q = it / H, j = it - q * H;
      S acc = 0;
      for (int k = 0; k < M; ++k) acc += w2(j, k) * u[q * M + k];
      const S f = DeviceModel<S, KD>::hidden(acc, m.h2[j]);
      ph[q * H + j] = f;
      on_hidden(q, j, acc, f);
    }
    __syncthreads();
  } else {
    (void)w2;
    (void)on_hidden;
  }
  for (int it = tid; it < ns * M; it += nt) {
    const int q = it / M, i = it - q * M;
    S acc = 0;
    const S* f = ph + q * F;
    for (int j = 0; j < F; ++j) acc += wf(i, j) * f[j];
    acc += m.A[i] * u[q * M + i] + m.h[i];
    for (int k = 0; k < K; ++k) acc += c(i, k) * sx[q * K + k];
    out(q, i, acc);
  }
}

// =================================================================================================
// Forward: z_0 = init(x_0) (or given z0); for t = 1..T-1: u = force(z_{t-1}, x_{t-1}, a(t-1)),
// z_t = F(u, s_t) [+ eps_t]; xhat_t = obs(z_t); sse += |xhat_t - x_t|^2.
// fwd inputs:  parameters (+ transposed copies), x, s | z0, eps
// fwd outputs: xhat, z, tape U/Phi/V/E, sse_part[block]
// =================================================================================================
template <typename S, Kind KD, Obs OB>
__global__ void __launch_bounds__(1024) rollout_forward_kernel(const RolloutArgs<S> a) {
  constexpr bool kShallow = is_shallow(KD);
  extern __shared__ __align__(16) unsigned char smem_raw[];
  S* p = reinterpret_cast<S*>(smem_raw);
  const int M = a.M, N = a.N, K = a.K, H = a.H, T = a.T;
  const int F = kShallow ? H : M;  // width of the activation buffer
  const int b0 = blockIdx.x * a.nb;
  const int ns = min(a.nb, a.B - b0);
  const int tid = threadIdx.x, nt = blockDim.x;

  const S* Wt = a.Wt;    // W-phi kinds
  const S* W1t = a.W1t;  // shallow
  const S* W2t = a.W2t;
  if (a.weights_in_smem) {
    if constexpr (kShallow) {
      block_copy(p, a.W1t, std::size_t(H) * M);
      W1t = p;
      p += std::size_t(H) * M;
      block_copy(p, a.W2t, std::size_t(M) * H);
      W2t = p;
      p += std::size_t(M) * H;
    } else {
      block_copy(p, a.Wt, std::size_t(M) * M);
      Wt = p;
      p += std::size_t(M) * M;
    }
  }
  S* z = p;                  // [nb, M] z_t (pre-forcing)
  S* u = z + a.nb * M;       // [nb, M] state after forcing
  S* ph = u + a.nb * M;      // [nb, F] phi(u) or hidden activation
  S* sx = ph + a.nb * F;     // [nb, K] s_t
  S* rv = sx + a.nb * K;     // [nb, N] x - B z (linear forcing)
  double* red = reinterpret_cast<double*>(
      smem_raw + reduce_offset((a.weights_in_smem ? big_matrix_elems(kShallow, M, H) : 0) +
                                   buffer_elems(kShallow, a.nb, M, N, K, H), sizeof(S)));
  const S alpha_sum = DeviceModel<S, KD>::alpha_total(a);
  double sse = 0.0;

  using Ob = DeviceObs<S, OB>;  // the observation model (observation/observation.cuh)

  // ---- t = 0: initial state and its observation
  for (int it = tid; it < ns * M; it += nt) {
    const int q = it / M, i = it - q * M;
    const std::size_t b = b0 + q;
    S v;
    if (a.z0) {
      v = a.z0[b * M + i];
    } else {
      v = Ob::init(a, a.x + b * T * N, i);
    }
    z[q * M + i] = v;
    if (a.z) a.z[b * T * M + i] = v;
  }
  __syncthreads();
  if (a.xhat)
    for (int it = tid; it < ns * N; it += nt) {
      const int q = it / N, n = it - q * N;
      a.xhat[std::size_t(b0 + q) * T * N + n] = Ob::observe(a, z + q * M, n);
    }

  for (int t = 1; t < T; ++t) {
    const S w = forcing_weight<S>(a, t - 1);
    // (1) u = force(z_{t-1}, x_{t-1}, w); phi(u); the tape row of step t
    if (w != S(0)) Ob::force_residuals(a, ns, z, a.x + (std::size_t(b0) * T + t - 1) * N, std::size_t(T) * N, rv);
    for (int it = tid; it < ns * M; it += nt) {
      const int q = it / M, i = it - q * M;
      const std::size_t b = b0 + q;
      const S v = w != S(0) ? Ob::force(a, z + q * M, a.x + (b * T + t - 1) * N, rv + q * N, w, i) : z[q * M + i];
      u[q * M + i] = v;
      const std::size_t row = b * (T - 1) + (t - 1);
      if (a.U) a.U[row * M + i] = v;
      if constexpr (!kShallow) {
        const S f = DeviceModel<S, KD>::phi(a, v, i, alpha_sum);
        ph[q * M + i] = f;
        if (a.Phi) a.Phi[row * M + i] = f;
      }
    }
    for (int it = tid; it < ns * K; it += nt) {
      const int q = it / K, k = it - q * K;
      sx[q * K + k] = a.s[(std::size_t(b0 + q) * T + t) * K + k];
    }
    __syncthreads();
    // (2) z_t = F(u, s_t) [+ eps_t] (shallow: the hidden layer v = W2 u, hidden(v) first)
    {
      const S* Wf = kShallow ? W1t : Wt;
      auto row_of = [&](int q) { return std::size_t(b0 + q) * (T - 1) + (t - 1); };
      step_rows<S, KD>(
          a, ns, u, ph, sx, [&](int j, int k) { return W2t[k * H + j]; }, [&](int i, int j) { return Wf[j * M + i]; },
          [&](int i, int k) { return a.Ct[k * M + i]; },
          [&](int q, int j, S v, S f) {
            if (a.V) a.V[row_of(q) * H + j] = v;
            if (a.Phi) a.Phi[row_of(q) * H + j] = f;
          },
          [&](int q, int i, S x) {
            const std::size_t b = b0 + q;
            if (a.eps) x += a.eps[(b * T + t) * M + i];
            z[q * M + i] = x;
            if (a.z) a.z[(b * T + t) * M + i] = x;
          });
    }
    __syncthreads();
    // (3) observation, residual and loss of step t
    if (a.x || a.xhat)
      for (int it = tid; it < ns * N; it += nt) {
        const int q = it / N, n = it - q * N;
        const std::size_t b = b0 + q;
        const S xh = Ob::observe(a, z + q * M, n);
        if (a.xhat) a.xhat[(b * T + t) * N + n] = xh;
        if (a.x) {
          const S e = xh - a.x[(b * T + t) * N + n];
          sse += double(e) * double(e);
          if (a.E) a.E[(b * (T - 1) + t - 1) * N + n] = a.grad_scale * e;
        }
      }
    // no barrier here: the next step's (1) only reads z, and the barrier after (1) orders the rest
  }
  __syncthreads();
  block_sum(red, sse);
  if (tid == 0 && a.sse_part) a.sse_part[blockIdx.x] = red[0];
}

// The step's vector-Jacobian product for the ns rows of a block, the one device statement of it
// (BPTT below and the VI log-joint's gradient, cuda/vi/log_joint.cuh). Row q's g = dL/dz is
// g[q M + .] (shared memory); the callers say where its state and tape live:
//   u_at(q, j)  u_j of row q (the state the step read);  v_at(q, j)  shallow: (W2 u)_j of row q
//   row_of(q)   its row in the tape arrays R, D1;        out(q, j, x)  writes dL/du_j = x
//   W-phi kinds: dL/du = A g + phi'(u) .* (W^T g); dendritic keeps W^T g in R
//   shallow:     Delta = act'(v) .* (W1^T g) into dl [ns, H] and R (clipped: d1 into D1), then
//                dL/du = A g + W2^T Delta (a block barrier between the two)
template <typename S, Kind KD, class StateAt, class PreAt, class RowOf, class Out>
__device__ __forceinline__ void step_vjp_rows(const RolloutArgs<S>& m, const S* W, const S* W1, const S* W2,
                                              int ns, const S* g, S* dl, S* R, S* D1, S alpha_sum,
                                              StateAt u_at, PreAt v_at, RowOf row_of, Out out) {
  const int M = m.M, H = m.H, tid = threadIdx.x, nt = blockDim.x;
  if constexpr (!is_shallow(KD)) {
    for (int it = tid; it < ns * M; it += nt) {
      const int q = it / M, j = it - q * M;
      S r = 0;
      for (int i = 0; i < M; ++i) r += W[i * M + j] * g[q * M + i];
      if constexpr (is_dendritic(KD)) R[row_of(q) * M + j] = r;
      out(q, j, m.A[j] * g[q * M + j] + DeviceModel<S, KD>::dphi(m, u_at(q, j), j, alpha_sum) * r);
    }
  } else {
    (void)alpha_sum;
    for (int it = tid; it < ns * H; it += nt) {
      const int q = it / H, j = it - q * H;
      S r = 0;
      for (int i = 0; i < M; ++i) r += W1[i * H + j] * g[q * M + i];
      S d1;
      const S delta = DeviceModel<S, KD>::dhidden(v_at(q, j), m.h2[j], r, d1);
      if constexpr (is_clipped(KD)) D1[row_of(q) * H + j] = d1;
      dl[q * H + j] = delta;
      R[row_of(q) * H + j] = delta;
    }
    __syncthreads();
    for (int it = tid; it < ns * M; it += nt) {
      const int q = it / M, k = it - q * M;
      S acc = 0;
      for (int j = 0; j < H; ++j) acc += W2[j * M + k] * dl[q * H + j];
      out(q, k, m.A[k] * g[q * M + k] + acc);
    }
  }
}

// =================================================================================================
// Backward (BPTT), the reverse time loop over the tape:
//   g = dL/dz_t (from step t+1) + obs'(E_t);  G_t = g
//   dL/du_{t-1} = A*g + phi'(u) .* (W^T g)              (shallow: A*g + W2^T Delta)
//   dL/dz_{t-1} = (d force / d z)^T dL/du_{t-1}          when a(t-1) != 0
// grad inputs:  parameters (row-major), tape U/V/E
// grad outputs: tape G, R (dendritic W^T g; shallow Delta), D1, Ebar (linear), G0
// =================================================================================================
template <typename S, Kind KD, Obs OB>
__global__ void __launch_bounds__(1024) rollout_backward_kernel(const RolloutArgs<S> a) {
  constexpr bool kShallow = is_shallow(KD);
  extern __shared__ __align__(16) unsigned char smem_raw[];
  S* p = reinterpret_cast<S*>(smem_raw);
  const int M = a.M, N = a.N, K = a.K, H = a.H, T = a.T;
  const int b0 = blockIdx.x * a.nb;
  const int ns = min(a.nb, a.B - b0);
  const int tid = threadIdx.x, nt = blockDim.x;
  (void)K;

  const S* W = a.W;
  const S* W1 = a.W1;
  const S* W2 = a.W2;
  if (a.weights_in_smem) {
    if constexpr (kShallow) {
      block_copy(p, a.W1, std::size_t(M) * H);
      W1 = p;
      p += std::size_t(M) * H;
      block_copy(p, a.W2, std::size_t(H) * M);
      W2 = p;
      p += std::size_t(H) * M;
    } else {
      block_copy(p, a.W, std::size_t(M) * M);
      W = p;
      p += std::size_t(M) * M;
    }
  }
  S* g = p;                 // [nb, M] dL/dz_t
  S* gu = g + a.nb * M;     // [nb, M] dL/du_{t-1}, then dL/dz_{t-1}
  S* dl = gu + a.nb * M;    // [nb, H] Delta (shallow)
  S* tq = dl + a.nb * (kShallow ? H : M) + a.nb * K;  // [nb, N] Binv^T dL/du (linear forcing)
  const S alpha_sum = DeviceModel<S, KD>::alpha_total(a);
  using Ob = DeviceObs<S, OB>;  // the observation model (observation/observation.cuh)
  const std::size_t stride = std::size_t(T) - 1;  // between the tape rows of two sequences

  for (int it = tid; it < ns * M; it += nt) g[it] = S(0);  // nothing flows back into z_{T-1}
  Ob::unforced_grad(a, ns, std::size_t(b0) * stride + (T - 2), stride);
  __syncthreads();

  for (int t = T - 1; t >= 1; --t) {
    // (1) loss at t: g += obs'(E_t); keep G_t
    for (int it = tid; it < ns * M; it += nt) {
      const int q = it / M, i = it - q * M;
      const std::size_t row = std::size_t(b0 + q) * (T - 1) + (t - 1);
      const S v = Ob::observe_grad(a, g[q * M + i], a.E + row * N, i);
      g[q * M + i] = v;
      a.G[row * M + i] = v;
    }
    __syncthreads();
    // (2) through the step: gu = dL/du_{t-1}
    {
      auto row_of = [&](int q) { return std::size_t(b0 + q) * (T - 1) + (t - 1); };
      step_vjp_rows<S, KD>(
          a, W, W1, W2, ns, g, dl, a.R, a.D1, alpha_sum, [&](int q, int j) { return a.U[row_of(q) * M + j]; },
          [&](int q, int j) { return a.V[row_of(q) * H + j]; }, row_of,
          [&](int q, int j, S x) { gu[q * M + j] = x; });
    }
    __syncthreads();
    // (3) through the forcing of the state at t-1 (a(t-1) != 0 only for t >= 2)
    const S w = forcing_weight<S>(a, t - 1);
    if (w != S(0)) {
      Ob::force_grad(a, ns, std::size_t(b0) * stride + (t - 2), stride, w, gu, tq);
      __syncthreads();
    } else if (t >= 2) {
      Ob::unforced_grad(a, ns, std::size_t(b0) * stride + (t - 2), stride);
    }
    S* tmp = g;
    g = gu;
    gu = tmp;
  }
  for (int it = tid; it < ns * M; it += nt) {
    const int q = it / M, i = it - q * M;
    a.G0[std::size_t(b0 + q) * M + i] = g[q * M + i];
  }
}

// Launchers, explicitly instantiated per kind in cuda/models/<kind>.cu (parallel compilation).
template <typename S, Kind KD, Obs OB>
void launch_rollout_forward(const RolloutArgs<S>& a, int blocks, int threads, std::size_t smem);
template <typename S, Kind KD, Obs OB>
void launch_rollout_backward(const RolloutArgs<S>& a, int blocks, int threads, std::size_t smem);

}  // namespace plrnn::cuda
