// The time loop of a chunk kept in lane blocks (core/lanes.h) from the first step to the last: the
// forward pass and its gradient (BPTT) for a model that runs on lanes (the shallow PLRNN at small M,
// the Lorenz-63 default) with the identity observation, no inputs and no mask. The general loop
// (rollout/bptt.h, ChunkBPTT) moves every step's state between [M, nb] column blocks and lane blocks
// (load_lanes / store_lanes) and runs the observation model on the whole [M, nb] state; here the
// states stay in lane blocks (the tape too, with each group-step's hidden activation (the clipped
// model: W2 u; models/shallow_plrnn.h, kPhiOnTape), so that the backward pass
// does not compute it again), the residuals, the loss and their gradients are taken on the lanes, and
// only a forced step's N observed rows are copied out for the forcing.
//
// Same bits as ChunkBPTT: the steps run in the same order (time outer, the chunk's groups of L
// sequences inner), every element gets the same operations (the same functions where the compiler
// could round differently), and the per-lane gradient sums receive their terms in the same order.
// Unused lanes of a partial group are kept at 0, as load_lanes leaves them in ChunkBPTT.
#pragma once
#include <algorithm>
#include <atomic>
#include <type_traits>
#include <vector>

#include "core/eigen.h"
#include "core/grad_buffers.h"
#include "core/interrupt.h"
#include "core/lanes.h"
#include "core/scratch.h"
#include "observation/observation.h"
#include "rollout/loss.h"

namespace plrnn {

// The loop is on by default; the switch is for the tests and benchmarks that compare it with ChunkBPTT
// in one process (_core._set_lane_time_loop).
inline std::atomic<bool>& lane_time_loop_switch() {
  static std::atomic<bool> on{true};
  return on;
}
inline bool lane_time_loop_enabled() { return lane_time_loop_switch().load(std::memory_order_relaxed); }

// Whether a model has the lane-group steps (step_group / step_grad_group, e.g. models/shallow_plrnn.h)
template <class Model, class = void>
struct HasLaneGroups : std::false_type {};
template <class Model>
struct HasLaneGroups<Model, std::void_t<decltype(&Model::step_group), decltype(&Model::step_grad_group)>>
    : std::true_type {};

template <typename S, class Model>
class LaneChunkBPTT {
  static constexpr int L = Model::kGroup;  // sequences per group (one per lane)

 public:
  // Whether a call can take this loop: the model runs on lanes, the gradient is wanted, and there are
  // no inputs, no mask and no requested outputs (states, predictions).
  static bool applies(const ModelSpec& spec, const Model& model, const Batch<S>& batch, bool gradient) {
    return gradient && model.lanes() && spec.dims.K == 0 && !batch.mask && !batch.z && !batch.xhat && batch.T >= 2;
  }

  LaneChunkBPTT(const ModelSpec& spec, const Model& model, const IdentityObs<S>& obs, const std::vector<S>& weight,
                const Batch<S>& batch, index_t b0, index_t nb)
      : model_(model), obs_(obs), weight_(weight), batch_(batch),
        M_(spec.dims.M), N_(spec.dims.N), T_(batch.T), b0_(b0), nb_(nb),
        groups_((nb + L - 1) / L), blk_(model.lane_rows() * L), work_(step_work(spec, nb)),
        tape_(model, (batch.T - 1) * nb),
        U_(Scratch<S>::get(kTapeU, blk_ * groups_, T_)),         // states after forcing, steps 0..T-2; T-1 unforced
        E_(Scratch<S>::get(kTapeE, N_ * L * groups_, T_ - 1)),  // grad_scale * residuals, steps 1..T-1
        G_(Scratch<S>::get(kTapeG, blk_ * groups_, 2)),
        V_(Scratch<S>::get(kTapeZ, model.lane_hidden_size() * groups_, T_ - 1)),  // (kTapeZ: free here)
        Xl_(Scratch<S>::get(kTapeS, N_ * L * groups_, T_)) {}  // (kTapeS: free here, K = 0)
  ~LaneChunkBPTT() { Scratch<S>::trim(); }

