// Shallow PLRNN (Hess et al. 2023), hidden width H:
//   z' = A*u + W1 relu(W2 u + h2) + h1 + C s                           (Clipped = false)
//   z' = A*u + W1 (relu(W2 u + h2) - relu(W2 u)) + h1 + C s            (Clipped = true)
#pragma once
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/column_product.h"
#include "core/eigen.h"
#include "core/grad_buffers.h"
#include "core/kind_dispatch.h"
#include "core/lanes.h"
#include "core/packed_gemm.h"
#include "core/row_packets.h"
#include "core/scratch.h"

namespace plrnn {

template <typename S, bool Clipped>
class ShallowPLRNN {
  using LN = lanes::Lane<S>;
  using Pk = typename LN::Packet;
  static constexpr int P = LN::kP, Q = LN::kQ, L = LN::kS;  // packet = Q hidden units x L sequences
  // lanes: group-steps a flush of the deferred sums adds (flush_slots). A flush loads and stores each sum
  // once, so more slots mean fewer of those per step: the Lorenz-63 default (M = 3, H = 100, float32,
  // AMD Zen 1) took 33.6 cycles per packet and group-step (forward, backward and flushes) with 8 slots,
  // 30.9 with 16 or 24, 30.6 with 32, 31.5 with 48 or 64 (16 slots of 6.6 KiB: L2, not L1).
  static constexpr int kSlots = 16;

 public:
  // Two implementations of the same step, chosen once per call by `lanes_`:
  //  - lanes (M <= kLanesMaxM, the shipped defaults): one sequence per SIMD lane (core/lanes.h),
  //    a chunk's nb sequences in groups of L, the state padded to Mc rows (one of kLaneRows) and H to
  //    a multiple of 2 Q (whole packets, in pairs: kSplit); a packet holds Q hidden units of the group
  //    (Q = 4 with AVX-512, else 1; padding H = 100 to 104 units cost 4 % of a step on AVX2). One
  //    pass over the hidden units does a whole step with the state and the partial sums in
  //    registers. The backward pass takes the hidden layer's activation phi (clipped: its input W2 u)
  //    from the tape of the lane-resident loop (rollout/lane_bptt.h: step_group's v_tape, kPhiOnTape;
  //    per Lorenz-63 step on AMD Zen 1 the taped W2 u was 1.05-1.07x faster than recomputing it, phi
  //    instead 1.06x more, against a tape of about 620 KiB per chunk of 8 sequences, more than that
  //    core's L2) or recomputes it (the general loop, rollout/bptt.h: nothing taped), and adds each
  //    packet's outer products to per-lane sums (Layout):
  //    g (x) (phi, 1) gives dW1 and dh1, (u, 1) (x) delta gives dW2^T and dh2. The sums
  //    (Mc (2 nq + 2) + nq packets: 12 KiB at M = 3, H = 100, 81 KiB at M = 10, H = 200, float32)
  //    receive a group-step's terms a few group-steps later, kSlots at a time (flush_slots).
  //  - packed (larger M): register-blocked tiles (core/packed_gemm.h), V, Phi and Delta on the tape
  //    and the weight gradients as one product over all steps at the end.
  // Measured with the earlier lane kernels (one unit of 8 sequences per 256-bit packet; float32,
  // 1 thread, Intel Xeon AVX-512): lanes 2-4x faster at M = 3..8, 1.2x at M = 12, H = 50; packed 1.3x
  // faster at M = 16, H = 64 and 1.5-4x at M >= 32 (there the per-lane sums, Mc (H + 1) L floats, no
  // longer fit in L1). The 4-unit packets made the lanes 1.4x faster at M = 10, H = 200 (2 threads);
  // the crossover was not measured again.
  static constexpr index_t kLanesMaxM = 12;

  ShallowPLRNN(const ModelSpec& spec, const Params<S>& p)
      : M_(spec.dims.M),
        H_(spec.dims.H),
        K_(spec.dims.K),
        lanes_(M_ <= kLanesMaxM),
        Mc_(lanes_ ? lane_rows(M_) : 0),
        Hp_(lanes_ ? (H_ + 2 * Q - 1) / (2 * Q) * (2 * Q) : 0),
        A_(p.A, M_),
        h1_(p.h1, M_),
        h2_(p.h2, H_),
        Cs_(p.C, M_, K_),
        h2p_(Hp_ + kLookahead, S(0)),
        W2p_(Hp_ * Mc_ + kLookahead, S(0)),
        W1p_(Hp_ * Mc_ + kLookahead, S(0)),
        W1_packed_(p.W1, H_, 1, lanes_ ? 0 : M_, H_),   // W1   (row-major: W1(i, j) = W1[i H + j])
        W2_packed_(p.W2, M_, 1, lanes_ ? 0 : H_, M_),   // W2   (row-major: W2(j, i) = W2[j M + i])
        W1t_packed_(p.W1, 1, H_, lanes_ ? 0 : H_, M_),  // W1^T
        W2t_packed_(p.W2, 1, M_, lanes_ ? 0 : M_, H_) {  // W2^T
    if (!lanes_) return;
    for (index_t j = 0; j < H_; ++j) {
      h2p_[j] = p.h2[j];
      for (index_t i = 0; i < M_; ++i) {
        W2p_[i * Hp_ + j] = p.W2[j * M_ + i];  // W2^T [M, H]
        W1p_[i * Hp_ + j] = p.W1[i * H_ + j];  // W1 [M, H]
      }
    }
  }

