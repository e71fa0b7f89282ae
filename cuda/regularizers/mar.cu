// MAR penalty and gradient on the device (mar.cuh) and its per-call host API (api.h), as
// csrc/regularizers/mar.cpp is the CPU core's; the checks of a call are the CPU core's (check_mar).
#include "regularizers/mar.cuh"

#include <vector>

#include "api.h"
#include "core/cuda_check.cuh"
#include "core/device_buffer.cuh"
#include "core/device_info.h"
#include "core/errors.h"
#include "core/param_layout.h"
#include "regularizers/mar.h"
#include "rollout/engine.cuh"

namespace plrnn::cuda {
namespace {

constexpr int kMarThreads = 256;

// item k * (cols + 2) + j: j < cols -> Wrow[i, j], j == cols -> A_i, j == cols + 1 -> bias_i.
template <typename S>
__global__ void mar_kernel(const S* A, const S* Wrow, const S* bias, const index_t* units, index_t n_units, int cols,
                           double weight, double cA, double cW, double ch, S* gA, S* gW, S* gbias, double* value) {
  __shared__ double red[kMarThreads];
  const long long per = cols + 2;
  double acc = 0.0;
  for (long long it = threadIdx.x; it < n_units * per; it += blockDim.x) {
    const long long k = it / per;
    const int j = static_cast<int>(it - k * per);
    const index_t i = units[k];
    if (j < cols) {
      const double w = Wrow[i * cols + j];
      acc += w * w / cW;
      if (gW) gW[i * cols + j] += static_cast<S>(2.0 * weight * w / cW);
    } else if (j == cols) {
      const double a = double(A[i]) - 1.0;
      acc += a * a / cA;
      if (gA) gA[i] += static_cast<S>(2.0 * weight * a / cA);
    } else {
      const double b = bias[i];
      acc += b * b / ch;
      if (gbias) gbias[i] += static_cast<S>(2.0 * weight * b / ch);
    }
  }
  red[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = 1; stride < blockDim.x; stride *= 2) {
    if (threadIdx.x % (2 * stride) == 0 && threadIdx.x + stride < blockDim.x) red[threadIdx.x] += red[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) *value += weight * red[0];
}

}  // namespace

template <typename S>
void mar_penalty_device(const ModelSpec& spec, const Params<S>& p, const MarConfig& mar, const Grads<S>& grads,
                        double* value) {
  if (mar.n_units == 0) return;
  const bool shallow = is_shallow(spec.kind);
  const index_t cols = shallow ? spec.dims.H : spec.dims.M;
  const double n = double(mar.n_units);
  const double cA = mar.mean ? n : 1.0, cW = mar.mean ? n * double(cols) : 1.0, ch = mar.mean ? n : 1.0;
  mar_kernel<S><<<1, kMarThreads>>>(p.A, shallow ? p.W1 : p.W, shallow ? p.h1 : p.h, mar.units, mar.n_units,
                                    static_cast<int>(cols), mar.weight, cA, cW, ch, grads.A,
                                    shallow ? grads.W1 : grads.W, shallow ? grads.h1 : grads.h, value);
  PLRNN_CUDA_CHECK_LAUNCH("mar_kernel");
}

template <typename S>
double mar_penalty(const ModelSpec& spec, const Params<S>& hp, const index_t* units, index_t n_units, double weight,
                   bool mean, const Grads<S>& hg, int device) {
  check_mar(spec, units, n_units, weight);
  select_device(device);
  DeviceParams<S> params(spec), grads(spec);
  params.upload(hp);
  grads.zero();
  DeviceBuffer<index_t> d_units;
  d_units.upload(units, std::size_t(n_units));
  DeviceBuffer<double> value;
  value.zero(1);
  MarConfig cfg{d_units.data(), n_units, weight, mean};
  mar_penalty_device<S>(spec, params.const_pointers(), cfg, grads.pointers(), value.data());
  double v = 0.0;
  value.download(&v, 1);
  // add into the caller's gradients (the CPU API adds too)
  std::vector<S> host(grads.size());
  if (!host.empty()) PLRNN_CUDA_CHECK(cudaMemcpy(host.data(), grads.data(), host.size() * sizeof(S), cudaMemcpyDeviceToHost));
  Grads<S> out = hg;
  auto slots = param_slots(out);
  std::size_t off = 0;
  for (int id = 0; id < kNumParams; ++id) {
    const ParamShape ps = param_shape(spec, id);
    if (!ps.present) continue;
    if (*slots[id])
      for (index_t e = 0; e < ps.size(); ++e) (*slots[id])[e] += host[off + std::size_t(e)];
    off += std::size_t(ps.size());
  }
  return v;
}

template void mar_penalty_device<float>(const ModelSpec&, const Params<float>&, const MarConfig&, const Grads<float>&,
                                        double*);
template void mar_penalty_device<double>(const ModelSpec&, const Params<double>&, const MarConfig&,
                                         const Grads<double>&, double*);
template double mar_penalty<float>(const ModelSpec&, const Params<float>&, const index_t*, index_t, double, bool,
                                   const Grads<float>&, int);
template double mar_penalty<double>(const ModelSpec&, const Params<double>&, const index_t*, index_t, double, bool,
                                    const Grads<double>&, int);

}  // namespace plrnn::cuda
