// The CPU trainer: many optimiser steps in one native call, so that Python does epoch-level work
// only (the CPU counterpart of cuda/training/train_step.h, with the same interface: train_options.h).
// It holds copies of the training series (and their masks of missing entries), the parameters, the
// gradients and the Adam moments. A step samples its batch with the counter-based generator keyed by
// (seed, step index) (counter_rng.h: the same windows as the CUDA trainer), gathers the windows (teacher
// noise; x and inputs chunk by chunk inside the core's parallel loop, Batch::fill), runs forward + BPTT (the CPU core's loss_and_grad, threaded over the batch), adds the
// MAR penalty, takes the global gradient norm (float64, fixed order), clips and applies Adam/RAdam
// (adam.h, the update every trainer uses). Results depend on the seed, not on the thread count.
// Plain C++ (no Python): the binding is bindings/trainer_binding.h.
#pragma once
#include <vector>

#include "training/train_options.h"

namespace plrnn {

class HostTrainer final : public TrainerHandle {
 public:
  // Every series has at least seq_len steps; params and data of the dtype selected by `f64`.
  HostTrainer(const ModelSpec& spec, bool f64, const HostArrays& params, const TrainingSeries& data,
              const TrainOptions& options);

 protected:
  void between() const override;  // Ctrl-C between the steps of run() (core/interrupt.h)
};

}  // namespace plrnn