  struct Workspace {                 // per chunk
    AlignedVector<S> u, z, g;        // lanes: [Mc, L] lane blocks of one group (padding rows stay 0)
    AlignedVector<S> phi1;           // lanes: the hidden layer of one sequence (step_single)
    Mat<S> v, phi;                   // packed: [H, nb] without the tape
    packed::ProductBuffers<S> prod;  // packed: the four products with W1, W2 and their transposes
    Workspace(const ShallowPLRNN& m, index_t nb)
        : u(m.Mc_ * L, S(0)), z(m.Mc_ * L, S(0)), g(m.Mc_ * L, S(0)), phi1(m.lanes_ ? m.Hp_ + P : 0),
          v(m.lanes_ ? 0 : m.H_, m.lanes_ ? 0 : nb), phi(m.lanes_ ? 0 : m.H_, m.lanes_ ? 0 : nb),
          prod(m.lanes_ ? 0 : std::max(m.M_, m.H_), m.lanes_ ? 0 : std::max(m.M_, m.H_), m.lanes_ ? 0 : nb) {}
  };
  struct Tape {                // per chunk (a gradient is wanted iff cols > 0)
    Eigen::Map<Mat<S>> V;      // packed: [H, cols] W2 U (before the bias) of every step
    Eigen::Map<Mat<S>> Phi;    // packed: [H, cols] hidden activation of every step
    Eigen::Map<Mat<S>> Delta;  // packed: [H, cols] dL/d(W2 U) of every step
    Vec<S> g_A, g_h1, g_h2;    // packed: [M], [M], [H] accumulated over the steps
    Eigen::Map<Mat<S>> acc;    // lanes: the per-lane sums, see Layout
    Eigen::Map<Mat<S>> slots;  // lanes: [slot_size, kSlots] the last group-steps' terms not yet in acc
    const S* phi[kSlots] = {};  // lanes: each filled slot's phi (in the slot, or on the hidden tape)
    int used = 0;               // lanes: slots filled
    Tape(const ShallowPLRNN& m, index_t cols)
        : V(Scratch<S>::get(kModelTape0, m.lanes_ ? 0 : m.H_, m.lanes_ ? 0 : cols)),
          Phi(Scratch<S>::get(kTapePhi, m.lanes_ ? 0 : m.H_, m.lanes_ ? 0 : cols)),
          Delta(Scratch<S>::get(kModelTape1, m.lanes_ ? 0 : m.H_, m.lanes_ ? 0 : cols)),
          g_A(Vec<S>::Zero(m.lanes_ ? 0 : m.M_)),
          g_h1(Vec<S>::Zero(m.lanes_ ? 0 : m.M_)),
          g_h2(Vec<S>::Zero(m.lanes_ ? 0 : m.H_)),
          acc(Scratch<S>::get(kModelTape1, m.lanes_ && cols > 0 ? m.lay_.acc_size : 0, 1)),
          slots(Scratch<S>::get(kModelTape0, m.lanes_ && cols > 0 ? m.lay_.slot_size : 0,
                                kSlots)) {
      if (m.lanes_ && cols > 0) acc.setZero();
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
      for (index_t c0 = 0; c0 < nb; c0 += L) {
        const index_t n = std::min<index_t>(L, nb - c0);
        if (n == 1) {  // a group of one sequence (a batch of one): without the L - 1 empty lanes
          std::copy_n(U.col(c0).data(), M_, ws.u.data());  // (rows M..Mc-1 stay 0)
          step_single(ws.u.data(), ws.z.data(), ws.phi1.data());
          std::copy_n(ws.z.data(), M_, Z.col(c0).data());
          continue;
        }
        lanes::load_lanes(U.data(), U.outerStride(), M_, c0, n, ws.u.data());
        step_group(ws.u.data(), ws.z.data());
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
    if (K_ > 0) Cs_.multiply_add(Sx, Z);
  }

  // grad inputs:  U [M, nb], G [M, nb] = dL/dZ
  // grad outputs: GU [M, nb] = A*G + W2^T Delta, Delta = (W1^T G) .* (1[V + h2 > 0] [- 1[V > 0]]),
  //               V = W2 U; tape: g_A += rowsum(G .* U), g_h1 += rowsum(G), g_h2 += rowsum(dL/dh2)
  //               and Delta (packed), or the per-lane sums of the weight gradients (lanes)
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
      packed::times_transpose_into<S>(G_all, tape.Phi, g.mat_colmajor(pW1));  // in place (no copy per chunk)
      packed::times_transpose_into<S>(tape.Delta, U_all, g.mat_colmajor(pW2));
      g.vec(ph1) = tape.g_h1;
      g.vec(ph2) = tape.g_h2;
    }
    if (K_ > 0) g.mat(pC).noalias() = G_all * S_all.transpose();
  }

