// Definitions of the forward/backward launchers (rollout_bptt.cuh), of the log-joint's transition
// launcher (vi/log_joint.cuh) and the macros that instantiate them for one model kind; included only by
// cuda/models/<kind>.cu, so each kind's kernels compile in their own translation unit (in parallel), and
// nowhere else.
#pragma once
#include "core/cuda_check.cuh"
#include "rollout/rollout_bptt.cuh"
#include "vi/log_joint.cuh"

namespace plrnn::cuda {

template <typename Kernel>
void allow_dynamic_smem(Kernel kernel, std::size_t smem) {
  if (smem > 48 * 1024)
    PLRNN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
}

template <typename S, Kind KD, Obs OB>
void launch_rollout_forward(const RolloutArgs<S>& a, int blocks, int threads, std::size_t smem) {
  allow_dynamic_smem(rollout_forward_kernel<S, KD, OB>, smem);
  rollout_forward_kernel<S, KD, OB><<<blocks, threads, smem>>>(a);
  PLRNN_CUDA_CHECK_LAUNCH("rollout_forward_kernel");
}

template <typename S, Kind KD, Obs OB>
void launch_rollout_backward(const RolloutArgs<S>& a, int blocks, int threads, std::size_t smem) {
  allow_dynamic_smem(rollout_backward_kernel<S, KD, OB>, smem);
  rollout_backward_kernel<S, KD, OB><<<blocks, threads, smem>>>(a);
  PLRNN_CUDA_CHECK_LAUNCH("rollout_backward_kernel");
}

template <typename S, Kind KD>
void launch_vi_transitions(const ViTransitionArgs<S>& a, int blocks, int threads, std::size_t smem) {
  allow_dynamic_smem(vi_transition_kernel<S, KD>, smem);
  vi_transition_kernel<S, KD><<<blocks, threads, smem>>>(a);
  PLRNN_CUDA_CHECK_LAUNCH("vi_transition_kernel");
}

}  // namespace plrnn::cuda

// The log-joint's transition launcher x float32/float64 for kind KD.
#define PLRNN_INSTANTIATE_VI_KIND(KD)                                                                   \
  namespace plrnn::cuda {                                                                             \
  template void launch_vi_transitions<float, KD>(const ViTransitionArgs<float>&, int, int, std::size_t);   \
  template void launch_vi_transitions<double, KD>(const ViTransitionArgs<double>&, int, int, std::size_t); \
  }

// Both launchers x both observation models x float32/float64 for kind KD.
#define PLRNN_INSTANTIATE_ROLLOUT_KIND(KD)                                                                     \
  namespace plrnn::cuda {                                                                                   \
  template void launch_rollout_forward<float, KD, Obs::Identity>(const RolloutArgs<float>&, int, int, std::size_t);   \
  template void launch_rollout_forward<float, KD, Obs::Linear>(const RolloutArgs<float>&, int, int, std::size_t);     \
  template void launch_rollout_forward<double, KD, Obs::Identity>(const RolloutArgs<double>&, int, int, std::size_t); \
  template void launch_rollout_forward<double, KD, Obs::Linear>(const RolloutArgs<double>&, int, int, std::size_t);   \
  template void launch_rollout_backward<float, KD, Obs::Identity>(const RolloutArgs<float>&, int, int, std::size_t);  \
  template void launch_rollout_backward<float, KD, Obs::Linear>(const RolloutArgs<float>&, int, int, std::size_t);    \
  template void launch_rollout_backward<double, KD, Obs::Identity>(const RolloutArgs<double>&, int, int, std::size_t);\
  template void launch_rollout_backward<double, KD, Obs::Linear>(const RolloutArgs<double>&, int, int, std::size_t);  \
  }
