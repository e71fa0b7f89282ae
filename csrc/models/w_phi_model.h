// The shared skeleton of the standard PLRNN, the ALRNN and the dendritic PLRNN:
//   z' = A*u + W phi(u) + h + C s
// The kind-specific part is the elementwise nonlinearity `Phi` (see standard_plrnn.h, alrnn.h,
// dendritic_plrnn.h), each with its forward (`apply`) beside its gradient (`times_derivative`,
// `param_grads`).
#pragma once
#include "core/eigen.h"
#include "core/column_product.h"
#include "core/grad_buffers.h"
#include "core/kind_dispatch.h"
#include "core/packed_gemm.h"
#include "core/row_packets.h"
#include "core/scratch.h"

namespace plrnn {

template <typename S, class Phi>
class WPhiModel {
 public:
  WPhiModel(const ModelSpec& spec, const Params<S>& p)
      : M_(spec.dims.M),
        K_(spec.dims.K),
        zero_diag_W_(zero_diag_W(spec.kind)),
        tape_phi_(Phi::kTapePhi || packed::read_in_place<S>(M_)),
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
    Eigen::Map<Mat<S>> PhiU;   // [M, cols] phi(U) of every step (tape_phi_; else phi is recomputed)
    Eigen::Map<Mat<S>> R;      // [M, cols] W^T G of every step, only when Phi has parameters
    Vec<S> g_A, g_h;           // [M] accumulated over the steps
    Tape(const WPhiModel& m, index_t cols)
        : PhiU(Scratch<S>::get(kTapePhi, m.tape_phi_ ? m.M_ : 0, m.tape_phi_ ? cols : 0)),
          R(Scratch<S>::get(kModelTape0, Phi::kHasParams ? m.M_ : 0, Phi::kHasParams ? cols : 0)),
          g_A(Vec<S>::Zero(m.M_)),
          g_h(Vec<S>::Zero(m.M_)) {}
  };

  // fwd inputs:  U [M, nb] state after forcing (z~_{t-1}), Sx [K, nb] input s_t
  // fwd outputs: Z [M, nb] = A*U + W phi(U) + h + C Sx;  tape->PhiU keeps phi(U) (tape_phi_)
  void step(CRef<S> U, CRef<S> Sx, Ref<S> Z, Workspace& ws, Tape* tape, index_t col0) const {
    const bool taped = tape_phi_ && tape;
    Ref<S> phi = taped ? Ref<S>(tape->PhiU.middleCols(col0, U.cols())) : Ref<S>(ws.phi);
    phi_.apply(U, phi);
    const auto Wphi = packed::multiply(W_packed_, phi, ws.prod);
    const index_t n = U.cols(), ldu = U.outerStride(), ldw = Wphi.outerStride(), ldz = Z.outerStride();
    const S *u = U.data(), *wphi = Wphi.data(), *a = A_.data(), *h = h_.data();
    S* z = Z.data();
    rowpk::for_row_packets<S>(M_, [&](index_t i) {  // z = W phi + (A*u + h)
      using namespace Eigen::internal;
      using Pk = rowpk::Packet<S>;
      const Pk ai = ploadu<Pk>(a + i), hi = ploadu<Pk>(h + i);
      for (index_t c = 0; c < n; ++c)
        pstoreu(z + c * ldz + i, padd(ploadu<Pk>(wphi + c * ldw + i), pmadd(ploadu<Pk>(u + c * ldu + i), ai, hi)));
    }, [&](index_t i) {
      for (index_t c = 0; c < n; ++c) z[c * ldz + i] = wphi[c * ldw + i] + rowpk::madd(u[c * ldu + i], a[i], h[i]);
    });
    if (K_ > 0) Cs_.multiply_add(Sx, Z);
  }

