// The engine (engine.cuh): launch planning, the kernel dispatch (kind x observation -> kernel templates
// through core/kind_dispatch.h, shared with the CPU core; the forcing mode is a runtime value inside
// the kernels), the tape and the parameter-gradient reductions. The per-call host API is in dispatch.cu.
#include "rollout/engine.cuh"

#include <algorithm>
#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "core/cuda_check.cuh"
#include "core/errors.h"
#include "core/kind_dispatch.h"
#include "core/param_layout.h"
#include "rollout/param_grads.cuh"
#include "rollout/rollout_bptt.cuh"

namespace plrnn::cuda {

void check_cuda_limits(const ModelSpec& spec, index_t B) {
  const Dims& d = spec.dims;
  // the kernels index one sequence's matrices with 32-bit ints
  const index_t width = std::max<index_t>({d.M, d.H, d.K, d.Bb, 1});
  PLRNN_CHECK(width * width < INT_MAX / 2 && d.M * std::max<index_t>(d.H, d.Bb) < INT_MAX / 2,
              "M: the CUDA kernels support matrices of up to 2^30 elements");
  PLRNN_CHECK(B < INT_MAX / 2, "x: batch too large for the CUDA kernels (B=", B, ")");
}

namespace {

template <typename S>
__global__ void transpose_kernel(const S* in, int rows, int cols, S* out) {  // in [rows, cols] -> out [cols, rows]
  __shared__ S tile[32][33];
  const int c0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
  for (int k = threadIdx.y; k < 32; k += blockDim.y) {
    const int r = r0 + k, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[k][threadIdx.x] = in[std::size_t(r) * cols + c];
  }
  __syncthreads();
  for (int k = threadIdx.y; k < 32; k += blockDim.y) {
    const int c = c0 + k, r = r0 + threadIdx.x;
    if (r < rows && c < cols) out[std::size_t(c) * rows + r] = tile[threadIdx.x][k];
  }
}

// result[0] = sse / scored, result[1] = sse, summing the per-block partials in block order.
__global__ void finish_loss_kernel(const double* part, int n, double scored, double* result) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    double s = 0.0;
    for (int i = 0; i < n; ++i) s += part[i];
    result[0] = scored > 0 ? s / scored : 0.0;
    result[1] = s;
  }
}

template <typename S>
const S* transpose(DeviceBuffer<S>& dst, const S* src, index_t rows, index_t cols) {
  if (!src || rows * cols == 0) return nullptr;
  S* out = dst.reserve(std::size_t(rows * cols));
  const dim3 grid(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>((rows + 31) / 32));
  transpose_kernel<S><<<grid, dim3(32, 8)>>>(src, static_cast<int>(rows), static_cast<int>(cols), out);
  PLRNN_CUDA_CHECK_LAUNCH("transpose_kernel");
  return out;
}

}  // namespace

// ---- Engine ---------------------------------------------------------------------------------------
template <typename S>
Engine<S>::Engine(const ModelSpec& spec) : spec_(spec) {
  int dev = 0, sms = 1, optin = 0;
  PLRNN_CUDA_CHECK(cudaGetDevice(&dev));
  PLRNN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  PLRNN_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  sms_ = std::max(sms, 1);
  smem_optin_ = static_cast<std::size_t>(std::max(optin, 48 * 1024));
}

