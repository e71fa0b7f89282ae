// Shallow PLRNN (Hess et al. 2023), hidden width H:
//   z' = A*u + W1 relu(W2 u + h2) + h1 + C s                           (Clipped = false)
//   z' = A*u + W1 (relu(W2 u + h2) - relu(W2 u)) + h1 + C s            (Clipped = true)
#pragma once
#include "core/eigen.h"
#include "core/grad_buffers.h"
#include "core/kind_dispatch.h"
#include "core/lanes.h"
#include "core/packed_gemm.h"
#include "core/scratch.h"

namespace plrnn {

template <typename S, bool Clipped>
class ShallowPLRNN {
  using Pk = typename lanes::Lane<S>::Packet;
  static constexpr int L = lanes::Lane<S>::kL;

 public:
  // Two implementations of the same step, chosen once per call by `lanes_`:
  //  - lanes (M <= kLanesMaxM, the shipped defaults): one sequence per SIMD lane (core/lanes.h),
  //    a chunk's nb sequences in groups of L, the state padded to Mc rows (one of kLaneRows) and H to
  //    a multiple of 8. One pass over the hidden units does a whole step with the state and the
  //    partial sums in registers. The backward pass recomputes the hidden layer from the step's
  //    input (nothing is taped in the forward pass) and collects the records (u, 1, g, phi, 1, delta)
  //    of kRecords group-steps before it adds their outer products to per-lane sums in one
  //    register-blocked pass: g (x) (phi, 1) gives dW1 and dh1, (u, 1) (x) delta gives dW2^T and dh2.
  //  - packed (larger M): register-blocked tiles (core/packed_gemm.h), V, Phi and Delta on the tape
  //    and the weight gradients as one product over all steps at the end.
  // Measured (float32, 1 thread, Intel Xeon AVX-512): lanes 2-4x faster at M = 3..8, 1.2x at
  // M = 12, H = 50; packed 1.3x faster at M = 16, H = 64 and 1.5-4x at M >= 32 (there the per-lane
  // sums, Mc (H + 1) L floats, no longer fit in L1).
  static constexpr index_t kRecords = 16;
  static constexpr index_t kLanesMaxM = 12;

  ShallowPLRNN(const ModelSpec& spec, const Params<S>& p)
      : M_(spec.dims.M),
        H_(spec.dims.H),
        K_(spec.dims.K),
        lanes_(M_ <= kLanesMaxM),
        Mc_(lanes_ ? lane_rows(M_) : 0),
        Hp_(lanes_ ? (H_ + 7) / 8 * 8 : 0),
        A_(p.A, M_),
        h1_(p.h1, M_),
        h2_(p.h2, H_),
        C_(p.C, M_, K_),
        h2p_(Hp_, S(0)),
        W2p_(Hp_ * Mc_, S(0)),
        W1tp_(Hp_ * Mc_, S(0)),
        W1_packed_(p.W1, H_, 1, lanes_ ? 0 : M_, H_),   // W1   (row-major: W1(i, j) = W1[i H + j])
        W2_packed_(p.W2, M_, 1, lanes_ ? 0 : H_, M_),   // W2   (row-major: W2(j, i) = W2[j M + i])
        W1t_packed_(p.W1, 1, H_, lanes_ ? 0 : H_, M_),  // W1^T
        W2t_packed_(p.W2, 1, M_, lanes_ ? 0 : M_, H_) {  // W2^T
    if (!lanes_) return;
    for (index_t j = 0; j < H_; ++j) {
      h2p_[j] = p.h2[j];
      for (index_t i = 0; i < M_; ++i) {
        W2p_[j * Mc_ + i] = p.W2[j * M_ + i];   // W2 [H, M]
        W1tp_[j * Mc_ + i] = p.W1[i * H_ + j];  // W1^T [H, M]
      }
    }
  }