  index_t M() const { return M_; }

  // ---- one group of L sequences in lane blocks [Mc, L] (the lanes implementation; also the
  // lane-resident time loop of rollout/lane_bptt.h). Rows M..Mc-1 of u and g must be 0; they stay 0.
  static constexpr int kGroup = L;      // sequences per group
  bool lanes() const { return lanes_; }  // this call runs on lanes (M <= kLanesMaxM)
  index_t lane_rows() const { return Mc_; }
  index_t lane_hidden_size() const { return Hp_ * L; }  // values of a group-step's hidden tape (kPhiOnTape)

  // z = A*u + W1 hidden(W2 u) + h1 of one group (no input term: the caller adds C s); with v_tape
  // (lane_hidden_size() values) also the hidden tape (kPhiOnTape), for step_grad_group to read instead of
  // computing it again
  void step_group(const S* u, S* z, S* v_tape = nullptr) const {
    using namespace Eigen::internal;
    using Bk = typename LN::Block;
    lane_rows_switch([&](auto mc) {
      constexpr int MC = decltype(mc)::value;
      v_tape ? forward_fused<MC, true>(u, z, v_tape) : forward_fused<MC, false>(u, z, nullptr);
    });
    for (index_t i = 0; i < M_; ++i) {
      const Bk au = pmadd(pset1<Bk>(A_[i]), pload<Bk>(u + i * L), pset1<Bk>(h1_[i]));
      pstore(z + i * L, padd(pload<Bk>(z + i * L), au));
    }
  }

  // z = A*u + W1 hidden(W2 u) + h1 of one sequence (u, z [Mc], rows M..Mc-1 of u 0; phi: Hp + P values
  // of scratch): lane 0 of step_group for a group that holds this sequence in lane 0, the same
  // operations on every value in the same order (the same bits), without step_group's L - 1 empty
  // lanes: the hidden layer P units at a time, and each sum over the units (forward_fused's
  // accumulators: NS chains of FMAs per unit of a packet, added in store_sums' and store_reduced's
  // order) as a chain of scalar FMAs, 2 Q Mc of them side by side.
  void step_single(const S* u, S* z, S* phi) const {
    lane_rows_switch([&](auto mc) { step_single_fixed<decltype(mc)::value>(u, z, phi); });
  }

  // gu = A*g + W2^T delta of one group, and its terms added to the tape's per-lane sums (Layout);
  // v_tape: the hidden tape as step_group wrote it for the same u (the same bits as computing it here;
  // with kPhiOnTape its phi is read by flush_slots, so it must stay unchanged until the next flush)
  void step_grad_group(const S* u, const S* g, S* gu, Tape& tape, const S* v_tape = nullptr) const {
    using namespace Eigen::internal;
    using Bk = typename LN::Block;
    lane_rows_switch([&](auto mc) {
      constexpr int MC = decltype(mc)::value;
      v_tape ? backward_fused<MC, true>(u, g, gu, tape, v_tape)
             : backward_fused<MC, false>(u, g, gu, tape, nullptr);
    });
    if (++tape.used == kSlots) flush_slots(tape);
    for (index_t i = 0; i < M_; ++i)
      pstore(gu + i * L, pmadd(pset1<Bk>(A_[i]), pload<Bk>(g + i * L), pload<Bk>(gu + i * L)));
  }

 private:
  static constexpr int kLaneRows[] = {1, 2, 3, 4, 6, 8, 12};
  static index_t lane_rows(index_t M) {
    for (int r : kLaneRows)
      if (M <= r) return r;
    return M;
  }

  // Offsets (elements) of the per-lane sums, in packets of P (nq = Hp / Q packets per row of hidden
  // units): dW1 | dh1 [Mc][nq + 1] (dh1: unit 0 of each sequence), dW2^T ; dh2 [Mc + 1][nq],
  // g_A [Mc] (unit 0 of each sequence), dh2 [nq] (clipped).
  // A slot (one group-step's terms of the weight gradients, added to the sums by flush_slots), in
  // packets: f = phi [nq], d = delta [nq], d1 = the unclipped part of delta [nq] (clipped), x = u [Mc],
  // y = g [Mc] (the states repeated over the units of a packet, Lane::load_state).
  struct Layout {
    index_t dW1, dW2t, g_A, g_h2, acc_size;
    index_t f, d, d1, x, y, slot_size;
    Layout(index_t Mc, index_t nq) {
      f = 0, d = nq * P, d1 = 2 * nq * P, x = (Clipped ? 3 : 2) * nq * P, y = x + Mc * P;
      slot_size = y + Mc * P;
      dW1 = 0, dW2t = Mc * (nq + 1) * P, g_A = dW2t + (Mc + 1) * nq * P, g_h2 = g_A + Mc * P;
      acc_size = g_h2 + (Clipped ? nq * P : 0);
    }
  };