template <typename S>
LaunchPlan Engine<S>::plan(index_t B) const {
  const Dims& d = spec_.dims;
  const bool shallow = is_shallow(spec_.kind);
  const int M = int(d.M), N = int(d.N), K = int(d.K), H = int(d.H);
  const int width = std::max(M, shallow ? H : M);  // outputs per sequence in the widest phase
  LaunchPlan pl;
  // sequences per block: fill the SMs first (one block per SM at least), then up to 8 per block
  int nb = static_cast<int>(std::min<index_t>(8, std::max<index_t>(1, B / sms_)));
  nb = std::max(1, std::min(nb, 1024 / std::max(width, 1)));
  auto threads_for = [&](int n) { return std::min(1024, std::max(32, (n * width + 31) / 32 * 32)); };
  for (;; --nb) {
    pl.nb = nb;
    pl.threads = threads_for(nb);
    pl.in_smem = smem_bytes(true, shallow, nb, M, N, K, H, pl.threads, sizeof(S)) <= smem_optin_;
    pl.smem = smem_bytes(pl.in_smem, shallow, nb, M, N, K, H, pl.threads, sizeof(S));
    if (pl.smem <= smem_optin_) break;
    PLRNN_CHECK(nb > 1, "M: the per-sequence buffers of M=", M, " (hidden ", H, ", K=", K, ", N=", N,
                ") exceed the device's shared memory per block (", smem_optin_, " bytes)");
  }
  pl.blocks = static_cast<int>((B + nb - 1) / nb);
  return pl;
}

template <typename S>
void Engine<S>::run(const Params<S>& p, const ForcingSpec& forcing, const Batch<S>& batch, const S* z0,
                    const S* eps, const Grads<S>* grads, double* result) {
  const Dims& d = spec_.dims;
  const Kind kind = spec_.kind;
  const bool shallow = is_shallow(kind);
  const index_t B = batch.B, T = batch.T, M = d.M, N = d.N, K = d.K, H = d.H;
  const bool bptt = grads != nullptr && T >= 2;
  const bool linear = spec_.obs == Obs::Linear;
  const index_t rows = B * (T - 1);

  RolloutArgs<S> a;
  a.M = int(M), a.N = int(N), a.K = int(K), a.H = int(H), a.Bb = int(d.Bb), a.P = int(d.P);
  a.B = int(B), a.T = int(T);
  a.forcing = static_cast<int>(forcing.mode);
  a.tau = forcing.tau;
  a.alpha_tf = static_cast<S>(forcing.alpha);
  const index_t scored = B * (T - 1) * N;
  a.grad_scale = scored > 0 ? S(2) / static_cast<S>(scored) : S(0);
  a.A = p.A;
  a.W = p.W;
  a.h = shallow ? p.h1 : p.h;
  a.alpha = p.alpha;
  a.theta = p.theta;
  a.W1 = p.W1;
  a.W2 = p.W2;
  a.h2 = p.h2;
  a.Bm = p.B;
  a.Binv = batch.Binv;
  a.L = p.L;
  a.Wt = transpose(Wt_, p.W, shallow ? 0 : M, M);
  a.W1t = transpose(W1t_, p.W1, shallow ? M : 0, H);
  a.W2t = transpose(W2t_, p.W2, shallow ? H : 0, M);
  a.Ct = transpose(Ct_, p.C, M, K);
  a.Bt = transpose(Bt_, p.B, linear ? N : 0, M);
  a.Binvt = transpose(Binvt_, batch.Binv, needs_binv(spec_, forcing) ? M : 0, N);
  a.x = batch.x;
  a.s = K > 0 ? batch.s : nullptr;
  a.z0 = z0;
  a.eps = eps;
  a.xhat = batch.xhat;
  a.z = batch.z;
  if (bptt) {
    const std::size_t r = std::size_t(rows), F = std::size_t(shallow ? H : M);
    a.U = U_.reserve(r * M);
    a.Phi = Phi_.reserve(r * F);
    a.E = E_.reserve(r * N);
    a.G = G_.reserve(r * M);
    a.G0 = G0_.reserve(std::size_t(B * M));
    if (shallow) a.V = V_.reserve(r * H);
    if (shallow) a.R = R_.reserve(r * H);
    if (is_dendritic(kind)) a.R = R_.reserve(r * M);
    if (shallow && is_clipped(kind)) a.D1 = D1_.reserve(r * H);
    if (linear) {
      a.Ebar = Ebar_.reserve(r * N);
      if (!a.z) a.z = zbuf_.reserve(std::size_t(B * T * M));  // dL/dB needs the pre-forcing states
    }
  }
  const LaunchPlan pl = plan(B);
  a.nb = pl.nb;
  a.weights_in_smem = pl.in_smem;
  a.sse_part = sse_.reserve(std::size_t(pl.blocks));

  dispatch_kind_obs(kind, spec_.obs, [&](auto k, auto o) {
    launch_rollout_forward<S, decltype(k)::value, decltype(o)::value>(a, pl.blocks, pl.threads, pl.smem);
  });
  finish_loss_kernel<<<1, 1>>>(a.sse_part, pl.blocks, double(scored), result);
  PLRNN_CUDA_CHECK_LAUNCH("finish_loss_kernel");
  if (!bptt) return;
  dispatch_kind_obs(kind, spec_.obs, [&](auto k, auto o) {
    launch_rollout_backward<S, decltype(k)::value, decltype(o)::value>(a, pl.blocks, pl.threads, pl.smem);
  });
  param_grads(p, batch, a.z, *grads);
}

