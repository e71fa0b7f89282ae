// The plain structs shared by every path (CPU core, CUDA kernels, bindings): sizes, configuration
// and raw parameter pointers. No Eigen, no Python here, so CUDA code can include it as is.
// All arrays are row-major and contiguous, shapes as in docs/model.md.
#pragma once
#include <cstdint>

#include "kinds.h"

namespace plrnn {

using index_t = std::int64_t;

// Values in the order of the list in kinds.h (Standard = 0, ...), formulas there.
#define PLRNN_KIND_ENUMERATOR(k, name, clipped, family, zero_diag_W) k,
enum class Kind : int { PLRNN_KINDS(PLRNN_KIND_ENUMERATOR) };
#undef PLRNN_KIND_ENUMERATOR

// The shape of a kind's step (kinds.h): W phi(z), W phi(z) with the dendritic bases, W1 act(W2 z).
enum class Family : int { WPhi = 0, Dendritic = 1, Shallow = 2 };

// A kind's entry in kinds.h. constexpr: usable in device code and in `if constexpr`.
struct KindTraits {
  Family family;
  bool clipped;
  bool zero_diag_W;
};

constexpr KindTraits kind_traits(Kind k) {
  switch (k) {
#define PLRNN_KIND_TRAITS(k, name, clipped, family, zero_diag_W) \
    case Kind::k: return KindTraits{Family::family, clipped, zero_diag_W};
    PLRNN_KINDS(PLRNN_KIND_TRAITS)
#undef PLRNN_KIND_TRAITS
  }
  return KindTraits{Family::WPhi, false, false};  // not reached: every enumerator has its case
}

// The family predicates every path uses (parameters: core/param_layout.h; the kernels' branches).
constexpr bool is_shallow(Kind k) { return kind_traits(k).family == Family::Shallow; }
constexpr bool is_dendritic(Kind k) { return kind_traits(k).family == Family::Dendritic; }
constexpr bool has_W(Kind k) { return !is_shallow(k); }
constexpr bool is_clipped(Kind k) { return kind_traits(k).clipped; }
constexpr bool zero_diag_W(Kind k) { return kind_traits(k).zero_diag_W; }

enum class Forcing : int { None = 0, Sparse = 1, Generalized = 2 };
// None: no observation model (the supervised path, csrc/rollout/supervised.h, reads out with its
// own linear readout instead); such a spec has N = 0 and no B or L.
enum class Obs : int { Identity = 0, Linear = 1, None = 2 };

struct Dims {
  index_t M = 0;   // latent units
  index_t N = 0;   // observed dimensions
  index_t K = 0;   // external inputs (may be 0)
  index_t H = 0;   // hidden width (shallow)
  index_t Bb = 0;  // number of bases (dendritic)
  index_t P = 0;   // rectified units (alrnn)
};

struct ModelSpec {
  Kind kind = Kind::Standard;
  Obs obs = Obs::Identity;
  Dims dims;
};

// Rough flop count of one step of nb sequences (the work unit of core/interrupt.h).
inline double step_work(const ModelSpec& spec, index_t nb) {
  const Dims& d = spec.dims;
  return 2.0 * static_cast<double>(nb) * static_cast<double>(d.M) *
         static_cast<double>(d.M + 2 * d.H + d.Bb + d.K + d.N + 1);
}

struct ForcingSpec {
  Forcing mode = Forcing::None;
  index_t tau = 1;     // sparse: interval in steps (>= 1)
  double alpha = 0.0;  // generalized: weight in [0, 1]
};

// Parameters (read) or gradients (written) of one model: a pointer per named array, nullptr where
// the kind or observation model has no such array.
template <typename T>
struct ParamSet {
  T* A = nullptr;      // [M]
  T* W = nullptr;      // [M, M]       standard, alrnn, dendritic
  T* h = nullptr;      // [M]          standard, alrnn, dendritic
  T* alpha = nullptr;  // [Bb]         dendritic
  T* theta = nullptr;  // [M, Bb]      dendritic
  T* W1 = nullptr;     // [M, H]       shallow
  T* W2 = nullptr;     // [H, M]       shallow
  T* h1 = nullptr;     // [M]          shallow
  T* h2 = nullptr;     // [H]          shallow
  T* C = nullptr;      // [M, K]
  T* B = nullptr;      // [N, M]       linear observation
  T* L = nullptr;      // [M-N, N] identity obs, [M, N] linear obs
};

template <typename S>
using Params = ParamSet<const S>;
template <typename S>
using Grads = ParamSet<S>;

// One batch of sequences, time-major per sequence: x[b, t, :] at x + (b*T + t)*N.
template <typename S>
struct Batch {
  index_t B = 0, T = 0;
  const S* x = nullptr;     // [B, T, N]   data (rollout/BPTT)
  const S* s = nullptr;     // [B, T, K]   external inputs, nullptr when K == 0
  const S* Binv = nullptr;  // [M, N]      pseudo-inverse of B (linear obs with forcing)
  const S* mask = nullptr;  // [B, T, N]   1 observed / 0 missing; nullptr: every entry observed.
                            //             Missing entries are not scored and not used as teacher
                            //             signals (docs/model.md, "Missing values"); CPU core only.
  S* xhat = nullptr;        // [B, T, N]   out: pre-forcing predictions (optional)
  S* z = nullptr;           // [B, T, M]   out: pre-forcing latent states (optional)
  // Optional (CPU core only): fill(fill_ctx, b0, b1) writes x and s of sequences [b0, b1) before they
  // are read. The core calls it once per chunk of the batch (core/thread_pool.h, batch_chunks), on the
  // thread that runs the chunk, so that a trainer's gather of its windows runs in parallel, into the
  // cache of the core that reads them (training/train_step.cpp). mask must be filled beforehand.
  void (*fill)(void* ctx, index_t b0, index_t b1) = nullptr;
  void* fill_ctx = nullptr;
};

// Sum of squared errors over the scored entries and the loss = sse / scored, where scored is the
// number of observed entries at t >= 1 (B (T-1) N without a mask).
struct LossResult {
  double sse = 0.0;
  double loss = 0.0;
  double scored = 0.0;
};

// ---- supervised path (csrc/rollout/supervised.h) ---------------------------------------------
enum class SupLoss : int { MSE = 0, CrossEntropy = 1 };

// The linear readout y_t = B z_t + b of a supervised model (O outputs or classes), or its gradient.
template <typename T>
struct ReadoutSet {
  index_t O = 0;
  T* B = nullptr;  // [O, M]
  T* b = nullptr;  // [O]
};

// One batch of input sequences with targets at the scored steps: z_{-1} = z0 (zeros when null),
// z_t = F(z_{t-1}, s_t) for t = 0 .. T-1, y_t = B z_t + b, scored where mask[b, t] != 0.
template <typename S>
struct SupervisedBatch {
  index_t B = 0, T = 0;
  const S* s = nullptr;                 // [B, T, K]   inputs, nullptr when K == 0
  const S* z0 = nullptr;                // [B, M]      initial state, nullptr for zeros
  const S* mask = nullptr;              // [B, T]      weights >= 0 of the scored steps
  const S* target = nullptr;            // [B, T, O]   MSE targets
  const std::int64_t* labels = nullptr; // [B, T]      cross-entropy class indices in [0, O)
  S* y = nullptr;                       // [B, T, O]   out: readout (optional)
  S* z = nullptr;                       // [B, T, M]   out: latent states (optional)
};

// Weighted loss: MSE sum_{b,t} w_bt |y_bt - target_bt|^2 / (O sum w), or cross-entropy
// sum_{b,t} w_bt (logsumexp(y_bt) - y_bt[label]) / sum w.
struct SupervisedLoss {
  double loss = 0.0;
  double weight = 0.0;  // sum of the mask
};

}  // namespace plrnn
