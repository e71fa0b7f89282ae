// The CPU trainer (train_step.h). Sampling and the update are the shared definitions of
// counter_rng.h and adam.h; the forward + BPTT pass and MAR are the CPU core's (api.h).
#include "training/train_step.h"

#include <algorithm>
#include <cmath>

#include "api.h"
#include "core/eigen.h"
#include "core/errors.h"
#include "core/interrupt.h"
#include "observation/pinv.h"
#include "training/adam_host.h"
#include "training/counter_rng.h"

namespace plrnn {

namespace {

template <typename S>
class TrainerImpl final : public TrainerHandle::Impl {
 public:
  TrainerImpl(const ModelSpec& spec, const HostArrays& params, const TrainingSeries& data, const TrainOptions& opt)
      : spec_(spec), opt_(opt) {
    for (int id = 0; id < kNumParams; ++id) {
      const ParamShape sh = param_shape(spec, id);
      if (!sh.present) continue;
      const std::size_t n = static_cast<std::size_t>(sh.size());
      present_[id] = true;
      size_[id] = n;  // an empty array (C with K = 0) still gets a valid pointer: the core writes every present one
      for (auto* buf : {&params_[id], &grads_[id], &m_[id], &v_[id]}) buf->assign(std::max<std::size_t>(n, 1), S(0));
    }
    set(0, params);
    const index_t N = spec.dims.N, K = spec.dims.K;
    SeriesLayout layout = series_layout(data.lengths, opt.seq_len);
    offsets_ = std::move(layout.offsets);
    prefix_ = std::move(layout.prefix);
    const long long rows = layout.rows;
    const bool any_mask = std::any_of(data.mask.begin(), data.mask.end(), [](const void* m) { return m != nullptr; });
    x_all_.resize(std::size_t(rows * N));
    if (K > 0) s_all_.resize(std::size_t(rows * K));
    if (any_mask) mask_all_.assign(std::size_t(rows * N), S(1));
    for (std::size_t i = 0; i < data.lengths.size(); ++i) {
      const auto cnt = std::size_t(data.lengths[i]);
      std::copy_n(static_cast<const S*>(data.x[i]), cnt * N, x_all_.begin() + offsets_[i] * N);
      if (K > 0) std::copy_n(static_cast<const S*>(data.s[i]), cnt * K, s_all_.begin() + offsets_[i] * K);
      if (data.mask[i])
        std::copy_n(static_cast<const S*>(data.mask[i]), cnt * N, mask_all_.begin() + offsets_[i] * N);
    }
    const std::size_t bt = std::size_t(opt.batch_size * opt.seq_len);
    xb_.resize(bt * N);
    if (K > 0) sb_.resize(bt * K);
    if (any_mask) mb_.resize(bt * N);
    if (spec.obs == Obs::Linear) Binv_.resize(std::size_t(spec.dims.M * N));
    starts_.resize(std::size_t(opt.batch_size));
  }

  StepResult step(double lr, double alpha, std::int64_t adam_t, std::uint64_t k) override {
    using training::u64;
    const index_t Bsz = opt_.batch_size, T = opt_.seq_len, N = spec_.dims.N, K = spec_.dims.K;
    const u64 seed = opt_.seed;
    const int n_series = static_cast<int>(offsets_.size());
    for (index_t b = 0; b < Bsz; ++b) {
      const auto idx = static_cast<long long>(training::window_index(seed, k, static_cast<u64>(b),
                                                                     static_cast<u64>(prefix_.back())));
      const int i = training::series_of(prefix_.data(), n_series, idx);
      starts_[b] = offsets_[i] + (idx - prefix_[i]);
    }
    if (!mb_.empty()) gather(mask_all_, N, 0.0, k, 0, Bsz, mb_);  // (the loss counts the observed entries first)
    Batch<S> batch;
    batch.B = Bsz;
    batch.T = T;
    batch.x = xb_.data();
    batch.s = K > 0 ? sb_.data() : nullptr;
    batch.mask = mb_.empty() ? nullptr : mb_.data();
    step_ = k;
    batch.fill = &TrainerImpl::fill;  // x and s gathered chunk by chunk, in parallel (core/types.h)
    batch.fill_ctx = this;
    ForcingSpec f = opt_.forcing;
    if (f.mode == Forcing::Generalized) f.alpha = alpha;
    if (needs_binv(spec_, f)) {
      refresh_pinv();
      batch.Binv = Binv_.data();
    }
    const Params<S> p = pointers<const S>(params_);
    const Grads<S> g = pointers<S>(grads_);
    StepResult out;
    out.loss = plrnn::loss_and_grad<S>(spec_, p, f, batch, g).loss;
    if (opt_.mar_weight > 0 && !opt_.mar_units.empty())
      out.loss += mar_penalty<S>(spec_, p, opt_.mar_units.data(), static_cast<index_t>(opt_.mar_units.size()),
                                 opt_.mar_weight, opt_.mar_mean, g);
    double sumsq = 0.0;  // float64, in parameter order: the same bits for every thread count
    for (int id = 0; id < kNumParams; ++id)
      for (std::size_t e = 0; e < size_[id]; ++e) sumsq += double(grads_[id][e]) * double(grads_[id][e]);
    out.grad_norm = std::sqrt(sumsq);
    out.updated = std::isfinite(out.loss) && std::isfinite(out.grad_norm);
    if (!out.updated) return out;
    const training::AdamStep<S> st(training::adam_coeffs(lr, opt_.beta1, opt_.beta2, opt_.eps, opt_.radam, adam_t,
                                                         opt_.grad_clip),
                                   out.grad_norm);
    bool finite = true;
    for (int id = 0; id < kNumParams; ++id)
      finite &= training::apply_all(st, params_[id].data(), m_[id].data(), v_[id].data(), grads_[id].data(), size_[id]);
    out.params_finite = finite;
    return out;
  }

