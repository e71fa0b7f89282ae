// Batch-in-lanes kernels for the small models (the shallow PLRNN's defaults: M = 3..10 states,
// H = 100..200 hidden units), where the register-blocked products of packed_gemm.h waste most of a
// SIMD register on M < kRows rows and each step is a chain of small, latency-bound products.
//
// Layout: a "lane block" of R rows holds R packets of kL sequences, row r at buf[r * kL, +kL): one
// sequence per SIMD lane. A product with a weight matrix (its entries read as broadcast scalars) is
// then kL independent matrix-vector products in one stream of FMAs, with no padding of the rows and
// no horizontal work (the fused steps of csrc/models/shallow_plrnn.h). The packet is 256 bits
// (8 floats, 4 doubles) where AVX exists: the chunks of the training default (B = 16 on 2 threads)
// hold 8 sequences.
//
//   load_lanes / store_lanes   a column-major [R, n] block  <->  lane block (n <= kL, rest zero)
//   outer_acc                  D += sum_k X_k (x) Y_k  per lane (the weight gradients over steps)
//   lane_sum                   the per-lane partial sums of one entry of D, added in lane order
//
// Every sum runs in an order fixed by the sizes and by which sequences share a chunk, so results
// are reproducible at a given thread count (like the rest of the BPTT core).
#pragma once
#include <algorithm>

#include "core/eigen.h"

// Fully unrolls a loop of a compile-time trip count (keeps arrays of packets in registers).
#define PLRNN_UNROLL _Pragma("GCC unroll 16")

namespace plrnn::lanes {

template <typename S>
struct LanePacket {
  using type = typename Eigen::internal::packet_traits<S>::type;
};
#if defined(EIGEN_VECTORIZE_AVX)
template <>
struct LanePacket<float> {
  using type = Eigen::internal::Packet8f;
};
template <>
struct LanePacket<double> {
  using type = Eigen::internal::Packet4d;
};
#endif

template <typename S>
struct Lane {
  using Packet = typename LanePacket<S>::type;
  static constexpr int kL = Eigen::internal::unpacket_traits<Packet>::size;
#if defined(EIGEN_VECTORIZE_AVX512)
  static constexpr int kOuterRA = 4, kOuterRC = 6;  // 24 accumulators of 32 registers (RA <= 4)
#else
  static constexpr int kOuterRA = 2, kOuterRC = 5;  // 10 accumulators of 16 registers
#endif
};

// dst (lane block, R rows) = columns [c0, c0 + n) of the column-major X [R, *] (leading dimension
// ld); lanes past n are zero.
template <typename S>
inline void load_lanes(const S* x, index_t ld, index_t R, index_t c0, index_t n, S* dst) {
  constexpr int L = Lane<S>::kL;
  for (index_t r = 0; r < R; ++r)
    for (int l = 0; l < L; ++l) dst[r * L + l] = l < n ? x[(c0 + l) * ld + r] : S(0);
}

// Columns [c0, c0 + n) of the column-major Y [R, *] (leading dimension ld) = lanes [0, n) of src.
template <typename S>
inline void store_lanes(const S* src, index_t R, index_t c0, index_t n, S* y, index_t ld) {
  constexpr int L = Lane<S>::kL;
  for (index_t l = 0; l < n; ++l)
    for (index_t r = 0; r < R; ++r) y[(c0 + l) * ld + r] = src[r * L + l];
}

namespace detail {

template <typename S, int RA, int RC>
inline void outer_block(const S* X, index_t ldx, const S* Y, index_t ldy, index_t n, index_t a0,
                        index_t c0, S* D, index_t C) {
  using namespace Eigen::internal;
  using Pk = typename Lane<S>::Packet;
  constexpr int L = Lane<S>::kL;
  Pk acc[RA][RC];
  for (int a = 0; a < RA; ++a)
    for (int c = 0; c < RC; ++c) acc[a][c] = pload<Pk>(D + ((a0 + a) * C + c0 + c) * L);
  for (index_t k = 0; k < n; ++k) {
    const S* x = X + k * ldx + a0 * L;
    const S* y = Y + k * ldy + c0 * L;
    Pk xv[RA];
    for (int a = 0; a < RA; ++a) xv[a] = pload<Pk>(x + a * L);
    for (int c = 0; c < RC; ++c) {
      const Pk yv = pload<Pk>(y + c * L);
      for (int a = 0; a < RA; ++a) acc[a][c] = pmadd(xv[a], yv, acc[a][c]);
    }
  }
  for (int a = 0; a < RA; ++a)
    for (int c = 0; c < RC; ++c) pstore(D + ((a0 + a) * C + c0 + c) * L, acc[a][c]);
}

template <typename S, int RA>
inline void outer_rows(const S* X, index_t ldx, const S* Y, index_t ldy, index_t n, index_t a0,
                       index_t C, S* D) {
  constexpr int RC = Lane<S>::kOuterRC;
  index_t c0 = 0;
  for (; c0 + RC <= C; c0 += RC) outer_block<S, RA, RC>(X, ldx, Y, ldy, n, a0, c0, D, C);
  for (; c0 < C; ++c0) outer_block<S, RA, 1>(X, ldx, Y, ldy, n, a0, c0, D, C);
}

}  // namespace detail

// D[a][c] (lanes) += sum_k X_k[a] * Y_k[c] for k < n, where X_k = X + k ldx is a lane block of A rows
// and Y_k = Y + k ldy one of C rows; D is A x C lane packets, (a, c) at D + (a C + c) kL.
template <typename S>
inline void outer_acc(const S* X, index_t ldx, index_t A, const S* Y, index_t ldy, index_t C,
                      index_t n, S* D) {
  constexpr int RA = Lane<S>::kOuterRA;
  index_t a0 = 0;
  for (; a0 + RA <= A; a0 += RA) detail::outer_rows<S, RA>(X, ldx, Y, ldy, n, a0, C, D);
  switch (A - a0) {  // the last rows as one block (RA <= 4)
    case 0: break;
    case 1: detail::outer_rows<S, 1>(X, ldx, Y, ldy, n, a0, C, D); break;
    case 2: detail::outer_rows<S, std::min(2, RA)>(X, ldx, Y, ldy, n, a0, C, D); break;
    default: detail::outer_rows<S, std::min(3, RA)>(X, ldx, Y, ldy, n, a0, C, D); break;
  }
}

// out(a, c) = sum over the lanes of D[a][c] (lanes summed in ascending order).
template <typename S>
inline S lane_sum(const S* d) {
  S s = d[0];
  for (int l = 1; l < Lane<S>::kL; ++l) s += d[l];
  return s;
}

}  // namespace plrnn::lanes