  // GU = A*G + W2^T Delta group by group, and the per-lane sums (lanes)
  void step_grad_lanes(CRef<S> U, CRef<S> G, Ref<S> GU, Workspace& ws, Tape& tape) const {
    const index_t nb = U.cols();
    for (index_t c0 = 0; c0 < nb; c0 += L) {
      const index_t n = std::min<index_t>(L, nb - c0);
      lanes::load_lanes(U.data(), U.outerStride(), M_, c0, n, ws.u.data());
      lanes::load_lanes(G.data(), G.outerStride(), M_, c0, n, ws.g.data());
      step_grad_group(ws.u.data(), ws.g.data(), ws.z.data(), tape);
      lanes::store_lanes(ws.z.data(), M_, c0, n, GU.data(), GU.outerStride());
    }
  }

  void param_grads_lanes(Tape& tape, GradBuffers<S>& g) const {
    flush_slots(tape);
    const index_t nq = Hp_ / Q;
    const S* acc = tape.acc.data();
    const S* dW1 = acc + lay_.dW1;    // [Mc][nq + 1] packets: dW1, then dh1
    const S* dW2t = acc + lay_.dW2t;  // [Mc + 1][nq] packets: dW2^T, then dh2 (not clipped)
    // unit j of a row of nq packets
    auto unit = [](const S* row, index_t j) { return lanes::unit_sum(row + j / Q * P, static_cast<int>(j % Q)); };
    auto W1g = g.mat(pW1);
    auto W2g = g.mat(pW2);
    for (index_t i = 0; i < M_; ++i) {
      for (index_t j = 0; j < H_; ++j) {
        W1g(i, j) = unit(dW1 + i * (nq + 1) * P, j);
        W2g(j, i) = unit(dW2t + i * nq * P, j);
      }
      g.vec(pA)[i] = lanes::unit_sum(acc + lay_.g_A + i * P, 0);
      g.vec(ph1)[i] = lanes::unit_sum(dW1 + (i * (nq + 1) + nq) * P, 0);
    }
    const S* dh2 = Clipped ? acc + lay_.g_h2 : dW2t + Mc_ * nq * P;
    for (index_t j = 0; j < H_; ++j) g.vec(ph2)[j] = unit(dh2, j);
  }

  // fn(std::integral_constant<int, Mc>): the kernels compiled for each of kLaneRows
  template <class Fn>
  void lane_rows_switch(Fn&& fn) const {
    using std::integral_constant;
    switch (Mc_) {
      case 1: return fn(integral_constant<int, 1>{});
      case 2: return fn(integral_constant<int, 2>{});
      case 3: return fn(integral_constant<int, 3>{});
      case 4: return fn(integral_constant<int, 4>{});
      case 6: return fn(integral_constant<int, 6>{});
      case 8: return fn(integral_constant<int, 8>{});
      default: return fn(integral_constant<int, 12>{});
    }
  }

  // z [Mc lanes] = W1 hidden(W2 u) for one group
  void forward_lanes(const S* u, S* z) const {
    lane_rows_switch([&](auto mc) { forward_fused<decltype(mc)::value, false>(u, z, nullptr); });
  }

  // Two interleaved partial sums per accumulator where a pass over a packet of units has few FMAs
  // (small states), so that a sum's chain of FMAs does not bound the pass; added in order at the end.
  template <int MC> static constexpr int kSplit = MC <= 4 ? 2 : 1;
  // The fused passes compute the products of a packet with the state (W2 u; W1^T g) one iteration
  // ahead of the rest of its work, so that the out-of-order core has the next packet's independent
  // chain to run while this one's waits on its products (a chain of MC dependent FMAs). The last
  // iteration computes (and drops) the products of up to 2 packets past the hidden units: the padded
  // arrays have kLookahead more zeros.
  static constexpr index_t kLookahead = 2 * P;
  // The backward pass adds a group-step's terms of dW1, dW2, dh2 to the per-lane sums deferred: it
  // writes them into the tape's next slot (Layout) and flush_slots adds the slots of kSlots group-steps
  // at a time, the sums in registers (outer_sums). Adding them while the packet is in registers costs a
  // load and a store of 2 Mc + 1 sums per packet and group-step, more than half of the backward pass's
  // memory operations, from L2 once the sums outgrow L1. Deferred against added in the loop (Intel Xeon,
  // AVX-512, float32, 1 thread, loss_and_grad in alternating processes): the Lorenz-96 default (M = 10,
  // H = 200: 81 KiB of sums) 1.41-1.51x (1 and 2 threads), M = 8 / 12 with H = 200 / 300 1.50-1.62x,
  // M = 12, H = 100 1.20x, M = 6, H = 50 1.05x, the Lorenz-63 default 0.97-1.03x, M = 2, H = 30 0.98x;
  // on AMD Zen 1 (AVX2) the Lorenz-63 default's training step 1.04x. Each sum receives the same terms
  // in the same order as it would in the loop: the same bits.
  // What the lane-resident loop tapes per packet in the forward pass (step_group's v_tape), for the
  // backward pass to read instead of computing it: the hidden activation phi (unclipped: the backward
  // pass then needs no activation and no compare on v + h2, its ReLU mask being phi > 0, and the flush
  // reads phi from the tape, not from a slot), or v = W2 u (clipped: its two masks need v itself).
  static constexpr bool kPhiOnTape = !Clipped;
  static constexpr index_t kPhiSlot = -1;  // outer_sums' vec: each slot's phi (Tape::phi)
#if defined(EIGEN_VECTORIZE_AVX512)
  template <int MC> static constexpr int kSplitBackward = kSplit<MC>;
#else  // 16 vector registers: a second set of sums spilled the backward pass's accumulators to the stack
  template <int MC> static constexpr int kSplitBackward = 1;
#endif

