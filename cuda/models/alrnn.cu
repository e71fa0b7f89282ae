// The ALRNN on the GPU (csrc/models/alrnn.h is the CPU version): the first M - P units are linear,
// the last P rectified. Its elementwise maths, forward beside gradient, and the instantiation of the
// rollout/BPTT kernels (rollout/rollout_bptt.cuh) and of the log-joint's transition kernel
// (vi/log_joint.cuh) for this kind in a translation unit of its own.
#include "rollout/launch.cuh"

namespace plrnn::cuda {

template <typename S>
struct DeviceModel<S, Kind::ALRNN> {
  __device__ __forceinline__ static S alpha_total(const RolloutArgs<S>&) { return S(0); }
  // fwd: phi_i(u) = u (i < M - P), relu(u) (otherwise)
  __device__ __forceinline__ static S phi(const RolloutArgs<S>& a, S u, int i, S) {
    return (i < a.M - a.P || u > S(0)) ? u : S(0);
  }
  // grad: phi_i'(u)
  __device__ __forceinline__ static S dphi(const RolloutArgs<S>& a, S u, int i, S) {
    return (i < a.M - a.P || u > S(0)) ? S(1) : S(0);
  }
};

}  // namespace plrnn::cuda

PLRNN_INSTANTIATE_ROLLOUT_KIND(Kind::ALRNN)
PLRNN_INSTANTIATE_VI_KIND(Kind::ALRNN)
