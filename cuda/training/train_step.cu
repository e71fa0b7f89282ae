// Device-resident training step (train_step.h): sampling, gather, forward + BPTT, MAR, global
// gradient norm, clipping and the Adam/RAdam update, all on the device, in stream order; one
// synchronising copy of (loss, norm, flags) per step.
//
// Sampling and teacher noise: the counter-based draws of csrc/training/counter_rng.h, the same windows
// as the CPU trainer's (csrc/training/train_step.cpp) for the same (seed, step); the update: the shared
// Adam/RAdam step of csrc/training/adam.h.
#include "training/train_step.h"

#include <cmath>
#include <string>

#include "core/errors.h"
#include "core/cuda_check.cuh"
#include "core/device_buffer.cuh"
#include "core/device_info.h"
#include "observation/pinv.h"
#include "regularizers/mar.cuh"
#include "rollout/engine.cuh"
#include "training/adam.h"
#include "training/counter_rng.h"

namespace plrnn::cuda {
namespace {

using training::u64;

// offsets[b] = first row (in the concatenated series) of batch slot b's window.
__global__ void sample_windows_kernel(u64 seed, u64 step, int batch, const long long* window_prefix, int n_series,
                                      const long long* series_offset, long long* offsets) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  const long long idx = static_cast<long long>(
      training::window_index(seed, step, static_cast<u64>(b), static_cast<u64>(window_prefix[n_series])));
  const int lo = training::series_of(window_prefix, n_series, idx);
  offsets[b] = series_offset[lo] + (idx - window_prefix[lo]);
}

// out[b, t, c] = src[offsets[b] + t, c] (+ noise_std * N(0, 1) when noise_std > 0)
template <typename S>
__global__ void gather_kernel(const S* src, int cols, const long long* offsets, int batch, int T, double noise_std,
                              u64 seed, u64 step, S* out) {
  const long long n = static_cast<long long>(batch) * T * cols;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long b = e / (static_cast<long long>(T) * cols);
    const long long rest = e - b * T * cols;
    S v = src[(offsets[b] + rest / cols) * cols + rest % cols];
    if (noise_std > 0) v += static_cast<S>(noise_std * training::normal(seed, step, static_cast<u64>(e)));
    out[e] = v;
  }
}

constexpr int kNormThreads = 256;
constexpr int kNormBlocks = 128;

template <typename S>
__global__ void sumsq_kernel(const S* g, long long n, double* part) {
  __shared__ double red[kNormThreads];
  double acc = 0.0;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<long long>(gridDim.x) * blockDim.x)
    acc += double(g[e]) * double(g[e]);
  red[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = 1; stride < blockDim.x; stride *= 2) {
    if (threadIdx.x % (2 * stride) == 0 && threadIdx.x + stride < blockDim.x) red[threadIdx.x] += red[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) part[blockIdx.x] = red[0];
}

// result[2] = sqrt(sum of the parts), in block order
__global__ void finish_norm_kernel(const double* part, int n, double* result) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    double s = 0.0;
    for (int i = 0; i < n; ++i) s += part[i];
    result[2] = sqrt(s);
  }
}

// Clip by the global norm and apply Adam/RAdam, skipping everything when loss or norm is not finite.
// result: [loss, sse, norm]; flags[0] |= 1 when an updated parameter is not finite.
template <typename S>
__global__ void adam_kernel(S* p, S* m, S* v, const S* g, long long n, const double* result, training::AdamCoeffs c,
                            int* flags) {
  const double loss = result[0], norm = result[2];
  if (!isfinite(loss) || !isfinite(norm)) return;
  const training::AdamStep<S> st(c, norm);
  bool bad = false;
  for (long long e = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const S pe = st.apply(p[e], m[e], v[e], g[e]);
    p[e] = pe;
    bad |= !isfinite(pe);
  }
  if (bad) atomicOr(flags, 1);
}

inline int blocks_for(long long n, int threads, int cap) {
  return static_cast<int>(std::max<long long>(1, std::min<long long>((n + threads - 1) / threads, cap)));
}

}  // namespace

