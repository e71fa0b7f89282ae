// Elementwise loops over column-major [rows, n] blocks (a chunk's states at one step), the rows a SIMD
// packet at a time with the per-row vectors (A, h, ...) and per-row sums in registers across the n
// columns, and the last rows % kLanes rows one at a time with the same operations (madd: rounded as
// pmadd rounds). Eigen's expressions on such blocks (Ref with a dynamic outer stride, colwise
// broadcasts) ran in 128-bit halves with a load and a store of every per-row sum per column.
//
//   for_row_packets(rows, packet_fn, scalar_fn)  packet_fn(i) for i = 0, kLanes, ... (whole packets),
//                                                then scalar_fn(i) for each of the last rows % kLanes
//   short_columns(n, cols, a, b, d, op)          d = op(a, b) on the first n < kLanes rows, a column at
//                                                a time (one masked packet with AVX-512)
#pragma once
#include <cmath>
#include <type_traits>

#include "core/eigen.h"

namespace plrnn::rowpk {

template <typename S>
using Packet = typename Eigen::internal::packet_traits<S>::type;
template <typename S>
inline constexpr int kLanes = Eigen::internal::unpacket_traits<Packet<S>>::size;

// a * b + c rounded as Eigen's pmadd rounds it: once where the ISA has FMA, else twice
template <typename S>
inline S madd(S a, S b, S c) {
#if defined(EIGEN_VECTORIZE_FMA)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// r where a > 0, else 0 (a ReLU's derivative times r), for a packet or a scalar: a compare and an
// and (pselect would add a blend); with AVX-512 a compare into a mask register and a zero-masked move
// (Eigen's pcmp_lt there widens the mask into a vector first). Every form gives r or +0.
template <typename T>
inline T where_positive(const T& a, const T& r) {
  using namespace Eigen::internal;
  if constexpr (std::is_arithmetic_v<T>) {
    return a > T(0) ? r : T(0);
  } else {
    return pand(pcmp_lt(pset1<T>(typename unpacket_traits<T>::type(0)), a), r);
  }
}
#if defined(EIGEN_VECTORIZE_AVX512)
inline Eigen::internal::Packet16f where_positive(const Eigen::internal::Packet16f& a,
                                                 const Eigen::internal::Packet16f& r) {
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ), r);
}
inline Eigen::internal::Packet8d where_positive(const Eigen::internal::Packet8d& a,
                                                const Eigen::internal::Packet8d& r) {
  return _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_GT_OQ), r);
}
#endif

#if defined(EIGEN_VECTORIZE_AVX512)
// The first n < kLanes entries at p as a packet (the other lanes 0) and back (the other lanes not
// written): one masked load or store. lane(v, k): entry k of a packet, moved down by a permutation (a
// store and scalar reloads of it stall on the store).
inline Eigen::internal::Packet16f load_first(const float* p, index_t n) {
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
}
inline Eigen::internal::Packet8d load_first(const double* p, index_t n) {
  return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << n) - 1u), p);
}
inline void store_first(float* p, const Eigen::internal::Packet16f& v, index_t n) {
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
}
inline void store_first(double* p, const Eigen::internal::Packet8d& v, index_t n) {
  _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1u), v);
}
inline float lane(const Eigen::internal::Packet16f& v, index_t k) {
  return _mm512_cvtss_f32(_mm512_permutexvar_ps(_mm512_set1_epi32(static_cast<int>(k)), v));
}
inline double lane(const Eigen::internal::Packet8d& v, index_t k) {
  return _mm512_cvtsd_f64(_mm512_permutexvar_pd(_mm512_set1_epi64(k), v));
}
#endif

// d(r, c) = op(a(r, c), b(r, c)) for the first n rows of cols columns (column-major, leading dimensions
// lda, ldb, ldd; d may be a), for blocks of fewer rows than a packet (the N observed rows of a small
// model's state). With AVX-512 each column is one masked load of a and of b and one masked store of d
// (load_first, store_first); else, or for n >= kLanes, element by element. op takes two packets or two
// scalars (an elementwise operation: the same bits either way).
template <typename S, class Op>
inline void short_columns(index_t n, index_t cols, const S* a, index_t lda, const S* b, index_t ldb, S* d,
                          index_t ldd, const Op& op) {
#if defined(EIGEN_VECTORIZE_AVX512)
  if (n < kLanes<S>) {
    for (index_t c = 0; c < cols; ++c)
      store_first(d + c * ldd, op(load_first(a + c * lda, n), load_first(b + c * ldb, n)), n);
    return;
  }
#endif
  for (index_t c = 0; c < cols; ++c)
    for (index_t r = 0; r < n; ++r) d[c * ldd + r] = op(a[c * lda + r], b[c * ldb + r]);
}

template <typename S, class PacketFn, class ScalarFn>
inline void for_row_packets(index_t rows, PacketFn&& packet_fn, ScalarFn&& scalar_fn) {
  constexpr index_t L = kLanes<S>;
  index_t i = 0;
  for (; i + L <= rows; i += L) packet_fn(i);
  for (; i < rows; ++i) scalar_fn(i);
}

}  // namespace plrnn::rowpk