  struct Workspace {                 // per chunk
    AlignedVector<S> u, z, g;        // lanes: [Mc] lane blocks of one group (padding rows stay 0)
    Mat<S> v, phi;                   // packed: [H, nb] without the tape
    packed::ProductBuffers<S> prod;  // packed: the four products with W1, W2 and their transposes
    Workspace(const ShallowPLRNN& m, index_t nb)
        : u(m.Mc_ * L, S(0)), z(m.Mc_ * L, S(0)), g(m.Mc_ * L, S(0)),
          v(m.lanes_ ? 0 : m.H_, m.lanes_ ? 0 : nb), phi(m.lanes_ ? 0 : m.H_, m.lanes_ ? 0 : nb),
          prod(m.lanes_ ? 0 : std::max(m.M_, m.H_), m.lanes_ ? 0 : std::max(m.M_, m.H_), m.lanes_ ? 0 : nb) {}
  };
  struct Tape {                // per chunk (a gradient is wanted iff cols > 0)
    Eigen::Map<Mat<S>> V;      // packed: [H, cols] W2 U (before the bias) of every step
    Eigen::Map<Mat<S>> Phi;    // packed: [H, cols] hidden activation of every step
    Eigen::Map<Mat<S>> Delta;  // packed: [H, cols] dL/d(W2 U) of every step
    Vec<S> g_A, g_h1, g_h2;    // packed: [M], [M], [H] accumulated over the steps
    Eigen::Map<Mat<S>> rec;    // lanes: [rec_size, kRecords] the records, see Layout
    Eigen::Map<Mat<S>> acc;    // lanes: the per-lane sums, see Layout
    index_t count = 0;         // lanes: records collected
    Tape(const ShallowPLRNN& m, index_t cols)
        : V(Scratch<S>::get(kModelTape0, m.lanes_ ? 0 : m.H_, m.lanes_ ? 0 : cols)),
          Phi(Scratch<S>::get(kTapePhi, m.lanes_ ? 0 : m.H_, m.lanes_ ? 0 : cols)),
          Delta(Scratch<S>::get(kModelTape1, m.lanes_ ? 0 : m.H_, m.lanes_ ? 0 : cols)),
          g_A(Vec<S>::Zero(m.lanes_ ? 0 : m.M_)),
          g_h1(Vec<S>::Zero(m.lanes_ ? 0 : m.M_)),
          g_h2(Vec<S>::Zero(m.lanes_ ? 0 : m.H_)),
          rec(Scratch<S>::get(kModelTape0, m.lanes_ && cols > 0 ? m.lay_.rec_size : 0,
                              m.lanes_ && cols > 0 ? kRecords : 0)),
          acc(Scratch<S>::get(kModelTape1, m.lanes_ && cols > 0 ? m.lay_.acc_size : 0, 1)) {
      if (!m.lanes_ || cols == 0) return;
      acc.setZero();
      const Layout& y = m.lay_;
      for (index_t k = 0; k < kRecords; ++k) {
        S* r = rec.col(k).data();
        std::fill(r + y.u + m.M_ * L, r + y.u + m.Mc_ * L, S(0));
        std::fill(r + y.u + m.Mc_ * L, r + y.g, S(1));  // the ones row after u
        std::fill(r + y.g + m.M_ * L, r + y.g + m.Mc_ * L, S(0));
        std::fill(r + y.phi + m.Hp_ * L, r + y.delta, S(1));  // the ones row after phi
      }
    }
  };

  // hidden activation from v = W2 u:  relu(v + h2) [- relu(v)]          V, Phi [H, n]  (packed)
  void hidden(CRef<S> V, Ref<S> Phi) const {
    Phi = (V.colwise() + h2_).cwiseMax(S(0));
    if constexpr (Clipped) Phi -= V.cwiseMax(S(0));
  }

