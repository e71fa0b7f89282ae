// The CPU core's dispatch point: runtime model kind and observation model become template parameters
// through the dispatch shared with CUDA (core/kind_dispatch.h, generated from kinds.h), the forcing mode
// here; so no hot loop branches on configuration. The supervised path (no forcing, no observation model)
// dispatches on the kind only. Each kind's class comes from ModelFor, specialised in its models/ file.
// dispatch_f32.cpp and dispatch_f64.cpp instantiate it per scalar type (two translation units,
// compiled in parallel).
#pragma once
#include "api.h"
#include "core/errors.h"
#include "core/kind_dispatch.h"
#include "core/param_layout.h"
#include "models/alrnn.h"
#include "models/dendritic_plrnn.h"
#include "models/shallow_plrnn.h"
#include "models/standard_plrnn.h"
#include "observation/observation.h"
#include "rollout/bptt.h"
#include "rollout/forcing.h"
#include "rollout/supervised.h"
#include "vi/log_joint.h"

namespace plrnn {

template <typename S, Obs O> struct ObsFor;
template <typename S> struct ObsFor<S, Obs::Identity> { using type = IdentityObs<S>; };
template <typename S> struct ObsFor<S, Obs::Linear> { using type = LinearObs<S>; };

template <Forcing F> struct ForcingFor;
template <> struct ForcingFor<Forcing::None> { using type = NoForcing; };
template <> struct ForcingFor<Forcing::Sparse> { using type = SparseForcing; };
template <> struct ForcingFor<Forcing::Generalized> { using type = GeneralizedForcing; };

// fn(Tag<Kind>, Tag<Obs>, Tag<Forcing>) with the runtime values as compile-time constants.
template <class Fn>
decltype(auto) dispatch(Kind kind, Obs obs, Forcing forcing, Fn&& fn) {
  return dispatch_kind_obs(kind, obs, [&](auto k, auto o) -> decltype(auto) {
    switch (forcing) {
      case Forcing::None: return fn(k, o, Tag<Forcing, Forcing::None>{});
      case Forcing::Sparse: return fn(k, o, Tag<Forcing, Forcing::Sparse>{});
      case Forcing::Generalized: return fn(k, o, Tag<Forcing, Forcing::Generalized>{});
    }
    throw_invalid("forcing: unknown mode ", static_cast<int>(forcing));
  });
}

template <typename S>
LossResult run_rollout(const ModelSpec& spec, const Params<S>& p, const ForcingSpec& f,
                       const Batch<S>& batch, const Grads<S>* grads) {
  check_batch(spec, f, batch, grads ? 2 : 1);
  return dispatch(spec.kind, spec.obs, f.mode, [&](auto k, auto o, auto fm) {
    using Model = typename ModelFor<S, decltype(k)::value>::type;
    using Observation = typename ObsFor<S, decltype(o)::value>::type;
    using Rule = typename ForcingFor<decltype(fm)::value>::type;
    return rollout_or_bptt<S, Model, Observation, Rule>(spec, p, f, batch, grads);
  });
}

template <typename S>
LossResult rollout(const ModelSpec& spec, const Params<S>& p, const ForcingSpec& f, const Batch<S>& batch) {
  return run_rollout<S>(spec, p, f, batch, nullptr);
}

template <typename S>
LossResult loss_and_grad(const ModelSpec& spec, const Params<S>& p, const ForcingSpec& f,
                         const Batch<S>& batch, const Grads<S>& grads) {
  return run_rollout<S>(spec, p, f, batch, &grads);
}

template <typename S>
void generate(const ModelSpec& spec, const Params<S>& p, index_t B, index_t T, const S* z0,
              const S* s, const S* eps, S* z, S* xhat) {
  check_call(spec, ForcingSpec{}, B, T, 1);
  dispatch(spec.kind, spec.obs, Forcing::None, [&](auto k, auto o, auto) {
    using Model = typename ModelFor<S, decltype(k)::value>::type;
    using Observation = typename ObsFor<S, decltype(o)::value>::type;
    free_run<S, Model, Observation>(spec, p, B, T, z0, s, eps, z, xhat);
  });
}

template <typename S>
void initial_state(const ModelSpec& spec, const Params<S>& p, index_t B, const S* x0, S* z0) {
  check_call(spec, ForcingSpec{}, B, 1, 1);
  dispatch_kind_obs(spec.kind, spec.obs, [&](auto, auto o) {
    using Observation = typename ObsFor<S, decltype(o)::value>::type;
    const Observation obs(spec, p, nullptr);
    obs.init(Eigen::Map<const Mat<S>>(x0, spec.dims.N, B), Eigen::Map<Mat<S>>(z0, spec.dims.M, B));
  });
}

// Only the model kind becomes a template parameter on the supervised path (no forcing, no
// observation model).
template <typename S>
SupervisedLoss supervised(const ModelSpec& spec, const Params<S>& p, const ReadoutSet<const S>& readout,
                          SupLoss loss, const SupervisedBatch<S>& batch, const Grads<S>* grads,
                          const ReadoutSet<S>* readout_grads, S* gz0) {
  check_spec(spec);
  PLRNN_CHECK(spec.obs == Obs::None, "obs: a supervised model has no observation model");
  PLRNN_CHECK(batch.B >= 1, "s: batch size must be >= 1, got ", batch.B);
  PLRNN_CHECK(batch.T >= 1, "s: need at least 1 time step, got T=", batch.T);
  PLRNN_CHECK(readout.O >= 1, "O: the readout needs >= 1 output, got ", readout.O);
  PLRNN_CHECK(batch.mask != nullptr, "mask: required");
  PLRNN_CHECK(grads == nullptr || readout_grads != nullptr, "readout_grads: required with grads");
  return dispatch_kind(spec.kind, [&](auto k) {
    using Model = typename ModelFor<S, decltype(k)::value>::type;
    return rollout_supervised<S, Model>(spec, p, readout, loss, batch, grads, readout_grads, gz0);
  });
}

// The probabilistic PLRNN's log-joint: the kind becomes a template parameter (no observation model,
// no forcing: the channels are vi::Observations).
template <typename S>
vi::LogJoint vi_log_joint(const ModelSpec& spec, const Params<S>& p, const vi::Latent<S>& latent,
                          const vi::Observations<S>& obs, index_t B, index_t T, const S* z, const S* s,
                          const vi::Weights& w, const Grads<S>* grads, S* gz) {
  check_spec(spec);
  PLRNN_CHECK(spec.obs == Obs::None, "obs: the latent model of the log-joint has no observation model");
  PLRNN_CHECK(B >= 1 && T >= 1, "z: need B >= 1 and T >= 1, got B=", B, ", T=", T);
  PLRNN_CHECK(w.floor > 0, "floor: must be > 0, got ", w.floor);
  PLRNN_CHECK(grads == nullptr || gz != nullptr, "gz: required with grads");
  return dispatch_kind(spec.kind, [&](auto k) {
    using Model = typename ModelFor<S, decltype(k)::value>::type;
    return vi::log_joint_impl<S, Model>(spec, p, latent, obs, B, T, z, s, w, grads, gz);
  });
}

}  // namespace plrnn
