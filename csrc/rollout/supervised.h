// Supervised sequence learning (forward) and its exact gradient (BPTT), side by side:
//   z_{-1} = z0 (zeros by default),  z_t = F(z_{t-1}, s_t),  y_t = Bo z_t + bo     (t = 0 .. T-1)
// scored at the steps with mask[b, t] != 0 by a weighted MSE or softmax cross-entropy
// (types.h: SupervisedLoss; docs/model.md, "Supervised"). No teacher forcing: the inputs drive the
// model. The batch is split into chunks of sequences as in bptt.h (batch_chunks); a chunk keeps the
// states of all steps (the tape), sweeps back in time, and forms the parameter gradients at the end
// with one matrix product per matrix over all steps.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/eigen.h"
#include "core/grad_buffers.h"
#include "core/interrupt.h"
#include "core/scratch.h"
#include "core/thread_pool.h"

namespace plrnn {

// Gradients of the readout and of the initial state, per chunk (flat, reduced in chunk order).
template <typename S>
struct ReadoutGradBuffers {
  Mat<S> gB;  // [O, M], column-major while accumulating
  Vec<S> gb;  // [O]
  ReadoutGradBuffers(index_t O, index_t M) : gB(Mat<S>::Zero(O, M)), gb(Vec<S>::Zero(O)) {}
};

// The per-step loss of one output column and its gradient dL/dy (times `scale`), for both losses.
template <typename S>
struct ReadoutLoss {
  SupLoss kind;
  // y [O], target column (MSE) or label (CE); writes dy = scale * d loss / d y; returns the loss.
  double eval(const S* y, const S* target, std::int64_t label, index_t O, S scale, S* dy) const {
    if (kind == SupLoss::MSE) {
      double l = 0.0;
      for (index_t o = 0; o < O; ++o) {
        const S e = y[o] - target[o];
        l += static_cast<double>(e) * static_cast<double>(e);
        dy[o] = scale * S(2) * e;
      }
      return l;
    }
    // cross-entropy: logsumexp(y) - y[label], d/dy = softmax(y) - onehot(label)
    S m = y[0];
    for (index_t o = 1; o < O; ++o) m = std::max(m, y[o]);
    S sum = 0;
    for (index_t o = 0; o < O; ++o) {
      dy[o] = std::exp(y[o] - m);
      sum += dy[o];
    }
    const S inv = S(1) / sum;
    for (index_t o = 0; o < O; ++o) dy[o] = scale * (dy[o] * inv);
    dy[label] -= scale;
    return static_cast<double>(m) + std::log(static_cast<double>(sum)) - static_cast<double>(y[label]);
  }
};

template <typename S, class Model>
class ChunkSupervised {
 public:
  ChunkSupervised(const ModelSpec& spec, const Model& model, const ReadoutSet<const S>& readout,
                  const ReadoutLoss<S>& loss, const SupervisedBatch<S>& batch, index_t b0, index_t nb,
                  bool keep_tape)
      : model_(model), loss_(loss), batch_(batch),
        M_(spec.dims.M), K_(spec.dims.K), O_(readout.O), T_(batch.T), b0_(b0), nb_(nb),
        keep_(keep_tape), work_(step_work(spec, nb) + 2.0 * nb * readout.O * spec.dims.M),
        Bo_(readout.B, O_, M_), bo_(readout.b, O_),
        ws_(model, nb),
        tape_(model, keep_tape ? T_ * nb : 0),
        U_all_(Scratch<S>::get(kTapeU, M_, keep_tape ? (T_ + 1) * nb : 0)),
        G_all_(Scratch<S>::get(kTapeG, M_, keep_tape ? T_ * nb : 0)),
        E_all_(Scratch<S>::get(kTapeE, O_, keep_tape ? T_ * nb : 0)),
        S_all_(Scratch<S>::get(kTapeS, K_, keep_tape ? T_ * nb : nb)),
        scored_(keep_tape ? T_ : 0, 0) {}
  ~ChunkSupervised() { Scratch<S>::trim(); }