  // fwd inputs:  U [M, nb] state after forcing, Sx [K, nb] input s_t
  // fwd outputs: Z [M, nb] = A*U + W1 hidden(W2 U) + h1 + C Sx;  packed: the tape keeps W2 U and
  //              hidden(W2 U) (lanes: nothing is taped)
  void step(CRef<S> U, CRef<S> Sx, Ref<S> Z, Workspace& ws, Tape* tape, index_t col0) const {
    const index_t nb = U.cols();
    if (lanes_) {
      using namespace Eigen::internal;
      for (index_t c0 = 0; c0 < nb; c0 += L) {
        const index_t n = std::min<index_t>(L, nb - c0);
        lanes::load_lanes(U.data(), U.outerStride(), M_, c0, n, ws.u.data());
        forward_lanes(ws.u.data(), ws.z.data());
        for (index_t i = 0; i < M_; ++i) {
          const Pk au = pmadd(pset1<Pk>(A_[i]), pload<Pk>(ws.u.data() + i * L), pset1<Pk>(h1_[i]));
          pstore(ws.z.data() + i * L, padd(pload<Pk>(ws.z.data() + i * L), au));
        }
        lanes::store_lanes(ws.z.data(), M_, c0, n, Z.data(), Z.outerStride());
      }
    } else {
      Ref<S> v = tape ? Ref<S>(tape->V.middleCols(col0, nb)) : Ref<S>(ws.v);
      Ref<S> phi = tape ? Ref<S>(tape->Phi.middleCols(col0, nb)) : Ref<S>(ws.phi);
      v = packed::multiply(W2_packed_, U, ws.prod);
      hidden(v, phi);
      Z = packed::multiply(W1_packed_, phi, ws.prod);
      Z.array() += (U.array().colwise() * A_.array()).colwise() + h1_.array();
    }
    if (K_ > 0) Z.noalias() += C_ * Sx;
  }

