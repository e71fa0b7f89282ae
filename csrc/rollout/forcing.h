// Teacher-forcing schedules: the weight a(t') with which the state at time t' is pulled towards
// the data before the next step (docs/model.md). Template parameters of the rollout, so the
// no-forcing path carries no forcing code at all.
#pragma once
#include <vector>

#include "core/types.h"

namespace plrnn {

struct NoForcing {
  static constexpr Forcing kMode = Forcing::None;
  explicit NoForcing(const ForcingSpec&) {}
  double weight(index_t) const { return 0.0; }
};

// Sparse teacher forcing: replace the observed part every tau steps.
struct SparseForcing {
  static constexpr Forcing kMode = Forcing::Sparse;
  explicit SparseForcing(const ForcingSpec& f) : tau(f.tau) {}
  double weight(index_t t) const { return (t >= 1 && t % tau == 0) ? 1.0 : 0.0; }
  index_t tau;
};

// Generalised teacher forcing: mix with weight alpha at every step after the first.
struct GeneralizedForcing {
  static constexpr Forcing kMode = Forcing::Generalized;
  explicit GeneralizedForcing(const ForcingSpec& f) : alpha(f.alpha) {}
  double weight(index_t t) const { return t >= 1 ? alpha : 0.0; }
  double alpha;
};

// The weights a(0), ..., a(T-1) of a rule as S, evaluated once per call: the loops of the small
// models would otherwise repeat the sparse rule's integer division twice per step.
// (The sparse rule's steps t = tau, 2 tau, ... are written directly: its integer division at every t
// took 2.5 us of a 300 us training step, serial work before the step's threads start.)
template <typename S, class Rule>
std::vector<S> forcing_weights(const Rule& rule, index_t T) {
  if constexpr (Rule::kMode == Forcing::Sparse) {
    std::vector<S> a(static_cast<size_t>(T), S(0));
    for (index_t t = rule.tau; t < T; t += rule.tau) a[t] = static_cast<S>(rule.weight(t));
    return a;
  } else {
    std::vector<S> a(static_cast<size_t>(T));
    for (index_t t = 0; t < T; ++t) a[t] = static_cast<S>(rule.weight(t));
    return a;
  }
}

}  // namespace plrnn
