// Per-chunk gradient accumulators, laid out like the output arrays (row-major), so the reduction over
// chunks is a flat, ordered sum; a matrix may instead be written column by column (mat_colmajor: the
// layout of the packed products, which then write straight into the buffer), and the reduction
// transposes it into the output once per call instead of once per chunk.
#pragma once
#include <algorithm>
#include <vector>

#include "core/eigen.h"
#include "core/errors.h"
#include "core/param_layout.h"

namespace plrnn {

template <typename S>
struct GradBuffers {
  std::array<AlignedVector<S>, kNumParams> data;
  std::array<ParamShape, kNumParams> shape;
  std::array<bool, kNumParams> col_major{};  // data[id] holds the matrix column by column

  GradBuffers() = default;
  explicit GradBuffers(const ModelSpec& spec) { reset(spec); }
  // Zeros for every parameter of `spec`, in the storage already held where it has the right size
  void reset(const ModelSpec& spec) {
    for (int id = 0; id < kNumParams; ++id) {
      shape[id] = param_shape(spec, id);
      data[id].assign(shape[id].present ? static_cast<size_t>(shape[id].size()) : 0, S(0));
      col_major[id] = false;
    }
  }
  MapRow<S> mat(int id) {
    PLRNN_ASSERT(!col_major[id]);
    return MapRow<S>(data[id].data(), shape[id].rows, shape[id].cols);
  }
  // The matrix as a column-major map (zeros until written); from now on the buffer is column-major.
  Eigen::Map<Mat<S>> mat_colmajor(int id) {
    col_major[id] = true;
    return Eigen::Map<Mat<S>>(data[id].data(), shape[id].rows, shape[id].cols);
  }
  MapVec<S> vec(int id) { return MapVec<S>(data[id].data(), shape[id].rows); }
};

// n_chunks buffers of the calling thread, zeroed for `spec`: reused from call to call (a training
// step's 2 x 7 allocations and frees were 1 % of the Lorenz-63 step, serial work before its threads
// start). The caller holds the reference for the duration of one call (one at a time per thread) and
// then calls trim_chunk_grad_buffers.
template <typename S>
std::vector<GradBuffers<S>>& chunk_grad_buffers(const ModelSpec& spec, int n_chunks) {
  static thread_local std::vector<GradBuffers<S>> parts;
  parts.resize(static_cast<size_t>(n_chunks));
  for (auto& p : parts) p.reset(spec);
  return parts;
}

// Frees the buffers of chunk_grad_buffers when they hold more than `keep_bytes` (large models).
template <typename S>
void trim_chunk_grad_buffers(std::vector<GradBuffers<S>>& parts, size_t keep_bytes) {
  size_t bytes = 0;
  for (const auto& p : parts)
    for (const auto& d : p.data) bytes += d.capacity() * sizeof(S);
  if (bytes > keep_bytes) std::vector<GradBuffers<S>>().swap(parts);
}

// dst [rows, cols] (row-major) = src (column-major), dst written in order
template <typename S>
void copy_transposed(const S* __restrict src, index_t rows, index_t cols, S* __restrict dst) {
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) dst[r * cols + c] = src[c * rows + r];
}

// out[id] = sum over chunks (in chunk order, from 0) for every parameter the model has. Column-major
// parts (all parts of a call are written alike) are summed flat too, their buffers read in order (on
// several threads most of them come from another core's cache), and the sum is transposed into out
// once.
template <typename S>
void reduce_grads(const std::vector<GradBuffers<S>>& parts, Grads<S> out) {
  auto slots = param_slots(out);
  AlignedVector<S> sum;  // the column-major sum
  for (int id = 0; id < kNumParams; ++id) {
    S* __restrict dst = *slots[id];
    if (parts.empty() || !parts[0].shape[id].present) continue;
    PLRNN_ASSERT(dst != nullptr);
    const size_t n = parts[0].data[id].size();
    const bool col_major = parts[0].col_major[id];
    if (col_major) sum.resize(n);
    S* __restrict acc = col_major ? sum.data() : dst;
    std::fill(acc, acc + n, S(0));
    for (const auto& part : parts) {  // a part at a time: the same sums, vectorised
      PLRNN_ASSERT(part.col_major[id] == col_major);
      const S* __restrict src = part.data[id].data();
      for (size_t i = 0; i < n; ++i) acc[i] += src[i];
    }
    if (col_major) copy_transposed(acc, parts[0].shape[id].rows, parts[0].shape[id].cols, dst);
  }
}

}  // namespace plrnn
