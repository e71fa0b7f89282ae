// A step's contribution to the training loss, shared by the time loops (rollout/bptt.h,
// rollout/lane_bptt.h) so that both round it the same way.
#pragma once
#include <algorithm>

#include "core/eigen.h"
#include "core/row_packets.h"

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

// score_residuals of the identity observation's residuals E = Z[0:N] - X (times Mk with missing values),
// formed here from the state block's first N rows: with AVX-512 and N < kLanes a column at a time in a
// masked packet, so that no E block is written and read back (the step had just stored Z as packets,
// and the scalar reads of its rows and then of E stalled), the squares moved out of the packet by
// rowpk::lane; otherwise into the caller's E block [N, nb] and through score_residuals. The same
// operations in the same order either way: E = Z - X, E *= Mk, squares rounded on their own and added
// column by column, e = grad_scale E.
template <typename S>
double score_row_residuals(CRef<S> Z, CRef<S> X, const CMapSlice<S>* Mk, Mat<S>& E, S* e, S grad_scale) {
  const index_t N = X.rows(), nb = X.cols();
  const index_t ldz = Z.outerStride(), ldx = X.outerStride();
  const S *z = Z.data(), *x = X.data();
  auto minus = [](auto u, auto v) { return u - v; };
#if defined(EIGEN_VECTORIZE_AVX512)
  if (N < rowpk::kLanes<S>) {
    using namespace Eigen::internal;
    using P = rowpk::Packet<S>;
    const index_t ldm = Mk ? Mk->outerStride() : 0;
    const S* mk = Mk ? Mk->data() : nullptr;
    const P scale = pset1<P>(grad_scale);
    S sum = S(0);
    for (index_t c = 0; c < nb; ++c) {
      P r = minus(rowpk::load_first(z + c * ldz, N), rowpk::load_first(x + c * ldx, N));
      if (mk) r = pmul(r, rowpk::load_first(mk + c * ldm, N));
      if (e) rowpk::store_first(e + c * N, pmul(scale, r), N);
      const P sq = pmul(r, r);
      for (index_t k = 0; k < N; ++k) sum += rowpk::lane(sq, k);
    }
    return static_cast<double>(sum);
  }
#endif
  rowpk::short_columns<S>(N, nb, z, ldz, x, ldx, E.data(), E.outerStride(), minus);
  if (Mk) E.array() *= Mk->array();
  return score_residuals(E, e, grad_scale);
}

}  // namespace plrnn
