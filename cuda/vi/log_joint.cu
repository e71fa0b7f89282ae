// The host side of the log-joint on the GPU (vi/log_joint.cuh has the plan) and its kind-independent
// kernels: observations, the prior of z_0, the assembly of d log p / d z and the final sums. The kind's
// transition kernel is instantiated in cuda/models/<kind>.cu and reached through the kind dispatch shared
// with the CPU core (core/kind_dispatch.h). The CPU version is csrc/vi/log_joint.h.
#include "vi/log_joint.cuh"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>

#include "core/cuda_check.cuh"
#include "core/device_buffer.cuh"
#include "core/errors.h"
#include "core/kind_dispatch.h"
#include "core/param_layout.h"
#include "rollout/engine.cuh"
#include "rollout/param_grads.cuh"

namespace plrnn::cuda {

namespace {

constexpr long long kSlabRows = 64;  // transition rows per block
constexpr long long kSlabCols = 64;  // (b, t) columns per block of the observation kernel
constexpr int kObsThreads = 128;
constexpr int kPriorThreads = 256;

// A Gaussian (or fMRI) channel on the device; outputs [B T, N] per column.
template <typename S>
struct DevGaussian {
  int N = 0, R = 0, taps = 0;  // taps > 0: fMRI
  const S *Bm = nullptr, *J = nullptr, *log_sigma = nullptr, *x = nullptr, *mask = nullptr, *r = nullptr,
          *hrf = nullptr;
  S* Zc = nullptr;  // fMRI: [B T, M] the HRF-convolved states (0 where t < tau)
  S* E = nullptr;   // [B T, N] d value / d mean = w_obs W e / sigma^2
  S* L = nullptr;   // [B T, N] d value / d log_sigma per entry
};

template <typename S>
struct ViObsArgs {
  long long B = 0, T = 0;
  int M = 0;
  S floor = 0, wo = 0;
  const S* z = nullptr;
  DevGaussian<S> ch[2];  // gaussian, fmri
  // Poisson
  int NP = 0;
  const S *G = nullptr, *g = nullptr, *q = nullptr, *qmask = nullptr;
  S* Ep = nullptr;  // [B T, NP] d value / d eta
  // categorical
  int classes = 0;
  const S* beta = nullptr;
  const std::int64_t* c = nullptr;
  S* Ec = nullptr;  // [B T, classes] logits, then d value / d logits
  // d log p / d z parts
  S* g_obs = nullptr;   // [B T, M] channels read at t (nullptr: no gradient)
  S* g_fzc = nullptr;   // [B T, M] d value / d Zc of the fMRI channel
  double* value_part = nullptr;  // [gridDim.x, 4]: gaussian, fmri, poisson, categorical
};

// Observations: block = columns bt in [blockIdx.x * kSlabCols, ...), threads over (column, entry).
template <typename S>
__global__ void vi_obs_kernel(const ViObsArgs<S> a) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  double* red = reinterpret_cast<double*>(smem_raw);
  const int tid = threadIdx.x, nt = blockDim.x, M = a.M;
  const long long n_bt = a.B * a.T, c0 = blockIdx.x * kSlabCols;
  const int n = static_cast<int>(n_bt - c0 < kSlabCols ? n_bt - c0 : kSlabCols);
  double v[4] = {0.0, 0.0, 0.0, 0.0};