namespace {

template <typename S>
ParamSet<S> host_set(const HostOutArrays& a) {
  ParamSet<S> out;
  auto slots = param_slots(out);
  for (int id = 0; id < kNumParams; ++id) *slots[id] = static_cast<S*>(a[id]);
  return out;
}
template <typename S>
ParamSet<const S> host_set_const(const HostArrays& a) {
  ParamSet<const S> out;
  auto slots = param_slots(out);
  for (int id = 0; id < kNumParams; ++id) *slots[id] = static_cast<const S*>(a[id]);
  return out;
}

template <typename S>
class TrainerImpl final : public TrainerHandle::Impl {
 public:
  TrainerImpl(const ModelSpec& spec, const HostArrays& params, const TrainingSeries& data, const TrainOptions& opt)
      : spec_(spec), opt_(opt), params_(spec), grads_(spec), m_(spec), v_(spec), engine_(spec) {
    params_.upload(host_set_const<S>(params));
    m_.zero();
    v_.zero();
    grads_.zero();
    const index_t N = spec.dims.N, K = spec.dims.K;
    const SeriesLayout layout = series_layout(data.lengths, opt.seq_len);
    const std::vector<long long>& offsets = layout.offsets;
    n_series_ = static_cast<int>(data.lengths.size());
    x_all_.reserve(std::size_t(layout.rows * N));
    if (K > 0) s_all_.reserve(std::size_t(layout.rows * K));
    for (std::size_t i = 0; i < data.lengths.size(); ++i) {
      const auto cnt = std::size_t(data.lengths[i]);
      PLRNN_CUDA_CHECK(cudaMemcpy(x_all_.data() + offsets[i] * N, data.x[i], cnt * N * sizeof(S),
                                  cudaMemcpyHostToDevice));
      if (K > 0)
        PLRNN_CUDA_CHECK(cudaMemcpy(s_all_.data() + offsets[i] * K, data.s[i], cnt * K * sizeof(S),
                                    cudaMemcpyHostToDevice));
    }
    prefix_.upload(layout.prefix.data(), layout.prefix.size());
    offsets_.upload(offsets.data(), offsets.size());
    windows_.reserve(std::size_t(opt.batch_size));
    const std::size_t bt = std::size_t(opt.batch_size * opt.seq_len);
    xb_.reserve(bt * N);
    if (K > 0) sb_.reserve(bt * K);
    if (spec.obs == Obs::Linear) Binv_.reserve(std::size_t(spec.dims.M * N));
    units_.upload(opt.mar_units.data(), opt.mar_units.size());
    result_.zero(3);
    norm_part_.reserve(kNormBlocks);
    flags_.zero(1);
  }

  StepResult step(double lr, double alpha, std::int64_t adam_t, std::uint64_t step_index) override {
    const int Bsz = static_cast<int>(opt_.batch_size), T = static_cast<int>(opt_.seq_len);
    const int N = static_cast<int>(spec_.dims.N), K = static_cast<int>(spec_.dims.K);
    const u64 seed = opt_.seed, k = step_index;
    sample_windows_kernel<<<blocks_for(Bsz, 128, 1 << 16), 128>>>(seed, k, Bsz, prefix_.data(), n_series_,
                                                                  offsets_.data(), windows_.data());
    PLRNN_CUDA_CHECK_LAUNCH("sample_windows_kernel");
    const long long nx = static_cast<long long>(Bsz) * T * N;
    gather_kernel<S><<<blocks_for(nx, 256, 4096), 256>>>(x_all_.data(), N, windows_.data(), Bsz, T, opt_.teacher_noise,
                                                         seed, k, xb_.data());
    PLRNN_CUDA_CHECK_LAUNCH("gather_kernel");
    Batch<S> batch;
    batch.B = Bsz;
    batch.T = T;
    batch.x = xb_.data();
    if (K > 0) {
      const long long ns = static_cast<long long>(Bsz) * T * K;
      gather_kernel<S><<<blocks_for(ns, 256, 4096), 256>>>(s_all_.data(), K, windows_.data(), Bsz, T, 0.0, seed, k,
                                                           sb_.data());
      PLRNN_CUDA_CHECK_LAUNCH("gather_kernel");
      batch.s = sb_.data();
    }
    ForcingSpec f = opt_.forcing;
    if (f.mode == Forcing::Generalized) f.alpha = alpha;
    const Params<S> p = params_.const_pointers();
    if (spec_.obs == Obs::Linear && f.mode != Forcing::None) {
      refresh_pinv();
      batch.Binv = Binv_.data();
    }
    const ParamSet<S> g = grads_.pointers();
    engine_.run(p, f, batch, nullptr, nullptr, &g, result_.data());
    if (opt_.mar_weight > 0 && !opt_.mar_units.empty()) {
      MarConfig mar{units_.data(), static_cast<index_t>(opt_.mar_units.size()), opt_.mar_weight, opt_.mar_mean};
      mar_penalty_device<S>(spec_, p, mar, g, result_.data());  // adds the penalty to the loss
    }
    const long long n = static_cast<long long>(grads_.size());
    const int nblk = blocks_for(n, kNormThreads, kNormBlocks);
    sumsq_kernel<S><<<nblk, kNormThreads>>>(grads_.data(), n, norm_part_.data());
    PLRNN_CUDA_CHECK_LAUNCH("sumsq_kernel");
    finish_norm_kernel<<<1, 1>>>(norm_part_.data(), nblk, result_.data());
    PLRNN_CUDA_CHECK_LAUNCH("finish_norm_kernel");

    const training::AdamCoeffs c = training::adam_coeffs(lr, opt_.beta1, opt_.beta2, opt_.eps, opt_.radam, adam_t,
                                                         opt_.grad_clip);
    PLRNN_CUDA_CHECK(cudaMemsetAsync(flags_.data(), 0, sizeof(int)));
    adam_kernel<S><<<blocks_for(n, 256, 1024), 256>>>(params_.data(), m_.data(), v_.data(), grads_.data(), n,
                                                      result_.data(), c, flags_.data());
    PLRNN_CUDA_CHECK_LAUNCH("adam_kernel");

    double r[3];
    int flag = 0;
    result_.download(r, 3);
    flags_.download(&flag, 1);
    StepResult out;
    out.loss = r[0];
    out.grad_norm = r[2];
    out.updated = std::isfinite(r[0]) && std::isfinite(r[2]);
    out.params_finite = flag == 0;
    return out;
  }

