// Per-chunk gradient accumulators, laid out exactly like the output arrays (row-major), so the
// reduction over chunks is a flat, ordered sum.
#pragma once
#include <vector>

#include "core/eigen.h"
#include "core/param_layout.h"

namespace plrnn {

template <typename S>
struct GradBuffers {
  std::array<AlignedVector<S>, kNumParams> data;
  std::array<ParamShape, kNumParams> shape;

  explicit GradBuffers(const ModelSpec& spec) {
    for (int id = 0; id < kNumParams; ++id) {
      shape[id] = param_shape(spec, id);
      if (shape[id].present) data[id].assign(static_cast<size_t>(shape[id].size()), S(0));
    }
  }
  MapRow<S> mat(int id) { return MapRow<S>(data[id].data(), shape[id].rows, shape[id].cols); }
  MapVec<S> vec(int id) { return MapVec<S>(data[id].data(), shape[id].rows); }
};

// out[id] = sum over chunks (in chunk order) for every parameter the model has.
template <typename S>
void reduce_grads(const std::vector<GradBuffers<S>>& parts, Grads<S> out) {
  auto slots = param_slots(out);
  for (int id = 0; id < kNumParams; ++id) {
    S* dst = *slots[id];
    if (parts.empty() || !parts[0].shape[id].present) continue;
    PLRNN_ASSERT(dst != nullptr);
    const size_t n = parts[0].data[id].size();
    for (size_t i = 0; i < n; ++i) {
      S acc = 0;
      for (const auto& p : parts) acc += p.data[id][i];
      dst[i] = acc;
    }
  }
}

}  // namespace plrnn
