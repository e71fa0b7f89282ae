// Register-blocked matrix products for the per-step work of the CPU core, where Eigen's general
// GEMM (which re-packs both operands on every call) reaches about half of the FMA peak at M ~ 128:
//
//   Z = A X     A [M, K] packed once per call (PackedRows), X [K, n] a block of states read in place
//               (packed per step by pack_cols when n is not a multiple of kNR); the forward step
//               (A = W) and the backward step (A = W^T).
//   D += G X^T  G [M, c], X [K, c] column-major, reduced over c (all steps of a chunk at once);
//               the gradient of W.
//
// The micro-kernel keeps a (kMR SIMD packets) x kNR tile of the result in registers: per reduction
// index it loads kMR packets of A (or G) and broadcasts kNR scalars of X. It uses Eigen's packet
// primitives, so it compiles to AVX-512, AVX2, SSE or NEON (or scalars) like the rest of the core.
// Summation order is fixed (ascending reduction index), so results do not depend on the thread count.
#pragma once
#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/eigen.h"
#include "core/errors.h"

namespace plrnn::packed {

template <typename S>
struct Tile {
  using Packet = typename Eigen::internal::packet_traits<S>::type;
  static constexpr int kLanes = Eigen::internal::unpacket_traits<Packet>::size;
#if defined(EIGEN_VECTORIZE_AVX512)
  static constexpr int kMR = 2, kNR = 8;  // 16 accumulators of 32 registers
#else
  static constexpr int kMR = 2, kNR = 4;  // 8 accumulators of 16 registers
#endif
  static constexpr int kRows = kMR * kLanes;  // panel height
};

inline index_t round_up(index_t n, index_t m) { return (n + m - 1) / m * m; }

// A [M, K] (element (i, k) at a[i * rs + k * cs]) stored as row panels of Tile::kRows rows, each
// [K][kRows] (the kRows entries of one column contiguous); rows past M are zero.
template <typename S>
class PackedRows {
 public:
  static constexpr index_t kRows = Tile<S>::kRows;
  PackedRows(const S* a, index_t rs, index_t cs, index_t M, index_t K)
      : M_(M), K_(K), Mp_(round_up(M, kRows)), data_(static_cast<size_t>(Mp_ * K), S(0)) {
    for (index_t p = 0; p < Mp_ / kRows; ++p) {
      S* dst = panel(p);
      const index_t rows = std::min(kRows, M - p * kRows);
      for (index_t k = 0; k < K; ++k)
        for (index_t r = 0; r < rows; ++r) dst[k * kRows + r] = a[(p * kRows + r) * rs + k * cs];
    }
  }
  index_t M() const { return M_; }
  index_t K() const { return K_; }
  index_t panels() const { return Mp_ / kRows; }
  const S* panel(index_t p) const { return data_.data() + p * K_ * kRows; }

