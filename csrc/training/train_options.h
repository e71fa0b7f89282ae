// The interface both native trainers implement (CPU: training/train_step.h, HostTrainer; CUDA:
// cuda/training/train_step.h, DeviceTrainer): their options, the result of a step, the parameter arrays
// that cross the boundary, the loop of many steps in one native call, and TrainerHandle, the class both
// derive from (a backend adds only its constructor and its implementation).
// Plain C++ (no Eigen, no CUDA, no Python).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/errors.h"
#include "core/param_layout.h"
#include "core/types.h"
#include "regularizers/mar.h"  // check_mar

namespace plrnn {

struct TrainOptions {
  int device = 0;                    // CUDA device index (the CPU has one device: 0)
  index_t batch_size = 16;
  index_t seq_len = 200;
  ForcingSpec forcing;               // generalized: alpha is given per step
  double grad_clip = 0.0;            // 0: no clipping
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool radam = false;
  double teacher_noise = 0.0;        // std of Gaussian noise added to each batch's data
  std::uint64_t seed = 0;
  std::vector<index_t> mar_units;    // MAR: distinct units in [0, M)
  double mar_weight = 0.0;
  bool mar_mean = false;
};

struct StepResult {
  double loss = 0.0;       // data loss + MAR penalty
  double grad_norm = 0.0;  // before clipping
  bool updated = false;    // false when loss or norm was not finite (no update)
  bool params_finite = true;
};

using HostArrays = std::array<const void*, kNumParams>;  // per ParamId, nullptr where absent
using HostOutArrays = std::array<void*, kNumParams>;

// The training data a trainer copies at construction, as host arrays of the dtype its `f64` selects:
// series i has lengths[i] steps; x[i]: [lengths[i], N] (0 where missing); s[i]: [lengths[i], K] (nullptr
// when K == 0); mask[i]: [lengths[i], N], 1 observed / 0 missing, or nullptr (every entry observed).
struct TrainingSeries {
  std::vector<const void*> x, s, mask;
  std::vector<index_t> lengths;
};

// The series concatenated row after row: series i starts at row offsets[i]; prefix[i] counts the windows
// of seq_len steps in the series before i (prefix.back(): all windows, the range counter_rng.h samples).
struct SeriesLayout {
  std::vector<long long> offsets, prefix{0};
  long long rows = 0;
};

inline SeriesLayout series_layout(const std::vector<index_t>& lengths, index_t seq_len) {
  SeriesLayout l;
  for (const index_t len : lengths) {
    l.offsets.push_back(l.rows);
    l.prefix.push_back(l.prefix.back() + (len - seq_len + 1));
    l.rows += len;
  }
  return l;
}

// The checks both trainers make of their construction arguments (sizes, one input and mask slot per
// series, every series at least seq_len long, the forcing, the MAR units).
inline void check_trainer_args(const ModelSpec& spec, const TrainingSeries& data, const TrainOptions& options) {
  check_spec(spec);
  PLRNN_CHECK(options.batch_size >= 1, "batch_size: must be >= 1, got ", options.batch_size);
  PLRNN_CHECK(options.seq_len >= 2, "seq_len: must be >= 2, got ", options.seq_len);
  const std::size_t n = data.lengths.size();
  PLRNN_CHECK(n > 0 && data.x.size() == n && data.s.size() == n && data.mask.size() == n,
              "x: one length, one input series and one mask per data series");
  for (std::size_t i = 0; i < n; ++i)
    PLRNN_CHECK(data.lengths[i] >= options.seq_len, "x: series ", i, " has ", data.lengths[i],
                " steps, fewer than seq_len=", options.seq_len);
  check_call(spec, options.forcing, options.batch_size, options.seq_len, 2);
  if (options.mar_weight > 0)
    check_mar(spec, options.mar_units.data(), static_cast<index_t>(options.mar_units.size()), options.mar_weight);
}

// `steps` optimiser steps of a trainer (HostTrainer or DeviceTrainer) at learning rate lr: step i uses
// the Adam count adam_t0 + i and the batch of index step0 + i. Stops after the first step that was not
// applied or left a non-finite parameter (the caller restores its last good state); returns the steps
// taken. `between` is called after every step (the CPU's interruption point; a no-op on the GPU).
template <typename Trainer, typename Between>
std::vector<StepResult> run_steps(Trainer& trainer, index_t steps, double lr, double alpha, std::int64_t adam_t0,
                                  std::uint64_t step0, Between&& between) {
  std::vector<StepResult> out;
  out.reserve(static_cast<std::size_t>(steps));
  for (index_t i = 0; i < steps; ++i) {
    out.push_back(trainer.step(lr, alpha, adam_t0 + i, step0 + static_cast<std::uint64_t>(i)));
    if (!out.back().updated || !out.back().params_finite) break;
    between();
  }
  return out;
}

// The methods of both trainers over a precision-specific implementation (Impl, one per scalar type).
// enter(): what must precede any work (CUDA: select the device); between(): runs after every step of
// run() (the CPU: the interruption point of Ctrl-C).
class TrainerHandle {
 public:
  struct Impl {
    virtual ~Impl() = default;
    // One optimiser step at learning rate lr; adam_t: the step count after it (bias corrections);
    // step_index keys the batch (the same index gives the same batch).
    virtual StepResult step(double lr, double alpha, std::int64_t adam_t, std::uint64_t step_index) = 0;
    virtual void get(int which, const HostOutArrays& out) const = 0;  // 0 params, 1 m, 2 v, 3 grads
    virtual void set(int which, const HostArrays& in) = 0;
  };

  virtual ~TrainerHandle() = default;
  TrainerHandle() = default;
  TrainerHandle(const TrainerHandle&) = delete;
  TrainerHandle& operator=(const TrainerHandle&) = delete;

  StepResult step(double lr, double alpha, std::int64_t adam_t, std::uint64_t step_index) {
    enter();
    return impl_->step(lr, alpha, adam_t, step_index);
  }
  // run_steps: many steps in one call.
  std::vector<StepResult> run(index_t steps, double lr, double alpha, std::int64_t adam_t0, std::uint64_t step0) {
    enter();
    return run_steps(*impl_, steps, lr, alpha, adam_t0, step0, [this] { between(); });
  }
  void get_params(const HostOutArrays& out) const { enter(), impl_->get(0, out); }
  void set_params(const HostArrays& in) { enter(), impl_->set(0, in); }
  void get_moments(const HostOutArrays& m, const HostOutArrays& v) const { enter(), impl_->get(1, m), impl_->get(2, v); }
  void set_moments(const HostArrays& m, const HostArrays& v) { enter(), impl_->set(1, m), impl_->set(2, v); }
  // The last step's gradient (after MAR, before clipping), for tests.
  void get_grads(const HostOutArrays& out) const { enter(), impl_->get(3, out); }

 protected:
  virtual void enter() const {}
  virtual void between() const {}
  // A backend's constructor: impl_ = make_impl<ItsImpl>(f64, args...) (ItsImpl<double> or ItsImpl<float>).
  template <template <typename> class ImplOf, typename... Args>
  static std::unique_ptr<Impl> make_impl(bool f64, const Args&... args) {
    if (f64) return std::make_unique<ImplOf<double>>(args...);
    return std::make_unique<ImplOf<float>>(args...);
  }
  std::unique_ptr<Impl> impl_;
};

}  // namespace plrnn