template <typename S>
template <class X, class Y>
void Engine<S>::outer(const X& x, const Y& y, long long rows, int ni, int nj, S* out, int zero_diag_n) {
  reduce_outer<S>(part_, sms_, x, y, rows, ni, nj, out, zero_diag_n);
}

template <typename S>
template <class Fn>
void Engine<S>::column(const Fn& f, long long rows, int ncols, S* out) {
  reduce_columns<S>(part_, sms_, f, rows, ncols, out);
}

template <typename S>
void Engine<S>::param_grads(const Params<S>& p, const Batch<S>& batch, const S* z_steps, const Grads<S>& g) {
  const Dims& d = spec_.dims;
  const long long B = batch.B, T = batch.T, rows = B * (T - 1);
  const int M = int(d.M), N = int(d.N);
  StepTape<S> tape;
  tape.U = U_.data();
  tape.Phi = Phi_.data();
  tape.V = V_.data();
  tape.G = G_.data();
  tape.R = R_.data();
  tape.D1 = D1_.data();
  model_param_grads(p, tape, B, T, batch.s, g);
  if (spec_.obs == Obs::Linear) outer(tape_view<S>(Ebar_.data(), N), steps_view<S>(z_steps, M, T), rows, N, M, g.B, 0);
  // initial state: identity dL/dL = sum_b G0[b, N:] x0[b]^T, linear dL/dL = sum_b G0[b] x0[b]^T
  RowView<S> X0;
  X0.p = batch.x;
  X0.ld = N;
  X0.per = 1;
  X0.stride = T;
  const bool identity = spec_.obs == Obs::Identity;
  RowView<S> G0v = tape_view<S>(G0_.data() + (identity ? N : 0), M);
  outer(G0v, X0, B, identity ? M - N : M, N, g.L, 0);
}

