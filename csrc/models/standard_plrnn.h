// Standard PLRNN (Durstewitz 2017): z' = A*u + W relu(u) + h + C s, W with zero diagonal.
#pragma once
#include <algorithm>

#include "models/w_phi_model.h"

namespace plrnn {

template <typename S>
struct ReluPhi {
  static constexpr bool kHasParams = false;
  ReluPhi(const ModelSpec&, const Params<S>&) {}

  // fwd: Phi = relu(U)                                      U, Phi [M, n]
  void apply(CRef<S> U, Ref<S> Phi) const { Phi = U.cwiseMax(S(0)); }
  // one entry (the same value as apply's), for the gradient of W without a tape of Phi
  static constexpr bool kTapePhi = false;
  S value(S u, index_t /*i*/) const { return std::max(u, S(0)); }
  // grad: phi_i'(u) r = relu'(u) r = 1[u > 0] r (relu'(0) = 0), for a scalar or a packet of rows
  static constexpr bool kPacketDerivative = true;
  template <class T>
  T times_derivative(const T& u, const T& r, index_t /*i*/) const { return rowpk::where_positive(u, r); }
  void param_grads(CRef<S>, CRef<S>, GradBuffers<S>&) const {}
};

template <typename S>
using StandardPLRNN = WPhiModel<S, ReluPhi<S>>;

template <typename S> struct ModelFor<S, Kind::Standard> { using type = StandardPLRNN<S>; };

}  // namespace plrnn
