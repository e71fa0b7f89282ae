// The probabilistic PLRNN's log-joint on the GPU (docs/probabilistic.md; the CPU version is
// csrc/vi/log_joint.h, the NumPy reference python/plrnn_native/reference_vi.py). Device code.
//
// Every term couples only z_{t-1}, z_t and the fMRI HRF window, so there is no recursion over time and
// every kernel is parallel over (b, t):
//   1. transitions (vi_transition_kernel, per kind): one block per slab of consecutive transition rows
//      r = b (T-1) + t-1 (a slab may span sequences), threads over (row, unit). Per row: u = z_{t-1},
//      the kind's step F(u, s_t) (DeviceModel<S, Kind> of cuda/models/<kind>.cu: phi / hidden, the same
//      W phi(u) / W1 hidden(W2 u) families as the BPTT kernel, rollout/rollout_bptt.cuh), the residual
//      e = z_t - F, the Gaussian term, G = w_lat e / sigma_z^2 = d log p / d F, and the step's
//      vector-Jacobian product d log p / d z_{t-1} = A G + phi'(u) (W^T G) (shallow: A G + W2^T Delta).
//      The rows of (U, Phi, V, G, R, D1) form the same tape as BPTT's (rollout/engine.cuh: StepTape), so
//      the model's parameter gradients are the engine's fixed-order reductions (Engine::model_param_grads);
//   2. observations (vi_obs_kernel, log_joint.cu): one block per slab of (b, t) columns;
//   3. the prior of z_0 (one block), the assembly of d log p / d z (elementwise), and the parameter
//      gradients of the channels and noise scales as fixed-order sums (rollout/param_grads.cuh).
// Scalar parts are per-block double partials summed in block order: no atomics anywhere, the result is
// the same bits on every run and every block / thread schedule.
#pragma once
#include <cstddef>

#include "rollout/rollout_bptt.cuh"
#include "vi/vi_types.h"