template <typename S>
void Engine<S>::model_param_grads(const Params<S>& p, const StepTape<S>& tape, long long B, long long T,
                                  const S* s, const Grads<S>& g) {
  const Dims& d = spec_.dims;
  const Kind kind = spec_.kind;
  const bool shallow = is_shallow(kind);
  const long long rows = B * (T - 1);
  const int M = int(d.M), K = int(d.K), H = int(d.H), Bb = int(d.Bb);
  const RowView<S> Gv = tape_view<S>(tape.G, M), Uv = tape_view<S>(tape.U, M);

  ProductTerm<S> gu{Gv, Uv, true};
  column(gu, rows, M, g.A);
  ProductTerm<S> gsum{Gv, Gv, false};
  column(gsum, rows, M, shallow ? g.h1 : g.h);
  if (K > 0) outer(Gv, steps_view<S>(s, K, T), rows, M, K, g.C, 0);
  if (!shallow) {
    outer(Gv, tape_view<S>(tape.Phi, M), rows, M, M, g.W, zero_diag_W(kind) ? M : 0);
    if (is_dendritic(kind)) {
      S* pa = pa_.reserve(std::size_t(M) * Bb);
      S* pt = pt_.reserve(std::size_t(M) * Bb);
      if (is_clipped(kind)) {
        column(DendriticTerm<S, true, false>{tape.U, tape.R, p.theta, M, Bb}, rows, M * Bb, pa);
        column(DendriticTerm<S, true, true>{tape.U, tape.R, p.theta, M, Bb}, rows, M * Bb, pt);
      } else {
        column(DendriticTerm<S, false, false>{tape.U, tape.R, p.theta, M, Bb}, rows, M * Bb, pa);
        column(DendriticTerm<S, false, true>{tape.U, tape.R, p.theta, M, Bb}, rows, M * Bb, pt);
      }
      dendritic_finish_kernel<S><<<grid_for(std::max(M * Bb, Bb), 256), 256>>>(pa, pt, p.alpha, M, Bb, g.alpha, g.theta);
      PLRNN_CUDA_CHECK_LAUNCH("dendritic_finish_kernel");
    }
  } else {
    const RowView<S> Dv = tape_view<S>(tape.R, H);
    ProductTerm<S> gh2{is_clipped(kind) ? tape_view<S>(tape.D1, H) : Dv, Dv, false};
    column(gh2, rows, H, g.h2);
    outer(Gv, tape_view<S>(tape.Phi, H), rows, M, H, g.W1, 0);
    outer(Dv, Uv, rows, H, M, g.W2, 0);
  }
}

// ---- DeviceParams ---------------------------------------------------------------------------------
template <typename S>
DeviceParams<S>::DeviceParams(const ModelSpec& spec) : spec_(spec) {
  for (int id = 0; id < kNumParams; ++id) {
    const ParamShape ps = param_shape(spec, id);
    offset_[id] = total_;
    count_[id] = ps.present ? std::size_t(ps.size()) : 0;
    total_ += count_[id];
  }
  buf_.reserve(std::max<std::size_t>(total_, 1));
}

template <typename S>
ParamSet<S> DeviceParams<S>::pointers() const {
  ParamSet<S> out;
  auto slots = param_slots(out);
  for (int id = 0; id < kNumParams; ++id)
    if (param_shape(spec_, id).present) *slots[id] = buf_.data() + offset_[id];
  return out;
}

template <typename S>
Params<S> DeviceParams<S>::const_pointers() const {
  ParamSet<S> q = pointers();
  Params<S> out;
  auto src = param_slots(q);
  auto dst = param_slots(out);
  for (int id = 0; id < kNumParams; ++id) *dst[id] = *src[id];
  return out;
}

template <typename S>
void DeviceParams<S>::upload(const ParamSet<const S>& host) {
  ParamSet<const S> h = host;
  auto slots = param_slots(h);
  for (int id = 0; id < kNumParams; ++id)
    if (count_[id])
      PLRNN_CUDA_CHECK(cudaMemcpy(buf_.data() + offset_[id], *slots[id], count_[id] * sizeof(S), cudaMemcpyHostToDevice));
}

template <typename S>
void DeviceParams<S>::download(const ParamSet<S>& host) const {
  ParamSet<S> h = host;
  auto slots = param_slots(h);
  for (int id = 0; id < kNumParams; ++id)
    if (count_[id] && *slots[id])
      PLRNN_CUDA_CHECK(cudaMemcpy(*slots[id], buf_.data() + offset_[id], count_[id] * sizeof(S), cudaMemcpyDeviceToHost));
}

template <typename S>
void DeviceParams<S>::zero() {
  if (total_) PLRNN_CUDA_CHECK(cudaMemset(buf_.data(), 0, total_ * sizeof(S)));
}

template class Engine<float>;
template class Engine<double>;
template class DeviceParams<float>;
template class DeviceParams<double>;

}  // namespace plrnn::cuda