  void get(int which, const HostOutArrays& out) const override {
    const DeviceParams<S>* bufs[] = {&params_, &m_, &v_, &grads_};
    bufs[which]->download(host_set<S>(out));
  }
  void set(int which, const HostArrays& in) override {
    DeviceParams<S>* bufs[] = {&params_, &m_, &v_, &grads_};
    bufs[which]->upload(host_set_const<S>(in));
  }

 private:

  // Binv = pinv(B) for the forcing of the linear observation: B changes every step, so it is
  // recomputed on the host (csrc/observation/pinv.h) from the device copy of B ([N, M], small).
  void refresh_pinv();

  ModelSpec spec_;
  TrainOptions opt_;
  DeviceParams<S> params_, grads_, m_, v_;
  Engine<S> engine_;
  int n_series_ = 0;
  DeviceBuffer<S> x_all_, s_all_, xb_, sb_, Binv_;
  DeviceBuffer<long long> prefix_, offsets_, windows_;
  DeviceBuffer<index_t> units_;
  DeviceBuffer<double> result_, norm_part_;
  DeviceBuffer<int> flags_;
};

// pinv(B) by the CPU core's routine (csrc/observation/pinv.h), from the device copy of B.
template <typename S>
void TrainerImpl<S>::refresh_pinv() {
  const index_t N = spec_.dims.N, M = spec_.dims.M;
  std::vector<S> Bh(std::size_t(N * M)), P(std::size_t(M * N));
  ParamSet<S> ptr = params_.pointers();
  PLRNN_CUDA_CHECK(cudaMemcpy(Bh.data(), ptr.B, Bh.size() * sizeof(S), cudaMemcpyDeviceToHost));
  pinv_B(Bh.data(), N, M, P.data());
  Binv_.upload(P.data(), P.size());
}

}  // namespace

DeviceTrainer::DeviceTrainer(const ModelSpec& spec, bool f64, const HostArrays& params, const TrainingSeries& data,
                             const TrainOptions& options) {
  check_trainer_args(spec, data, options);
  for (const void* mask : data.mask)
    PLRNN_CHECK(mask == nullptr, "x: missing values (NaN) are not supported by the CUDA trainer; use device='cpu'");
  check_cuda_limits(spec, options.batch_size);
  select_device(options.device);
  impl_ = make_impl<TrainerImpl>(f64, spec, params, data, options);
  device_ = options.device;
}

void DeviceTrainer::enter() const { PLRNN_CUDA_CHECK(cudaSetDevice(device_)); }

}  // namespace plrnn::cuda
