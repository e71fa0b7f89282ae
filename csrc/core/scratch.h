// Per-thread reusable buffers for the tape of a chunk ([rows, (T-1) nb] matrices). Allocating them
// afresh on every call costs a page fault per 4 KiB touched; reusing them keeps a training loop
// free of that. Each slot is owned by one role at a time (one chunk runs on one thread, start to
// end), and a thread's buffers are released once they exceed kKeepBytes in total.
#pragma once
#include <array>
#include <vector>

#include "core/eigen.h"

namespace plrnn {

enum ScratchSlot : int { kTapeU, kTapeG, kTapeE, kTapeZ, kTapeS, kTapePhi, kModelTape0, kModelTape1, kNumScratch };

template <typename S>
class Scratch {
 public:
  static constexpr size_t kKeepBytes = size_t(256) << 20;

  // A [rows, cols] column-major view of this thread's buffer `slot`; contents are undefined.
  static Eigen::Map<Mat<S>> get(int slot, index_t rows, index_t cols) {
    auto& buf = buffers()[slot];
    const size_t need = static_cast<size_t>(rows * cols);
    if (buf.size() < need) {
      buf.clear();
      buf.shrink_to_fit();
      buf.resize(need);
    }
    return Eigen::Map<Mat<S>>(buf.data(), rows, cols);
  }

  // Frees this thread's buffers if together they exceed kKeepBytes (call when a chunk is done).
  static void trim() {
    size_t bytes = 0;
    for (auto& b : buffers()) bytes += b.capacity() * sizeof(S);
    if (bytes <= kKeepBytes) return;
    for (auto& b : buffers()) AlignedVector<S>().swap(b);
  }

 private:
  static std::array<AlignedVector<S>, kNumScratch>& buffers() {
    thread_local std::array<AlignedVector<S>, kNumScratch> bufs;
    return bufs;
  }
};

}  // namespace plrnn