namespace plrnn::cuda {

// exp in the scalar type (expf for float), on the device and in the emulator alike.
template <typename S>
__device__ __forceinline__ S vi_exp(S x) {
  if constexpr (sizeof(S) == sizeof(float)) return expf(x);
  else return exp(x);
}

constexpr double kViLog2Pi = 1.8378770664093454835606594728112;

// Everything the transition kernel reads and writes (device pointers; tape and gradient outputs nullptr
// without gradients).
template <typename S>
struct ViTransitionArgs {
  RolloutArgs<S> m;            // the kind's sizes and parameters (M, K, H, Bb, P, A, W, h, alpha, theta, W1, W2, h2)
  const S* C = nullptr;        // [M, K] row-major
  const S* z = nullptr;        // [B, T, M]
  const S* s = nullptr;        // [B, T, K]
  const S* log_sigma_z = nullptr;  // [M]
  S floor = 0, wl = 0;         // noise floor, latent weight
  long long rows = 0;          // B (T-1)
  long long rows_per_block = 1;
  int nr = 1;                  // rows processed at once by a block
  // outputs, [rows, dim]
  S *U = nullptr, *Phi = nullptr, *V = nullptr, *G = nullptr, *R = nullptr, *D1 = nullptr;
  S* g_next = nullptr;         // [rows, M] d/dz_t of transition r
  S* g_prev = nullptr;         // [rows, M] d/dz_{t-1} of transition r
  S* Lz = nullptr;             // [rows, M] d/dlog_sigma_z of transition r
  double* value_part = nullptr;  // [gridDim.x]
};

// Shared-memory elements of the transition kernel (u, phi, s, g, Delta per row) and total bytes.
inline __host__ __device__ std::size_t vi_transition_elems(bool shallow, int nr, int M, int K, int H) {
  return std::size_t(nr) * (2 * std::size_t(M) + (shallow ? H : M) + K + (shallow ? H : 0));
}
inline __host__ __device__ std::size_t vi_transition_smem(bool shallow, int nr, int M, int K, int H, int threads,
                                                          std::size_t elem) {
  return reduce_offset(vi_transition_elems(shallow, nr, M, K, H), elem) + std::size_t(threads) * sizeof(double);
}

// =================================================================================================
// Transitions: block = rows [blockIdx.x * rows_per_block, ...), nr rows at a time, threads over units.
// =================================================================================================
template <typename S, Kind KD>
__global__ void __launch_bounds__(1024) vi_transition_kernel(const ViTransitionArgs<S> a) {
  constexpr bool kShallow = is_shallow(KD);
  using Model = DeviceModel<S, KD>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const RolloutArgs<S>& m = a.m;
  const int M = m.M, K = m.K, H = m.H, T = m.T, nr = a.nr;
  const int F = kShallow ? H : M;
  S* u = reinterpret_cast<S*>(smem_raw);  // [nr, M] z_{t-1}
  S* ph = u + nr * M;                      // [nr, F] phi(u) or the hidden activation
  S* sx = ph + nr * F;                     // [nr, K] s_t
  S* g = sx + nr * K;                      // [nr, M] G = d log p / d F
  S* dl = g + nr * M;                      // [nr, H] Delta (shallow)
  double* red = reinterpret_cast<double*>(
      smem_raw + reduce_offset(vi_transition_elems(kShallow, nr, M, K, H), sizeof(S)));
  const int tid = threadIdx.x, nt = blockDim.x;
  const long long r_begin = blockIdx.x * a.rows_per_block;
  const long long r_end = r_begin + a.rows_per_block < a.rows ? r_begin + a.rows_per_block : a.rows;
  const S alpha_sum = Model::alpha_total(m);
  const bool grad = a.g_prev != nullptr;
  const S* Wf = kShallow ? m.W1 : m.W;  // [M, F]
  double value = 0.0;

  for (long long r0 = r_begin; r0 < r_end; r0 += nr) {
    const int ns = static_cast<int>(r_end - r0 < nr ? r_end - r0 : nr);
    // (1) u = z_{t-1}, s_t, phi(u); the tape rows U, Phi
    for (int it = tid; it < ns * M; it += nt) {
      const int q = it / M, i = it - q * M;
      const long long r = r0 + q, b = r / (T - 1), t = 1 + r % (T - 1);
      const S v = a.z[(b * T + t - 1) * M + i];
      u[q * M + i] = v;
      if (a.U) a.U[r * M + i] = v;
      if constexpr (!kShallow) {
        const S f = Model::phi(m, v, i, alpha_sum);
        ph[q * M + i] = f;
        if (a.Phi) a.Phi[r * M + i] = f;
      }
    }
    for (int it = tid; it < ns * K; it += nt) {
      const int q = it / K, k = it - q * K;
      const long long r = r0 + q, b = r / (T - 1), t = 1 + r % (T - 1);
      sx[q * K + k] = a.s[(b * T + t) * K + k];
    }
    __syncthreads();
    // (2) F(u, s_t) (shallow: the hidden layer v = W2 u, hidden(v) first, rollout/rollout_bptt.cuh);
    // e = z_t - F; the Gaussian term
    step_rows<S, KD>(
        m, ns, u, ph, sx, [&](int j, int k) { return m.W2[j * M + k]; }, [&](int i, int j) { return Wf[i * F + j]; },
        [&](int i, int k) { return a.C[i * K + k]; },
        [&](int q, int j, S v, S f) {
          if (a.V) a.V[(r0 + q) * H + j] = v;
          if (a.Phi) a.Phi[(r0 + q) * H + j] = f;
        },
        [&](int q, int i, S x) {
          const long long r = r0 + q, b = r / (T - 1), t = 1 + r % (T - 1);
          const S e = a.z[(b * T + t) * M + i] - x;
          const S sigma = a.floor + vi_exp(a.log_sigma_z[i]);
          const S uu = e / sigma;
          value += -0.5 * kViLog2Pi - log(static_cast<double>(sigma)) - 0.5 * double(uu) * double(uu);
          const S G = a.wl * e / (sigma * sigma);
          g[q * M + i] = G;
          if (grad) {
            a.G[r * M + i] = G;
            a.g_next[r * M + i] = -G;
            a.Lz[r * M + i] = a.wl * (uu * uu - S(1)) * ((sigma - a.floor) / sigma);
          }
        });
    __syncthreads();
    // (3) the step's vector-Jacobian product: d log p / d z_{t-1} (shallow: W2 u recomputed, as in (2))
    if (grad)
      step_vjp_rows<S, KD>(
          m, m.W, m.W1, m.W2, ns, g, dl, a.R, a.D1, alpha_sum, [&](int q, int j) { return u[q * M + j]; },
          [&](int q, int j) {
            S v = 0;
            for (int k = 0; k < M; ++k) v += m.W2[j * M + k] * u[q * M + k];
            return v;
          },
          [&](int q) { return r0 + q; }, [&](int q, int j, S x) { a.g_prev[(r0 + q) * M + j] = x; });
    __syncthreads();  // the next rows overwrite u, ph, sx, g, dl
  }
  block_sum(red, value);
  if (tid == 0) a.value_part[blockIdx.x] = red[0];
}

// Launcher, explicitly instantiated per kind in cuda/models/<kind>.cu (rollout/launch.cuh).
template <typename S, Kind KD>
void launch_vi_transitions(const ViTransitionArgs<S>& a, int blocks, int threads, std::size_t smem);

// The host side (vi/log_joint.cu), called by cuda/dispatch.cu after the checks on the current device:
// host pointers in and out, the same arguments and outputs as the CPU core's vi::log_joint_impl.
template <typename S>
vi::LogJoint vi_log_joint_run(const ModelSpec& spec, const Params<S>& p, const vi::Latent<S>& latent,
                              const vi::Observations<S>& obs, index_t B, index_t T, const S* z, const S* s,
                              const vi::Weights& w, const Grads<S>* grads, S* gz);

}  // namespace plrnn::cuda
