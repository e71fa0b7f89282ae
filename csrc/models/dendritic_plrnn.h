// Dendritic PLRNN (basis expansion, Brenner et al. 2022):
//   phi_i(u) = sum_b alpha_b relu(u_i - theta_ib)                 (Clipped = false)
//   phi_i(u) = sum_b alpha_b (relu(u_i - theta_ib) - relu(u_i))   (Clipped = true, bounded orbits)
// W has a zero diagonal as in the standard PLRNN.
#pragma once
#include <algorithm>

#include "models/w_phi_model.h"

namespace plrnn {

template <typename S, bool Clipped>
struct DendriticPhi {
  static constexpr bool kHasParams = true;
  static constexpr bool kTapePhi = true;  // phi costs Bb terms per entry: kept for the gradient of W
  DendriticPhi(const ModelSpec& spec, const Params<S>& p)
      : M(spec.dims.M), Bb(spec.dims.Bb), alpha(p.alpha, Bb), theta(p.theta, M, Bb), alpha_sum(ordered_sum(p.alpha, Bb)) {}

  // fwd: Phi_ic = sum_b alpha_b relu(U_ic - theta_ib) [- alpha_sum relu(U_ic)]     U, Phi [M, n]
  void apply(CRef<S> U, Ref<S> Phi) const {
    for (index_t c = 0; c < U.cols(); ++c)
      for (index_t i = 0; i < M; ++i) {
        const S u = U(i, c);
        S acc = 0;
        for (index_t b = 0; b < Bb; ++b) acc += alpha[b] * std::max(u - theta(i, b), S(0));
        if constexpr (Clipped) acc -= alpha_sum * std::max(u, S(0));
        Phi(i, c) = acc;
      }
  }
  // grad: phi_i'(u) r, phi_i'(u) = sum_b alpha_b 1[u > theta_ib] [- alpha_sum 1[u > 0]] (one row at a time)
  static constexpr bool kPacketDerivative = false;
  S times_derivative(S u, S r, index_t i) const {
    S d = 0;
    for (index_t b = 0; b < Bb; ++b) d += u > theta(i, b) ? alpha[b] : S(0);
    if constexpr (Clipped) d -= u > S(0) ? alpha_sum : S(0);
    return d * r;
  }
  // grad of alpha and theta from R_all = W^T G of every step           U_all, R_all [M, cols]
  //   d alpha_b   = sum_ic R_ic (relu(U_ic - theta_ib) [- relu(U_ic)])
  //   d theta_ib  = -alpha_b sum_c R_ic 1[U_ic > theta_ib]
  void param_grads(CRef<S> U_all, CRef<S> R_all, GradBuffers<S>& g) const {
    auto g_alpha = g.vec(palpha);
    auto g_theta = g.mat(ptheta);
    for (index_t c = 0; c < U_all.cols(); ++c)
      for (index_t i = 0; i < M; ++i) {
        const S u = U_all(i, c), r = R_all(i, c);
        const S clip = Clipped ? std::max(u, S(0)) : S(0);
        for (index_t b = 0; b < Bb; ++b) {
          const S a = u - theta(i, b);
          g_alpha[b] += r * (std::max(a, S(0)) - clip);
          if (a > S(0)) g_theta(i, b) -= alpha[b] * r;
        }
      }
  }

  index_t M, Bb;
  CMapVec<S> alpha;
  CMapRow<S> theta;
  S alpha_sum;
};

template <typename S>
using DendriticPLRNN = WPhiModel<S, DendriticPhi<S, false>>;
template <typename S>
using ClippedDendriticPLRNN = WPhiModel<S, DendriticPhi<S, true>>;

template <typename S> struct ModelFor<S, Kind::Dendritic> { using type = DendriticPLRNN<S>; };
template <typename S> struct ModelFor<S, Kind::DendriticClipped> { using type = ClippedDendriticPLRNN<S>; };

}  // namespace plrnn
