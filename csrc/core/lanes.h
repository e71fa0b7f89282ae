// Batch-in-lanes kernels for the small models (the shallow PLRNN's defaults: M = 3..10 states,
// H = 100..200 hidden units), where the register-blocked products of packed_gemm.h waste most of a
// SIMD register on M < kRows rows and each step is a chain of small, latency-bound products.
//
// Layout: a "lane block" of R rows holds R rows of kS values, row r at buf[r * kS, +kS): one sequence
// per lane. A packet (kP = kS * kQ values) holds kQ consecutive hidden units of the kS sequences, lane
// s * kQ + q = (sequence s, unit q). The kernels run over the hidden units a packet at a time: the
// weights of its kQ units are one short load broadcast to every sequence (load_units), the state of a
// sequence is repeated over the kQ units (load_state), and a sum over units ends with store_reduced.
// With AVX-512 a packet is 16 floats (8 doubles): 4 units of 4 (2) sequences, so one instruction does
// the work of two 256-bit lane blocks and the weights stay a compact [rows, H] array. Elsewhere kQ = 1:
// the packet is 8 floats (4 doubles) of 8 (4) sequences and a weight is a broadcast scalar.
//
//   load_lanes / store_lanes   a column-major [R, n] block  <->  lane block (n <= kS, rest zero)
//   Lane::load_state           a lane block's row repeated over the kQ units of a packet
//   Lane::load_units           kQ weights (units q) repeated over the kS sequences of a packet
//   Lane::store_reduced        a row of a lane block = the packet summed over its units ((0+1)+(2+3))
//   Lane::where_positive       r where a > 0, else 0 (a ReLU's derivative times r)
//   unit0_ones                 a packet with 1 in unit 0 of every sequence, else 0
//   unit_sum                   the entry of unit q of a packet of per-lane partial sums, the kS
//                              sequences added in order
//
// Every sum runs in an order fixed by the sizes, the ISA and which sequences share a chunk (a split
// fixed by the batch size: core/thread_pool.h, batch_chunks), so results are the same on any number of
// threads (like the rest of the BPTT core).
#pragma once

#include "core/eigen.h"
#include "core/row_packets.h"

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

// One sequence per lane, one unit per packet (kQ = 1): the packet is the lane block's row.
template <typename S>
struct Lane {
  using Packet = typename LanePacket<S>::type;
  using Block = Packet;  // a lane block's row
  static constexpr int kP = Eigen::internal::unpacket_traits<Packet>::size, kQ = 1, kS = kP;
  static Packet load_state(const S* p) { return Eigen::internal::pload<Packet>(p); }
  static Packet load_units(const S* w) { return Eigen::internal::pset1<Packet>(w[0]); }
  static void store_reduced(const Packet& a, S* p) { Eigen::internal::pstore(p, a); }
  static Packet unit0_ones() { return Eigen::internal::pset1<Packet>(S(1)); }  // every lane is unit 0
  static Packet where_positive(const Packet& a, const Packet& r) {
    return rowpk::where_positive(a, r);
  }
};

#if defined(EIGEN_VECTORIZE_AVX512)
template <>
struct Lane<float> {  // 4 units x 4 sequences
  using Packet = Eigen::internal::Packet16f;
  using Block = Eigen::internal::Packet4f;
  static constexpr int kP = 16, kQ = 4, kS = 4;
  static Packet load_state(const float* p) {  // lane (s, q) = p[s]
    return _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                                 _mm512_castps128_ps512(_mm_load_ps(p)));
  }
  static Packet load_units(const float* w) {  // lane (s, q) = w[q]: vbroadcastf32x4, one load
    return _mm512_broadcast_f32x4(_mm_loadu_ps(w));
  }
  static void store_reduced(Packet a, float* p) {  // p[s] = (a(s,0) + a(s,1)) + (a(s,2) + a(s,3))
    a = _mm512_add_ps(a, _mm512_permute_ps(a, 0xB1));  // lane q += lane q ^ 1
    a = _mm512_add_ps(a, _mm512_permute_ps(a, 0x4E));  // lane q += lane q ^ 2
    const __m512i first = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
    _mm_store_ps(p, _mm512_castps512_ps128(_mm512_permutexvar_ps(first, a)));
  }
  static Packet unit0_ones() { return _mm512_maskz_mov_ps(0x1111, _mm512_set1_ps(1.0f)); }
  static Packet where_positive(const Packet& a, const Packet& r) { return rowpk::where_positive(a, r); }
};
template <>
struct Lane<double> {  // 4 units x 2 sequences
  using Packet = Eigen::internal::Packet8d;
  using Block = Eigen::internal::Packet2d;
  static constexpr int kP = 8, kQ = 4, kS = 2;
  static Packet load_state(const double* p) {  // lane (s, q) = p[s]
    return _mm512_permutexvar_pd(_mm512_set_epi64(1, 1, 1, 1, 0, 0, 0, 0),
                                 _mm512_castpd128_pd512(_mm_load_pd(p)));
  }
  static Packet load_units(const double* w) {  // lane (s, q) = w[q]: vbroadcastf64x4, one load
    return _mm512_broadcast_f64x4(_mm256_loadu_pd(w));
  }
  static void store_reduced(Packet a, double* p) {  // p[s] = (a(s,0) + a(s,1)) + (a(s,2) + a(s,3))
    a = _mm512_add_pd(a, _mm512_permute_pd(a, 0x55));   // lane q += lane q ^ 1
    a = _mm512_add_pd(a, _mm512_permutex_pd(a, 0x4E));  // lane q += lane q ^ 2
    const __m512i first = _mm512_set_epi64(0, 0, 0, 0, 0, 0, 4, 0);
    _mm_store_pd(p, _mm512_castpd512_pd128(_mm512_permutexvar_pd(first, a)));
  }
  static Packet unit0_ones() { return _mm512_maskz_mov_pd(0x11, _mm512_set1_pd(1.0)); }
  static Packet where_positive(const Packet& a, const Packet& r) { return rowpk::where_positive(a, r); }
};
#endif

