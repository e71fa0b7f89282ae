// A step's contribution to the training loss, shared by the time loops (rollout/bptt.h,
// rollout/lane_bptt.h) so that both round it the same way.
#pragma once
#include <algorithm>
#include <type_traits>

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
// and the scalar reads of its rows and then of E stalled); otherwise through an E block and
// score_residuals. The same operations in the same order either way: E = Z - X, E *= Mk, squares
// rounded on their own and added column by column, e = grad_scale E.
template <typename S>
double score_row_residuals(CRef<S> Z, CRef<S> X, const CMapSlice<S>* Mk, S* e, S grad_scale) {
  const index_t N = X.rows();
#if defined(EIGEN_VECTORIZE_AVX512)
  using namespace Eigen::internal;
  const index_t nb = X.cols();
  using P = rowpk::Packet<S>;
  constexpr index_t L = rowpk::kLanes<S>;
  if (N < L) {
    const index_t ldz = Z.outerStride(), ldx = X.outerStride(), ldm = Mk ? Mk->outerStride() : 0;
    const S *z = Z.data(), *x = X.data(), *mk = Mk ? Mk->data() : nullptr;
    const P scale = pset1<P>(grad_scale);
    S sum = S(0);
    // lane(v, k): element k of a packet, moved down by a permutation (a store and scalar reloads of the
    // squares stalled on the store like the reads of E before)
    auto column = [&](auto load, auto store, auto lane) {
      for (index_t c = 0; c < nb; ++c) {
        P r = psub(load(z + c * ldz), load(x + c * ldx));
        if (mk) r = pmul(r, load(mk + c * ldm));
        if (e) store(e + c * N, pmul(scale, r));
        const P sq = pmul(r, r);
        for (index_t k = 0; k < N; ++k) sum += lane(sq, k);
      }
    };
    if constexpr (std::is_same_v<S, float>) {
      const auto m = static_cast<__mmask16>((1u << N) - 1u);
      column([m](const float* p) { return _mm512_maskz_loadu_ps(m, p); },
             [m](float* p, const P& v) { _mm512_mask_storeu_ps(p, m, v); },
             [](const P& v, index_t k) {
               return _mm512_cvtss_f32(_mm512_permutexvar_ps(_mm512_set1_epi32(static_cast<int>(k)), v));
             });
    } else {
      const auto m = static_cast<__mmask8>((1u << N) - 1u);
      column([m](const double* p) { return _mm512_maskz_loadu_pd(m, p); },
             [m](double* p, const P& v) { _mm512_mask_storeu_pd(p, m, v); },
             [](const P& v, index_t k) {
               return _mm512_cvtsd_f64(_mm512_permutexvar_pd(_mm512_set1_epi64(k), v));
             });
    }
    return static_cast<double>(sum);
  }
#endif
  Mat<S> E = Z.topRows(N) - X;
  if (Mk) E.array() *= Mk->array();
  return score_residuals(E, e, grad_scale);
}

}  // namespace plrnn
