// Observation models with their forcing operators, forward and gradient side by side.
//   identity: xhat = z[:N],  z_0 = [x_0; L x_0],  force(z, x, a) = [(1-a) z[:N] + a x; z[N:]]
//   linear:   xhat = B z,    z_0 = L x_0,         force(z, x, a) = z + a Binv (x - B z)
// Binv (the pseudo-inverse of B) is an input and is not differentiated; B is, also inside the
// forcing (docs/model.md).
// Missing values: a 0/1 mask Mk [N, nb] per step. Residuals are multiplied by it (the caller does
// that), the initial state reads Mk .* x_0, and the masked forcing pulls only the observed entries:
//   identity: force_i = observed_i ? (1-a) z_i + a x_i : z_i      (bit-identical where observed)
//   linear:   force   = z + a Binv (Mk .* (x - B z))
#pragma once
#include "core/column_product.h"
#include "core/eigen.h"
#include "core/grad_buffers.h"
#include "core/row_packets.h"

namespace plrnn {

template <typename S>
class IdentityObs {
 public:
  static constexpr bool kNeedsStates = false;  // no gradient needs the pre-forcing states
  static constexpr bool kObservesRows = true;  // xhat is Z's first N rows (rollout/loss.h: score_row_residuals)
  IdentityObs(const ModelSpec& spec, const Params<S>& p, const S* /*Binv*/)
      : M_(spec.dims.M), N_(spec.dims.N), Lx_(p.L, M_ - N_, N_) {}

  // z_0 from x_0:                                     X0 [N, nb] -> Z [M, nb]
  void init(CRef<S> X0, Ref<S> Z) const {
    Z.topRows(N_) = X0;
    if (M_ > N_) Lx_.multiply(X0, Z.bottomRows(M_ - N_));
  }
  // grad: dL/dL += G0[N:] X0^T                        G0 [M, nb], X0 [N, nb]
  void init_grad(CRef<S> G0, CRef<S> X0, GradBuffers<S>& g) const {
    if (M_ > N_) g.mat(pL).noalias() += G0.bottomRows(M_ - N_) * X0.transpose();
  }

  // xhat = z[:N]                                      Z [M, nb] -> Xhat [N, nb]
  void observe(CRef<S> Z, Ref<S> Xhat) const { Xhat = Z.topRows(N_); }
  // E = xhat - x = Z[:N] - X: formed with the step's loss from Z's rows (kObservesRows; rollout/loss.h:
  // score_row_residuals, and the lane loop's packets in rollout/lane_bptt.h), no method here
  // grad: G += d/dz of <E, xhat>                      E [N, nb] (already scaled), G [M, nb]
  // (a column's N rows at a time, core/row_packets.h: for the few rows of the small models Eigen's
  // per-column work costs more than the additions, and element by element the scalar loads of rows
  // the step had just stored as whole packets stalled)
  void observe_grad(CRef<S> E, Ref<S> G) const {
    rowpk::short_columns<S>(N_, E.cols(), G.data(), G.outerStride(), E.data(), E.outerStride(), G.data(),
                            G.outerStride(), [](auto g, auto e) { return g + e; });
  }

  // Z <- force(Z, X, a), in place                     Z [M, nb], X [N, nb]
  void force(Ref<S> Z, CRef<S> X, S a) const {
    Z.topRows(N_) = (S(1) - a) * Z.topRows(N_) + a * X;
  }
  // grad, in place: G <- (d force / d z)^T G           G [M, nb]; Z: the state before forcing
  void force_grad(Ref<S> G, CRef<S> /*Z*/, S a, GradBuffers<S>& /*g*/) const {
    G.topRows(N_) *= (S(1) - a);
  }

  // masked forcing and its gradient                   Mk [N, nb] of 0/1
  void force_masked(Ref<S> Z, CRef<S> X, CRef<S> Mk, S a) const {
    auto top = Z.topRows(N_).array();
    top = (Mk.array() != S(0)).select((S(1) - a) * top + a * X.array(), top);
  }
  void force_grad_masked(Ref<S> G, CRef<S> /*Z*/, CRef<S> Mk, S a, GradBuffers<S>& /*g*/) const {
    auto top = G.topRows(N_).array();
    top = (Mk.array() != S(0)).select((S(1) - a) * top, top);
  }

