// The dendritic PLRNN and its clipped variant on the GPU (csrc/models/dendritic_plrnn.h is the CPU
// version): phi_i(u) = sum_b alpha_b relu(u - theta_ib) [- (sum_b alpha_b) relu(u)]. Its elementwise
// maths, forward beside gradient, and the instantiation of the rollout/BPTT kernels
// (rollout/rollout_bptt.cuh) for both kinds in a translation unit of their own.
#include "rollout/launch.cuh"

namespace plrnn::cuda {

template <typename S, bool Clipped>
struct DendriticDeviceModel {
  // sum_b alpha_b, once per call
  __device__ __forceinline__ static S alpha_total(const RolloutArgs<S>& a) {
    S s = 0;
    for (int b = 0; b < a.Bb; ++b) s += a.alpha[b];
    return s;
  }
  // fwd: phi_i(u)
  __device__ __forceinline__ static S phi(const RolloutArgs<S>& a, S u, int i, S alpha_sum) {
    S acc = 0;
    for (int b = 0; b < a.Bb; ++b) {
      const S d = u - a.theta[i * a.Bb + b];
      acc += a.alpha[b] * (d > S(0) ? d : S(0));
    }
    if constexpr (Clipped) acc -= alpha_sum * (u > S(0) ? u : S(0));
    return acc;
  }
  // grad: phi_i'(u)   (relu'(0) = 0)
  __device__ __forceinline__ static S dphi(const RolloutArgs<S>& a, S u, int i, S alpha_sum) {
    S d = 0;
    for (int b = 0; b < a.Bb; ++b) d += u > a.theta[i * a.Bb + b] ? a.alpha[b] : S(0);
    if constexpr (Clipped) d -= u > S(0) ? alpha_sum : S(0);
    return d;
  }
};

template <typename S>
struct DeviceModel<S, Kind::Dendritic> : DendriticDeviceModel<S, false> {};
template <typename S>
struct DeviceModel<S, Kind::DendriticClipped> : DendriticDeviceModel<S, true> {};

}  // namespace plrnn::cuda

PLRNN_INSTANTIATE_ROLLOUT_KIND(Kind::Dendritic)
PLRNN_INSTANTIATE_VI_KIND(Kind::Dendritic)
PLRNN_INSTANTIATE_ROLLOUT_KIND(Kind::DendriticClipped)
PLRNN_INSTANTIATE_VI_KIND(Kind::DendriticClipped)
