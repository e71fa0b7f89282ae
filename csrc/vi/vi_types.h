// Plain structs of the probabilistic PLRNN (docs/probabilistic.md): the latent model's noise
// parameters and the observation channels, each with its parameters, data, mask and gradient
// outputs. No Eigen, no Python (shared by the CPU core, the CUDA kernels and the bindings).
// All arrays are row-major and contiguous; data are [B, T, ...] like z.
#pragma once
#include <cstdint>

#include "core/types.h"

namespace plrnn::vi {

// z_0 ~ N(mu0 + C s_0, diag(sigma0^2)),  z_t ~ N(F(z_{t-1}, s_t), diag(sigma_z^2)),
// sigma = floor + exp(log_sigma). Gradient pointers may be null (then not written).
template <typename S>
struct Latent {
  const S* mu0 = nullptr;          // [M]
  const S* log_sigma0 = nullptr;   // [M]
  const S* log_sigma_z = nullptr;  // [M]
  S* g_mu0 = nullptr;
  S* g_log_sigma0 = nullptr;
  S* g_log_sigma_z = nullptr;
};

// x_t ~ N(B zc_t + J r_t, diag(sigma^2)) with zc_t = z_t (Gaussian) or sum_{j<taps} hrf_j z_{t-j}
// (fMRI: taps = tau + 1, steps t < tau not scored). N == 0: the channel is absent.
template <typename S>
struct GaussianChannel {
  index_t N = 0, R = 0;
  const S* B = nullptr;          // [N, M]
  const S* J = nullptr;          // [N, R]
  const S* log_sigma = nullptr;  // [N]
  const S* x = nullptr;          // [B, T, N] (any value where mask is 0)
  const S* mask = nullptr;       // [B, T, N] 1 observed / 0 missing; nullptr: all observed
  const S* r = nullptr;          // [B, T, R] nuisance regressors (nullptr when R == 0)
  const S* hrf = nullptr;        // [taps] fMRI kernel; nullptr: plain Gaussian
  index_t taps = 0;
  S* gB = nullptr;
  S* gJ = nullptr;
  S* g_log_sigma = nullptr;
};

// q_t ~ Poisson(exp(G z_t + g)). N == 0: absent.
template <typename S>
struct PoissonChannel {
  index_t N = 0;
  const S* G = nullptr;     // [N, M]
  const S* g = nullptr;     // [N]
  const S* q = nullptr;     // [B, T, N] counts >= 0 (any value where mask is 0)
  const S* mask = nullptr;  // [B, T, N] or nullptr
  S* gG = nullptr;
  S* gg = nullptr;
};

// P(c_t = k) = softmax(beta_full z_t)_k with beta_full = [beta; 0] (the last class is the
// reference). classes == 0: absent; c < 0: missing.
template <typename S>
struct CategoricalChannel {
  index_t classes = 0;
  const S* beta = nullptr;         // [classes - 1, M]
  const std::int64_t* c = nullptr; // [B, T]
  S* g_beta = nullptr;
};

template <typename S>
struct Observations {
  GaussianChannel<S> gaussian, fmri;
  PoissonChannel<S> poisson;
  CategoricalChannel<S> categorical;
};

// The weighted total w_latent * latent + w_obs * (gaussian + fmri + poisson + categorical) and
// its unweighted parts (log densities, natural log).
struct LogJoint {
  double total = 0.0, latent = 0.0, gaussian = 0.0, fmri = 0.0, poisson = 0.0, categorical = 0.0;
};

struct Weights {
  double latent = 1.0, obs = 1.0;
  double floor = 1e-3;  // noise floor of every sigma
};

}  // namespace plrnn::vi
