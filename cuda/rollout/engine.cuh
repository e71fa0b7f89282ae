// The device-side engine shared by the per-call host API (cuda/api.h, cuda/dispatch.cu) and the
// device-resident trainer (training/train_step.h): parameters, batch and gradients are device pointers; the engine owns the
// transposed parameter copies, the tape and the reduction workspaces (grow-only buffers).
//
// One call of run():
//   1. transposes W / W1 / W2 / C / B / Binv for the forward's coalesced reads;
//   2. picks the launch plan: sequences per block nb, threads, persistent (weights in shared
//      memory) or global-weights path, from M, H and the device's opt-in shared memory;
//   3. launches the forward kernel once for the whole time loop (rollout/rollout_bptt.cuh) and reduces the
//      per-block squared errors in a fixed order into result[0] = loss, result[1] = sse;
//   4. with gradients: launches the backward kernel once, then the fixed-order reductions of
//      param_grads.cuh that turn the tape into every parameter gradient.
// Everything runs on the legacy default stream of the current device, in order.
#pragma once
#include "core/types.h"
#include "core/device_buffer.cuh"

namespace plrnn::cuda {

struct LaunchPlan {
  int nb = 1, threads = 32, blocks = 1;
  bool in_smem = false;  // persistent path: big matrices in shared memory
  std::size_t smem = 0;  // dynamic shared memory per block, bytes
};

// The per-row record of one model step z_t = F(u, s_t) (row r = b (T-1) + t-1 of [B, T-1, dim]) that the
// model's parameter gradients read: U the step's input, Phi phi(U) (shallow: the hidden activation), V
// W2 U (shallow), G d loss / d F(U, s_t), R W^T G (dendritic) or Delta (shallow), D1 the relu(v + h2)
// part of Delta (clipped shallow). Written by the BPTT kernel, and by the log-joint's transition kernel
// (vi/log_joint.cuh).
template <typename S>
struct StepTape {
  const S* U = nullptr;
  const S* Phi = nullptr;
  const S* V = nullptr;
  const S* G = nullptr;
  const S* R = nullptr;
  const S* D1 = nullptr;
};

template <typename S>
class Engine {
 public:
  explicit Engine(const ModelSpec& spec);  // on the current device

  // p, Binv, batch pointers, z0, eps, grads: device pointers. batch.x == nullptr: free run from z0
  // (forcing must be None). grads == nullptr: forward only. Writes result[0] = loss, result[1] = sse.
  void run(const Params<S>& p, const ForcingSpec& forcing, const Batch<S>& batch, const S* z0, const S* eps,
           const Grads<S>* grads, double* result);

  LaunchPlan plan(index_t B) const;

  // Every gradient of the model's own parameters (A, W, h, C, the dendritic basis, W1, W2, h1, h2;
  // overwritten, not added) as fixed-order sums over the B (T-1) rows of `tape`; s [B, T, K] device
  // inputs (row r reads s at t). Deterministic (param_grads.cuh).
  void model_param_grads(const Params<S>& p, const StepTape<S>& tape, long long B, long long T, const S* s,
                         const Grads<S>& g);
  const ModelSpec& spec() const { return spec_; }

 private:
  void param_grads(const Params<S>& p, const Batch<S>& batch, const S* z_steps, const Grads<S>& g);
  template <class X, class Y>
  void outer(const X& x, const Y& y, long long rows, int ni, int nj, S* out, int zero_diag_n);
  template <class Fn>
  void column(const Fn& f, long long rows, int ncols, S* out);

  ModelSpec spec_;
  int sms_ = 1;
  std::size_t smem_optin_ = 48 * 1024;
  DeviceBuffer<S> Wt_, W1t_, W2t_, Ct_, Bt_, Binvt_;
  DeviceBuffer<S> U_, Phi_, V_, E_, Ebar_, G_, R_, D1_, G0_, zbuf_, part_, pa_, pt_;
  DeviceBuffer<double> sse_;
};

// A model's parameters in one device buffer (ids in param_layout.h order), with the per-array
// device pointers; used for parameters, gradients and the optimiser moments alike.
template <typename S>
class DeviceParams {
 public:
  explicit DeviceParams(const ModelSpec& spec);
  std::size_t size() const { return total_; }
  S* data() const { return buf_.data(); }
  ParamSet<S> pointers() const;                    // device pointers, nullptr for absent arrays
  Params<S> const_pointers() const;
  void upload(const ParamSet<const S>& host);      // every present array
  void download(const ParamSet<S>& host) const;
  void zero();

 private:
  ModelSpec spec_;
  std::size_t offset_[16] = {};
  std::size_t count_[16] = {};
  std::size_t total_ = 0;
  DeviceBuffer<S> buf_;
};

// The limits of the CUDA kernels beyond plrnn::check_call (csrc/core/param_layout.h), which callers run first.
void check_cuda_limits(const ModelSpec& spec, index_t B);

}  // namespace plrnn::cuda
