// The native entry points of the CUDA backend: the same functions, argument order and conventions as
// the CPU core's csrc/api.h, with host pointers in and out and the device index as a trailing `device`
// argument (the one difference, so one binding template serves both modules: bindings/model_api.h).
// Plain C++ interface (no CUDA types), so the binding compiles with the host compiler.
//
// Definitions mirror csrc: rollout / loss_and_grad / generate in dispatch.cu (csrc/dispatch.h),
// mar_penalty in regularizers/mar.cu (csrc/regularizers/mar.cpp), vi_log_joint in dispatch.cu with its
// kernels in vi/log_joint.cu (csrc/dispatch.h, csrc/vi/log_joint.h). Each call uploads the parameters and
// the batch, runs the kernels (rollout/engine.cuh) and downloads the results; the device-resident
// trainer (training/train_step.h) keeps everything on the device instead. The CPU core's supervised
// path has no CUDA counterpart.
// Errors: std::invalid_argument for a caller's mistake (message names the argument), std::runtime_error
// for CUDA failures (message names the call, file and line).
#pragma once
#include "core/types.h"
#include "vi/vi_types.h"

namespace plrnn::cuda {

// Forward rollout with teacher forcing: fills batch.xhat / batch.z where not null; returns the loss.
template <typename S>
LossResult rollout(const ModelSpec& spec, const Params<S>& p, const ForcingSpec& forcing, const Batch<S>& batch,
                   int device);

// Rollout + BPTT: loss and the gradient of every parameter of the model (T >= 2).
template <typename S>
LossResult loss_and_grad(const ModelSpec& spec, const Params<S>& p, const ForcingSpec& forcing,
                         const Batch<S>& batch, const Grads<S>& grads, int device);

// Free run from z0 [B, M]: z_t = F(z_{t-1}, s_t) + eps_t (s, eps may be null); writes z, xhat where not null.
template <typename S>
void generate(const ModelSpec& spec, const Params<S>& p, index_t B, index_t T, const S* z0, const S* s,
              const S* eps, S* z, S* xhat, int device);

// Manifold-attractor penalty (csrc/regularizers/mar.h): returns it and adds its gradient into `grads`.
template <typename S>
double mar_penalty(const ModelSpec& spec, const Params<S>& p, const index_t* units, index_t n_units, double weight,
                   bool mean, const Grads<S>& grads, int device);

// Probabilistic PLRNN (docs/probabilistic.md): w.latent log p(z) + w.obs log p(obs | z) at the sample
// z [B, T, M] and, with `grads`, its gradient for every parameter and gz = d total / dz (csrc/api.h).
template <typename S>
vi::LogJoint vi_log_joint(const ModelSpec& spec, const Params<S>& p, const vi::Latent<S>& latent,
                          const vi::Observations<S>& obs, index_t B, index_t T, const S* z, const S* s,
                          const vi::Weights& w, const Grads<S>* grads, S* gz, int device);

}  // namespace plrnn::cuda
