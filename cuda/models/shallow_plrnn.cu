// The shallow PLRNN and its clipped variant on the GPU (csrc/models/shallow_plrnn.h is the CPU
// version): z_t = A*z + W1 act(W2 z + h2) + h1 + C s_t, act(v + h2) = relu(v + h2) [- relu(v)]. Its
// hidden-layer maths, forward beside gradient, and the instantiation of the rollout/BPTT kernels
// (rollout/rollout_bptt.cuh) for both kinds in a translation unit of their own.
#include "rollout/launch.cuh"

namespace plrnn::cuda {

template <typename S, bool Clipped>
struct ShallowDeviceModel {
  __device__ __forceinline__ static S alpha_total(const RolloutArgs<S>&) { return S(0); }
  // fwd: the hidden activation at v = (W2 u)_j
  __device__ __forceinline__ static S hidden(S v, S h2) {
    const S pre = v + h2;
    S f = pre > S(0) ? pre : S(0);
    if constexpr (Clipped) f -= v > S(0) ? v : S(0);
    return f;
  }
  // grad: Delta_j = act'(v) r for r = (W1^T g)_j; d1 = relu'(v + h2) r
  __device__ __forceinline__ static S dhidden(S v, S h2, S r, S& d1) {
    d1 = v + h2 > S(0) ? r : S(0);
    if constexpr (Clipped) return d1 - (v > S(0) ? r : S(0));
    return d1;
  }
};

template <typename S>
struct DeviceModel<S, Kind::Shallow> : ShallowDeviceModel<S, false> {};
template <typename S>
struct DeviceModel<S, Kind::ShallowClipped> : ShallowDeviceModel<S, true> {};

}  // namespace plrnn::cuda

PLRNN_INSTANTIATE_ROLLOUT_KIND(Kind::Shallow)
PLRNN_INSTANTIATE_VI_KIND(Kind::Shallow)
PLRNN_INSTANTIATE_ROLLOUT_KIND(Kind::ShallowClipped)
PLRNN_INSTANTIATE_VI_KIND(Kind::ShallowClipped)
