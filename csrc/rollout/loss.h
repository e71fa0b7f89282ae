// A step's contribution to the training loss, shared by the time loops (rollout/bptt.h,
// rollout/lane_bptt.h) so that both round it the same way.
#pragma once
#include "core/eigen.h"

namespace plrnn {

// The squared error of a step's residuals E [N, nb] and, where e is not null, e [N, nb] = scale * E
// (the tape's block). One pass in plain loops: E has a few rows (N = 3 in the shipped defaults),
// where Eigen's per-column work would cost more than the arithmetic.
template <typename S>
double score_residuals(const Mat<S>& E, S* e, S grad_scale) {
  const index_t n = E.size();
  const S* r = E.data();
  S sum = S(0);
  for (index_t k = 0; k < n; ++k) sum += r[k] * r[k];
  if (e)
    for (index_t k = 0; k < n; ++k) e[k] = grad_scale * r[k];
  return static_cast<double>(sum);
}

}  // namespace plrnn
