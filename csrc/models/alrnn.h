// Almost-linear RNN (Brenner et al. 2024): a standard PLRNN whose first M-P units are linear and
// whose last P units are rectified; W is a full matrix.
#pragma once
#include <algorithm>
#include <limits>
#include <type_traits>

#include "models/w_phi_model.h"

namespace plrnn {

template <typename S>
struct PartialReluPhi {
  static constexpr bool kHasParams = false;
  PartialReluPhi(const ModelSpec& spec, const Params<S>&) : M(spec.dims.M), P(spec.dims.P), floor(M) {
    for (index_t i = 0; i < M; ++i)
      floor[i] = i < M - P ? std::numeric_limits<S>::infinity() : -std::numeric_limits<S>::infinity();
  }

  // fwd: Phi = [U_lin; relu(U_last P)]                      U, Phi [M, n]
  void apply(CRef<S> U, Ref<S> Phi) const {
    Phi.topRows(M - P) = U.topRows(M - P);
    Phi.bottomRows(P) = U.bottomRows(P).cwiseMax(S(0));
  }
  // one entry (the same value as apply's), for the gradient of W without a tape of Phi
  static constexpr bool kTapePhi = false;
  S value(S u, index_t i) const { return i < M - P ? u : std::max(u, S(0)); }
  // grad: phi_i'(u) r = r on the linear units, 1[u > 0] r on the rectified ones, for a scalar or a packet
  // of rows from i (as max(u, floor_i) > 0: floor is +inf on the linear units, -inf on the others)
  static constexpr bool kPacketDerivative = true;
  template <class T>
  T times_derivative(const T& u, const T& r, index_t i) const {
    if constexpr (std::is_arithmetic_v<T>) {
      return (i < M - P || u > S(0)) ? r : S(0);
    } else {
      return rowpk::where_positive(Eigen::internal::pmax(u, Eigen::internal::ploadu<T>(floor.data() + i)), r);
    }
  }
  void param_grads(CRef<S>, CRef<S>, GradBuffers<S>&) const {}

  index_t M, P;
  AlignedVector<S> floor;  // [M]: +inf (linear unit), -inf (rectified)
};

template <typename S>
using ALRNN = WPhiModel<S, PartialReluPhi<S>>;

template <typename S> struct ModelFor<S, Kind::ALRNN> { using type = ALRNN<S>; };

}  // namespace plrnn