  // The unclipped model's pre-activation W2 u + h2 of a packet is one chain of FMAs that starts at h2
  // (no add after it: 1.1x faster forward kernel on AMD Zen 1, where an add beside the FMAs costs
  // most of a cycle); the clipped model needs v = W2 u itself (relu(v)), its chain starts at 0.
  static constexpr bool kFoldBias = !Clipped;

  // the hidden layer's input of the packet of units from j: W2 u + h2 (kFoldBias) or W2 u
  template <int MC>
  Pk hidden_input(index_t j, const Pk* x) const {
    const Pk start = kFoldBias ? LN::load_units(h2p_.data() + j) : Eigen::internal::pset1<Pk>(S(0));
    return units_times<MC>(W2p_.data() + j, x, start);
  }

  // the hidden activation of the packet of units from j from its hidden_input v: relu(v) (kFoldBias)
  // or relu(v + h2) - relu(v) (clipped)
  Pk activation(index_t j, Pk v) const {
    using namespace Eigen::internal;
    const Pk zero = pset1<Pk>(S(0));
    if constexpr (kFoldBias) return pmax(v, zero);
    return psub(pmax(padd(v, LN::load_units(h2p_.data() + j)), zero), pmax(v, zero));
  }

  // start + sum_i w[i, units of the packet] x[i] (i ascending) for a [MC, Hp] weight array w, one
  // chain of FMAs. The first term is an FMA onto `start` (0: the product, rounded once), not a
  // multiply: a multiply followed by the caller's add (the bias, MC = 1) is fused by the compiler or
  // not depending on where the kernel is inlined, which gave two builds of the same step different bits.
  template <int MC>
  Pk units_times(const S* w, const Pk* x, Pk start) const {
    using namespace Eigen::internal;
    Pk s = pmadd(LN::load_units(w), x[0], start);
    PLRNN_UNROLL for (int i = 1; i < MC; ++i) s = pmadd(LN::load_units(w + i * Hp_), x[i], s);
    return s;
  }
  template <int MC>
  Pk units_times(const S* w, const Pk* x) const {
    return units_times<MC>(w, x, Eigen::internal::pset1<Pk>(S(0)));
  }

  // acc[k][i] += w[i, units of the packet] f for a [MC, Hp] weight array w
  template <int MC>
  void add_units(Pk (&acc)[MC], const S* w, Pk f) const {
    PLRNN_UNROLL for (int i = 0; i < MC; ++i)
      acc[i] = Eigen::internal::pmadd(LN::load_units(w + i * Hp_), f, acc[i]);
  }

  // out [MC, L] = the partial sums acc[k] added in order, reduced over the units of each packet
  template <int MC, int NS>
  static void store_sums(Pk (&acc)[NS][MC], S* out) {
    PLRNN_UNROLL for (int i = 0; i < MC; ++i) {
      Pk t = acc[0][i];
      PLRNN_UNROLL for (int k = 1; k < NS; ++k) t = Eigen::internal::padd(t, acc[k][i]);
      LN::store_reduced(t, out + i * L);
    }
  }

