// The shared skeleton of the standard PLRNN, the ALRNN and the dendritic PLRNN:
//   z' = A*u + W phi(u) + h + C s
// The kind-specific part is the elementwise nonlinearity `Phi` (see standard_plrnn.h, alrnn.h,
// dendritic_plrnn.h), each with its forward (`apply`) beside its gradient (`derivative`,
// `param_grads`).
#pragma once
#include "core/eigen.h"
#include "core/column_product.h"
#include "core/grad_buffers.h"
#include "core/kind_dispatch.h"
#include "core/packed_gemm.h"
#include "core/scratch.h"

namespace plrnn {

template <typename S, class Phi>
class WPhiModel {
 public:
  WPhiModel(const ModelSpec& spec, const Params<S>& p)
      : M_(spec.dims.M),
        K_(spec.dims.K),
        zero_diag_W_(zero_diag_W(spec.kind)),
        A_(p.A, M_),
        h_(p.h, M_),
        Cs_(p.C, M_, K_),
        phi_(spec, p),
        W_packed_(p.W, M_, 1, M_, M_),     // W   (row-major: W(i, k) = W[i M + k])
        Wt_packed_(p.W, 1, M_, M_, M_) {}  // W^T

  struct Workspace {                 // per chunk of nb sequences
    Mat<S> phi;                      // [M, nb] phi(U) without the tape
    packed::ProductBuffers<S> prod;  // W phi(U) (forward), W^T G (backward)
    Workspace(const WPhiModel& m, index_t nb) : phi(m.M_, nb), prod(m.M_, m.M_, nb) {}
  };
  struct Tape {                // per chunk, all steps: what the parameter gradients need beyond U, G
    Eigen::Map<Mat<S>> PhiU;   // [M, cols] phi(U) of every step
    Eigen::Map<Mat<S>> R;      // [M, cols] W^T G of every step, only when Phi has parameters
    Vec<S> g_A, g_h;           // [M] accumulated over the steps
    Tape(const WPhiModel& m, index_t cols)
        : PhiU(Scratch<S>::get(kTapePhi, m.M_, cols)),
          R(Scratch<S>::get(kModelTape0, Phi::kHasParams ? m.M_ : 0, Phi::kHasParams ? cols : 0)),
          g_A(Vec<S>::Zero(m.M_)),
          g_h(Vec<S>::Zero(m.M_)) {}
  };

  // fwd inputs:  U [M, nb] state after forcing (z~_{t-1}), Sx [K, nb] input s_t
  // fwd outputs: Z [M, nb] = A*U + W phi(U) + h + C Sx;  tape->PhiU keeps phi(U)
  void step(CRef<S> U, CRef<S> Sx, Ref<S> Z, Workspace& ws, Tape* tape, index_t col0) const {
    Ref<S> phi = tape ? Ref<S>(tape->PhiU.middleCols(col0, U.cols())) : Ref<S>(ws.phi);
    phi_.apply(U, phi);
    const auto Wphi = packed::multiply(W_packed_, phi, ws.prod);
    Z.array() = Wphi.array() + ((U.array().colwise() * A_.array()).colwise() + h_.array());
    if (K_ > 0) Cs_.multiply_add(Sx, Z);
  }

  // grad inputs:  U [M, nb], G [M, nb] = dL/dZ
  // grad outputs: GU [M, nb] = dL/dU = A*G + phi'(U) .* (W^T G);  tape: g_A += rowsum(G .* U),
  //               g_h += rowsum(G), R keeps W^T G when Phi has parameters
  void step_grad(CRef<S> U, CRef<S> G, Ref<S> GU, Workspace& ws, Tape& tape, index_t col0) const {
    const index_t n = G.cols();
    const auto R = packed::multiply(Wt_packed_, G, ws.prod);  // W^T G
    if constexpr (Phi::kHasParams) tape.R.middleCols(col0, n) = R;
    S* __restrict g_A = tape.g_A.data();
    S* __restrict g_h = tape.g_h.data();
    const S* __restrict a = A_.data();
    for (index_t c = 0; c < n; ++c) {  // vectorised along the units
      const S* __restrict g = G.col(c).data();
      const S* __restrict u = U.col(c).data();
      const S* __restrict r = R.col(c).data();
      S* __restrict gu = GU.col(c).data();
      for (index_t i = 0; i < M_; ++i) gu[i] = a[i] * g[i] + phi_.derivative(u[i], i) * r[i];
      for (index_t i = 0; i < M_; ++i) {
        g_A[i] += g[i] * u[i];
        g_h[i] += g[i];
      }
    }
  }

  // grad of the parameters, all steps of a chunk at once (one matrix product per matrix):
  // U_all [M, cols] states after forcing, G_all [M, cols] dL/dZ, S_all [K, cols] inputs.
  void param_grads(CRef<S> U_all, CRef<S> G_all, CRef<S> S_all, const Tape& tape,
                   GradBuffers<S>& g) const {
    g.vec(pA) = tape.g_A;
    g.mat(pW) = packed::times_transpose(G_all, CRef<S>(tape.PhiU));
    if (zero_diag_W_) g.mat(pW).diagonal().setZero();  // kinds.h: a constraint of the kind
    g.vec(ph) = tape.g_h;
    if (K_ > 0) g.mat(pC).noalias() = G_all * S_all.transpose();
    if constexpr (Phi::kHasParams) phi_.param_grads(U_all, tape.R, g);
  }

  index_t M() const { return M_; }

 private:
  index_t M_, K_;
  bool zero_diag_W_;
  CMapVec<S> A_;
  CMapVec<S> h_;
  ColumnProduct<S> Cs_;  // C, for the input term per sequence (core/column_product.h)
  Phi phi_;
  packed::PackedRows<S> W_packed_, Wt_packed_;  // packed once per call, shared by the threads
};

}  // namespace plrnn
