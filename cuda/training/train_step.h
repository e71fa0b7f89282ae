// Device-resident training (the CUDA counterpart of python/plrnn_native/training.py's inner loop).
// The training series, the parameters, the gradients and the Adam moments live on the GPU; one
// step() samples the batch there (counter-based RNG keyed by (seed, step index)), gathers the
// subsequences, runs forward + BPTT (rollout/engine.cuh), adds the MAR gradient, takes the global gradient
// norm, clips and applies the Adam/RAdam update, and copies back only the loss, the norm and a
// finiteness flag. Parameters and moments cross to the host only when asked (get_/set_ methods).
// Plain C++ interface (no CUDA types), so the binding compiles with the host compiler.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/param_layout.h"
#include "core/types.h"
#include "training/train_options.h"

namespace plrnn::cuda {

// The interface both trainers implement (csrc/training/train_options.h; the CPU trainer is
// csrc/training/train_step.h).
using plrnn::HostArrays;
using plrnn::HostOutArrays;
using plrnn::StepResult;
using plrnn::TrainOptions;

class DeviceTrainer {
 public:
  // series_x[i]: [lengths[i], N] host data, series_s[i]: [lengths[i], K] (nullptr when K == 0),
  // all of the dtype selected by `f64`; every series has at least seq_len steps. series_mask: as the
  // CPU trainer's, but every entry must be nullptr (missing values are a CPU-only feature).
  DeviceTrainer(const ModelSpec& spec, bool f64, const HostArrays& params, const std::vector<const void*>& series_x,
                const std::vector<const void*>& series_s, const std::vector<const void*>& series_mask,
                const std::vector<index_t>& lengths, const TrainOptions& options);
  ~DeviceTrainer();
  DeviceTrainer(const DeviceTrainer&) = delete;
  DeviceTrainer& operator=(const DeviceTrainer&) = delete;

  // One optimiser step with learning rate lr; `adam_t` is the step count after this step (bias
  // corrections), `step_index` keys the batch sampling (the same index gives the same batch).
  StepResult step(double lr, double alpha, std::int64_t adam_t, std::uint64_t step_index);
  // run_steps (csrc/training/train_options.h): many steps in one call.
  std::vector<StepResult> run(index_t steps, double lr, double alpha, std::int64_t adam_t0, std::uint64_t step0);

  void get_params(const HostOutArrays& out) const;
  void set_params(const HostArrays& in);
  void get_moments(const HostOutArrays& m, const HostOutArrays& v) const;
  void set_moments(const HostArrays& m, const HostArrays& v);
  // The last step's gradient (after MAR, before clipping), for tests.
  void get_grads(const HostOutArrays& out) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int device_ = 0;
};

}  // namespace plrnn::cuda