  // (TapeV: the hidden tape of every packet into vt as well, kPhiOnTape: phi or v)
  template <int MC, bool TapeV>
  void forward_fused(const S* u, S* z, S* __restrict vt) const {
    using namespace Eigen::internal;
    constexpr int NS = kSplit<MC>;
    const index_t nq = Hp_ / Q;  // a multiple of NS (Hp is a multiple of 2 Q)
    Pk x[MC], acc[NS][MC], vn[NS];
    PLRNN_UNROLL for (int i = 0; i < MC; ++i) x[i] = LN::load_state(u + i * L);
    PLRNN_UNROLL for (int k = 0; k < NS; ++k)
      PLRNN_UNROLL for (int i = 0; i < MC; ++i) acc[k][i] = pset1<Pk>(S(0));
    PLRNN_UNROLL for (int k = 0; k < NS; ++k) vn[k] = hidden_input<MC>(k * Q, x);
    for (index_t q0 = 0; q0 < nq; q0 += NS) {
      Pk v[NS];  // hidden_input of this iteration's packets, computed one iteration ahead (kLookahead)
      PLRNN_UNROLL for (int k = 0; k < NS; ++k) {
        v[k] = vn[k];
        vn[k] = hidden_input<MC>((q0 + NS + k) * Q, x);
      }
      PLRNN_UNROLL for (int k = 0; k < NS; ++k) {
        const index_t j = (q0 + k) * Q;  // the packet's first unit
        const Pk f = activation(j, v[k]);
        if constexpr (TapeV) pstore(vt + (q0 + k) * P, kPhiOnTape ? f : v[k]);
        add_units<MC>(acc[k], W1p_.data() + j, f);
      }
    }
    store_sums<MC, NS>(acc, z);
  }

  template <int MC>
  void step_single_fixed(const S* u, S* z, S* phi) const {
    using namespace Eigen::internal;
    constexpr int NS = kSplit<MC>;
    const index_t nq = Hp_ / Q;
    const Pk zero = pset1<Pk>(S(0));
    Pk x[MC];
    PLRNN_UNROLL for (int i = 0; i < MC; ++i) x[i] = pset1<Pk>(u[i]);
    // phi = activation(hidden_input) of P units at a time: hidden_input's chain of FMAs (from h2 with
    // kFoldBias) and activation's operations, unit by unit as forward_fused computes them lane by lane.
    // Units past Hp (the last packet's) read the arrays' kLookahead padding and are not used.
    for (index_t j = 0; j < Hp_; j += P) {
      Pk v = pmadd(ploadu<Pk>(W2p_.data() + j), x[0], kFoldBias ? ploadu<Pk>(h2p_.data() + j) : zero);
      PLRNN_UNROLL for (int i = 1; i < MC; ++i) v = pmadd(ploadu<Pk>(W2p_.data() + i * Hp_ + j), x[i], v);
      const Pk f = kFoldBias ? pmax(v, zero) : psub(pmax(padd(v, ploadu<Pk>(h2p_.data() + j)), zero), pmax(v, zero));
      pstoreu(phi + j, f);
    }
    // forward_fused's accumulator acc[k][i] in lane (sequence 0, unit q of a packet): the units
    // q' Q + q of the packets q' = k mod NS, ascending
    S acc[NS][MC][Q] = {};
    for (index_t q0 = 0; q0 < nq; q0 += NS)
      PLRNN_UNROLL for (int k = 0; k < NS; ++k) {
        const index_t j = (q0 + k) * Q;
        PLRNN_UNROLL for (int i = 0; i < MC; ++i)
          PLRNN_UNROLL for (int q = 0; q < Q; ++q)
            acc[k][i][q] = rowpk::madd(W1p_[i * Hp_ + j + q], phi[j + q], acc[k][i][q]);
      }
    for (index_t i = 0; i < M_; ++i) {
      S t[Q];  // store_sums: the NS partial sums added in order
      for (int q = 0; q < Q; ++q) {
        t[q] = acc[0][i][q];
        for (int k = 1; k < NS; ++k) t[q] = t[q] + acc[k][i][q];
      }
      S r;  // store_reduced: the packet's Q units of the sequence, (0 + 1) + (2 + 3)
      if constexpr (Q == 1) {
        r = t[0];
      } else {
        static_assert(Q == 4, "store_reduced's order is written for 1 or 4 units per packet");
        r = (t[0] + t[1]) + (t[2] + t[3]);
      }
      z[i] = r + rowpk::madd(A_[i], u[i], h1_[i]);  // step_group: z + (A u + h1)
    }
  }

