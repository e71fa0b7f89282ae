// The standard PLRNN on the GPU (csrc/models/standard_plrnn.h is the CPU version):
//   z_t = A*z + W relu(z) + h + C s_t   (W zero diagonal)
// Its elementwise maths, forward beside gradient, and the instantiation of the rollout/BPTT kernels
// (rollout/rollout_bptt.cuh) for this kind: float32/float64 x identity/linear observation, in a
// translation unit of its own so that nvcc's work runs in parallel.
#include "rollout/launch.cuh"

namespace plrnn::cuda {

template <typename S>
struct DeviceModel<S, Kind::Standard> {
  __device__ __forceinline__ static S alpha_total(const RolloutArgs<S>&) { return S(0); }
  // fwd: phi_i(u) = relu(u)
  __device__ __forceinline__ static S phi(const RolloutArgs<S>&, S u, int, S) { return u > S(0) ? u : S(0); }
  // grad: phi_i'(u)
  __device__ __forceinline__ static S dphi(const RolloutArgs<S>&, S u, int, S) { return u > S(0) ? S(1) : S(0); }
};

}  // namespace plrnn::cuda

PLRNN_INSTANTIATE_ROLLOUT_KIND(Kind::Standard)
PLRNN_INSTANTIATE_VI_KIND(Kind::Standard)
