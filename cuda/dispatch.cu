// The CUDA backend's host API (api.h), as csrc/dispatch.h is the CPU core's: checks the call (the same
// checks as the CPU core, core/param_layout.h, plus the kernels' limits), selects the device, uploads
// the parameters and the batch, runs the engine (rollout/engine.cuh, whose kernel dispatch over kinds is
// shared with the CPU core) and downloads the results.
#include <climits>
#include <memory>

#include "api.h"
#include "core/device_buffer.cuh"
#include "core/device_info.h"
#include "core/errors.h"
#include "core/param_layout.h"
#include "rollout/engine.cuh"
#include "vi/log_joint.cuh"

namespace plrnn::cuda {

namespace {

template <typename S>
struct Uploaded {
  DeviceBuffer<S> x, s, Binv, xhat, z, z0, eps;
};

template <typename S>
LossResult run_host(const ModelSpec& spec, const Params<S>& hp, const ForcingSpec& f, const Batch<S>& hb,
                    const Grads<S>* hg, int device) {
  check_batch(spec, f, hb, hg ? 2 : 1);
  check_cuda_limits(spec, hb.B);
  select_device(device);
  const Dims& d = spec.dims;
  const std::size_t B = hb.B, T = hb.T;
  DeviceParams<S> params(spec);
  params.upload(hp);
  Uploaded<S> u;
  Batch<S> db;
  db.B = hb.B;
  db.T = hb.T;
  u.x.upload(hb.x, B * T * d.N);
  db.x = u.x.data();
  if (d.K > 0) {
    u.s.upload(hb.s, B * T * d.K);
    db.s = u.s.data();
  }
  if (needs_binv(spec, f)) {
    u.Binv.upload(hb.Binv, std::size_t(d.M * d.N));
    db.Binv = u.Binv.data();
  }
  if (hb.xhat) db.xhat = u.xhat.reserve(B * T * d.N);
  if (hb.z) db.z = u.z.reserve(B * T * d.M);
  std::unique_ptr<DeviceParams<S>> grads;
  ParamSet<S> dg;
  if (hg) {
    grads = std::make_unique<DeviceParams<S>>(spec);
    grads->zero();
    dg = grads->pointers();
  }
  DeviceBuffer<double> result(2);
  Engine<S> engine(spec);
  engine.run(params.const_pointers(), f, db, nullptr, nullptr, hg ? &dg : nullptr, result.data());
  double r[2];
  result.download(r, 2);
  if (hb.xhat) u.xhat.download(hb.xhat, B * T * d.N);
  if (hb.z) u.z.download(hb.z, B * T * d.M);
  if (hg) grads->download(*hg);
  LossResult out;
  out.loss = r[0];
  out.sse = r[1];
  return out;
}

}  // namespace

template <typename S>
LossResult rollout(const ModelSpec& spec, const Params<S>& p, const ForcingSpec& f, const Batch<S>& b, int device) {
  return run_host<S>(spec, p, f, b, nullptr, device);
}

template <typename S>
LossResult loss_and_grad(const ModelSpec& spec, const Params<S>& p, const ForcingSpec& f, const Batch<S>& b,
                         const Grads<S>& g, int device) {
  return run_host<S>(spec, p, f, b, &g, device);
}

template <typename S>
void generate(const ModelSpec& spec, const Params<S>& hp, index_t B, index_t T, const S* z0, const S* s,
              const S* eps, S* z, S* xhat, int device) {
  check_call(spec, ForcingSpec{}, B, T, 1);
  check_cuda_limits(spec, B);
  select_device(device);
  const Dims& d = spec.dims;
  DeviceParams<S> params(spec);
  params.upload(hp);
  Uploaded<S> u;
  Batch<S> db;
  db.B = B;
  db.T = T;
  u.z0.upload(z0, std::size_t(B * d.M));
  if (d.K > 0 && s) {
    u.s.upload(s, std::size_t(B * T * d.K));
    db.s = u.s.data();
  }
  PLRNN_CHECK(d.K == 0 || s != nullptr, "s: the model has K=", d.K, " inputs, s is required");
  if (eps) u.eps.upload(eps, std::size_t(B * T * d.M));
  if (xhat) db.xhat = u.xhat.reserve(std::size_t(B * T * d.N));
  if (z) db.z = u.z.reserve(std::size_t(B * T * d.M));
  DeviceBuffer<double> result(2);
  Engine<S> engine(spec);
  engine.run(params.const_pointers(), ForcingSpec{}, db, u.z0.data(), eps ? u.eps.data() : nullptr, nullptr,
             result.data());
  if (xhat) u.xhat.download(xhat, std::size_t(B * T * d.N));
  if (z) u.z.download(z, std::size_t(B * T * d.M));
}

// The probabilistic PLRNN's log-joint: the CPU core's checks (csrc/dispatch.h), the kernels' limits, then
// the device (vi/log_joint.cu; the kind dispatch of its transition kernel is there).
template <typename S>
vi::LogJoint vi_log_joint(const ModelSpec& spec, const Params<S>& p, const vi::Latent<S>& latent,
                          const vi::Observations<S>& obs, index_t B, index_t T, const S* z, const S* s,
                          const vi::Weights& w, const Grads<S>* grads, S* gz, int device) {
  check_spec(spec);
  PLRNN_CHECK(spec.obs == Obs::None, "obs: the latent model of the log-joint has no observation model");
  PLRNN_CHECK(B >= 1 && T >= 1, "z: need B >= 1 and T >= 1, got B=", B, ", T=", T);
  PLRNN_CHECK(w.floor > 0, "floor: must be > 0, got ", w.floor);
  PLRNN_CHECK(grads == nullptr || gz != nullptr, "gz: required with grads");
  PLRNN_CHECK(spec.dims.K == 0 || s != nullptr, "s: the model has K=", spec.dims.K, " inputs, s is required");
  check_cuda_limits(spec, B);
  PLRNN_CHECK(T < INT_MAX / 2 && B * T < INT_MAX / 2, "z: too many time steps for the CUDA kernels (B=", B,
              ", T=", T, ")");
  select_device(device);
  return vi_log_joint_run<S>(spec, p, latent, obs, B, T, z, s, w, grads, gz);
}

#define PLRNN_INSTANTIATE_HOST_API(S)                                                                       \
  template LossResult rollout<S>(const ModelSpec&, const Params<S>&, const ForcingSpec&, const Batch<S>&, int); \
  template LossResult loss_and_grad<S>(const ModelSpec&, const Params<S>&, const ForcingSpec&, const Batch<S>&, \
                                       const Grads<S>&, int);                                                 \
  template void generate<S>(const ModelSpec&, const Params<S>&, index_t, index_t, const S*, const S*, const S*, \
                            S*, S*, int);                                                               \
  template vi::LogJoint vi_log_joint<S>(const ModelSpec&, const Params<S>&, const vi::Latent<S>&,               \
                                        const vi::Observations<S>&, index_t, index_t, const S*, const S*,       \
                                        const vi::Weights&, const Grads<S>*, S*, int);
PLRNN_INSTANTIATE_HOST_API(float)
PLRNN_INSTANTIATE_HOST_API(double)

}  // namespace plrnn::cuda
