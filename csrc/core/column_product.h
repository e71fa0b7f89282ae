// Products whose every column depends on that column alone: out(:, c) = A X(:, c) (or +=), each
// element a sum over k in ascending order. Eigen chooses its product kernel by the sizes (matrix-
// vector for one column, coefficient-based for small sizes, blocked GEMM otherwise) and peels
// unaligned heads by address, so through Eigen a sequence's result depended on the batch it ran in
// (its size and the sequence's position; tests/test_native_vs_reference.py,
// test_a_sequence_does_not_depend_on_its_batch). Used where the depth or the rows are few: the
// observation models (B, L, pinv(B)) and the input term C s; the W products' tiles
// (core/packed_gemm.h) and the lane kernels (core/lanes.h) are per column already.
#pragma once
#include <cmath>

#include "core/eigen.h"
#include "core/errors.h"

namespace plrnn {

template <typename S>
class ColumnProduct {
 public:
  // A [R, D] from row-major storage a (R * D == 0: the empty product; a may then be null), copied
  // column-major once per call
  ColumnProduct(const S* a, index_t R, index_t D) : A_(R, D) {
    for (index_t r = 0; r < R; ++r)
      for (index_t k = 0; k < D; ++k) A_(r, k) = a[r * D + k];
  }

  // out = A X                                         X [D, nb], out [R, nb]
  void multiply(CRef<S> X, Ref<S> out) const { apply<false>(X, out); }
  // out += scale A X
  void multiply_add(CRef<S> X, Ref<S> out, S scale = S(1)) const {
    if (scale == S(1)) return apply<true>(X, out);
    Mat<S> t(A_.rows(), X.cols());
    apply<false>(X, t);
    for (index_t c = 0; c < out.cols(); ++c) {
      S* __restrict o = out.data() + c * out.outerStride();
      const S* __restrict p = t.data() + c * t.outerStride();
      for (index_t r = 0; r < A_.rows(); ++r) o[r] += scale * p[r];
    }
  }

 private:
  using Pk = typename Eigen::internal::packet_traits<S>::type;
  static constexpr int kP = Eigen::internal::unpacket_traits<Pk>::size;
  static constexpr int kCols = 4;  // columns at a time: independent chains of FMAs

  // Every element: its start (0, or out's value) plus A(r, 0) x_0, A(r, 1) x_1, ... in this order,
  // one FMA each, whichever columns share its pass; rows in packets of kP, the last R % kP rows alone.
  template <bool Accumulate>
  void apply(CRef<S> X, Ref<S> out) const {
    using namespace Eigen::internal;
    const index_t R = A_.rows(), D = A_.cols(), nb = X.cols(), Rp = R / kP * kP;
    PLRNN_ASSERT(X.rows() == D && out.rows() == R && out.cols() == nb);
    const S* a = A_.data();
    index_t c = 0;
    for (; c + kCols <= nb; c += kCols) columns<Accumulate, kCols>(X, out, c, R, D, Rp, a);
    for (; c < nb; ++c) columns<Accumulate, 1>(X, out, c, R, D, Rp, a);
  }

  template <bool Accumulate, int NC>
  static void columns(CRef<S> X, Ref<S> out, index_t c0, index_t R, index_t D, index_t Rp, const S* a) {
    using namespace Eigen::internal;
    const S* x[NC];
    S* o[NC];
    for (int j = 0; j < NC; ++j) {
      x[j] = X.data() + (c0 + j) * X.outerStride();
      o[j] = out.data() + (c0 + j) * out.outerStride();
    }
    for (index_t r = 0; r < Rp; r += kP) {
      Pk acc[NC];
      for (int j = 0; j < NC; ++j) acc[j] = Accumulate ? ploadu<Pk>(o[j] + r) : pset1<Pk>(S(0));
      for (index_t k = 0; k < D; ++k) {
        const Pk ak = ploadu<Pk>(a + k * R + r);
        for (int j = 0; j < NC; ++j) acc[j] = pmadd(ak, pset1<Pk>(x[j][k]), acc[j]);
      }
      for (int j = 0; j < NC; ++j) pstoreu(o[j] + r, acc[j]);
    }
    for (index_t r = Rp; r < R; ++r) {
      S acc[NC];
      for (int j = 0; j < NC; ++j) acc[j] = Accumulate ? o[j][r] : S(0);
      for (index_t k = 0; k < D; ++k)
        for (int j = 0; j < NC; ++j) acc[j] = std::fma(a[k * R + r], x[j][k], acc[j]);
      for (int j = 0; j < NC; ++j) o[j][r] = acc[j];
    }
  }

  Mat<S> A_;
};

}  // namespace plrnn
