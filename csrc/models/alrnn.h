// Almost-linear RNN (Brenner et al. 2024): a standard PLRNN whose first M-P units are linear and
// whose last P units are rectified; W is a full matrix.
#pragma once
#include "models/w_phi_model.h"

namespace plrnn {

template <typename S>
struct PartialReluPhi {
  static constexpr bool kHasParams = false;
  PartialReluPhi(const ModelSpec& spec, const Params<S>&) : M(spec.dims.M), P(spec.dims.P) {}

  // fwd: Phi = [U_lin; relu(U_last P)]                      U, Phi [M, n]
  void apply(CRef<S> U, Ref<S> Phi) const {
    Phi.topRows(M - P) = U.topRows(M - P);
    Phi.bottomRows(P) = U.bottomRows(P).cwiseMax(S(0));
  }
  // grad: phi_i'(u) = 1 on the linear units, 1[u > 0] on the rectified ones
  S derivative(S u, index_t i) const { return (i < M - P || u > S(0)) ? S(1) : S(0); }
  void param_grads(CRef<S>, CRef<S>, GradBuffers<S>&) const {}

  index_t M, P;
};

template <typename S>
using ALRNN = WPhiModel<S, PartialReluPhi<S>>;

template <typename S> struct ModelFor<S, Kind::ALRNN> { using type = ALRNN<S>; };

}  // namespace plrnn
