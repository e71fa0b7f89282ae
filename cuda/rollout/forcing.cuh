// Teacher-forcing schedules on the device: the weight a(t') of docs/model.md with which the state at
// time t' is pulled towards the data before the next step, the rule of csrc/rollout/forcing.h (there
// a template parameter of the rollout, here a runtime value: one uniform branch per step).
// `Args` is RolloutArgs<S> (rollout_bptt.cuh): forcing (a Forcing value), tau, alpha_tf.
#pragma once
#include "core/types.h"

namespace plrnn::cuda {

template <typename S, class Args>
__device__ __forceinline__ S forcing_weight(const Args& a, int t) {
  if (a.forcing == static_cast<int>(Forcing::Sparse)) return (t >= 1 && t % a.tau == 0) ? S(1) : S(0);
  if (a.forcing == static_cast<int>(Forcing::Generalized)) return t >= 1 ? a.alpha_tf : S(0);
  return S(0);
}

}  // namespace plrnn::cuda
