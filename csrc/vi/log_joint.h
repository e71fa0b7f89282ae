// The log-joint density of the probabilistic PLRNN for a sample z [B, T, M] and its exact gradient
// with respect to every generative parameter and to z (docs/probabilistic.md; NumPy reference:
// python/plrnn_native/reference_vi.py). Value and gradient side by side, per term.
//
// Every term couples only z_{t-1} and z_t (and the HRF window), so there is no recursion over time:
//   1. transitions: all B (T-1) pairs (z_{t-1}, z_t) are columns of one [M, n] block per task; the
//      model's step, step_grad and param_grads (csrc/models/) run once per task on the whole block,
//      i.e. one matrix product per matrix instead of T - 1 dependent ones;
//   2. observations: all (b, t) are the columns of the [M, B T] view of z, split into tasks;
//   3. assembly of dlogp/dz from the per-transition and per-step parts (disjoint writes).
// The tasks are contiguous ranges whose number depends on the sizes only (never on the thread
// count), and their partial sums are reduced in task order: the result is the same for every
// thread count, bit for bit.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/eigen.h"
#include "core/errors.h"
#include "core/grad_buffers.h"
#include "core/interrupt.h"
#include "core/param_layout.h"
#include "core/scratch.h"
#include "core/thread_pool.h"
#include "vi/vi_types.h"