  // (1) fMRI: Zc_t = sum_j hrf_j z_{t-j} for t >= tau (0 before)
  const DevGaussian<S>& fm = a.ch[1];
  if (fm.N > 0) {
    for (int it = tid; it < n * M; it += nt) {
      const int col = it / M, k = it - col * M;
      const long long bt = c0 + col, t = bt % a.T;
      S acc = 0;
      if (t >= fm.taps - 1)
        for (int j = 0; j < fm.taps; ++j) acc += fm.hrf[j] * a.z[(bt - j) * M + k];
      fm.Zc[bt * M + k] = acc;
    }
    __syncthreads();
  }
  // (2) Gaussian channels: e = x - B zc - J r, masked Gaussian term
  for (int kc = 0; kc < 2; ++kc) {
    const DevGaussian<S>& ch = a.ch[kc];
    const int N = ch.N, R = ch.R;
    for (int it = tid; it < n * N; it += nt) {
      const int col = it / N, i = it - col * N;
      const long long bt = c0 + col, t = bt % a.T;
      S w = ch.mask ? ch.mask[bt * N + i] : S(1);
      if (ch.taps > 0 && t < ch.taps - 1) w = S(0);  // the first tau steps are not scored
      const S* zc = ch.taps > 0 ? ch.Zc + bt * M : a.z + bt * M;
      S pred = 0;
      for (int k = 0; k < M; ++k) pred += ch.Bm[i * M + k] * zc[k];
      S e = ch.x[bt * N + i] - pred;
      if (R > 0) {
        S jr = 0;
        for (int k = 0; k < R; ++k) jr += ch.J[i * R + k] * ch.r[bt * R + k];
        e -= jr;
      }
      if (w == S(0)) e = S(0);
      const S sigma = a.floor + vi_exp(ch.log_sigma[i]);
      const S u = e / sigma;
      v[kc] += static_cast<double>(w) *
               (-0.5 * kViLog2Pi - log(static_cast<double>(sigma)) - 0.5 * double(u) * double(u));
      if (a.g_obs) {
        ch.L[bt * N + i] = a.wo * w * (u * u - S(1)) * ((sigma - a.floor) / sigma);
        ch.E[bt * N + i] = a.wo * w * e / (sigma * sigma);
      }
    }
  }
  // (3) Poisson: eta = G z + g, log p = q eta - exp(eta) - lgamma(q + 1) where observed
  for (int it = tid; it < n * a.NP; it += nt) {
    const int col = it / a.NP, i = it - col * a.NP;
    const long long bt = c0 + col;
    S eta = 0;
    for (int k = 0; k < M; ++k) eta += a.G[i * M + k] * a.z[bt * M + k];
    eta += a.g[i];
    const bool seen = !a.qmask || a.qmask[bt * a.NP + i] != S(0);
    const S rate = vi_exp(eta);
    const S qv = a.q[bt * a.NP + i];
    if (seen) {
      const double qd = static_cast<double>(qv);
      v[2] += qd * static_cast<double>(eta) - static_cast<double>(rate) - lgamma(qd + 1.0);
    }
    if (a.g_obs) a.Ep[bt * a.NP + i] = seen ? a.wo * (qv - rate) : S(0);
  }
  // (4) categorical: logits beta_full z (the last class's row 0), log softmax at the label
  const int Kc = a.classes;
  if (Kc > 0) {
    for (int it = tid; it < n * Kc; it += nt) {
      const int col = it / Kc, k = it - col * Kc;
      const long long bt = c0 + col;
      S acc = 0;
      if (k < Kc - 1)
        for (int j = 0; j < M; ++j) acc += a.beta[k * M + j] * a.z[bt * M + j];
      a.Ec[bt * Kc + k] = acc;
    }
    __syncthreads();
    for (int col = tid; col < n; col += nt) {
      const long long bt = c0 + col;
      S* lg = a.Ec + bt * Kc;
      const std::int64_t label = a.c[bt];
      if (label < 0) {
        for (int k = 0; k < Kc; ++k) lg[k] = S(0);
        continue;
      }
      S mx = lg[0];
      for (int k = 1; k < Kc; ++k) mx = lg[k] > mx ? lg[k] : mx;
      double sum = 0.0;
      for (int k = 0; k < Kc; ++k) sum += exp(static_cast<double>(lg[k] - mx));
      const double lse = static_cast<double>(mx) + log(sum);
      v[3] += static_cast<double>(lg[label]) - lse;
      for (int k = 0; k < Kc; ++k)  // d value / d logits = onehot - softmax
        lg[k] = a.wo * ((k == label ? S(1) : S(0)) - static_cast<S>(exp(static_cast<double>(lg[k]) - lse)));
    }
  }
  __syncthreads();
  // (5) d log p / d z of the channels read at t, and d / d Zc of the fMRI channel
  if (a.g_obs) {
    const DevGaussian<S>& ga = a.ch[0];
    for (int it = tid; it < n * M; it += nt) {
      const int col = it / M, k = it - col * M;
      const long long bt = c0 + col;
      S acc = 0;
      if (ga.N > 0) {
        S s = 0;
        for (int i = 0; i < ga.N; ++i) s += ga.Bm[i * M + k] * ga.E[bt * ga.N + i];
        acc += s;
      }
      if (a.NP > 0) {
        S s = 0;
        for (int i = 0; i < a.NP; ++i) s += a.G[i * M + k] * a.Ep[bt * a.NP + i];
        acc += s;
      }
      if (Kc > 0) {
        S s = 0;
        for (int j = 0; j < Kc - 1; ++j) s += a.beta[j * M + k] * a.Ec[bt * Kc + j];
        acc += s;
      }
      a.g_obs[bt * M + k] = acc;
      if (fm.N > 0) {
        S s = 0;
        for (int i = 0; i < fm.N; ++i) s += fm.Bm[i * M + k] * fm.E[bt * fm.N + i];
        a.g_fzc[bt * M + k] = s;
      }
    }
  }
  for (int k = 0; k < 4; ++k) {
    block_sum(red, v[k]);
    if (tid == 0) a.value_part[blockIdx.x * 4 + k] = red[0];
    __syncthreads();  // red[0] read before the next sum overwrites it
  }
}

// The prior of z_0 (one block): value, E0 = w_lat e0 / sigma0^2 [B, M] and, with gradients, g_mu0,
// g_log_sigma0 and the prior's part of g_C (added to the transitions' part).
template <typename S>
__global__ void vi_prior_kernel(long long B, long long T, int M, int K, const S* z, const S* s, const S* mu0,
                                const S* log_sigma0, const S* C, S floor, S wl, S* E0, S* L0, S* g_mu0,
                                S* g_log_sigma0, S* gC, double* value) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  double* red = reinterpret_cast<double*>(smem_raw);
  const int tid = threadIdx.x, nt = blockDim.x;
  double v = 0.0;
  for (long long it = tid; it < B * M; it += nt) {
    const long long b = it / M;
    const int i = static_cast<int>(it - b * M);
    S e = z[b * T * M + i] - mu0[i];
    if (K > 0) {
      S cs = 0;
      for (int k = 0; k < K; ++k) cs += C[i * K + k] * s[b * T * K + k];
      e -= cs;
    }
    const S sigma = floor + vi_exp(log_sigma0[i]);
    const S u = e / sigma;
    v += -0.5 * kViLog2Pi - log(static_cast<double>(sigma)) - 0.5 * double(u) * double(u);
    E0[b * M + i] = wl * e / (sigma * sigma);
    L0[b * M + i] = wl * (u * u - S(1)) * ((sigma - floor) / sigma);
  }
  __syncthreads();
  if (g_mu0) {
    for (int i = tid; i < M; i += nt) {
      S gm = 0, gl = 0;
      for (long long b = 0; b < B; ++b) {
        gm += E0[b * M + i];
        gl += L0[b * M + i];
      }
      g_mu0[i] = gm;
      g_log_sigma0[i] = gl;
    }
    for (int it = tid; it < M * K; it += nt) {
      const int i = it / K, k = it - i * K;
      S acc = 0;
      for (long long b = 0; b < B; ++b) acc += E0[b * M + i] * s[b * T * K + k];
      gC[it] += acc;
    }
  }
  block_sum(red, v);
  if (tid == 0) *value = red[0];
}

