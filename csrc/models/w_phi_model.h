// The shared skeleton of the standard PLRNN, the ALRNN and the dendritic PLRNN:
//   z' = A*u + W phi(u) + h + C s
// The kind-specific part is the elementwise nonlinearity `Phi` (see standard_plrnn.h, alrnn.h,
// dendritic_plrnn.h), each with its forward (`apply`) beside its gradient (`vjp`, `param_grads`).
#pragma once
#include "core/eigen.h"
#include "core/grad_buffers.h"
#include "core/scratch.h"

namespace plrnn {

template <typename S, class Phi>
class WPhiModel {
 public:
  WPhiModel(const ModelSpec& spec, const Params<S>& p)
      : M_(spec.dims.M),
        K_(spec.dims.K),
        A_(p.A, M_),
        W_(p.W, M_, M_),
        h_(p.h, M_),
        C_(p.C, M_, K_),
        phi_(spec, p) {}

  struct Workspace {  // per chunk of nb sequences
    Mat<S> phi, r;    // [M, nb]
    Workspace(const WPhiModel& m, index_t nb) : phi(m.M_, nb), r(m.M_, nb) {}
  };
  struct Tape {  // per chunk, all steps: what the parameter gradients need beyond U and G
    Eigen::Map<Mat<S>> R;  // [M, cols] W^T G of every step, only when Phi has parameters
    Tape(const WPhiModel& m, index_t cols)
        : R(Scratch<S>::get(kModelTape0, Phi::kHasParams ? m.M_ : 0, Phi::kHasParams ? cols : 0)) {}
  };

  // fwd inputs:  U [M, nb] state after forcing (z~_{t-1}), Sx [K, nb] input s_t
  // fwd outputs: Z [M, nb] = A*U + W phi(U) + h + C Sx
  void step(CRef<S> U, CRef<S> Sx, Ref<S> Z, Workspace& ws, Tape* /*tape*/, index_t /*col0*/) const {
    phi_.apply(U, ws.phi);
    Z.noalias() = W_ * ws.phi;
    Z += A_.asDiagonal() * U;
    Z.colwise() += h_;
    if (K_ > 0) Z.noalias() += C_ * Sx;
  }

  // grad inputs:  U [M, nb], G [M, nb] = dL/dZ
  // grad outputs: GU [M, nb] = dL/dU = A*G + phi'(U) .* (W^T G)
  void step_grad(CRef<S> U, CRef<S> G, Ref<S> GU, Workspace& ws, Tape& tape, index_t col0) const {
    ws.r.noalias() = W_.transpose() * G;
    if constexpr (Phi::kHasParams) tape.R.middleCols(col0, G.cols()) = ws.r;
    phi_.vjp(U, ws.r);
    GU = ws.r;
    GU += A_.asDiagonal() * G;
  }

  // grad of the parameters, all steps of a chunk at once (one matrix product per matrix):
  // U_all [M, cols] states after forcing, G_all [M, cols] dL/dZ, S_all [K, cols] inputs.
  void param_grads(CRef<S> U_all, CRef<S> G_all, CRef<S> S_all, const Tape& tape,
                   GradBuffers<S>& g) const {
    g.vec(pA) = row_dots<S>(G_all, U_all);
    auto phi_all = Scratch<S>::get(kTapePhi, M_, U_all.cols());
    phi_.apply(U_all, phi_all);
    g.mat(pW).noalias() = G_all * phi_all.transpose();
    if constexpr (Phi::kZeroDiagW) g.mat(pW).diagonal().setZero();
    g.vec(ph) = row_sums<S>(G_all);
    if (K_ > 0) g.mat(pC).noalias() = G_all * S_all.transpose();
    if constexpr (Phi::kHasParams) phi_.param_grads(U_all, tape.R, g);
  }

  index_t M() const { return M_; }

 private:
  index_t M_, K_;
  CMapVec<S> A_;
  CMapRow<S> W_;
  CMapVec<S> h_;
  CMapRow<S> C_;
  Phi phi_;
};

}  // namespace plrnn