namespace plrnn::vi {

constexpr double kLog2Pi = 1.8378770664093454835606594728112;
constexpr index_t kTaskColumns = 512;  // columns per task (at most kMaxTasks tasks)
constexpr int kMaxTasks = 64;

inline int task_count(index_t columns) {
  return static_cast<int>(std::clamp<index_t>((columns + kTaskColumns - 1) / kTaskColumns, 1, kMaxTasks));
}

// sigma = floor + exp(log_sigma) and d log N / d log_sigma = (u^2 - 1) (sigma - floor) / sigma.
template <typename S>
Vec<S> noise_std(const S* log_sigma, index_t n, double floor) {
  return (CMapVec<S>(log_sigma, n).array().exp() + static_cast<S>(floor)).matrix();
}

// Masked Gaussian log density of the residuals E [n, cols] (W: 0/1 weights or empty = all 1):
// returns the value; E becomes d value / d mean = W E / sigma^2 (times `scale`), and
// g_log_sigma [n] gets scale * sum_cols W (u^2 - 1) (sigma - floor) / sigma added.
template <typename S>
double gaussian_term(Ref<S> E, const Mat<S>* W, const Vec<S>& sigma, double floor, S scale, Vec<S>& g_log_sigma) {
  const index_t n = E.rows(), cols = E.cols();
  std::vector<double> log_sigma(n);
  for (index_t i = 0; i < n; ++i) log_sigma[i] = std::log(static_cast<double>(sigma[i]));
  double value = 0.0;
  for (index_t c = 0; c < cols; ++c) {
    for (index_t i = 0; i < n; ++i) {
      const S w = W ? (*W)(i, c) : S(1);
      const S e = w != S(0) ? E(i, c) : S(0);
      const S u = e / sigma[i];
      value += static_cast<double>(w) * (-0.5 * kLog2Pi - log_sigma[i] -
                                         0.5 * static_cast<double>(u) * static_cast<double>(u));
      g_log_sigma[i] += scale * w * (u * u - S(1)) * ((sigma[i] - static_cast<S>(floor)) / sigma[i]);
      E(i, c) = scale * w * e / (sigma[i] * sigma[i]);
    }
  }
  return value;
}

// Per-task partial results of the observation pass.
template <typename S>
struct ObsPart {
  double gaussian = 0.0, fmri = 0.0, poisson = 0.0, categorical = 0.0;
  Mat<S> gB[2], gJ[2];
  Vec<S> gls[2];
  Mat<S> gG, gBeta;
  Vec<S> gg;
};

template <typename S>
void zero_obs_part(ObsPart<S>& p, const Observations<S>& o, index_t M) {
  const GaussianChannel<S>* ch[2] = {&o.gaussian, &o.fmri};
  for (int k = 0; k < 2; ++k) {
    p.gB[k] = Mat<S>::Zero(ch[k]->N, M);
    p.gJ[k] = Mat<S>::Zero(ch[k]->N, ch[k]->R);
    p.gls[k] = Vec<S>::Zero(ch[k]->N);
  }
  p.gG = Mat<S>::Zero(o.poisson.N, M);
  p.gg = Vec<S>::Zero(o.poisson.N);
  p.gBeta = Mat<S>::Zero(std::max<index_t>(o.categorical.classes, 1), M);
}

// A [rows, cols] column-major view of the row-major [B, T, rows] array a, columns [c0, c0 + n).
template <typename S>
Eigen::Map<const Mat<S>> columns(const S* a, index_t rows, index_t c0, index_t n) {
  return Eigen::Map<const Mat<S>>(a + c0 * rows, rows, n);
}

template <typename S, class Model>
LogJoint log_joint_impl(const ModelSpec& spec, const Params<S>& p, const Latent<S>& lat, const Observations<S>& obs,
                        index_t B, index_t T, const S* z, const S* s, const Weights& w, const Grads<S>* grads,
                        S* gz) {
  const Model model(spec, p);
  const index_t M = spec.dims.M, K = spec.dims.K;
  const S wl = static_cast<S>(w.latent), wo = static_cast<S>(w.obs);
  const bool want_grad = grads != nullptr;
  LogJoint out;

  // ---- 1. transitions z_{t-1} -> z_t, all (b, t >= 1) ---------------------------------------------
  const index_t n_tr = B * (T - 1);
  const Vec<S> sigma_z = noise_std(lat.log_sigma_z, M, w.floor);
  Mat<S> g_next, g_prev;  // [M, n_tr]: dlogp/dz_t and dlogp/dz_{t-1} of transition i
  if (want_grad && n_tr > 0) {
    g_next.resize(M, n_tr);
    g_prev.resize(M, n_tr);
  }
  const int tr_tasks = n_tr > 0 ? task_count(n_tr) : 0;
  std::vector<double> tr_value(tr_tasks, 0.0);
  std::vector<GradBuffers<S>> tr_grads;
  std::vector<Vec<S>> tr_gls(tr_tasks, Vec<S>::Zero(M));
  if (want_grad) tr_grads.assign(tr_tasks, GradBuffers<S>(spec));
  parallel_for(tr_tasks, [&](int c) {
    const auto [i0, i1] = chunk_range(n_tr, tr_tasks, c);
    const index_t n = i1 - i0;
    Mat<S> U(M, n), E(M, n), Sx(K, n), GU;
    for (index_t i = i0; i < i1; ++i) {  // transition i: b = i / (T-1), t = 1 + i % (T-1)
      const index_t b = i / (T - 1), t = 1 + i % (T - 1);
      U.col(i - i0) = CMapVec<S>(z + (b * T + t - 1) * M, M);
      E.col(i - i0) = CMapVec<S>(z + (b * T + t) * M, M);
      if (K > 0) Sx.col(i - i0) = CMapVec<S>(s + (b * T + t) * K, K);
    }
    {
      typename Model::Workspace ws(model, n);
      typename Model::Tape tape(model, want_grad ? n : 0);  // views of this thread's scratch
      Mat<S> pred(M, n);
      model.step(U, Sx, pred, ws, want_grad ? &tape : nullptr, 0);
      interruption_point(step_work(spec, n));
      E -= pred;
      tr_value[c] = gaussian_term<S>(E, nullptr, sigma_z, w.floor, wl, tr_gls[c]);  // E := wl e / sigma^2
      if (want_grad) {
        g_next.middleCols(i0, n) = -E;  // d/dz_t of -e^2/2: -e / sigma^2 (times wl)
        GU.resize(M, n);
        model.step_grad(U, E, GU, ws, tape, 0);  // d/dprediction = +e / sigma^2 through F
        g_prev.middleCols(i0, n) = GU;
        model.param_grads(U, E, Sx, tape, tr_grads[c]);
        interruption_point(2 * step_work(spec, n));
      }
    }
    Scratch<S>::trim();
  });
  for (double v : tr_value) out.latent += v;

  // ---- prior of z_0 (B columns; serial, O(B M K)) -------------------------------------------------
  const Vec<S> sigma0 = noise_std(lat.log_sigma0, M, w.floor);
  Mat<S> E0(M, B);
  for (index_t b = 0; b < B; ++b) {
    E0.col(b) = CMapVec<S>(z + b * T * M, M) - CMapVec<S>(lat.mu0, M);
    if (K > 0) E0.col(b) -= CMapRow<S>(p.C, M, K) * CMapVec<S>(s + b * T * K, K);
  }
  Vec<S> gls0 = Vec<S>::Zero(M);
  out.latent += gaussian_term<S>(E0, nullptr, sigma0, w.floor, wl, gls0);  // E0 := wl e0 / sigma0^2

  // ---- 2. observations, all (b, t) ------------------------------------------------------------------
  const index_t n_bt = B * T;
  const GaussianChannel<S>* gch[2] = {&obs.gaussian, &obs.fmri};
  Mat<S> g_obs;       // [M, B T] dlogp/dz_t of the channels read at t (Gaussian, Poisson, categorical)
  Mat<S> g_fmri_zc;   // [M, B T] dlogp/dzc_t of the fMRI channel (spread over the HRF window below)
  if (want_grad) {
    g_obs = Mat<S>::Zero(M, n_bt);
    if (obs.fmri.N > 0) g_fmri_zc = Mat<S>::Zero(M, n_bt);
  }
  const int obs_tasks = task_count(n_bt);
  std::vector<ObsPart<S>> parts(obs_tasks);
  const Vec<S> sigma_x[2] = {noise_std(obs.gaussian.log_sigma, obs.gaussian.N, w.floor),
                             noise_std(obs.fmri.log_sigma, obs.fmri.N, w.floor)};
  parallel_for(obs_tasks, [&](int c) {
    const auto [c0, c1] = chunk_range(n_bt, obs_tasks, c);
    const index_t n = c1 - c0;
    ObsPart<S>& part = parts[c];
    zero_obs_part(part, obs, M);
    const auto Z = columns(z, M, c0, n);
    for (int k = 0; k < 2; ++k) {
      const GaussianChannel<S>& ch = *gch[k];
      if (ch.N == 0) continue;
      const index_t N = ch.N, R = ch.R;
      Mat<S> Zc;  // the states the channel reads: z_t, or the HRF-convolved sum_j hrf_j z_{t-j}
      Mat<S> W = ch.mask ? Mat<S>(columns(ch.mask, N, c0, n)) : Mat<S>(Mat<S>::Ones(N, n));
      if (ch.hrf) {
        const index_t tau = ch.taps - 1;
        Zc = Mat<S>::Zero(M, n);
        for (index_t col = 0; col < n; ++col) {
          const index_t bt = c0 + col, b = bt / T, t = bt % T;
          if (t < tau) {
            W.col(col).setZero();  // the first tau steps are not scored
            continue;
          }
          for (index_t j = 0; j < ch.taps; ++j) Zc.col(col) += ch.hrf[j] * CMapVec<S>(z + (b * T + t - j) * M, M);
        }
      } else {
        Zc = Z;
      }
      Mat<S> E = columns(ch.x, N, c0, n);
      E -= CMapRow<S>(ch.B, N, M) * Zc;
      if (R > 0) E -= CMapRow<S>(ch.J, N, R) * columns(ch.r, R, c0, n);
      const double v = gaussian_term<S>(E, &W, sigma_x[k], w.floor, wo, part.gls[k]);  // E := wo W e / sigma^2
      (k == 0 ? part.gaussian : part.fmri) = v;
      if (!want_grad) continue;
      part.gB[k].noalias() += E * Zc.transpose();
      if (R > 0) part.gJ[k].noalias() += E * columns(ch.r, R, c0, n).transpose();
      const Mat<S> gzc = CMapRow<S>(ch.B, N, M).transpose() * E;
      if (ch.hrf) g_fmri_zc.middleCols(c0, n) = gzc;
      else g_obs.middleCols(c0, n) += gzc;
    }
    if (obs.poisson.N > 0) {
      const PoissonChannel<S>& ch = obs.poisson;
      const index_t N = ch.N;
      Mat<S> eta = CMapRow<S>(ch.G, N, M) * Z;
      eta.colwise() += CMapVec<S>(ch.g, N);
      const auto Q = columns(ch.q, N, c0, n);
      double v = 0.0;
      for (index_t col = 0; col < n; ++col)
        for (index_t i = 0; i < N; ++i) {
          const bool seen = !ch.mask || ch.mask[(c0 + col) * N + i] != S(0);
          const S rate = std::exp(eta(i, col));
          if (seen) {
            const double q = static_cast<double>(Q(i, col));
            v += q * static_cast<double>(eta(i, col)) - static_cast<double>(rate) - std::lgamma(q + 1.0);
          }
          eta(i, col) = seen ? wo * (Q(i, col) - rate) : S(0);  // eta := d value / d eta
        }
      part.poisson = v;
      if (want_grad) {
        part.gG.noalias() += eta * Z.transpose();
        part.gg += row_sums<S>(eta);
        g_obs.middleCols(c0, n).noalias() += CMapRow<S>(ch.G, N, M).transpose() * eta;
      }
    }
    if (obs.categorical.classes > 0) {
      const CategoricalChannel<S>& ch = obs.categorical;
      const index_t Kc = ch.classes;
      Mat<S> logits = Mat<S>::Zero(Kc, n);  // the reference class's row stays 0
      logits.topRows(Kc - 1).noalias() = CMapRow<S>(ch.beta, Kc - 1, M) * Z;
      double v = 0.0;
      for (index_t col = 0; col < n; ++col) {
        const std::int64_t label = ch.c[c0 + col];
        if (label < 0) {
          logits.col(col).setZero();
          continue;
        }
        const S m = logits.col(col).maxCoeff();
        double sum = 0.0;
        for (index_t k = 0; k < Kc; ++k) sum += std::exp(static_cast<double>(logits(k, col) - m));
        const double lse = static_cast<double>(m) + std::log(sum);
        v += static_cast<double>(logits(label, col)) - lse;
        for (index_t k = 0; k < Kc; ++k)  // logits := d value / d logits = onehot - softmax
          logits(k, col) = wo * ((k == label ? S(1) : S(0)) - static_cast<S>(std::exp(static_cast<double>(logits(k, col)) - lse)));
      }
      part.categorical = v;
      if (want_grad) {
        part.gBeta.topRows(Kc - 1).noalias() += logits.topRows(Kc - 1) * Z.transpose();
        g_obs.middleCols(c0, n).noalias() += CMapRow<S>(ch.beta, Kc - 1, M).transpose() * logits.topRows(Kc - 1);
      }
    }
    interruption_point(2.0 * static_cast<double>(n) * static_cast<double>(M) *
                       static_cast<double>(obs.gaussian.N + obs.fmri.N * std::max<index_t>(obs.fmri.taps, 1) +
                                           obs.poisson.N + obs.categorical.classes + 1));
  });
  for (const auto& part : parts) {
    out.gaussian += part.gaussian;
    out.fmri += part.fmri;
    out.poisson += part.poisson;
    out.categorical += part.categorical;
  }
  out.total = w.latent * out.latent + w.obs * (out.gaussian + out.fmri + out.poisson + out.categorical);
  if (!want_grad) return out;

  // ---- 3. gradients: reduce the task parts in task order, assemble dlogp/dz ----------------------
  reduce_grads(tr_grads, *grads);
  if (tr_tasks == 0) {  // T == 1: no transitions; the model's gradients are zero (C: prior only)
    Grads<S> g = *grads;
    const auto slots = param_slots(g);
    for (int id = 0; id < kNumParams; ++id) {
      const ParamShape shape = param_shape(spec, id);
      if (shape.present) std::fill_n(*slots[id], shape.size(), S(0));
    }
  }
  if (K > 0) {  // the prior's mean mu0 + C s_0
    RowMat<S> gC = CMapRow<S>(grads->C, M, K);  // in an aligned buffer, then copied (see dlogp/dz below)
    for (index_t b = 0; b < B; ++b) gC.noalias() += E0.col(b) * CMapVec<S>(s + b * T * K, K).transpose();
    MapRow<S>(grads->C, M, K) = gC;
  }
  if (lat.g_mu0) MapVec<S>(lat.g_mu0, M) = row_sums<S>(E0);
  if (lat.g_log_sigma0) MapVec<S>(lat.g_log_sigma0, M) = gls0;
  if (lat.g_log_sigma_z) {
    Vec<S> acc = Vec<S>::Zero(M);
    for (const auto& g : tr_gls) acc += g;
    MapVec<S>(lat.g_log_sigma_z, M) = acc;
  }
  for (int k = 0; k < 2; ++k) {
    const GaussianChannel<S>& ch = *gch[k];
    if (ch.N == 0) continue;
    Mat<S> gB = Mat<S>::Zero(ch.N, M), gJ = Mat<S>::Zero(ch.N, ch.R);
    Vec<S> gls = Vec<S>::Zero(ch.N);
    for (const auto& part : parts) {
      gB += part.gB[k];
      gJ += part.gJ[k];
      gls += part.gls[k];
    }
    if (ch.gB) MapRow<S>(ch.gB, ch.N, M) = gB;
    if (ch.gJ && ch.R > 0) MapRow<S>(ch.gJ, ch.N, ch.R) = gJ;
    if (ch.g_log_sigma) MapVec<S>(ch.g_log_sigma, ch.N) = gls;
  }
  if (obs.poisson.N > 0) {
    Mat<S> gG = Mat<S>::Zero(obs.poisson.N, M);
    Vec<S> gg = Vec<S>::Zero(obs.poisson.N);
    for (const auto& part : parts) {
      gG += part.gG;
      gg += part.gg;
    }
    if (obs.poisson.gG) MapRow<S>(obs.poisson.gG, obs.poisson.N, M) = gG;
    if (obs.poisson.gg) MapVec<S>(obs.poisson.gg, obs.poisson.N) = gg;
  }
  if (obs.categorical.classes > 0 && obs.categorical.g_beta) {
    Mat<S> gBeta = Mat<S>::Zero(obs.categorical.classes - 1, M);
    for (const auto& part : parts) gBeta += part.gBeta.topRows(obs.categorical.classes - 1);
    MapRow<S>(obs.categorical.g_beta, obs.categorical.classes - 1, M) = gBeta;
  }
  // dlogp/dz_{b,t}: prior (t = 0), transition into t, transition out of t, channels at t, and the
  // fMRI channel at t + j for every tap j (a gather: each (b, t) is written by one task).
  const index_t taps = obs.fmri.N > 0 ? obs.fmri.taps : 0;
  const int as_tasks = task_count(n_bt);
  parallel_for(as_tasks, [&](int c) {
    const auto [c0, c1] = chunk_range(n_bt, as_tasks, c);
    Vec<S> g(M);  // assembled in an aligned buffer, then copied: Eigen's vectorised loops peel to the
                  // destination's first aligned element, so an expression written straight into the
                  // NumPy array could round by its address (a multiply-add fused on one path only)
    for (index_t bt = c0; bt < c1; ++bt) {
      const index_t b = bt / T, t = bt % T;
      g = g_obs.col(bt);
      if (t == 0) g -= E0.col(b);
      if (t >= 1) g += g_next.col(b * (T - 1) + t - 1);
      if (t + 1 < T) g += g_prev.col(b * (T - 1) + t);
      for (index_t j = 0; j < taps && t + j < T; ++j) g += obs.fmri.hrf[j] * g_fmri_zc.col(bt + j);
      MapVec<S>(gz + bt * M, M) = g;
    }
  });
  return out;
}

}  // namespace plrnn::vi
