// Almost-linear RNN (Brenner et al. 2024): a standard PLRNN whose first M-P units are linear and
// whose last P units are rectified; W is a full matrix.
#pragma once
#include "models/w_phi_model.h"

namespace plrnn {

template <typename S>
struct PartialReluPhi {
  static constexpr bool kHasParams = false;
  static constexpr bool kZeroDiagW = false;
  PartialReluPhi(const ModelSpec& spec, const Params<S>&) : M(spec.dims.M), P(spec.dims.P) {}

  // fwd: Phi = [U_lin; relu(U_last P)]                      U, Phi [M, n]
  void apply(CRef<S> U, Ref<S> Phi) const {
    Phi.topRows(M - P) = U.topRows(M - P);
    Phi.bottomRows(P) = U.bottomRows(P).cwiseMax(S(0));
  }
  // grad: R <- phi'(U) .* R (1 on the linear units)         U, R [M, n]
  void vjp(CRef<S> U, Ref<S> R) const {
    R.bottomRows(P).array() = (U.bottomRows(P).array() > S(0)).select(R.bottomRows(P).array(), S(0));
  }
  void param_grads(CRef<S>, CRef<S>, GradBuffers<S>&) const {}

  index_t M, P;
};

template <typename S>
using ALRNN = WPhiModel<S, PartialReluPhi<S>>;

}  // namespace plrnn
