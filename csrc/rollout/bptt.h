// Batched rollout with teacher forcing (forward) and its exact gradient (BPTT), side by side.
// The batch is split into chunks of sequences (core/thread_pool.h: batch_chunks, a number that depends
// on B only), which the threads take in turn; each chunk runs the whole time loop
// with [rows, nb] column-major blocks, stores what the backward pass needs (the tape), and the
// parameter gradients are formed at the end with one matrix product per matrix over all steps.
// With a mask (batch.mask, missing values) the residuals of missing entries are zeroed, the
// initial state reads mask .* x_0 and the forcing pulls only the observed entries.
#pragma once
#include <algorithm>
#include <vector>

#include "core/eigen.h"
#include "core/grad_buffers.h"
#include "core/interrupt.h"
#include "core/scratch.h"
#include "core/thread_pool.h"
#include "rollout/forcing.h"
#include "rollout/lane_bptt.h"
#include "rollout/loss.h"

namespace plrnn {

template <typename S, class Model, class Observation>
class ChunkBPTT {
 public:
  // weight: the forcing weight a(t) of every step t < T (rollout/forcing.h: forcing_weights)
  ChunkBPTT(const ModelSpec& spec, const Model& model, const Observation& obs,
            const std::vector<S>& weight, const Batch<S>& batch, index_t b0, index_t nb, bool keep_tape)
      : model_(model), obs_(obs), weight_(weight), batch_(batch),
        M_(spec.dims.M), N_(spec.dims.N), K_(spec.dims.K), T_(batch.T), b0_(b0), nb_(nb),
        cols_(keep_tape ? (batch.T - 1) * nb : 0), work_(step_work(spec, nb)),
        ws_(model, nb),
        tape_(model, cols_),
        U_all_(Scratch<S>::get(kTapeU, M_, cols_)),
        G_all_(Scratch<S>::get(kTapeG, M_, cols_)),
        E_all_(Scratch<S>::get(kTapeE, N_, cols_)),
        Z_all_(Scratch<S>::get(kTapeZ, Observation::kNeedsStates ? M_ : 0, cols_)),
        S_all_(Scratch<S>::get(kTapeS, K_, keep_tape ? cols_ : nb)) {}
  ~ChunkBPTT() { Scratch<S>::trim(); }

  // ---- forward: z_0 = init(x_0); z_t = F(force(z_{t-1}, x_{t-1}, a_{t-1}), s_t) ------------
  // Returns the sum of squared errors over t >= 1. With the tape, step t writes z_t straight into
  // U_all's block t (the next step's input), where the forcing then acts in place; the tape also
  // keeps E (residuals times grad_scale) and, for the linear observation, Z (states before forcing).
  double forward(S grad_scale) {
    const bool keep = cols_ > 0;
    const index_t nb = nb_;
    Mat<S> ping(M_, nb), pong(M_, nb), Xhat(N_, nb), E(N_, nb);
    auto state = [&](index_t t) -> Ref<S> {  // where u_t (z_t before forcing) lives
      if (keep && t < T_ - 1) return U_all_.middleCols(t * nb, nb);
      return (t % 2 == 0) ? Ref<S>(ping) : Ref<S>(pong);
    };
    {
      Ref<S> Z0 = state(0);
      obs_.init(x0(), Z0);
      emit(0, Z0, Xhat);
      force_at(0, Z0);
    }
    double sse = 0.0;
    for (index_t t = 1; t < T_; ++t) {
      interruption_point(work_);
      const index_t c0 = (t - 1) * nb;
      Ref<S> Z = state(t);
      model_.step(state(t - 1), inputs_at(t), Z, ws_, keep ? &tape_ : nullptr, c0);
      S* e = keep ? E_all_.data() + c0 * N_ : nullptr;  // the tape's residuals (times grad_scale)
      if constexpr (Observation::kObservesRows) {       // the residual straight from Z's first N rows
        if (batch_.mask) {
          const CMapSlice<S> Mk = mask_at(t);
          sse += score_row_residuals<S>(Z, x_at(t), &Mk, E, e, grad_scale);
        } else {
          sse += score_row_residuals<S>(Z, x_at(t), nullptr, E, e, grad_scale);
        }
      } else {
        obs_.residual(Z, x_at(t), E);
        if (batch_.mask) E.array() *= mask_at(t).array();
        sse += score_residuals(E, e, grad_scale);
      }
      if constexpr (Observation::kNeedsStates)
        if (keep) Z_all_.middleCols(c0, nb) = Z;
      emit(t, Z, Xhat);
      if (t < T_ - 1) force_at(t, Z);
    }
    return sse;
  }

