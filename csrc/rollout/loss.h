// A step's contribution to the training loss, shared by the time loops (rollout/bptt.h,
// rollout/lane_bptt.h) so that both round it the same way.
#pragma once
#include <algorithm>

#include "core/eigen.h"

namespace plrnn {

// The squared error of a step's residuals E [N, nb] and, where e is not null, e [N, nb] = scale * E
// (the tape's block). The squares are rounded on their own (a loop of products into a buffer) and then
// added in column-major order in a second loop: no product is fused into the sum whatever the
// compiler makes of the loops, so the lane-resident loop (rollout/lane_bptt.h), which squares a lane
// block's rows as packets, gets the same bits. Plain loops: E has a few rows (N = 3 in the shipped
// defaults), where Eigen's per-column work would cost more than the arithmetic.
template <typename S>
double score_residuals(const Mat<S>& E, S* e, S grad_scale) {
  const index_t n = E.size();
  const S* r = E.data();
  constexpr index_t kBlock = 64;
  S sq[kBlock];
  S sum = S(0);
  for (index_t k0 = 0; k0 < n; k0 += kBlock) {
    const index_t m = std::min(kBlock, n - k0);
    for (index_t k = 0; k < m; ++k) sq[k] = r[k0 + k] * r[k0 + k];
    for (index_t k = 0; k < m; ++k) sum += sq[k];
  }
  if (e)
    for (index_t k = 0; k < n; ++k) e[k] = grad_scale * r[k];
  return static_cast<double>(sum);
}

}  // namespace plrnn
