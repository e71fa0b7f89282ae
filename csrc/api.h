// The native entry points of the CPU core. No Python here: the binding (bindings/core_module.cpp)
// checks and allocates NumPy arrays, fills the plain structs of core/types.h and calls these.
// Shapes and conventions: docs/model.md.
#pragma once
#include <string>
#include <vector>

#include "core/thread_pool.h"  // get_num_threads / set_num_threads
#include "core/types.h"
#include "regularizers/mar.h"
#include "vi/vi_types.h"

namespace plrnn {

// Forward rollout with teacher forcing: fills batch.xhat / batch.z where not null and returns the
// loss over t >= 1 (0 when T < 2).
template <typename S>
LossResult rollout(const ModelSpec& spec, const Params<S>& p, const ForcingSpec& forcing,
                   const Batch<S>& batch);

// Rollout + BPTT: the loss and its exact gradient for every parameter of the model (written to
// the non-null pointers of `grads`, shapes as the parameters). Requires T >= 2.
template <typename S>
LossResult loss_and_grad(const ModelSpec& spec, const Params<S>& p, const ForcingSpec& forcing,
                         const Batch<S>& batch, const Grads<S>& grads);

// Free run from z0 [B, M]: z_t = F(z_{t-1}, s_t) + eps_t. s [B, T, K] and eps [B, T, M] may be null.
// Writes z [B, T, M] and xhat [B, T, N] where not null.
template <typename S>
void generate(const ModelSpec& spec, const Params<S>& p, index_t B, index_t T, const S* z0,
              const S* s, const S* eps, S* z, S* xhat);

// The initial state z0 [B, M] of x0 [B, N] (the observation model's init: [x0; L x0] or L x0), each
// sequence's from its own x0 alone (core/column_product.h). One routine for both backends: a free run
// from observations and the rollouts start from it.
template <typename S>
void initial_state(const ModelSpec& spec, const Params<S>& p, index_t B, const S* x0, S* z0);

// Supervised model (no teacher forcing, no observation model: spec.obs == Obs::None): inputs drive
// z_t = F(z_{t-1}, s_t) from z_{-1} = batch.z0 (zeros when null) for t = 0 .. T-1, read out as
// y_t = B z_t + b, scored at mask[b, t] != 0 (types.h: SupervisedBatch, SupervisedLoss). Fills
// batch.y / batch.z where not null. With `grads` (then `readout_grads` too), writes the exact gradient
// of the loss for every model parameter, the readout and, where gz0 [B, M] is not null, z0.
template <typename S>
SupervisedLoss supervised(const ModelSpec& spec, const Params<S>& p, const ReadoutSet<const S>& readout,
                          SupLoss loss, const SupervisedBatch<S>& batch, const Grads<S>* grads,
                          const ReadoutSet<S>* readout_grads, S* gz0);

// Probabilistic PLRNN (docs/probabilistic.md, csrc/vi/log_joint.h): w.latent log p(z) + w.obs log p(obs | z)
// at the sample z [B, T, M] of a latent model (spec.obs == Obs::None), s [B, T, K] or null. With
// `grads`, writes the gradient of that total for every model parameter, the latent and channel
// gradient pointers that are not null, and gz [B, T, M] = d total / dz. Parallel over (b, t).
template <typename S>
vi::LogJoint vi_log_joint(const ModelSpec& spec, const Params<S>& p, const vi::Latent<S>& latent,
                          const vi::Observations<S>& obs, index_t B, index_t T, const S* z, const S* s,
                          const vi::Weights& w, const Grads<S>* grads, S* gz);

// The built-in benchmark ODEs (csrc/data/systems.h: lorenz63, lorenz96, rossler, hindmarsh_rose,
// van_der_pol, duffing; parameters in the order of python/plrnn_native/data/generators.py) integrated
// from t0 to t1 > t0 by DOP853 (csrc/data/dop853.h, the steps of SciPy's solve_ivp). u [n] holds the
// state at t0 and receives the state at t1; the states at t_eval (n_eval ascending times in [t0, t1])
// go to out [n_eval, n]. Throws std::invalid_argument for a bad call, std::runtime_error when the step
// size underflows or the state stops being finite.
// ode_dimension: the state dimension n of `system` (its parameters checked).
index_t ode_dimension(const std::string& system, const std::vector<double>& params);
void ode_integrate(const std::string& system, const std::vector<double>& params, double t0, double t1,
                   double* u, double rtol, double atol, const double* t_eval, index_t n_eval, double* out);

}  // namespace plrnn