 private:
  S* panel(index_t p) { return data_.data() + p * K_ * kRows; }
  index_t M_ = 0, K_ = 0, Mp_ = 0;
  AlignedVector<S> data_;
};

// Number of kNR-column groups of an n-column block, and the size of its packed form.
template <typename S>
inline index_t col_groups(index_t n) { return (n + Tile<S>::kNR - 1) / Tile<S>::kNR; }
template <typename S>
inline index_t packed_cols_size(index_t K, index_t n) { return col_groups<S>(n) * Tile<S>::kNR * K; }

// X [K, n] column-major (leading dimension ldx) -> groups of kNR columns, each [K][kNR]; the
// columns past n are zero.
template <typename S>
void pack_cols(const S* x, index_t ldx, index_t K, index_t n, S* xp) {
  constexpr int NR = Tile<S>::kNR;
  for (index_t g = 0; g < col_groups<S>(n); ++g) {
    S* dst = xp + g * K * NR;
    const S* src = x + g * NR * ldx;
    const index_t cols = std::min<index_t>(NR, n - g * NR);
    if (cols == NR) {  // a full group: write [K][NR] in order, reading NR columns side by side
      for (index_t k = 0; k < K; ++k)
        for (int j = 0; j < NR; ++j) dst[k * NR + j] = src[j * ldx + k];
    } else {
      for (index_t k = 0; k < K; ++k)
        for (int j = 0; j < NR; ++j) dst[k * NR + j] = j < cols ? src[j * ldx + k] : S(0);
    }
  }
}

namespace detail {

// The kernels' loops over the tile (compile-time trip counts) fully unrolled, so that GCC keeps the
// accumulators in registers from start to end (with nested arrays and partly unrolled loops it kept a
// copy on the stack: 16 stores and loads of it around every call).
#define PLRNN_UNROLL _Pragma("GCC unroll 32")

// With Prefetch, the kernels prefetch their streamed operand (the packed rows of A, the panels of G)
// kAhead reduction steps ahead into L1 (a hint: an address past the end is harmless). It pays where
// that operand does not stay in L1 (kPrefetchBytes and more: W at M >= 128 floats, 1.03-1.07x per
// step on an AVX-512 Xeon) and costs where it does (M = 32: 0.93x), so the callers choose by size.
constexpr index_t kAhead = 16;
constexpr index_t kPrefetchBytes = index_t(64) << 10;
template <bool Prefetch, typename S>
inline void prefetch(const S* p) {
  if constexpr (Prefetch) __builtin_prefetch(p, 0, 3);
}

// dst[0:n] = src[0:n] for a compile-time n: inlined (std::copy_n of 32 bytes became a memmove call).
template <index_t n, typename S>
inline void copy_fixed(const S* __restrict src, S* __restrict dst) {
  for (index_t r = 0; r < n; ++r) dst[r] = src[r];
}
// dst[r] = fx(row0 + r, src[r]) for r < n (a compile-time n)
template <index_t n, typename S, class Fx>
inline void copy_fixed(const S* __restrict src, S* __restrict dst, index_t row0, const Fx& fx) {
  for (index_t r = 0; r < n; ++r) dst[r] = fx(row0 + r, src[r]);
}

// out[0:kRows, 0:NR] (column-major, ld) = panel [K][kRows] times X [K][NR], where X(k, j) is
// x[k * NR + j] (packed by pack_cols) or, with Strided, x[j * ldx + k] (a column-major block read in
// place: NR column streams, each read with unit stride).
template <typename S, int NR, bool Strided = false, bool Prefetch = false>
inline void panel_times_cols(const S* panel, const S* x, index_t ldx, index_t K, S* out, index_t ld) {
  using namespace Eigen::internal;
  using P = typename Tile<S>::Packet;
  constexpr int MR = Tile<S>::kMR, L = Tile<S>::kLanes;
  P acc[NR * MR];  // acc[j * MR + i]: rows i L ... (i + 1) L - 1, column j
  PLRNN_UNROLL for (int t = 0; t < NR * MR; ++t) acc[t] = pset1<P>(S(0));
  for (index_t k = 0; k < K; ++k) {
    P a[MR];
    PLRNN_UNROLL for (int i = 0; i < MR; ++i) prefetch<Prefetch>(panel + (k + kAhead) * MR * L + i * L);
    PLRNN_UNROLL for (int i = 0; i < MR; ++i) a[i] = pload<P>(panel + k * MR * L + i * L);
    PLRNN_UNROLL for (int j = 0; j < NR; ++j) {
      const P xv = pset1<P>(Strided ? x[j * ldx + k] : x[k * NR + j]);
      PLRNN_UNROLL for (int i = 0; i < MR; ++i) acc[j * MR + i] = pmadd(a[i], xv, acc[j * MR + i]);
    }
  }
  PLRNN_UNROLL for (int j = 0; j < NR; ++j)
    PLRNN_UNROLL for (int i = 0; i < MR; ++i) pstoreu(out + j * ld + i * L, acc[j * MR + i]);
}

// d[0:kRows, 0:NR] (column-major, ld) += sum_c g[0:kRows, c] x[0:NR, c] (g, x column-major).
// kLdg > 0: g's leading dimension is that compile-time constant (packed panels; ldg is ignored).
template <typename S, int NR, bool Prefetch = false, index_t kLdg = 0>
inline void panel_times_rows_t(const S* g, index_t ldg_, const S* x, index_t ldx, index_t cols,
                               S* d, index_t ldd) {
  using namespace Eigen::internal;
  using P = typename Tile<S>::Packet;
  constexpr int MR = Tile<S>::kMR, L = Tile<S>::kLanes;
  const index_t ldg = kLdg > 0 ? kLdg : ldg_;
  P acc[NR * MR];  // as in panel_times_cols
  PLRNN_UNROLL for (int j = 0; j < NR; ++j)
    PLRNN_UNROLL for (int i = 0; i < MR; ++i) acc[j * MR + i] = ploadu<P>(d + j * ldd + i * L);
  for (index_t c = 0; c < cols; ++c) {
    P a[MR];
    PLRNN_UNROLL for (int i = 0; i < MR; ++i) prefetch<Prefetch>(g + (c + kAhead) * ldg + i * L);
    PLRNN_UNROLL for (int i = 0; i < MR; ++i) a[i] = ploadu<P>(g + c * ldg + i * L);
    PLRNN_UNROLL for (int j = 0; j < NR; ++j) {
      const P xv = pset1<P>(x[c * ldx + j]);
      PLRNN_UNROLL for (int i = 0; i < MR; ++i) acc[j * MR + i] = pmadd(a[i], xv, acc[j * MR + i]);
    }
  }
  PLRNN_UNROLL for (int j = 0; j < NR; ++j)
    PLRNN_UNROLL for (int i = 0; i < MR; ++i) pstoreu(d + j * ldd + i * L, acc[j * MR + i]);
}

// One block of the weight gradient with G's panels packed ([nc][kRows] each, panel p at gp + p nc kRows):
// d(group q, panel p) += G's panel p times X's group q^T for every whole group and panel. Out of line
// and with G's stride a constant: inlined into its caller GCC ran out of general registers and kept
// one in a mask register, an extra uop on an FMA port per iteration (the step at M = 128: 1.02x).
// X's group q at xq + q xqs, columns xld apart.
template <typename S, bool Prefetch>
__attribute__((noinline)) void packed_block_times_groups(const S* gp, const S* xq, index_t xqs, index_t xld,
                                                         index_t nc, index_t groups, index_t panels, S* d,
                                                         index_t ldd) {
  constexpr int NR = Tile<S>::kNR;
  constexpr index_t R = Tile<S>::kRows;
  for (index_t q = 0; q < groups; ++q)
    for (index_t p = 0; p < panels; ++p)
      panel_times_rows_t<S, NR, Prefetch, R>(gp + p * nc * R, R, xq + q * xqs, xld, nc,
                                             d + q * NR * ldd + p * R, ldd);
}

}  // namespace detail

// out [round_up(A.M(), kRows), col_groups(n) * kNR] column-major (leading dimension ld at least
// the row count) = A X for n columns of X: x = pack_cols(X) (ldx unused), or, with Strided, X [A.K(), n]
// column-major (leading dimension ldx) read in place (then n % kNR == 0). Rows past A.M() and columns
// past n are zero.
template <bool Strided, typename S>
void gemm(const PackedRows<S>& A, const S* x, index_t ldx, index_t n, S* out, index_t ld) {
  constexpr int NR = Tile<S>::kNR;
  constexpr index_t R = Tile<S>::kRows;
  PLRNN_ASSERT(!Strided || n % NR == 0);
  const index_t group = Strided ? NR * ldx : A.K() * NR;  // from one column group of X to the next
  auto run = [&](auto prefetch) {
    for (index_t g = 0; g < col_groups<S>(n); ++g)
      for (index_t p = 0; p < A.panels(); ++p)
        detail::panel_times_cols<S, NR, Strided, decltype(prefetch)::value>(
            A.panel(p), x + g * group, ldx, A.K(), out + g * NR * ld + p * R, ld);
  };
  if (A.panels() * R * A.K() * static_cast<index_t>(sizeof(S)) >= detail::kPrefetchBytes)
    run(std::true_type{});
  else
    run(std::false_type{});
}

// D [M, K] (column-major, leading dimension ldd) += G X^T, summed over the `cols` columns of
// G [M, cols] and X [K, cols] (column-major, leading dimensions ldg, ldx). Rows are handled in
// full panels of Tile::kRows; the last M % kRows rows (if any) are left to the caller, who gets
// their count back.
//
// The reduction runs in blocks of kChunk columns. Each block of G is copied into row panels
// [kChunk][kRows] and each block of X into column groups [kChunk][kNR] (unless read in place,
// kInPlaceBytes below), so that the kernel reads both with unit stride: read in place,
// consecutive columns of G and X lie ldg and ldx elements apart (512 bytes at M = 128), which maps
// them onto a few L1 sets and defeats the prefetcher (the product ran at about 15 % of the FMA peak).
// A block is short (kChunk = 80 columns): the packed panels of G (M x 80, 40 KiB at M = 128) and the
// group of X in use (80 x kNR, 2.5 KiB) then fit in a 48 KiB L1 while the kernel sweeps them; the
// weight gradient alone ran 1.06-1.13x faster than with blocks of 256 columns (M = 32-256, 1592
// columns, an AVX-512 Xeon; 64-128 columns within a few per cent of 80). Panels of kPrefetchBytes and
// more are prefetched ahead. Every entry of D is still summed in ascending column order into one
// accumulator, so neither packing nor the block length changes a bit of the result. With fx,
// X(k, c) is read as fx(k, X(k, c)) (applied while packing: e.g. a ReLU of the states, so that their
// rectified copy need not be kept).
struct Identity {
  template <typename S>
  S operator()(index_t, S v) const { return v; }
};

// An operand whose columns lie at most kInPlaceBytes apart (M <= 64 floats) is read in place: G's
// panels (panel p at g + p R, columns ldg apart) and, without fx, X's groups (group q at x + q NR,
// columns ldx apart), which the prefetcher follows; copying G cost more than it saved (1.05-1.15x per
// step at M = 32 and 64 on an AVX-512 Xeon; at M = 128 no difference, so packed there).
constexpr index_t kInPlaceBytes = 256;
template <typename S>
constexpr bool read_in_place(index_t ld) { return ld * static_cast<index_t>(sizeof(S)) <= kInPlaceBytes; }

template <typename S, class Fx = Identity>
index_t gemm_abt_acc(const S* g, index_t ldg, const S* x, index_t ldx, index_t M, index_t K,
                     index_t cols, S* d, index_t ldd, const Fx& fx = {}) {
  constexpr bool kIdentity = std::is_same_v<Fx, Identity>;
  constexpr int NR = Tile<S>::kNR;
  constexpr index_t R = Tile<S>::kRows;
  constexpr index_t kChunk = 80;  // columns per block (above)
  const index_t full = M / R * R, kfull = K / NR * NR;
  const index_t panels = full / R, groups = kfull / NR;
  if (panels == 0) return M;  // no whole row panel: all rows are the caller's (nothing to pack X for)
  const bool g_in_place = read_in_place<S>(ldg), x_in_place = kIdentity && read_in_place<S>(ldx);
  AlignedVector<S> gp(g_in_place ? 0 : static_cast<size_t>(full * std::min(kChunk, cols)));
  AlignedVector<S> xp(x_in_place ? 0 : static_cast<size_t>(kfull * std::min(kChunk, cols)));
  AlignedVector<S> xt(kIdentity ? 0 : static_cast<size_t>(std::min(kChunk, cols)));  // one row of X, fx applied
  for (index_t c0 = 0; c0 < cols; c0 += kChunk) {
    const index_t nc = std::min(kChunk, cols - c0);
    const S* gc = g + c0 * ldg;
    const S* xc = x + c0 * ldx;
    const S* gpk = g_in_place ? gc : gp.data();               // panel p at gpk + p * gps,
    const index_t gps = g_in_place ? R : nc * R, gld = g_in_place ? ldg : R;  // columns gld apart
    if (!g_in_place)
      for (index_t p = 0; p < panels; ++p)  // G's panel p: [nc][R]
        for (index_t c = 0; c < nc; ++c)
          detail::copy_fixed<R>(gc + c * ldg + p * R, gp.data() + (p * nc + c) * R);
    if (!x_in_place)
      for (index_t q = 0; q < groups; ++q)  // X's group q: [nc][NR]
        for (index_t c = 0; c < nc; ++c) {
          if constexpr (kIdentity)
            detail::copy_fixed<NR>(xc + c * ldx + q * NR, xp.data() + (q * nc + c) * NR);
          else
            detail::copy_fixed<NR>(xc + c * ldx + q * NR, xp.data() + (q * nc + c) * NR, q * NR, fx);
        }
    // X's group q at xq + q * xqs, columns xld apart
    const S* xq = x_in_place ? xc : xp.data();
    const index_t xqs = x_in_place ? NR : nc * NR, xld = x_in_place ? ldx : NR;
    auto run = [&](auto prefetch) {
      constexpr bool kPrefetch = decltype(prefetch)::value;
      if (g_in_place)
        for (index_t q = 0; q < groups; ++q)
          for (index_t p = 0; p < panels; ++p)
            detail::panel_times_rows_t<S, NR, kPrefetch>(gc + p * R, ldg, xq + q * xqs, xld, nc,
                                                         d + q * NR * ldd + p * R, ldd);
      else
        detail::packed_block_times_groups<S, kPrefetch>(gp.data(), xq, xqs, xld, nc, groups, panels, d, ldd);
    };
    if (full * nc * static_cast<index_t>(sizeof(S)) >= detail::kPrefetchBytes)  // G's panels of this block
      run(std::true_type{});
    else
      run(std::false_type{});
    for (index_t k0 = kfull; k0 < K; ++k0) {  // the last K % NR columns of D, one at a time
      const S* xk = xc + k0;                     // row k0 of X (stride ldx), or its copy with fx applied
      index_t ldk = ldx;
      if constexpr (!kIdentity) {
        for (index_t c = 0; c < nc; ++c) xt[c] = fx(k0, xc[c * ldx + k0]);
        xk = xt.data(), ldk = 1;
      }
      for (index_t p = 0; p < panels; ++p)
        detail::panel_times_rows_t<S, 1>(gpk + p * gps, gld, xk, ldk, nc, d + k0 * ldd + p * R, ldd);
    }
  }
  return M - full;
}

// Per-chunk buffers for products A X with packed matrices of at most `rows` rows and `depth`
// columns, applied to blocks of at most nb columns.
template <typename S>
struct ProductBuffers {
  AlignedVector<S> packed;  // X, packed by pack_cols
  Mat<S> out;               // [padded rows, padded nb] the product
  ProductBuffers(index_t rows, index_t depth, index_t nb)
      : packed(static_cast<size_t>(packed_cols_size<S>(depth, nb))),
        out(round_up(rows, Tile<S>::kRows), col_groups<S>(nb) * Tile<S>::kNR) {}
};

template <typename T>
struct NonDeduced {  // keeps S deduced from the packed matrix alone (X may be any block type)
  using type = T;
};

// A X for a block X [A.K(), n]; the result is the [A.M(), n] top-left block of buf.out (valid until
// the next product with the same buffers).
template <typename S>
Eigen::Block<Mat<S>> multiply(const PackedRows<S>& A, typename NonDeduced<CRef<S>>::type X,
                              ProductBuffers<S>& buf) {
  PLRNN_ASSERT(X.rows() == A.K());
  if (X.cols() % Tile<S>::kNR == 0) {  // whole column groups: no copy of X
    gemm<true>(A, X.data(), X.outerStride(), X.cols(), buf.out.data(), buf.out.rows());
  } else {
    pack_cols(X.data(), X.outerStride(), A.K(), X.cols(), buf.packed.data());
    gemm<false>(A, buf.packed.data(), 0, X.cols(), buf.out.data(), buf.out.rows());
  }
  return buf.out.topLeftCorner(A.M(), X.cols());
}

// D [M, K] (column-major, zeros on entry) = G fx(X)^T for G [M, c], X [K, c], summed over the c
// columns, fx(k, X(k, c)) elementwise (default: X itself): whole row panels with the register-blocked
// kernel, the remaining M % kRows rows with Eigen. D is written in place (a gradient buffer's
// column-major map, core/grad_buffers.h: no copy of the result).
template <typename S, class Fx = Identity>
void times_transpose_into(CRef<S> G, CRef<S> X, Ref<S> D, const Fx& fx = {}) {
  PLRNN_ASSERT(G.cols() == X.cols() && D.rows() == G.rows() && D.cols() == X.rows());
  const index_t rest = gemm_abt_acc(G.data(), G.outerStride(), X.data(), X.outerStride(), G.rows(),
                                    X.rows(), G.cols(), D.data(), D.outerStride(), fx);
  if (rest == 0) return;
  if constexpr (std::is_same_v<Fx, Identity>) {
    D.bottomRows(rest).noalias() = G.bottomRows(rest) * X.transpose();
  } else {
    Mat<S> FX(X.rows(), X.cols());
    for (index_t c = 0; c < X.cols(); ++c)
      for (index_t k = 0; k < X.rows(); ++k) FX(k, c) = fx(k, X(k, c));
    D.bottomRows(rest).noalias() = G.bottomRows(rest) * FX.transpose();
  }
}

}  // namespace plrnn::packed