// gz[b, t] = prior (t = 0) + transition into t + transition out of t + channels at t + the fMRI channel
// at t + j for every tap j (a gather: each entry written by one thread).
template <typename S>
__global__ void vi_assemble_kernel(long long B, long long T, int M, const S* g_obs, const S* E0, const S* g_next,
                                   const S* g_prev, const S* hrf, int taps, const S* g_fzc, S* gz) {
  const long long n = B * T * M;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long bt = e / M, b = bt / T, t = bt % T;
    const int k = static_cast<int>(e - bt * M);
    S g = g_obs[e];
    if (t == 0) g -= E0[b * M + k];
    if (t >= 1) g += g_next[(b * (T - 1) + t - 1) * M + k];
    if (t + 1 < T) g += g_prev[(b * (T - 1) + t) * M + k];
    for (int j = 0; j < taps && t + j < T; ++j) g += hrf[j] * g_fzc[(bt + j) * M + k];
    gz[e] = g;
  }
}

// result = {latent, gaussian, fmri, poisson, categorical}: the block partials summed in block order.
__global__ void vi_finish_kernel(const double* tr_part, int tr_blocks, const double* prior, const double* obs_part,
                                 int obs_blocks, double* result) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    double lat = 0.0;
    for (int i = 0; i < tr_blocks; ++i) lat += tr_part[i];
    result[0] = lat + *prior;
    for (int k = 0; k < 4; ++k) {
      double s = 0.0;
      for (int i = 0; i < obs_blocks; ++i) s += obs_part[i * 4 + k];
      result[1 + k] = s;
    }
  }
}

