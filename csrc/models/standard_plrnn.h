// Standard PLRNN (Durstewitz 2017): z' = A*u + W relu(u) + h + C s, W with zero diagonal.
#pragma once
#include "models/w_phi_model.h"

namespace plrnn {

template <typename S>
struct ReluPhi {
  static constexpr bool kHasParams = false;
  ReluPhi(const ModelSpec&, const Params<S>&) {}

  // fwd: Phi = relu(U)                                      U, Phi [M, n]
  void apply(CRef<S> U, Ref<S> Phi) const { Phi = U.cwiseMax(S(0)); }
  // grad: phi_i'(u) = relu'(u) = 1[u > 0] (relu'(0) = 0)
  S derivative(S u, index_t /*i*/) const { return u > S(0) ? S(1) : S(0); }
  void param_grads(CRef<S>, CRef<S>, GradBuffers<S>&) const {}
};

template <typename S>
using StandardPLRNN = WPhiModel<S, ReluPhi<S>>;

template <typename S> struct ModelFor<S, Kind::Standard> { using type = StandardPLRNN<S>; };

}  // namespace plrnn