  void get(int which, const HostOutArrays& out) const override {
    const auto& bufs = which == 0 ? params_ : which == 1 ? m_ : which == 2 ? v_ : grads_;
    for (int id = 0; id < kNumParams; ++id)
      if (size_[id] && out[id]) std::copy_n(bufs[id].begin(), size_[id], static_cast<S*>(out[id]));
  }
  void set(int which, const HostArrays& in) override {
    auto& bufs = which == 0 ? params_ : which == 1 ? m_ : which == 2 ? v_ : grads_;
    for (int id = 0; id < kNumParams; ++id)
      if (size_[id]) {
        PLRNN_CHECK(in[id] != nullptr, param_name(id), ": missing");  // (the binding checks every array)
        std::copy_n(static_cast<const S*>(in[id]), size_[id], bufs[id].begin());
      }
  }

 private:
  using Buffers = std::array<AlignedVector<S>, kNumParams>;

  template <typename P>
  ParamSet<P> pointers(const Buffers& b) const {
    ParamSet<P> out;
    auto slots = param_slots(out);
    for (int id = 0; id < kNumParams; ++id)
      if (present_[id]) *slots[id] = const_cast<P*>(b[id].data());
    return out;
  }

  // Batch::fill: x and s of sequences [b0, b1) of step step_
  static void fill(void* self, index_t b0, index_t b1) {
    auto& t = *static_cast<TrainerImpl*>(self);
    t.gather(t.x_all_, t.spec_.dims.N, t.opt_.teacher_noise, t.step_, b0, b1, t.xb_);
    if (t.spec_.dims.K > 0) t.gather(t.s_all_, t.spec_.dims.K, 0.0, t.step_, b0, b1, t.sb_);
  }

  // out[b, t, c] = src[starts[b] + t, c] (+ noise_std * N(0, 1) of flat element (b, t, c)), b in [b0, b1)
  void gather(const AlignedVector<S>& src, index_t cols, double noise_std, std::uint64_t k, index_t b0, index_t b1,
              AlignedVector<S>& out) const {
    const index_t T = opt_.seq_len;
    for (index_t b = b0; b < b1; ++b) {
      const S* from = src.data() + starts_[b] * cols;
      S* to = out.data() + b * T * cols;
      std::copy_n(from, T * cols, to);
      if (noise_std > 0)
        for (index_t j = 0; j < T * cols; ++j)
          to[j] += static_cast<S>(noise_std * training::normal(opt_.seed, k, static_cast<training::u64>(b * T * cols + j)));
    }
  }

  // pinv(B) of the linear observation, recomputed every step (B changes).
  void refresh_pinv() { pinv_B(params_[pB].data(), spec_.dims.N, spec_.dims.M, Binv_.data()); }

  ModelSpec spec_;
  TrainOptions opt_;
  std::array<bool, kNumParams> present_{};
  std::array<std::size_t, kNumParams> size_{};
  Buffers params_, grads_, m_, v_;
  AlignedVector<S> x_all_, s_all_, mask_all_, xb_, sb_, mb_, Binv_;
  std::vector<long long> prefix_, offsets_, starts_;
  std::uint64_t step_ = 0;  // the step whose batch fill() gathers
};

}  // namespace

HostTrainer::HostTrainer(const ModelSpec& spec, bool f64, const HostArrays& params, const TrainingSeries& data,
                         const TrainOptions& options) {
  check_trainer_args(spec, data, options);
  impl_ = make_impl<TrainerImpl>(f64, spec, params, data, options);
}

void HostTrainer::between() const { interruption_point(); }

}  // namespace plrnn
