// Observation models with their forcing operators, forward and gradient side by side.
//   identity: xhat = z[:N],  z_0 = [x_0; L x_0],  force(z, x, a) = [(1-a) z[:N] + a x; z[N:]]
//   linear:   xhat = B z,    z_0 = L x_0,         force(z, x, a) = z + a Binv (x - B z)
// Binv (the pseudo-inverse of B) is an input and is not differentiated; B is, also inside the
// forcing (docs/model.md).
#pragma once
#include "core/eigen.h"
#include "core/grad_buffers.h"

namespace plrnn {

template <typename S>
class IdentityObs {
 public:
  static constexpr bool kNeedsStates = false;  // no gradient needs the pre-forcing states
  IdentityObs(const ModelSpec& spec, const Params<S>& p, const S* /*Binv*/)
      : M_(spec.dims.M), N_(spec.dims.N), L_(p.L, M_ - N_, N_) {}

  // z_0 from x_0:                                     X0 [N, nb] -> Z [M, nb]
  void init(CRef<S> X0, Ref<S> Z) const {
    Z.topRows(N_) = X0;
    if (M_ > N_) Z.bottomRows(M_ - N_).noalias() = L_ * X0;
  }
  // grad: dL/dL += G0[N:] X0^T                        G0 [M, nb], X0 [N, nb]
  void init_grad(CRef<S> G0, CRef<S> X0, GradBuffers<S>& g) const {
    if (M_ > N_) g.mat(pL).noalias() += G0.bottomRows(M_ - N_) * X0.transpose();
  }

  // xhat = z[:N]                                      Z [M, nb] -> Xhat [N, nb]
  void observe(CRef<S> Z, Ref<S> Xhat) const { Xhat = Z.topRows(N_); }
  // grad: G += d/dz of <E, xhat>                      E [N, nb] (already scaled), G [M, nb]
  void observe_grad(CRef<S> E, Ref<S> G) const { G.topRows(N_) += E; }

  // U = force(Z, X, a)                                Z, U [M, nb], X [N, nb]
  void force(CRef<S> Z, CRef<S> X, S a, Ref<S> U) const {
    U.bottomRows(M_ - N_) = Z.bottomRows(M_ - N_);
    U.topRows(N_) = (S(1) - a) * Z.topRows(N_) + a * X;
  }
  // grad: GZ = (d force / d z)^T GU                   GU, GZ [M, nb]; Z: the state that was forced
  void force_grad(CRef<S> GU, CRef<S> /*Z*/, S a, Ref<S> GZ, GradBuffers<S>& /*g*/) const {
    GZ.bottomRows(M_ - N_) = GU.bottomRows(M_ - N_);
    GZ.topRows(N_) = (S(1) - a) * GU.topRows(N_);
  }

  // grads from all steps: none for the identity observation
  void param_grads(CRef<S> /*E_all*/, CRef<S> /*Z_all*/, GradBuffers<S>& /*g*/) const {}

 private:
  index_t M_, N_;
  CMapRow<S> L_;
};

template <typename S>
class LinearObs {
 public:
  static constexpr bool kNeedsStates = true;  // dL/dB needs the pre-forcing states
  LinearObs(const ModelSpec& spec, const Params<S>& p, const S* Binv)
      : M_(spec.dims.M),
        N_(spec.dims.N),
        B_(p.B, N_, M_),
        L_(p.L, M_, N_),
        Binv_(Binv, Binv ? M_ : 0, Binv ? N_ : 0) {}

  // z_0 = L x_0                                       X0 [N, nb] -> Z [M, nb]
  void init(CRef<S> X0, Ref<S> Z) const { Z.noalias() = L_ * X0; }
  // grad: dL/dL += G0 X0^T
  void init_grad(CRef<S> G0, CRef<S> X0, GradBuffers<S>& g) const {
    g.mat(pL).noalias() += G0 * X0.transpose();
  }

  // xhat = B z
  void observe(CRef<S> Z, Ref<S> Xhat) const { Xhat.noalias() = B_ * Z; }
  // grad: G += B^T E
  void observe_grad(CRef<S> E, Ref<S> G) const { G.noalias() += B_.transpose() * E; }

  // U = Z + a Binv (X - B Z)
  void force(CRef<S> Z, CRef<S> X, S a, Ref<S> U) const {
    PLRNN_ASSERT(Binv_.size() > 0);
    Mat<S> resid = X;
    resid.noalias() -= B_ * Z;
    U = Z;
    U.noalias() += a * (Binv_ * resid);
  }
  // grad: GZ = (I - a Binv B)^T GU = GU - a B^T (Binv^T GU);  dL/dB -= a (Binv^T GU) Z^T
  // (B inside the forcing is differentiated, Binv is not).      Z [M, nb]: the state that was forced
  void force_grad(CRef<S> GU, CRef<S> Z, S a, Ref<S> GZ, GradBuffers<S>& g) const {
    Mat<S> t = Binv_.transpose() * GU;
    GZ = GU;
    GZ.noalias() -= a * (B_.transpose() * t);
    g.mat(pB).noalias() -= a * (t * Z.transpose());
  }

  // dL/dB += sum_t E_t Z_t^T                          E_all [N, cols], Z_all [M, cols]
  void param_grads(CRef<S> E_all, CRef<S> Z_all, GradBuffers<S>& g) const {
    g.mat(pB).noalias() += E_all * Z_all.transpose();
  }

 private:
  index_t M_, N_;
  CMapRow<S> B_, L_, Binv_;
};

}  // namespace plrnn