  // ---- gradient: reverse-time sweep over the tape, then the parameter gradients ---------------
  // G_all's block t-1 holds dL/dz_t; step t's gradient is written straight into block t-2.
  void backward(GradBuffers<S>& g) {
    PLRNN_ASSERT(cols_ > 0);
    const index_t nb = nb_;
    Mat<S> G0(M_, nb);  // dL/dz_0
    G_all_.middleCols((T_ - 2) * nb, nb).setZero();  // nothing flows back into z_{T-1}
    for (index_t t = T_ - 1; t >= 1; --t) {
      interruption_point(2 * work_);
      const index_t c0 = (t - 1) * nb;
      auto Gt = G_all_.middleCols(c0, nb);
      obs_.observe_grad(E_all_.middleCols(c0, nb), Gt);  // loss at t
      Ref<S> Gprev = t >= 2 ? Ref<S>(G_all_.middleCols(c0 - nb, nb)) : Ref<S>(G0);
      model_.step_grad(U_all_.middleCols(c0, nb), Gt, Gprev, ws_, tape_, c0);
      const S a = weight_[t - 1];
      if (a == S(0)) continue;
      if (batch_.mask)
        obs_.force_grad_masked(Gprev, states_before_forcing(t - 1), mask_at(t - 1), a, g);
      else
        obs_.force_grad(Gprev, states_before_forcing(t - 1), a, g);
    }
    obs_.init_grad(G0, x0(), g);
    model_.param_grads(U_all_, G_all_, S_all_, tape_, g);
    obs_.param_grads(E_all_, Z_all_, g);
  }

 private:
  void force_at(index_t t, Ref<S> Z) {
    const S a = weight_[t];
    if (a == S(0)) return;
    if (batch_.mask)
      obs_.force_masked(Z, x_at(t), mask_at(t), a);
    else
      obs_.force(Z, x_at(t), a);
  }

  CMapSlice<S> x_at(index_t t) const { return slice(batch_.x, T_, N_, b0_, nb_, t); }
  CMapSlice<S> mask_at(index_t t) const { return slice(batch_.mask, T_, N_, b0_, nb_, t); }

  // x_0 as the initial state sees it: mask .* x_0 with missing values (a missing entry reads 0).
  CRef<S> x0() {
    if (!batch_.mask) return x_at(0);
    X0_ = x_at(0).cwiseProduct(mask_at(0));
    return X0_;
  }

  // Pre-forcing states z_t, t >= 1, of the chunk (kept only where the observation model needs them).
  CRef<S> states_before_forcing(index_t t) const {
    if constexpr (Observation::kNeedsStates) return Z_all_.middleCols((t - 1) * nb_, nb_);
    return Z_all_;
  }

  // s_t for the chunk as a [K, nb] block (gathered once into S_all with the tape).
  CRef<S> inputs_at(index_t t) {
    const bool keep = cols_ > 0;
    auto dst = keep ? S_all_.middleCols((t - 1) * nb_, nb_) : S_all_.middleCols(0, nb_);
    if (K_ > 0) dst = slice(batch_.s, T_, K_, b0_, nb_, t);
    return dst;
  }

  void emit(index_t t, CRef<S> Z, Ref<S> Xhat) {
    if (batch_.z) slice(batch_.z, T_, M_, b0_, nb_, t) = Z;
    if (batch_.xhat) {
      obs_.observe(Z, Xhat);
      slice(batch_.xhat, T_, N_, b0_, nb_, t) = Xhat;
    }
  }