  // ---- forward: z_t = F(z_{t-1}, s_t), readout and loss at the scored steps ----------------
  // Returns the chunk's loss sum (times 1/scale's normaliser, see rollout_supervised). With the tape,
  // the state z_t lands in U_all's block t+1 (block 0 is z_{-1}), and E_all's block t keeps dL/dy_t.
  double forward(S grad_scale) {
    const index_t nb = nb_;
    Mat<S> ping(M_, nb), pong(M_, nb), Y(O_, nb), dY(O_, nb);
    auto state = [&](index_t t) -> Ref<S> {  // z_t for t = -1 .. T-1
      if (keep_) return U_all_.middleCols((t + 1) * nb, nb);
      return ((t + 2) % 2 == 0) ? Ref<S>(ping) : Ref<S>(pong);
    };
    {
      Ref<S> Z = state(-1);
      if (batch_.z0) Z = Eigen::Map<const Mat<S>>(batch_.z0 + b0_ * M_, M_, nb);
      else Z.setZero();
    }
    double total = 0.0;
    for (index_t t = 0; t < T_; ++t) {
      interruption_point(work_);
      Ref<S> Z = state(t);
      model_.step(state(t - 1), inputs_at(t), Z, ws_, keep_ ? &tape_ : nullptr, t * nb);
      if (batch_.z) slice(batch_.z, T_, M_, b0_, nb, t) = Z;
      const bool any = any_scored(t);
      if (!any && !batch_.y) {
        if (keep_) E_all_.middleCols(t * nb, nb).setZero();
        continue;
      }
      Y.noalias() = Bo_ * Z;
      Y.colwise() += bo_;
      if (batch_.y) slice(batch_.y, T_, O_, b0_, nb, t) = Y;
      if (!any) {
        if (keep_) E_all_.middleCols(t * nb, nb).setZero();
        continue;
      }
      dY.setZero();
      for (index_t c = 0; c < nb; ++c) {
        const index_t row = (b0_ + c) * T_ + t;
        const S w = batch_.mask[row];
        if (w == S(0)) continue;
        const S* target = batch_.target ? batch_.target + row * O_ : nullptr;
        const std::int64_t label = batch_.labels ? batch_.labels[row] : 0;
        total += static_cast<double>(w) * loss_.eval(Y.col(c).data(), target, label, O_, w * grad_scale, dY.col(c).data());
      }
      if (keep_) {
        E_all_.middleCols(t * nb, nb) = dY;
        scored_[t] = 1;
      }
    }
    return total;
  }

  // ---- gradient: reverse-time sweep; G_all's block t holds dL/dz_t --------------------------
  void backward(GradBuffers<S>& g, ReadoutGradBuffers<S>& gr, S* gz0) {
    PLRNN_ASSERT(keep_);
    const index_t nb = nb_;
    Mat<S> G0(M_, nb);  // dL/dz_{-1}
    G_all_.middleCols((T_ - 1) * nb, nb).setZero();
    for (index_t t = T_ - 1; t >= 0; --t) {
      interruption_point(2 * work_);
      auto Gt = G_all_.middleCols(t * nb, nb);
      if (scored_[t]) Gt.noalias() += Bo_.transpose() * E_all_.middleCols(t * nb, nb);  // readout at t
      Ref<S> Gprev = t >= 1 ? Ref<S>(G_all_.middleCols((t - 1) * nb, nb)) : Ref<S>(G0);
      model_.step_grad(U_all_.middleCols(t * nb, nb), Gt, Gprev, ws_, tape_, t * nb);
    }
    if (gz0) Eigen::Map<Mat<S>>(gz0 + b0_ * M_, M_, nb) = G0;
    model_.param_grads(U_all_.leftCols(T_ * nb), G_all_, S_all_, tape_, g);
    gr.gB.noalias() = E_all_ * U_all_.rightCols(T_ * nb).transpose();
    gr.gb = row_sums<S>(E_all_);
  }