  // The sum of squared errors over t >= 1 (ChunkBPTT::forward without outputs). A step's residuals
  // z - x are taken on the lane blocks' N observed rows against the chunk's data in lane blocks (Xl_,
  // transposed once per call), their squares summed in the order of score_residuals (rollout/loss.h:
  // squares rounded on their own, then added column by column), and grad_scale times them kept on the
  // tape in lane blocks (E_) for the backward pass: the same operations as ChunkBPTT, elementwise. A
  // forced step's observed rows go through the observation model's force as one [N, nb] block, as in
  // ChunkBPTT (the compiler fuses and vectorises a loop by its shape, which a rewrite would change).
  double forward(S grad_scale) {
    using namespace Eigen::internal;
    using Bk = typename lanes::Lane<S>::Block;
    {  // z_0 = init(x_0), forced at t = 0, as columns; then into the lane blocks of step 0
      Mat<S> Z0(M_, nb_);
      obs_.init(x_at(0), Z0);
      if (weight_[0] != S(0)) obs_.force(Z0, x_at(0), weight_[0]);
      U_.setZero();  // the padding rows and the unused lanes stay 0
      for (index_t g = 0; g < groups_; ++g)
        lanes::load_lanes(Z0.data(), M_, M_, g * L, width(g), u_block(0, g));
    }
    for (index_t t = 1; t < T_; ++t)  // the data in lane blocks (unused lanes 0)
      for (index_t g = 0; g < groups_; ++g)
        lanes::load_lanes(x_at(t).data(), T_ * N_, N_, g * L, width(g), xl_block(t, g));
    double sse = 0.0;
    Mat<S> Zx(N_, nb_);  // a forced step's observed rows as columns
    AlignedVector<S> sq(N_ * L);
    const Bk scale = pset1<Bk>(grad_scale);
    for (index_t t = 1; t < T_; ++t) {
      interruption_point(work_);
      const S a = t < T_ - 1 ? weight_[t] : S(0);
      S sum = S(0);
      for (index_t g = 0; g < groups_; ++g) {
        const index_t n = width(g);
        S* z = u_block(t, g);
        model_.step_group(u_block(t - 1, g), z, v_block(t - 1, g));
        const S* xl = xl_block(t, g);
        S* e = e_block(t - 1, g);
        for (index_t r = 0; r < N_; ++r) {  // the residual, score_residuals' squares and tape (score_row_residuals)
          const Bk d = psub(pload<Bk>(z + r * L), pload<Bk>(xl + r * L));
          pstore(sq.data() + r * L, pmul(d, d));
          pstore(e + r * L, pmul(scale, d));
        }
        for (index_t j = 0; j < n; ++j)  // score_residuals' order: column by column
          for (index_t r = 0; r < N_; ++r) sum += sq[r * L + j];
        for (index_t r = 0; r < N_; ++r)  // the unused lanes' residuals are not the loss's
          for (index_t j = n; j < L; ++j) e[r * L + j] = S(0);
        if (a != S(0)) rows_to_columns(z, g, Zx);
      }
      sse += static_cast<double>(sum);
      if (a != S(0)) obs_.force(Zx, x_at(t), a);
      for (index_t g = 0; g < groups_; ++g) {
        const index_t n = width(g);
        S* z = u_block(t, g);
        if (a != S(0)) columns_to_rows(Zx, g, z);
        for (index_t r = 0; r < M_; ++r)  // unused lanes back to 0 (they saw the biases)
          for (index_t j = n; j < L; ++j) z[r * L + j] = S(0);
      }
    }
    return sse;
  }

  // The gradient of forward's loss (times grad_scale) into g (ChunkBPTT::backward)
  void backward(GradBuffers<S>& grads) {
    S* cur = G_.col(0).data();   // dL/dz_t of every group
    S* prev = G_.col(1).data();  // dL/dz_{t-1}
    std::fill(cur, cur + blk_ * groups_, S(0));  // nothing flows back into z_{T-1}
    using namespace Eigen::internal;
    using Bk = typename lanes::Lane<S>::Block;
    for (index_t t = T_ - 1; t >= 1; --t) {
      interruption_point(2 * work_);
      const S a = weight_[t - 1];
      const Bk keep = pset1<Bk>(S(1) - a);
      for (index_t g = 0; g < groups_; ++g) {
        S* gt = cur + g * blk_;
        const S* e = e_block(t - 1, g);
        for (index_t r = 0; r < N_; ++r)  // IdentityObs::observe_grad (unused lanes: + 0)
          pstore(gt + r * L, padd(pload<Bk>(gt + r * L), pload<Bk>(e + r * L)));
        S* gp = prev + g * blk_;
        model_.step_grad_group(u_block(t - 1, g), gt, gp, tape_, v_block(t - 1, g));
        if (a != S(0))  // IdentityObs::force_grad (unused lanes: 0 times 1 - a)
          for (index_t r = 0; r < N_; ++r) pstore(gp + r * L, pmul(pload<Bk>(gp + r * L), keep));
      }
      std::swap(cur, prev);
    }
    Mat<S> G0(M_, nb_);  // dL/dz_0 as columns
    for (index_t g = 0; g < groups_; ++g) lanes::store_lanes(cur + g * blk_, M_, g * L, width(g), G0.data(), M_);
    obs_.init_grad(G0, x_at(0), grads);
    const Mat<S> none;  // the lanes' parameter gradients come from the tape's sums alone (K = 0)
    model_.param_grads(none, none, none, tape_, grads);
  }

 private:
  index_t width(index_t g) const { return std::min<index_t>(L, nb_ - g * L); }
  S* u_block(index_t t, index_t g) { return U_.col(t).data() + g * blk_; }
  S* v_block(index_t t, index_t g) { return V_.col(t).data() + g * model_.lane_hidden_size(); }
  S* e_block(index_t t, index_t g) { return E_.col(t).data() + g * N_ * L; }  // [N, L] lane block
  S* xl_block(index_t t, index_t g) { return Xl_.col(t).data() + g * N_ * L; }  // [N, L] lane block
  // the N observed rows of group g's lane block z <-> its columns of a [N, nb] block
  void rows_to_columns(const S* z, index_t g, Mat<S>& X) const {
    for (index_t j = 0; j < width(g); ++j)
      for (index_t r = 0; r < N_; ++r) X(r, g * L + j) = z[r * L + j];
  }
  void columns_to_rows(const Mat<S>& X, index_t g, S* z) const {
    for (index_t j = 0; j < width(g); ++j)
      for (index_t r = 0; r < N_; ++r) z[r * L + j] = X(r, g * L + j);
  }
  CMapSlice<S> x_at(index_t t) const { return slice(batch_.x, T_, N_, b0_, nb_, t); }

  const Model& model_;
  const IdentityObs<S>& obs_;
  const std::vector<S>& weight_;
  const Batch<S>& batch_;
  index_t M_, N_, T_, b0_, nb_, groups_, blk_;
  double work_;
  typename Model::Tape tape_;  // the per-lane gradient sums
  Eigen::Map<Mat<S>> U_, E_, G_;  // E_: [N, L] lane blocks of every group
  Eigen::Map<Mat<S>> V_;  // the hidden tape of every group-step (step_group's v_tape), read backwards
  Eigen::Map<Mat<S>> Xl_;  // the data of every step in [N, L] lane blocks of every group
};

}  // namespace plrnn
