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
using plrnn::TrainerHandle;
using plrnn::TrainingSeries;
using plrnn::TrainOptions;

class DeviceTrainer final : public TrainerHandle {
 public:
  // As the CPU trainer's, but every data.mask[i] must be nullptr (missing values are a CPU-only feature).
  DeviceTrainer(const ModelSpec& spec, bool f64, const HostArrays& params, const TrainingSeries& data,
                const TrainOptions& options);

 protected:
  void enter() const override;  // cudaSetDevice(device_)

 private:
  int device_ = 0;
};

}  // namespace plrnn::cuda
