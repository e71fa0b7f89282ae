// Eigen aliases used by the CPU core. Inside the core a block of `nb` sequences at one time step is
// a column-major [rows, nb] matrix: column j is sequence b0 + j.
#pragma once
#include <Eigen/Core>
#include <vector>

#include "core/types.h"

namespace plrnn {

template <typename S>
using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>;  // column-major
template <typename S>
using Vec = Eigen::Matrix<S, Eigen::Dynamic, 1>;
template <typename S>
using RowMat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Heap buffers behind Eigen maps are aligned like Eigen's own (EIGEN_MAX_ALIGN_BYTES): Eigen's
// vectorised reductions and small products peel to the first aligned element, so a buffer's address
// modulo the SIMD width would otherwise change the summation order from one call (or thread) to
// the next.
template <typename S>
using AlignedVector = std::vector<S, Eigen::aligned_allocator<S>>;

template <typename S>
using CRef = Eigen::Ref<const Mat<S>>;  // read-only view of a column-major block
template <typename S>
using Ref = Eigen::Ref<Mat<S>>;

// Parameters as NumPy lays them out (row-major).
template <typename S>
using CMapRow = Eigen::Map<const RowMat<S>>;
template <typename S>
using MapRow = Eigen::Map<RowMat<S>>;
template <typename S>
using CMapVec = Eigen::Map<const Vec<S>>;
template <typename S>
using MapVec = Eigen::Map<Vec<S>>;

// The slice [b0 : b0+nb, t, :] of a [B, T, D] array, seen as a column-major [D, nb] matrix.
template <typename S>
using CMapSlice = Eigen::Map<const Mat<S>, 0, Eigen::OuterStride<>>;
template <typename S>
using MapSlice = Eigen::Map<Mat<S>, 0, Eigen::OuterStride<>>;

template <typename S>
inline CMapSlice<S> slice(const S* a, index_t T, index_t D, index_t b0, index_t nb, index_t t) {
  return CMapSlice<S>(a + (b0 * T + t) * D, D, nb, Eigen::OuterStride<>(T * D));
}
template <typename S>
inline MapSlice<S> slice(S* a, index_t T, index_t D, index_t b0, index_t nb, index_t t) {
  return MapSlice<S>(a + (b0 * T + t) * D, D, nb, Eigen::OuterStride<>(T * D));
}

}  // namespace plrnn

namespace plrnn {

// sum_c X(:, c) .* Y(:, c): a [rows] vector, accumulated column by column (contiguous, vectorised;
// Eigen's rowwise() reduction walks a column-major matrix with a stride).
template <typename S>
Vec<S> row_dots(CRef<S> X, CRef<S> Y) {
  Vec<S> acc = Vec<S>::Zero(X.rows());
  for (index_t c = 0; c < X.cols(); ++c) acc += X.col(c).cwiseProduct(Y.col(c));
  return acc;
}

// sum_c X(:, c): a [rows] vector, the columns added in order. Use it (and ordered_sum) instead of
// Eigen's rowwise().sum() / sum(): those reductions peel to the first aligned element, so their order,
// and the rounding, follow the data's address (a log-joint gradient differed by 1 ulp between calls).
template <typename S>
Vec<S> row_sums(CRef<S> X) {
  Vec<S> acc = Vec<S>::Zero(X.rows());
  for (index_t c = 0; c < X.cols(); ++c) acc += X.col(c);
  return acc;
}

// x[0] + x[1] + ... + x[n-1], in index order
template <typename S>
S ordered_sum(const S* x, index_t n) {
  S s = S(0);
  for (index_t i = 0; i < n; ++i) s += x[i];
  return s;
}

}  // namespace plrnn