namespace detail {

#if defined(EIGEN_VECTORIZE_AVX512)
// A full group of a block whose columns are contiguous (ld == R, R * kS <= kP, R >= 1): the
// R kS values are one masked load or store, and the transpose between [kS][R] (columns) and
// [R][kS] (lane rows) one permutation. to[R][k]: the column-major index of lane-block entry k;
// from[R][k]: the lane-block index of column-major entry k.
template <int L, int P>
struct BlockPermutation {
  int to[P / L + 1][P], from[P / L + 1][P];
  constexpr BlockPermutation() : to(), from() {
    for (int R = 1; R <= P / L; ++R)
      for (int k = 0; k < P; ++k) {
        to[R][k] = k < R * L ? (k % L) * R + k / L : 0;
        from[R][k] = k < R * L ? (k % R) * L + k / R : 0;
      }
  }
};

inline bool permute_block(const float* src, index_t R, float* dst, bool to_lanes) {
  constexpr int L = Lane<float>::kS, P = Lane<float>::kP;
  static constexpr BlockPermutation<L, P> perm;
  if (R < 1 || R * L > P) return false;
  const __mmask16 m = static_cast<__mmask16>((1u << (R * L)) - 1u);
  const __m512i idx = _mm512_loadu_si512(to_lanes ? perm.to[R] : perm.from[R]);
  _mm512_mask_storeu_ps(dst, m, _mm512_permutexvar_ps(idx, _mm512_maskz_loadu_ps(m, src)));
  return true;
}

inline bool permute_block(const double* src, index_t R, double* dst, bool to_lanes) {
  constexpr int L = Lane<double>::kS, P = Lane<double>::kP;
  static constexpr BlockPermutation<L, P> perm;
  if (R < 1 || R * L > P) return false;
  const __mmask8 m = static_cast<__mmask8>((1u << (R * L)) - 1u);
  const int* t = to_lanes ? perm.to[R] : perm.from[R];
  const __m512i idx = _mm512_set_epi64(t[7], t[6], t[5], t[4], t[3], t[2], t[1], t[0]);
  _mm512_mask_storeu_pd(dst, m, _mm512_permutexvar_pd(idx, _mm512_maskz_loadu_pd(m, src)));
  return true;
}
#else
template <typename S>
inline bool permute_block(const S*, index_t, S*, bool) { return false; }
#endif

}  // namespace detail

// dst (lane block, R rows) = columns [c0, c0 + n) of the column-major X [R, *] (leading dimension
// ld); lanes past n are zero.
template <typename S>
inline void load_lanes(const S* x, index_t ld, index_t R, index_t c0, index_t n, S* dst) {
  constexpr int L = Lane<S>::kS;
  if (n == L) {  // a full group (the common case: a loop of known length per row)
    if (ld == R && detail::permute_block(x + c0 * ld, R, dst, true)) return;
    for (index_t r = 0; r < R; ++r)
      PLRNN_UNROLL for (int l = 0; l < L; ++l) dst[r * L + l] = x[(c0 + l) * ld + r];
    return;
  }
  for (index_t r = 0; r < R; ++r)
    for (int l = 0; l < L; ++l) dst[r * L + l] = l < n ? x[(c0 + l) * ld + r] : S(0);
}

// Columns [c0, c0 + n) of the column-major Y [R, *] (leading dimension ld) = lanes [0, n) of src.
template <typename S>
inline void store_lanes(const S* src, index_t R, index_t c0, index_t n, S* y, index_t ld) {
  constexpr int L = Lane<S>::kS;
  if (n == L) {
    if (ld == R && detail::permute_block(src, R, y + c0 * ld, false)) return;
    for (index_t r = 0; r < R; ++r)
      PLRNN_UNROLL for (int l = 0; l < L; ++l) y[(c0 + l) * ld + r] = src[r * L + l];
    return;
  }
  for (index_t l = 0; l < n; ++l)
    for (index_t r = 0; r < R; ++r) y[(c0 + l) * ld + r] = src[r * L + l];
}

// Unit q of a packet of per-lane partial sums: the kS sequences' lanes added in ascending order.
template <typename S>
inline S unit_sum(const S* d, int q) {
  constexpr int Q = Lane<S>::kQ;
  S s = d[q];
  for (int l = 1; l < Lane<S>::kS; ++l) s += d[l * Q + q];
  return s;
}

}  // namespace plrnn::lanes
