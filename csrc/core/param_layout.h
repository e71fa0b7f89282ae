// Which named arrays a model has and their shapes: the single source of truth used by the core
// (gradient buffers), the binding (input validation) and, through the binding, Python.
#pragma once
#include <array>
#include <utility>

#include "core/errors.h"
#include "core/types.h"

namespace plrnn {

enum ParamId : int { pA, pW, ph, palpha, ptheta, pW1, pW2, ph1, ph2, pC, pB, pL, kNumParams };

inline const char* param_name(int id) {
  static const char* names[kNumParams] = {"A", "W", "h", "alpha", "theta", "W1",
                                          "W2", "h1", "h2", "C", "B", "L"};
  return names[id];
}

// Shape [rows, cols] of parameter `id` (vectors are [n, 1]); present == false where the model has none.
struct ParamShape {
  bool present = false;
  bool vector = false;
  index_t rows = 0, cols = 0;
  index_t size() const { return rows * cols; }
};

inline ParamShape param_shape(const ModelSpec& spec, int id) {
  const Dims& d = spec.dims;
  const Kind k = spec.kind;
  auto mat = [](index_t r, index_t c) { return ParamShape{true, false, r, c}; };
  auto vec = [](index_t n) { return ParamShape{true, true, n, 1}; };
  switch (id) {
    case pA: return vec(d.M);
    case pW: return has_W(k) ? mat(d.M, d.M) : ParamShape{};
    case ph: return has_W(k) ? vec(d.M) : ParamShape{};
    case palpha: return is_dendritic(k) ? vec(d.Bb) : ParamShape{};
    case ptheta: return is_dendritic(k) ? mat(d.M, d.Bb) : ParamShape{};
    case pW1: return is_shallow(k) ? mat(d.M, d.H) : ParamShape{};
    case pW2: return is_shallow(k) ? mat(d.H, d.M) : ParamShape{};
    case ph1: return is_shallow(k) ? vec(d.M) : ParamShape{};
    case ph2: return is_shallow(k) ? vec(d.H) : ParamShape{};
    case pC: return mat(d.M, d.K);
    case pB: return spec.obs == Obs::Linear ? mat(d.N, d.M) : ParamShape{};
    case pL:
      if (spec.obs == Obs::None) return ParamShape{};
      return spec.obs == Obs::Linear ? mat(d.M, d.N) : mat(d.M - d.N, d.N);
    default: PLRNN_ASSERT(false);
  }
  return {};
}

template <typename T>
inline std::array<T**, kNumParams> param_slots(ParamSet<T>& p) {
  return {&p.A, &p.W, &p.h, &p.alpha, &p.theta, &p.W1, &p.W2, &p.h1, &p.h2, &p.C, &p.B, &p.L};
}

// Checks sizes that no model can have (the binding checks array shapes against param_shape).
inline void check_spec(const ModelSpec& spec) {
  const Dims& d = spec.dims;
  PLRNN_CHECK(d.M >= 1, "M: must be >= 1, got ", d.M);
  if (spec.obs == Obs::None)
    PLRNN_CHECK(d.N == 0, "N: a model without observation model has N=0, got ", d.N);
  else
    PLRNN_CHECK(d.N >= 1, "N: must be >= 1, got ", d.N);
  if (spec.obs == Obs::Identity)  // the first N latent units are the observations
    PLRNN_CHECK(d.N <= d.M, "M: the latent size M=", d.M, " must be >= the observed size N=", d.N,
                " with the identity observation (the linear one, x = B z, allows M < N)");
  PLRNN_CHECK(d.K >= 0, "K: must be >= 0, got ", d.K);
  if (spec.kind == Kind::ALRNN)
    PLRNN_CHECK(d.P >= 0 && d.P <= d.M, "P: must be in [0, M=", d.M, "], got ", d.P);
  if (is_dendritic(spec.kind)) PLRNN_CHECK(d.Bb >= 1, "bases: must be >= 1, got ", d.Bb);
  if (is_shallow(spec.kind)) PLRNN_CHECK(d.H >= 1, "hidden: must be >= 1, got ", d.H);
}

// The one statement of the rule "pinv(B) is needed iff the observation is linear and forcing is on"
// (docs/model.md): the bindings require Binv exactly then, both backends upload and use it exactly then.
inline bool needs_binv(const ModelSpec& spec, const ForcingSpec& f) {
  return spec.obs == Obs::Linear && f.mode != Forcing::None;
}

// The values a forcing mode takes (the one statement of these rules): run once per native call by
// check_call, and by Python's models.check_tau / check_alpha (TrainConfig: a run's settings are checked
// when they are made) through _core.check_forcing.
inline void check_forcing(const ForcingSpec& f) {
  if (f.mode == Forcing::Sparse) PLRNN_CHECK(f.tau >= 1, "tau: must be an integer >= 1, got ", f.tau);
  if (f.mode == Forcing::Generalized)
    PLRNN_CHECK(f.alpha >= 0.0 && f.alpha <= 1.0, "alpha: must be in [0, 1], got ", f.alpha);
}

// Checks of a rollout / BPTT / free-run call that do not depend on array shapes (those are the
// bindings' job); shared by the CPU core (dispatch.h) and the CUDA engine.
inline void check_call(const ModelSpec& spec, const ForcingSpec& f, index_t B, index_t T, index_t T_min) {
  check_spec(spec);
  PLRNN_CHECK(spec.obs != Obs::None,
              "obs: this call needs an observation model (identity or linear); 'none' is for supervised models");
  PLRNN_CHECK(B >= 1, "x: batch size must be >= 1, got ", B);
  PLRNN_CHECK(T >= T_min, "x: need at least ", T_min, " time steps, got T=", T);
  check_forcing(f);
}

// check_call for a rollout / BPTT batch, plus the Binv it needs (needs_binv).
template <typename S>
void check_batch(const ModelSpec& spec, const ForcingSpec& f, const Batch<S>& batch, index_t T_min) {
  check_call(spec, f, batch.B, batch.T, T_min);
  PLRNN_CHECK(!needs_binv(spec, f) || batch.Binv != nullptr,
              "Binv: the linear observation model needs pinv(B) for forcing");
}

}  // namespace plrnn