  // grad inputs:  U [M, nb], G [M, nb] = dL/dZ
  // grad outputs: GU [M, nb] = dL/dU = A*G + phi'(U) .* (W^T G);  tape: g_A += rowsum(G .* U),
  //               g_h += rowsum(G), R keeps W^T G when Phi has parameters
  void step_grad(CRef<S> U, CRef<S> G, Ref<S> GU, Workspace& ws, Tape& tape, index_t col0) const {
    const index_t n = G.cols();
    const auto R = packed::multiply(Wt_packed_, G, ws.prod);  // W^T G
    if constexpr (Phi::kHasParams) tape.R.middleCols(col0, n) = R;
    const index_t ldu = U.outerStride(), ldg = G.outerStride(), ldr = R.outerStride(), ldgu = GU.outerStride();
    const S *u = U.data(), *g = G.data(), *r = R.data(), *a = A_.data();
    S* gu = GU.data();
    S* g_A = tape.g_A.data();
    S* g_h = tape.g_h.data();
    // per row: gu = A*g + phi'(u) r, g_A += g u and g_h += g column by column (ascending), the sums in
    // registers (Phi::kPacketDerivative: a packet of rows at a time, the last M % kLanes rows and
    // every row otherwise one at a time)
    auto row = [&](index_t i) {
      S sa = g_A[i], sh = g_h[i];
      for (index_t c = 0; c < n; ++c) {
        const S gi = g[c * ldg + i], ui = u[c * ldu + i];
        gu[c * ldgu + i] = rowpk::madd(a[i], gi, phi_.times_derivative(ui, r[c * ldr + i], i));
        sa = rowpk::madd(gi, ui, sa);
        sh += gi;
      }
      g_A[i] = sa;
      g_h[i] = sh;
    };
    if constexpr (Phi::kPacketDerivative) {
      rowpk::for_row_packets<S>(M_, [&](index_t i) {
        using namespace Eigen::internal;
        using Pk = rowpk::Packet<S>;
        const Pk ai = ploadu<Pk>(a + i);
        Pk sa = ploadu<Pk>(g_A + i), sh = ploadu<Pk>(g_h + i);
        for (index_t c = 0; c < n; ++c) {
          const Pk gi = ploadu<Pk>(g + c * ldg + i), ui = ploadu<Pk>(u + c * ldu + i);
          pstoreu(gu + c * ldgu + i, pmadd(ai, gi, phi_.times_derivative(ui, ploadu<Pk>(r + c * ldr + i), i)));
          sa = pmadd(gi, ui, sa);
          sh = padd(sh, gi);
        }
        pstoreu(g_A + i, sa);
        pstoreu(g_h + i, sh);
      }, row);
    } else {
      for (index_t i = 0; i < M_; ++i) row(i);
    }
  }

  // grad of the parameters, all steps of a chunk at once (one matrix product per matrix):
  // U_all [M, cols] states after forcing, G_all [M, cols] dL/dZ, S_all [K, cols] inputs.
  void param_grads(CRef<S> U_all, CRef<S> G_all, CRef<S> S_all, const Tape& tape,
                   GradBuffers<S>& g) const {
    g.vec(pA) = tape.g_A;
    auto gW = g.mat_colmajor(pW);  // written in place by the product (no copy per chunk)
    if (tape_phi_)
      packed::times_transpose_into<S>(G_all, tape.PhiU, gW);
    else if constexpr (!Phi::kTapePhi)  // phi(U) recomputed while the product packs U (the same values)
      packed::times_transpose_into<S>(G_all, U_all, gW, [this](index_t i, S u) { return phi_.value(u, i); });
    if (zero_diag_W_) gW.diagonal().setZero();  // kinds.h: a constraint of the kind
    g.vec(ph) = tape.g_h;
    if (K_ > 0) g.mat(pC).noalias() = G_all * S_all.transpose();
    if constexpr (Phi::kHasParams) phi_.param_grads(U_all, tape.R, g);
  }

  index_t M() const { return M_; }

 private:
  index_t M_, K_;
  bool zero_diag_W_;
  // phi(U) kept on the tape: where Phi says so (costly phi), or where the gradient of W then reads it in
  // place (M <= 64 floats, packed::kInPlaceBytes: no packing of U with phi applied; the standard
  // PLRNN's step 1.017x at M = 32 and 1.018x at M = 64 on an AVX-512 Xeon); larger models recompute it
  // while packing U (a tape of M x cols less in cache)
  bool tape_phi_;
  CMapVec<S> A_;
  CMapVec<S> h_;
  ColumnProduct<S> Cs_;  // C, for the input term per sequence (core/column_product.h)
  Phi phi_;
  packed::PackedRows<S> W_packed_, Wt_packed_;  // packed once per call, shared by the threads
};

}  // namespace plrnn