  // grad inputs:  U [M, nb], G [M, nb] = dL/dZ
  // grad outputs: GU [M, nb] = A*G + W2^T Delta, Delta = (W1^T G) .* (1[V + h2 > 0] [- 1[V > 0]]),
  //               V = W2 U; tape: g_A += rowsum(G .* U), g_h1 += rowsum(G), g_h2 += rowsum(dL/dh2)
  //               and Delta (packed), or the record (u, g, phi, delta) of each group (lanes)
  void step_grad(CRef<S> U, CRef<S> G, Ref<S> GU, Workspace& ws, Tape& tape, index_t col0) const {
    if (lanes_) return step_grad_lanes(U, G, GU, ws, tape);
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

  // grad of the parameters over all steps of the chunk: U_all, G_all [M, cols], S_all [K, cols]
  // (packed: one product per matrix; lanes: the lane sums of the tape)
  void param_grads(CRef<S> U_all, CRef<S> G_all, CRef<S> S_all, Tape& tape, GradBuffers<S>& g) const {
    if (lanes_) {
      param_grads_lanes(tape, g);
    } else {
      g.vec(pA) = tape.g_A;
      g.mat(pW1) = packed::times_transpose(G_all, CRef<S>(tape.Phi));
      g.mat(pW2) = packed::times_transpose(CRef<S>(tape.Delta), U_all);
      g.vec(ph1) = tape.g_h1;
      g.vec(ph2) = tape.g_h2;
    }
    if (K_ > 0) g.mat(pC).noalias() = G_all * S_all.transpose();
  }

  index_t M() const { return M_; }

 private:
  static constexpr int kLaneRows[] = {1, 2, 3, 4, 6, 8, 12};
  static index_t lane_rows(index_t M) {
    for (int r : kLaneRows)
      if (M <= r) return r;
    return M;
  }

  // Offsets (elements) in a record and in the sums (lanes).
  struct Layout {
    index_t u, g, phi, delta, rec_size;  // record: u [Mc], 1, g [Mc], phi [Hp], 1, delta [Hp]
    index_t dW1, dW2t, g_A, g_h2, acc_size;  // [Mc][Hp+1], [Mc+1][Hp], [Mc], [Hp] (clipped)
    Layout(index_t Mc, index_t Hp) {
      u = 0, g = (Mc + 1) * L, phi = g + Mc * L, delta = phi + (Hp + 1) * L, rec_size = delta + Hp * L;
      dW1 = 0, dW2t = Mc * (Hp + 1) * L, g_A = dW2t + (Mc + 1) * Hp * L, g_h2 = g_A + Mc * L;
      acc_size = g_h2 + (Clipped ? Hp * L : 0);
    }
  };

  // GU = A*G + W2^T Delta group by group, the records and the sums g_A (and, clipped, dh2) (lanes)
  void step_grad_lanes(CRef<S> U, CRef<S> G, Ref<S> GU, Workspace& ws, Tape& tape) const {
    using namespace Eigen::internal;
    const index_t nb = U.cols();
    S* g_A = tape.acc.data() + lay_.g_A;
    for (index_t c0 = 0; c0 < nb; c0 += L) {
      const index_t n = std::min<index_t>(L, nb - c0);
      if (tape.count == kRecords) flush(tape);
      S* r = tape.rec.col(tape.count++).data();
      S* u = r + lay_.u;
      S* g = r + lay_.g;
      lanes::load_lanes(U.data(), U.outerStride(), M_, c0, n, u);
      lanes::load_lanes(G.data(), G.outerStride(), M_, c0, n, g);
      backward_lanes(u, g, r + lay_.phi, r + lay_.delta, ws.g.data(), tape.acc.data() + lay_.g_h2);
      for (index_t i = 0; i < M_; ++i) {
        const Pk gi = pload<Pk>(g + i * L), ui = pload<Pk>(u + i * L);
        pstore(ws.g.data() + i * L, pmadd(pset1<Pk>(A_[i]), gi, pload<Pk>(ws.g.data() + i * L)));
        pstore(g_A + i * L, pmadd(gi, ui, pload<Pk>(g_A + i * L)));
      }
      lanes::store_lanes(ws.g.data(), M_, c0, n, GU.data(), GU.outerStride());
    }
  }

  void param_grads_lanes(Tape& tape, GradBuffers<S>& g) const {
    flush(tape);
    const S* acc = tape.acc.data();
    const S* dW1 = acc + lay_.dW1;    // [Mc][Hp + 1]: dW1, then dh1
    const S* dW2t = acc + lay_.dW2t;  // [Mc + 1][Hp]: dW2^T, then dh2 (not clipped)
    auto W1g = g.mat(pW1);
    auto W2g = g.mat(pW2);
    for (index_t i = 0; i < M_; ++i) {
      for (index_t j = 0; j < H_; ++j) {
        W1g(i, j) = lanes::lane_sum(dW1 + (i * (Hp_ + 1) + j) * L);
        W2g(j, i) = lanes::lane_sum(dW2t + (i * Hp_ + j) * L);
      }
      g.vec(pA)[i] = lanes::lane_sum(acc + lay_.g_A + i * L);
      g.vec(ph1)[i] = lanes::lane_sum(dW1 + (i * (Hp_ + 1) + Hp_) * L);
    }
    const S* dh2 = Clipped ? acc + lay_.g_h2 : dW2t + Mc_ * Hp_ * L;
    for (index_t j = 0; j < H_; ++j) g.vec(ph2)[j] = lanes::lane_sum(dh2 + j * L);
  }

  // z [Mc lanes] = W1 hidden(W2 u) for one group
  void forward_lanes(const S* u, S* z) const {
    switch (Mc_) {
      case 1: return forward_fused<1>(u, z);
      case 2: return forward_fused<2>(u, z);
      case 3: return forward_fused<3>(u, z);
      case 4: return forward_fused<4>(u, z);
      case 6: return forward_fused<6>(u, z);
      case 8: return forward_fused<8>(u, z);
      default: return forward_fused<12>(u, z);
    }
  }

  // For one group: phi, delta [Hp lanes] and gu [Mc lanes] = W2^T delta; clipped: dh2 += d1
  void backward_lanes(const S* u, const S* g, S* phi, S* delta, S* gu, S* dh2) const {
    switch (Mc_) {
      case 1: return backward_fused<1>(u, g, phi, delta, gu, dh2);
      case 2: return backward_fused<2>(u, g, phi, delta, gu, dh2);
      case 3: return backward_fused<3>(u, g, phi, delta, gu, dh2);
      case 4: return backward_fused<4>(u, g, phi, delta, gu, dh2);
      case 6: return backward_fused<6>(u, g, phi, delta, gu, dh2);
      case 8: return backward_fused<8>(u, g, phi, delta, gu, dh2);
      default: return backward_fused<12>(u, g, phi, delta, gu, dh2);
    }
  }

  // partial sums per accumulator (about 8 independent FMA chains), rows of W per pass
  template <int MC> static constexpr int kSplit = MC >= 8 ? 1 : MC >= 4 ? 2 : MC >= 3 ? 3 : 4;
  template <int MC> static constexpr int kRowsPerPass = MC >= 8 ? 4 : 8;

  // MC sums of FMAs, each kept as kSplit<MC> interleaved partial sums (term r goes to r mod kSplit),
  // added in order at the end: about 8 independent FMA chains however small the state.
  template <int MC>
  struct SplitSums {
    static constexpr int NS = kSplit<MC>;
    Pk s[NS][MC];
    SplitSums() {
      PLRNN_UNROLL for (int k = 0; k < NS; ++k)
        PLRNN_UNROLL for (int i = 0; i < MC; ++i) s[k][i] = Eigen::internal::pset1<Pk>(S(0));
    }
    void add(int r, const S* w, Pk f) {  // sums[i] += w[i] f
      PLRNN_UNROLL for (int i = 0; i < MC; ++i)
        s[r % NS][i] = Eigen::internal::pmadd(Eigen::internal::pset1<Pk>(w[i]), f, s[r % NS][i]);
    }
    void store(S* out) const {  // out [MC lanes]
      PLRNN_UNROLL for (int i = 0; i < MC; ++i) {
        Pk t = s[0][i];
        PLRNN_UNROLL for (int k = 1; k < NS; ++k) t = Eigen::internal::padd(t, s[k][i]);
        Eigen::internal::pstore(out + i * L, t);
      }
    }
  };

  // the hidden activation of one unit from v = (W2 u)_j and its bias: relu(v + h2) [- relu(v)]
  static Pk activation(S h2, Pk v) {
    using namespace Eigen::internal;
    const Pk zero = pset1<Pk>(S(0));
    Pk f = pmax(padd(v, pset1<Pk>(h2)), zero);
    if constexpr (Clipped) f = psub(f, pmax(v, zero));
    return f;
  }

  // W2 row j times u (i ascending), the same in both passes
  template <int MC>
  static Pk row_times(const S* w, const Pk* x) {
    using namespace Eigen::internal;
    Pk s = pmul(pset1<Pk>(w[0]), x[0]);
    PLRNN_UNROLL for (int i = 1; i < MC; ++i) s = pmadd(pset1<Pk>(w[i]), x[i], s);
    return s;
  }

  template <int MC>
  void forward_fused(const S* u, S* z) const {
    using namespace Eigen::internal;
    constexpr int JR = kRowsPerPass<MC>;
    const S* __restrict w2p = W2p_.data();
    const S* __restrict w1tp = W1tp_.data();
    const S* __restrict h2p = h2p_.data();
    const index_t Hp = Hp_;
    Pk x[MC];
    PLRNN_UNROLL for (int i = 0; i < MC; ++i) x[i] = pload<Pk>(u + i * L);
    SplitSums<MC> zsum;
    for (index_t j0 = 0; j0 < Hp; j0 += JR) {
      Pk v[JR];
      PLRNN_UNROLL for (int r = 0; r < JR; ++r) v[r] = row_times<MC>(w2p + (j0 + r) * MC, x);
      PLRNN_UNROLL for (int r = 0; r < JR; ++r) zsum.add(r, w1tp + (j0 + r) * MC, activation(h2p[j0 + r], v[r]));
    }
    zsum.store(z);
  }

  template <int MC>
  void backward_fused(const S* u, const S* g, S* __restrict phi, S* __restrict delta, S* gu,
                      S* __restrict dh2) const {
    using namespace Eigen::internal;
    constexpr int JR = kRowsPerPass<MC>;
    const S* __restrict w2p = W2p_.data();
    const S* __restrict w1tp = W1tp_.data();
    const S* __restrict h2p = h2p_.data();
    const index_t Hp = Hp_;
    Pk x[MC], y[MC];
    PLRNN_UNROLL for (int i = 0; i < MC; ++i) {
      x[i] = pload<Pk>(u + i * L);
      y[i] = pload<Pk>(g + i * L);
    }
    SplitSums<MC> gusum;
    for (index_t j0 = 0; j0 < Hp; j0 += JR) {
      PLRNN_UNROLL for (int r = 0; r < JR; ++r) {
        const index_t j = j0 + r;
        const S* w2 = w2p + j * MC;
        const Pk d = hidden_grad(h2p[j], row_times<MC>(w2, x), row_times<MC>(w1tp + j * MC, y),
                                 phi + j * L, delta + j * L, dh2 + j * L);
        gusum.add(r, w2, d);
      }
    }
    gusum.store(gu);
  }

  // one hidden unit of a group from v = (W2 u)_j, r = (W1^T g)_j and the bias h2_j: stores the
  // activation phi_j and delta_j = r (1[v + h2 > 0] [- 1[v > 0]]) into the record and returns delta_j;
  // clipped: *dh2 += r 1[v + h2 > 0] (otherwise dh2 is the ones row's outer product)
  static Pk hidden_grad(S h2, Pk v, Pk r, S* phi, S* delta, S* dh2) {
    using namespace Eigen::internal;
    const Pk zero = pset1<Pk>(S(0));
    const Pk d1 = pselect(pcmp_lt(zero, padd(v, pset1<Pk>(h2))), r, zero);
    Pk d = d1;
    if constexpr (Clipped) {
      d = psub(d1, pselect(pcmp_lt(zero, v), r, zero));
      pstore(dh2, padd(pload<Pk>(dh2), d1));
    } else {
      (void)dh2;
    }
    pstore(phi, activation(h2, v));
    pstore(delta, d);
    return d;
  }

  // The collected records into the sums: [dW1 | dh1] += g (x) (phi, 1), [dW2^T ; dh2] += (u, 1) (x) delta.
  void flush(Tape& tape) const {
    if (tape.count == 0) return;
    const S* r = tape.rec.data();
    const index_t ld = lay_.rec_size;
    S* acc = tape.acc.data();
    lanes::outer_acc(r + lay_.g, ld, Mc_, r + lay_.phi, ld, Hp_ + 1, tape.count, acc + lay_.dW1);
    lanes::outer_acc(r + lay_.u, ld, Mc_ + 1, r + lay_.delta, ld, Hp_, tape.count, acc + lay_.dW2t);
    tape.count = 0;
  }

  index_t M_, H_, K_;
  bool lanes_;
  index_t Mc_, Hp_;
  CMapVec<S> A_, h1_, h2_;
  CMapRow<S> C_;
  AlignedVector<S> h2p_, W2p_, W1tp_;  // lanes: [Hp], W2 [Hp, Mc], W1^T [Hp, Mc] zero-padded, once per call
  packed::PackedRows<S> W1_packed_, W2_packed_, W1t_packed_, W2t_packed_;  // packed: once per call
  Layout lay_{Mc_, Hp_};
};

template <typename S> struct ModelFor<S, Kind::Shallow> { using type = ShallowPLRNN<S, false>; };
template <typename S> struct ModelFor<S, Kind::ShallowClipped> { using type = ShallowPLRNN<S, true>; };

}  // namespace plrnn
