// Shallow PLRNN (Hess et al. 2023), hidden width H:
//   z' = A*u + W1 relu(W2 u + h2) + h1 + C s                           (Clipped = false)
//   z' = A*u + W1 (relu(W2 u + h2) - relu(W2 u)) + h1 + C s            (Clipped = true)
#pragma once
#include "core/eigen.h"
#include "core/grad_buffers.h"
#include "core/kind_dispatch.h"
#include "core/packed_gemm.h"
#include "core/scratch.h"

namespace plrnn {

template <typename S, bool Clipped>
class ShallowPLRNN {
 public:
  ShallowPLRNN(const ModelSpec& spec, const Params<S>& p)
      : M_(spec.dims.M),
        H_(spec.dims.H),
        K_(spec.dims.K),
        A_(p.A, M_),
        h1_(p.h1, M_),
        h2_(p.h2, H_),
        C_(p.C, M_, K_),
        W1_packed_(p.W1, H_, 1, M_, H_),   // W1   (row-major: W1(i, j) = W1[i H + j])
        W2_packed_(p.W2, M_, 1, H_, M_),   // W2   (row-major: W2(j, i) = W2[j M + i])
        W1t_packed_(p.W1, 1, H_, H_, M_),  // W1^T
        W2t_packed_(p.W2, 1, M_, M_, H_) {}  // W2^T

  struct Workspace {                 // per chunk of nb sequences
    Mat<S> v, phi;                   // [H, nb] without the tape
    packed::ProductBuffers<S> prod;  // the four products with W1, W2 and their transposes
    Workspace(const ShallowPLRNN& m, index_t nb)
        : v(m.H_, nb), phi(m.H_, nb), prod(std::max(m.M_, m.H_), std::max(m.M_, m.H_), nb) {}
  };
  struct Tape {                // per chunk, all steps
    Eigen::Map<Mat<S>> V;      // [H, cols] W2 U (before the bias) of every step
    Eigen::Map<Mat<S>> Phi;    // [H, cols] hidden activation of every step
    Eigen::Map<Mat<S>> Delta;  // [H, cols] dL/d(W2 U) of every step
    Vec<S> g_A, g_h1, g_h2;    // [M], [M], [H] accumulated over the steps
    Tape(const ShallowPLRNN& m, index_t cols)
        : V(Scratch<S>::get(kModelTape0, m.H_, cols)),
          Phi(Scratch<S>::get(kTapePhi, m.H_, cols)),
          Delta(Scratch<S>::get(kModelTape1, m.H_, cols)),
          g_A(Vec<S>::Zero(m.M_)),
          g_h1(Vec<S>::Zero(m.M_)),
          g_h2(Vec<S>::Zero(m.H_)) {}
  };

  // hidden activation from v = W2 u:  relu(v + h2) [- relu(v)]          V, Phi [H, n]
  void hidden(CRef<S> V, Ref<S> Phi) const {
    Phi = (V.colwise() + h2_).cwiseMax(S(0));
    if constexpr (Clipped) Phi -= V.cwiseMax(S(0));
  }

  // fwd inputs:  U [M, nb] state after forcing, Sx [K, nb] input s_t
  // fwd outputs: Z [M, nb] = A*U + W1 hidden(W2 U) + h1 + C Sx;  tape keeps W2 U and hidden(W2 U)
  void step(CRef<S> U, CRef<S> Sx, Ref<S> Z, Workspace& ws, Tape* tape, index_t col0) const {
    const index_t nb = U.cols();
    Ref<S> v = tape ? Ref<S>(tape->V.middleCols(col0, nb)) : Ref<S>(ws.v);
    Ref<S> phi = tape ? Ref<S>(tape->Phi.middleCols(col0, nb)) : Ref<S>(ws.phi);
    v = packed::multiply(W2_packed_, U, ws.prod);
    hidden(v, phi);
    Z = packed::multiply(W1_packed_, phi, ws.prod);
    Z.array() += (U.array().colwise() * A_.array()).colwise() + h1_.array();
    if (K_ > 0) Z.noalias() += C_ * Sx;
  }

  // grad inputs:  U [M, nb], G [M, nb] = dL/dZ, tape.V of this step
  // grad outputs: GU [M, nb] = A*G + W2^T Delta, Delta = (W1^T G) .* (1[V + h2 > 0] [- 1[V > 0]]);
  //               tape: Delta, g_A += rowsum(G .* U), g_h1 += rowsum(G), g_h2 += rowsum(dL/dh2)
  void step_grad(CRef<S> U, CRef<S> G, Ref<S> GU, Workspace& ws, Tape& tape, index_t col0) const {
    const index_t nb = U.cols();
    auto V = tape.V.middleCols(col0, nb);
    auto Delta = tape.Delta.middleCols(col0, nb);
    const auto R = packed::multiply(W1t_packed_, G, ws.prod);  // W1^T G
    S* __restrict g_h2 = tape.g_h2.data();
    const S* __restrict h2 = h2_.data();
    for (index_t c = 0; c < nb; ++c) {  // vectorised along the hidden units
      const S* __restrict r = R.col(c).data();
      const S* __restrict v = V.col(c).data();
      S* __restrict delta = Delta.col(c).data();
      for (index_t j = 0; j < H_; ++j) {
        const S d1 = v[j] + h2[j] > S(0) ? r[j] : S(0);
        delta[j] = Clipped ? d1 - (v[j] > S(0) ? r[j] : S(0)) : d1;
      }
      for (index_t j = 0; j < H_; ++j) g_h2[j] += v[j] + h2[j] > S(0) ? r[j] : S(0);
    }
    GU = packed::multiply(W2t_packed_, Delta, ws.prod);  // W2^T Delta
    S* __restrict g_A = tape.g_A.data();
    S* __restrict g_h1 = tape.g_h1.data();
    const S* __restrict a = A_.data();
    for (index_t c = 0; c < nb; ++c) {
      const S* __restrict g = G.col(c).data();
      const S* __restrict u = U.col(c).data();
      S* __restrict gu = GU.col(c).data();
      for (index_t i = 0; i < M_; ++i) gu[i] += a[i] * g[i];
      for (index_t i = 0; i < M_; ++i) {
        g_A[i] += g[i] * u[i];
        g_h1[i] += g[i];
      }
    }
  }

  // grad of the parameters, all steps at once: U_all, G_all [M, cols], S_all [K, cols]
  void param_grads(CRef<S> U_all, CRef<S> G_all, CRef<S> S_all, const Tape& tape,
                   GradBuffers<S>& g) const {
    g.vec(pA) = tape.g_A;
    g.mat(pW1) = packed::times_transpose(G_all, CRef<S>(tape.Phi));
    g.mat(pW2) = packed::times_transpose(CRef<S>(tape.Delta), U_all);
    g.vec(ph1) = tape.g_h1;
    g.vec(ph2) = tape.g_h2;
    if (K_ > 0) g.mat(pC).noalias() = G_all * S_all.transpose();
  }

  index_t M() const { return M_; }

 private:
  index_t M_, H_, K_;
  CMapVec<S> A_;
  CMapVec<S> h1_, h2_;
  CMapRow<S> C_;
  packed::PackedRows<S> W1_packed_, W2_packed_, W1t_packed_, W2t_packed_;  // once per call
};

template <typename S> struct ModelFor<S, Kind::Shallow> { using type = ShallowPLRNN<S, false>; };
template <typename S> struct ModelFor<S, Kind::ShallowClipped> { using type = ShallowPLRNN<S, true>; };

}  // namespace plrnn