  // One group backwards: gu = W2^T delta, g_A += g u, dh1 += g, and the step's terms of the other
  // weight gradients into the tape's next slot (Layout: phi, delta and its unclipped part, u, g; flush_slots
  // adds them to the per-lane sums: [dW1] += g (x) phi, [dW2^T ; dh2] += (u, 1) (x) delta)
  // (Taped: the hidden tape read from vt, as forward_fused<MC, true> wrote it, instead of computed:
  // kPhiOnTape: phi, its ReLU mask phi > 0 (the same as v + h2 > 0) and no slot for phi; else v)
  template <int MC, bool Taped>
  void backward_fused(const S* u, const S* g, S* gu, Tape& tape, const S* __restrict vt) const {
    using namespace Eigen::internal;
    constexpr int NS = kSplitBackward<MC>;
    constexpr bool kPhi = Taped && kPhiOnTape;  // phi from the tape
    const index_t nq = Hp_ / Q;
    S* __restrict acc_all = tape.acc.data();
    S* __restrict dW1 = acc_all + lay_.dW1;  // [Mc][nq + 1] packets: dW1, then dh1
    S* __restrict g_A = acc_all + lay_.g_A;  // [Mc] packets
    S* __restrict slot = tape.slots.col(tape.used).data();
    tape.phi[tape.used] = kPhi ? vt : slot + lay_.f;
    Pk x[MC], y[MC], acc[NS][MC];
    PLRNN_UNROLL for (int i = 0; i < MC; ++i) {
      x[i] = LN::load_state(u + i * L);
      y[i] = LN::load_state(g + i * L);
      pstore(g_A + i * P, pmadd(x[i], y[i], pload<Pk>(g_A + i * P)));
      pstore(slot + lay_.x + i * P, x[i]);
      pstore(slot + lay_.y + i * P, y[i]);
    }
    PLRNN_UNROLL for (int k = 0; k < NS; ++k)
      PLRNN_UNROLL for (int i = 0; i < MC; ++i) acc[k][i] = pset1<Pk>(S(0));
    Pk vn[NS], rn[NS];  // hidden_input and W1^T g of the next iteration's packets (see kLookahead)
    PLRNN_UNROLL for (int k = 0; k < NS; ++k) {
      if constexpr (!Taped) vn[k] = hidden_input<MC>(k * Q, x);
      rn[k] = units_times<MC>(W1p_.data() + k * Q, y);
    }
    for (index_t q0 = 0; q0 < nq; q0 += NS) {
      Pk vs[NS], rs[NS];
      PLRNN_UNROLL for (int k = 0; k < NS; ++k) {
        if constexpr (Taped) {
          vs[k] = pload<Pk>(vt + (q0 + k) * P);  // phi (kPhi) or v
        } else {
          vs[k] = vn[k];
          vn[k] = hidden_input<MC>((q0 + NS + k) * Q, x);
        }
        rs[k] = rn[k];
        rn[k] = units_times<MC>(W1p_.data() + (q0 + NS + k) * Q, y);
      }
      PLRNN_UNROLL for (int k = 0; k < NS; ++k) {
        const index_t jq = q0 + k, j = jq * Q;
        Pk f, d1, d;
        if constexpr (kPhi) {  // delta = r 1[phi > 0]
          f = vs[k];
          d = d1 = LN::where_positive(f, rs[k]);  // phi = max(v + h2, 0) > 0 exactly where v + h2 > 0
        } else {  // delta = r (1[W2 u + h2 > 0] [- 1[W2 u > 0]]) from v = hidden_input, r = W1^T g
          const Pk v = vs[k];
          d1 = LN::where_positive(kFoldBias ? v : padd(v, LN::load_units(h2p_.data() + j)), rs[k]);
          d = Clipped ? psub(d1, LN::where_positive(v, rs[k])) : d1;
          f = activation(j, v);
        }
        if constexpr (Clipped) pstore(slot + lay_.d1 + jq * P, d1);
        if constexpr (!kPhi) pstore(slot + lay_.f + jq * P, f);
        pstore(slot + lay_.d + jq * P, d);
        add_units<MC>(acc[k], W2p_.data() + j, d);
      }
    }
    const Pk unit0 = LN::unit0_ones();
    PLRNN_UNROLL for (int i = 0; i < MC; ++i) {
      S* b1 = dW1 + (i * (nq + 1) + nq) * P;
      pstore(b1, pmadd(y[i], unit0, pload<Pk>(b1)));
    }
    store_sums<MC, NS>(acc, gu);
  }

  // The filled slots' terms added to the per-lane sums, slot by slot in the order they were filled
  // (each sum receives the same terms in the same order as when every group-step added its own):
  // [dW1] += g (x) phi, [dW2^T ; dh2] += (u, 1) (x) delta, and dh2 += the unclipped part of delta
  // (clipped): a sum is loaded and stored once per kSlots group-steps, a block of sums (outer_block)
  // staying in registers over the slots (above backward_fused: why).
  void flush_slots(Tape& tape) const {
    if (tape.used == 0) return;
    lane_rows_switch([&](auto mc) {
      constexpr int MC = decltype(mc)::value;
      const index_t nq = Hp_ / Q;
      S* acc = tape.acc.data();
      outer_sums<MC, false>(tape, lay_.y, kPhiSlot, acc + lay_.dW1, nq + 1, nullptr);
      outer_sums<MC, !Clipped>(tape, lay_.x, lay_.d, acc + lay_.dW2t, nq, acc + lay_.dW2t + MC * nq * P);
      if constexpr (Clipped) outer_sums<0, true>(tape, 0, lay_.d1, nullptr, 0, acc + lay_.g_h2);
    });
    tape.used = 0;
  }