// Row r of a [rows, ld] device array, as the reductions of param_grads.cuh read it.
template <typename S>
RowView<S> rows_of(const S* p, long long ld) {
  return tape_view<S>(p, ld);
}

// A host array on the device (nullptr for n == 0 or a null source).
template <typename S>
const S* upload(DeviceBuffer<S>& buf, const S* host, std::size_t n) {
  if (!host || n == 0) return nullptr;
  buf.upload(host, n);
  return buf.data();
}

// Reserve n elements (nullptr for n == 0).
template <typename S>
S* reserve(DeviceBuffer<S>& buf, std::size_t n) {
  return n ? buf.reserve(n) : nullptr;
}

// A device result downloaded to a host pointer where the host wants it.
template <typename S>
void download(const DeviceBuffer<S>& buf, S* host, std::size_t n) {
  if (host && n) buf.download(host, n);
}

template <typename S>
struct ChannelBuffers {
  DeviceBuffer<S> Bm, J, log_sigma, x, mask, r, hrf, Zc, E, L, gB, gJ, gls;
};

}  // namespace

template <typename S>
vi::LogJoint vi_log_joint_run(const ModelSpec& spec, const Params<S>& hp, const vi::Latent<S>& lat,
                              const vi::Observations<S>& obs, index_t B_, index_t T_, const S* hz, const S* hs,
                              const vi::Weights& w, const Grads<S>* hg, S* hgz) {
  const Dims& d = spec.dims;
  const Kind kind = spec.kind;
  const bool shallow = is_shallow(kind);
  const long long B = B_, T = T_, rows = B * (T - 1), n_bt = B * T;
  const int M = int(d.M), K = int(d.K), H = int(d.H);
  const bool want_grad = hg != nullptr;
  const S floor = static_cast<S>(w.floor), wl = static_cast<S>(w.latent), wo = static_cast<S>(w.obs);
  int dev = 0, sms = 1;
  PLRNN_CUDA_CHECK(cudaGetDevice(&dev));
  PLRNN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  sms = std::max(sms, 1);

  // ---- upload ---------------------------------------------------------------------------------------
  DeviceParams<S> params(spec);
  params.upload(hp);
  const Params<S> p = params.const_pointers();
  DeviceBuffer<S> z_buf, s_buf, mu0_buf, ls0_buf, lsz_buf;
  const S* z = upload(z_buf, hz, std::size_t(n_bt * M));
  const S* s = upload(s_buf, K > 0 ? hs : nullptr, std::size_t(n_bt * K));
  const S* mu0 = upload(mu0_buf, lat.mu0, std::size_t(M));
  const S* ls0 = upload(ls0_buf, lat.log_sigma0, std::size_t(M));
  const S* lsz = upload(lsz_buf, lat.log_sigma_z, std::size_t(M));

  // ---- 1. transitions ------------------------------------------------------------------------------
  DeviceBuffer<S> U, Phi, V, G, R, D1, g_next, g_prev, Lz;
  DeviceBuffer<double> tr_part;
  int tr_blocks = 0;
  if (rows > 0) {
    ViTransitionArgs<S> a;
    RolloutArgs<S>& m = a.m;
    m.M = M, m.K = K, m.H = H, m.Bb = int(d.Bb), m.P = int(d.P), m.B = int(B), m.T = int(T);
    m.A = p.A, m.W = p.W, m.h = shallow ? p.h1 : p.h, m.alpha = p.alpha, m.theta = p.theta;
    m.W1 = p.W1, m.W2 = p.W2, m.h2 = p.h2;
    a.C = p.C, a.z = z, a.s = s, a.log_sigma_z = lsz, a.floor = floor, a.wl = wl, a.rows = rows;
    const std::size_t r = std::size_t(rows), F = std::size_t(shallow ? H : M);
    if (want_grad) {
      a.U = U.reserve(r * M);
      a.Phi = Phi.reserve(r * F);
      a.G = G.reserve(r * M);
      if (shallow) a.V = V.reserve(r * H);
      if (shallow) a.R = R.reserve(r * H);
      if (is_dendritic(kind)) a.R = R.reserve(r * M);
      if (shallow && is_clipped(kind)) a.D1 = D1.reserve(r * H);
      a.g_next = g_next.reserve(r * M);
      a.g_prev = g_prev.reserve(r * M);
      a.Lz = Lz.reserve(r * M);
    }
    // launch plan: kSlabRows rows per block (a function of the sizes only), nr rows at a time
    const int width = std::max(M, shallow ? H : M);
    int nr = static_cast<int>(std::clamp<long long>(256 / std::max(width, 1), 1, std::min<long long>(8, kSlabRows)));
    int threads = 32;
    std::size_t smem = 0;
    for (;; --nr) {
      threads = std::min(256, std::max(32, (nr * width + 31) / 32 * 32));
      smem = vi_transition_smem(shallow, nr, M, K, H, threads, sizeof(S));
      if (smem <= 48 * 1024) break;
      PLRNN_CHECK(nr > 1, "M: the per-step buffers of the log-joint's transition kernel (M=", M, ", hidden ", H,
                  ", K=", K, ") exceed 48 KiB of shared memory per block");
    }
    a.nr = nr;
    a.rows_per_block = kSlabRows;
    tr_blocks = static_cast<int>((rows + kSlabRows - 1) / kSlabRows);
    a.value_part = tr_part.reserve(std::size_t(tr_blocks));
    dispatch_kind(kind, [&](auto k) { launch_vi_transitions<S, decltype(k)::value>(a, tr_blocks, threads, smem); });
  }

  // ---- prior of z_0 ---------------------------------------------------------------------------------
  // (launched after the model's parameter gradients below, which overwrite g_C)

  // ---- 2. observations -----------------------------------------------------------------------------
  ViObsArgs<S> oa;
  oa.B = B, oa.T = T, oa.M = M, oa.floor = floor, oa.wo = wo, oa.z = z;
  ChannelBuffers<S> cb[2];
  const vi::GaussianChannel<S>* gch[2] = {&obs.gaussian, &obs.fmri};
  for (int k = 0; k < 2; ++k) {
    const vi::GaussianChannel<S>& h = *gch[k];
    DevGaussian<S>& c = oa.ch[k];
    if (h.N == 0) continue;
    const std::size_t N = std::size_t(h.N), Rn = std::size_t(h.R);
    c.N = int(h.N), c.R = int(h.R), c.taps = h.hrf ? int(h.taps) : 0;
    c.Bm = upload(cb[k].Bm, h.B, N * M);
    c.J = upload(cb[k].J, h.J, N * Rn);
    c.log_sigma = upload(cb[k].log_sigma, h.log_sigma, N);
    c.x = upload(cb[k].x, h.x, std::size_t(n_bt) * N);
    c.mask = upload(cb[k].mask, h.mask, std::size_t(n_bt) * N);
    c.r = upload(cb[k].r, Rn > 0 ? h.r : nullptr, std::size_t(n_bt) * Rn);
    if (h.hrf) {
      c.hrf = upload(cb[k].hrf, h.hrf, std::size_t(h.taps));
      c.Zc = cb[k].Zc.reserve(std::size_t(n_bt) * M);
    }
    c.E = cb[k].E.reserve(std::size_t(n_bt) * N);
    c.L = cb[k].L.reserve(std::size_t(n_bt) * N);
  }
  DeviceBuffer<S> G_p, g_p, q_p, qmask_p, Ep, beta_c, Ec, g_obs, g_fzc;
  DeviceBuffer<std::int64_t> c_c;
  if (obs.poisson.N > 0) {
    const std::size_t N = std::size_t(obs.poisson.N);
    oa.NP = int(obs.poisson.N);
    oa.G = upload(G_p, obs.poisson.G, N * M);
    oa.g = upload(g_p, obs.poisson.g, N);
    oa.q = upload(q_p, obs.poisson.q, std::size_t(n_bt) * N);
    oa.qmask = upload(qmask_p, obs.poisson.mask, std::size_t(n_bt) * N);
    oa.Ep = Ep.reserve(std::size_t(n_bt) * N);
  }
  if (obs.categorical.classes > 0) {
    const std::size_t Kc = std::size_t(obs.categorical.classes);
    oa.classes = int(Kc);
    oa.beta = upload(beta_c, obs.categorical.beta, (Kc - 1) * M);
    oa.c = upload(c_c, obs.categorical.c, std::size_t(n_bt));
    oa.Ec = Ec.reserve(std::size_t(n_bt) * Kc);
  }
  if (want_grad) {
    oa.g_obs = g_obs.reserve(std::size_t(n_bt) * M);
    if (obs.fmri.N > 0) oa.g_fzc = g_fzc.reserve(std::size_t(n_bt) * M);
  }
  const int obs_blocks = static_cast<int>((n_bt + kSlabCols - 1) / kSlabCols);
  DeviceBuffer<double> obs_part(std::size_t(obs_blocks) * 4);
  oa.value_part = obs_part.data();
  vi_obs_kernel<S><<<obs_blocks, kObsThreads, kObsThreads * sizeof(double)>>>(oa);
  PLRNN_CUDA_CHECK_LAUNCH("vi_obs_kernel");

  // ---- 3. gradients: the model's parameters from the transition tape, then the prior -------------
  std::unique_ptr<DeviceParams<S>> grads;
  ParamSet<S> dg;
  if (want_grad) {
    grads = std::make_unique<DeviceParams<S>>(spec);
    grads->zero();  // T == 1: no transitions, the model's gradients are zero (C: the prior's part only)
    dg = grads->pointers();
    if (rows > 0) {
      StepTape<S> tape;
      tape.U = U.data(), tape.Phi = Phi.data(), tape.V = V.data(), tape.G = G.data(), tape.R = R.data();
      tape.D1 = D1.data();
      Engine<S> engine(spec);
      engine.model_param_grads(p, tape, B, T, s, dg);
    }
  }
  DeviceBuffer<S> E0(std::size_t(B) * M), L0(std::size_t(B) * M), g_mu0, g_ls0;
  DeviceBuffer<double> prior_value(1);
  vi_prior_kernel<S><<<1, kPriorThreads, kPriorThreads * sizeof(double)>>>(
      B, T, M, K, z, s, mu0, ls0, p.C, floor, wl, E0.data(), L0.data(), want_grad ? g_mu0.reserve(M) : nullptr,
      want_grad ? g_ls0.reserve(M) : nullptr, want_grad ? dg.C : nullptr, prior_value.data());
  PLRNN_CUDA_CHECK_LAUNCH("vi_prior_kernel");

  DeviceBuffer<double> result(5);
  vi_finish_kernel<<<1, 1>>>(tr_part.data(), tr_blocks, prior_value.data(), obs_part.data(), obs_blocks,
                              result.data());
  PLRNN_CUDA_CHECK_LAUNCH("vi_finish_kernel");
  double r[5];
  result.download(r, 5);
  vi::LogJoint out;
  out.latent = r[0], out.gaussian = r[1], out.fmri = r[2], out.poisson = r[3], out.categorical = r[4];
  out.total = w.latent * out.latent + w.obs * (out.gaussian + out.fmri + out.poisson + out.categorical);
  if (!want_grad) return out;

  // the noise scales and the channels' parameters: fixed-order sums over rows / columns
  DeviceBuffer<S> part, g_lsz;
  if (rows > 0) {
    reduce_columns<S>(part, sms, ProductTerm<S>{rows_of(Lz.data(), M), rows_of(Lz.data(), M), false}, rows, M,
                      g_lsz.reserve(M));
  } else {
    g_lsz.zero(M);
  }
  for (int k = 0; k < 2; ++k) {
    const vi::GaussianChannel<S>& h = *gch[k];
    const DevGaussian<S>& c = oa.ch[k];
    if (h.N == 0) continue;
    const int N = c.N, Rn = c.R;
    const RowView<S> Ev = rows_of<S>(c.E, N);
    reduce_outer<S>(part, sms, Ev, rows_of<S>(c.taps > 0 ? c.Zc : z, M), n_bt, N, M,
                    cb[k].gB.reserve(std::size_t(N) * M), 0);
    if (Rn > 0)
      reduce_outer<S>(part, sms, Ev, rows_of<S>(c.r, Rn), n_bt, N, Rn, cb[k].gJ.reserve(std::size_t(N) * Rn), 0);
    reduce_columns<S>(part, sms, ProductTerm<S>{rows_of<S>(c.L, N), rows_of<S>(c.L, N), false}, n_bt, N,
                      cb[k].gls.reserve(N));
    download(cb[k].gB, h.gB, std::size_t(N) * M);
    download(cb[k].gJ, h.gJ, std::size_t(N) * Rn);
    download(cb[k].gls, h.g_log_sigma, std::size_t(N));
  }
  if (obs.poisson.N > 0) {
    const int N = oa.NP;
    DeviceBuffer<S> gG, gg;
    reduce_outer<S>(part, sms, rows_of<S>(oa.Ep, N), rows_of<S>(z, M), n_bt, N, M, gG.reserve(std::size_t(N) * M), 0);
    reduce_columns<S>(part, sms, ProductTerm<S>{rows_of<S>(oa.Ep, N), rows_of<S>(oa.Ep, N), false}, n_bt, N,
                      gg.reserve(N));
    download(gG, obs.poisson.gG, std::size_t(N) * M);
    download(gg, obs.poisson.gg, std::size_t(N));
  }
  if (obs.categorical.classes > 0) {
    const int Kc = oa.classes;
    DeviceBuffer<S> gBeta;
    reduce_outer<S>(part, sms, rows_of<S>(oa.Ec, Kc), rows_of<S>(z, M), n_bt, Kc - 1, M,
                    gBeta.reserve(std::size_t(Kc - 1) * M), 0);
    download(gBeta, obs.categorical.g_beta, std::size_t(Kc - 1) * M);
  }
  // d log p / d z
  DeviceBuffer<S> gz(std::size_t(n_bt) * M);
  vi_assemble_kernel<S><<<grid_for(n_bt * M, 256), 256>>>(
      B, T, M, oa.g_obs, E0.data(), g_next.data(), g_prev.data(), oa.ch[1].hrf, obs.fmri.N > 0 ? oa.ch[1].taps : 0,
      oa.g_fzc, gz.data());
  PLRNN_CUDA_CHECK_LAUNCH("vi_assemble_kernel");
  gz.download(hgz, std::size_t(n_bt) * M);
  grads->download(*hg);
  download(g_mu0, lat.g_mu0, std::size_t(M));
  download(g_ls0, lat.g_log_sigma0, std::size_t(M));
  download(g_lsz, lat.g_log_sigma_z, std::size_t(M));
  return out;
}

template vi::LogJoint vi_log_joint_run<float>(const ModelSpec&, const Params<float>&, const vi::Latent<float>&,
                                              const vi::Observations<float>&, index_t, index_t, const float*,
                                              const float*, const vi::Weights&, const Grads<float>*, float*);
template vi::LogJoint vi_log_joint_run<double>(const ModelSpec&, const Params<double>&, const vi::Latent<double>&,
                                               const vi::Observations<double>&, index_t, index_t, const double*,
                                               const double*, const vi::Weights&, const Grads<double>*, double*);

}  // namespace plrnn::cuda