 private:
  bool any_scored(index_t t) const {
    for (index_t c = 0; c < nb_; ++c)
      if (batch_.mask[(b0_ + c) * T_ + t] != S(0)) return true;
    return false;
  }

  // s_t for the chunk as a [K, nb] block (gathered once into S_all with the tape).
  CRef<S> inputs_at(index_t t) {
    auto dst = keep_ ? S_all_.middleCols(t * nb_, nb_) : S_all_.middleCols(0, nb_);
    if (K_ > 0) dst = slice(batch_.s, T_, K_, b0_, nb_, t);
    return dst;
  }

  const Model& model_;
  const ReadoutLoss<S>& loss_;
  const SupervisedBatch<S>& batch_;
  index_t M_, K_, O_, T_, b0_, nb_;
  bool keep_;
  double work_;  // of one step (interruption points)
  CMapRow<S> Bo_;
  CMapVec<S> bo_;
  typename Model::Workspace ws_;
  typename Model::Tape tape_;
  Eigen::Map<Mat<S>> U_all_, G_all_, E_all_, S_all_;  // this thread's scratch
  std::vector<char> scored_;                          // step t has a scored column (with the tape)
};

// Forward (grads == nullptr) or loss + gradient of a supervised batch, threads over the batch.
// `weight` is the sum of the mask (> 0 when a loss is asked for); the loss is normalised by it
// (times O for the MSE).
template <typename S, class Model>
SupervisedLoss rollout_supervised(const ModelSpec& spec, const Params<S>& p,
                                  const ReadoutSet<const S>& readout, SupLoss kind,
                                  const SupervisedBatch<S>& batch, const Grads<S>* grads,
                                  const ReadoutSet<S>* readout_grads, S* gz0) {
  const Model model(spec, p);
  const ReadoutLoss<S> loss{kind};
  const index_t B = batch.B, M = spec.dims.M, O = readout.O;
  double weight = 0.0;
  for (index_t i = 0; i < B * batch.T; ++i) weight += static_cast<double>(batch.mask[i]);
  if (weight > 0)
    PLRNN_CHECK(kind == SupLoss::MSE ? batch.target != nullptr : batch.labels != nullptr,
                "target: the loss needs targets at the scored steps");
  const double norm = weight * (kind == SupLoss::MSE ? static_cast<double>(O) : 1.0);
  const S grad_scale = norm > 0 ? static_cast<S>(1.0 / norm) : S(0);

  const int n_chunks = batch_chunks(B);
  std::vector<double> sums(n_chunks, 0.0);
  std::vector<GradBuffers<S>> parts;
  std::vector<ReadoutGradBuffers<S>> rparts;
  if (grads) {
    parts.assign(n_chunks, GradBuffers<S>(spec));
    rparts.assign(n_chunks, ReadoutGradBuffers<S>(O, M));
  }
  parallel_for(n_chunks, [&](int c) {
    const auto [b0, b1] = chunk_range(B, n_chunks, c);
    ChunkSupervised<S, Model> run(spec, model, readout, loss, batch, b0, b1 - b0, grads != nullptr);
    sums[c] = run.forward(grad_scale);
    if (grads) run.backward(parts[c], rparts[c], gz0);
  });
  if (grads) {
    reduce_grads(parts, *grads);
    MapRow<S> gB(readout_grads->B, O, M);
    MapVec<S> gb(readout_grads->b, O);
    gB.setZero();
    gb.setZero();
    for (const auto& r : rparts) {  // chunk order
      gB += r.gB;
      gb += r.gb;
    }
  }
  SupervisedLoss r;
  for (double v : sums) r.loss += v;
  r.loss = norm > 0 ? r.loss / norm : 0.0;
  r.weight = weight;
  return r;
}

}  // namespace plrnn