  const Model& model_;
  const Observation& obs_;
  const std::vector<S>& weight_;  // the forcing weight a(t) of every step (the rule evaluated once)
  const Batch<S>& batch_;
  index_t M_, N_, K_, T_, b0_, nb_, cols_;
  double work_;  // of one step (interruption points)
  Mat<S> X0_;  // mask .* x_0 (missing values only)
  typename Model::Workspace ws_;
  typename Model::Tape tape_;
  Eigen::Map<Mat<S>> U_all_, G_all_, E_all_, Z_all_, S_all_;  // [*, cols], this thread's scratch
};

// Number of scored entries (t >= 1): B (T-1) N, or the observed ones among them with a mask.
template <typename S>
double scored_entries(const Batch<S>& batch, index_t N) {
  const index_t B = batch.B, T = batch.T;
  if (T < 2) return 0.0;
  if (!batch.mask) return static_cast<double>(B) * static_cast<double>(T - 1) * static_cast<double>(N);
  double n = 0.0;
  for (index_t b = 0; b < B; ++b) {
    const S* m = batch.mask + (b * T + 1) * N;
    for (index_t i = 0; i < (T - 1) * N; ++i) n += m[i] != S(0) ? 1.0 : 0.0;
  }
  return n;
}

// Rollout (grads == nullptr) or loss + gradient (BPTT) of a batch, threads over the batch.
template <typename S, class Model, class Observation, class ForcingRule>
LossResult rollout_or_bptt(const ModelSpec& spec, const Params<S>& p, const ForcingSpec& fs,
                           const Batch<S>& batch, const Grads<S>* grads) {
  const Model model(spec, p);
  const Observation obs(spec, p, batch.Binv);
  const std::vector<S> weight = forcing_weights<S>(ForcingRule(fs), batch.T);  // once per call
  const index_t B = batch.B, T = batch.T;
  const int n_chunks = batch_chunks(B);
  const double scored = scored_entries(batch, spec.dims.N);
  const S grad_scale = scored > 0 ? S(2) / static_cast<S>(scored) : S(0);

  std::vector<double> sse(n_chunks, 0.0);
  std::vector<GradBuffers<S>>& parts = chunk_grad_buffers<S>(spec, grads ? n_chunks : 0);
  // the time loop in lane blocks where it applies (rollout/lane_bptt.h: the same bits)
  constexpr bool kLaneCapable = HasLaneGroups<Model>::value && std::is_same_v<Observation, IdentityObs<S>>;
  bool lane_loop = false;
  if constexpr (kLaneCapable)
    lane_loop = lane_time_loop_enabled() && LaneChunkBPTT<S, Model>::applies(spec, model, batch, grads != nullptr);
  parallel_for(n_chunks, [&](int c) {
    const auto [b0, b1] = chunk_range(B, n_chunks, c);
    if (batch.fill) batch.fill(batch.fill_ctx, b0, b1);
    if constexpr (kLaneCapable) {
      if (lane_loop) {
        LaneChunkBPTT<S, Model> run(spec, model, obs, weight, batch, b0, b1 - b0);
        sse[c] = run.forward(grad_scale);
        run.backward(parts[c]);
        return;
      }
    }
    ChunkBPTT<S, Model, Observation> run(spec, model, obs, weight, batch, b0, b1 - b0,
                                         grads != nullptr && T >= 2);
    sse[c] = run.forward(grad_scale);
    if (grads && T >= 2) run.backward(parts[c]);
  });
  if (grads) reduce_grads(parts, *grads);
  trim_chunk_grad_buffers(parts, Scratch<S>::kKeepBytes);

  LossResult r;
  for (double v : sse) r.sse += v;
  r.scored = scored;
  r.loss = scored > 0 ? r.sse / scored : 0.0;
  return r;
}

// Free-running generation z_t = F(z_{t-1}, s_t) + eps_t from given z_0, threads over the batch.
//   z0 [B, M], s [B, T, K] or nullptr, eps [B, T, M] or nullptr; out z [B, T, M], xhat [B, T, N].
template <typename S, class Model, class Observation>
void free_run(const ModelSpec& spec, const Params<S>& p, index_t B, index_t T, const S* z0,
              const S* s, const S* eps, S* z_out, S* xhat_out) {
  const Model model(spec, p);
  const Observation obs(spec, p, nullptr);
  const index_t M = spec.dims.M, N = spec.dims.N, K = spec.dims.K;
  const int n_chunks = batch_chunks(B);
  parallel_for(n_chunks, [&](int c) {
    const auto [b0, b1] = chunk_range(B, n_chunks, c);
    const index_t nb = b1 - b0;
    typename Model::Workspace ws(model, nb);
    Mat<S> Z = Eigen::Map<const Mat<S>>(z0 + b0 * M, M, nb), Znext(M, nb), Xhat(N, nb), Sx(K, nb);
    const double work = step_work(spec, nb);
    for (index_t t = 0; t < T; ++t) {
      interruption_point(work);
      if (t > 0) {
        if (K > 0) Sx = slice(s, T, K, b0, nb, t);
        model.step(Z, Sx, Znext, ws, nullptr, 0);
        if (eps) Znext += slice(eps, T, M, b0, nb, t);
        Z.swap(Znext);
      }
      if (z_out) slice(z_out, T, M, b0, nb, t) = Z;
      if (xhat_out) {
        obs.observe(Z, Xhat);
        slice(xhat_out, T, N, b0, nb, t) = Xhat;
      }
    }
  });
}

}  // namespace plrnn