  // sums[i][jq] += state_s[i] v_s[jq] (i < MC rows of `stride` packets) and ones[jq] += v_s[jq] (Ones)
  // over the filled slots s, for every packet jq of hidden units; v_s at slot offset `vec` (kPhiSlot:
  // at tape.phi[s]), the state packets at `state`. Blocks of R rows (outer_rows) and J packets
  // (outer_packets) keep their sums in registers; each sum still receives the slots in order.
  template <int MC, bool Ones>
  void outer_sums(const Tape& tape, index_t state, index_t vec, S* sums, index_t stride, S* ones) const {
    constexpr int R = outer_rows(MC, Ones);
    outer_rows_block<R, Ones>(tape, state, vec, sums, stride, ones);  // the ones row with the first block
    if constexpr (MC > R)
      for (int i0 = R; i0 < MC; i0 += R)
        outer_rows_block<R, false>(tape, state + i0 * P, vec, sums + i0 * stride * P, stride, nullptr);
  }

  // Packets per register block of `rows` state rows: its rows x J sums, the rows' state packets, a
  // packet of v and J ones sums (Ones) in the vector registers (AVX-512: 32, else 16)
  static constexpr int outer_packets(int rows, bool ones) {
    constexpr int kRegs = sizeof(Pk) == 64 ? 32 : 16;
    return std::clamp((kRegs - rows - 2) / (rows + (ones ? 1 : 0)), 1, 4);
  }
  // Rows per register block: all MC where at least 2 packets fit beside them, else MC halved until they
  // do. A block loads its R state packets and J packets of v per slot for R J FMAs: at M = 10 (MC = 12)
  // on AVX-512 one block of 12 rows held 1 packet (13 loads per 12 FMAs), two blocks of 6 hold 3-4
  // (0.4-0.5 loads per FMA): the Lorenz-96 default's step 1.09-1.11x (1 and 2 threads), M = 12, H = 100
  // 1.09x; the same bits.
  static constexpr int outer_rows(int mc, bool ones) {
    int r = mc;
    while (r % 2 == 0 && outer_packets(r, ones) < 2) r /= 2;
    return r;
  }

  template <int R, bool Ones>
  void outer_rows_block(const Tape& tape, index_t state, index_t vec, S* sums, index_t stride, S* ones) const {
    constexpr int J = outer_packets(R, Ones);
    const index_t nq = Hp_ / Q;
    index_t jq = 0;
    for (; jq + J <= nq; jq += J) outer_block<R, J, Ones>(tape, state, vec, sums, stride, ones, jq);
    for (; jq < nq; ++jq) outer_block<R, 1, Ones>(tape, state, vec, sums, stride, ones, jq);
  }

  template <int MC, int J, bool Ones>
  void outer_block(const Tape& tape, index_t state, index_t vec, S* sums, index_t stride, S* ones,
                   index_t jq) const {
    using namespace Eigen::internal;
    Pk a[MC > 0 ? MC : 1][J], b[J];
    PLRNN_UNROLL for (int i = 0; i < MC; ++i)
      PLRNN_UNROLL for (int k = 0; k < J; ++k) a[i][k] = pload<Pk>(sums + (i * stride + jq + k) * P);
    if constexpr (Ones) PLRNN_UNROLL for (int k = 0; k < J; ++k) b[k] = pload<Pk>(ones + (jq + k) * P);
    for (int s = 0; s < tape.used; ++s) {
      const S* slot = tape.slots.col(s).data();
      const S* vs = vec == kPhiSlot ? tape.phi[s] : slot + vec;
      Pk st[MC > 0 ? MC : 1];
      PLRNN_UNROLL for (int i = 0; i < MC; ++i) st[i] = pload<Pk>(slot + state + i * P);
      PLRNN_UNROLL for (int k = 0; k < J; ++k) {
        const Pk v = pload<Pk>(vs + (jq + k) * P);
        PLRNN_UNROLL for (int i = 0; i < MC; ++i) a[i][k] = pmadd(st[i], v, a[i][k]);
        if constexpr (Ones) b[k] = padd(b[k], v);  // the ones row: exactly 1 v + sum
      }
    }
    PLRNN_UNROLL for (int i = 0; i < MC; ++i)
      PLRNN_UNROLL for (int k = 0; k < J; ++k) pstore(sums + (i * stride + jq + k) * P, a[i][k]);
    if constexpr (Ones) PLRNN_UNROLL for (int k = 0; k < J; ++k) pstore(ones + (jq + k) * P, b[k]);
  }

  index_t M_, H_, K_;
  bool lanes_;
  index_t Mc_, Hp_;
  CMapVec<S> A_, h1_, h2_;
  ColumnProduct<S> Cs_;  // C, for the input term per sequence (core/column_product.h)
  AlignedVector<S> h2p_, W2p_, W1p_;  // lanes: h2 [Hp], W2^T [Mc, Hp], W1 [Mc, Hp] zero-padded, once per call
  packed::PackedRows<S> W1_packed_, W2_packed_, W1t_packed_, W2t_packed_;  // packed: once per call
  Layout lay_{Mc_, Hp_ / Q};
};

template <typename S> struct ModelFor<S, Kind::Shallow> { using type = ShallowPLRNN<S, false>; };
template <typename S> struct ModelFor<S, Kind::ShallowClipped> { using type = ShallowPLRNN<S, true>; };

}  // namespace plrnn