  // grads from all steps: none for the identity observation
  void param_grads(CRef<S> /*E_all*/, CRef<S> /*Z_all*/, GradBuffers<S>& /*g*/) const {}

 private:
  index_t M_, N_;
  ColumnProduct<S> Lx_;  // L, for the initial state (per column: core/column_product.h)
};

template <typename S>
class LinearObs {
 public:
  static constexpr bool kNeedsStates = true;  // dL/dB needs the pre-forcing states
  static constexpr bool kObservesRows = false;
  LinearObs(const ModelSpec& spec, const Params<S>& p, const S* Binv)
      : M_(spec.dims.M),
        N_(spec.dims.N),
        B_(p.B, N_, M_),
        Binv_(Binv, Binv ? M_ : 0, Binv ? N_ : 0),
        Bz_(p.B, N_, M_),
        Lx_(p.L, M_, N_),
        Binv_r_(Binv, Binv ? M_ : 0, Binv ? N_ : 0) {}

  // z_0 = L x_0                                       X0 [N, nb] -> Z [M, nb]
  void init(CRef<S> X0, Ref<S> Z) const { Lx_.multiply(X0, Z); }
  // grad: dL/dL += G0 X0^T
  void init_grad(CRef<S> G0, CRef<S> X0, GradBuffers<S>& g) const {
    g.mat(pL).noalias() += G0 * X0.transpose();
  }

  // xhat = B z
  void observe(CRef<S> Z, Ref<S> Xhat) const { Bz_.multiply(Z, Xhat); }
  // E = B z - x
  void residual(CRef<S> Z, CRef<S> X, Ref<S> E) const {
    Bz_.multiply(Z, E);
    E -= X;
  }
  // grad: G += B^T E
  void observe_grad(CRef<S> E, Ref<S> G) const { G.noalias() += B_.transpose() * E; }

  // Z <- Z + a Binv (X - B Z), in place
  void force(Ref<S> Z, CRef<S> X, S a) const {
    PLRNN_ASSERT(Binv_.size() > 0);
    Mat<S> resid(N_, Z.cols());
    Bz_.multiply(Z, resid);
    resid = X - resid;
    Binv_r_.multiply_add(resid, Z, a);
  }
  // grad, in place: G <- (I - a Binv B)^T G = G - a B^T (Binv^T G);  dL/dB -= a (Binv^T G) Z^T
  // (B inside the forcing is differentiated, Binv is not).      Z [M, nb]: the state before forcing
  void force_grad(Ref<S> G, CRef<S> Z, S a, GradBuffers<S>& g) const {
    Mat<S> t = Binv_.transpose() * G;
    G.noalias() -= a * (B_.transpose() * t);
    g.mat(pB).noalias() -= a * (t * Z.transpose());
  }

  // masked: Z <- Z + a Binv (Mk .* (X - B Z));  grad with D = diag(Mk) between Binv^T and B^T
  void force_masked(Ref<S> Z, CRef<S> X, CRef<S> Mk, S a) const {
    PLRNN_ASSERT(Binv_.size() > 0);
    Mat<S> resid(N_, Z.cols());
    Bz_.multiply(Z, resid);
    resid = (X - resid).cwiseProduct(Mk);
    Binv_r_.multiply_add(resid, Z, a);
  }
  void force_grad_masked(Ref<S> G, CRef<S> Z, CRef<S> Mk, S a, GradBuffers<S>& g) const {
    Mat<S> t = Binv_.transpose() * G;
    t.array() *= Mk.array();
    G.noalias() -= a * (B_.transpose() * t);
    g.mat(pB).noalias() -= a * (t * Z.transpose());
  }

  // dL/dB += sum_t E_t Z_t^T                          E_all [N, cols], Z_all [M, cols]
  void param_grads(CRef<S> E_all, CRef<S> Z_all, GradBuffers<S>& g) const {
    g.mat(pB).noalias() += E_all * Z_all.transpose();
  }

 private:
  index_t M_, N_;
  CMapRow<S> B_, Binv_;  // the gradients' products (sums over the batch)
  ColumnProduct<S> Bz_, Lx_, Binv_r_;  // B, L, pinv(B) for the per-sequence products (core/column_product.h)
};

}  // namespace plrnn
