// A small persistent pool: parallel_for(n, fn) runs fn(0..n-1) on the pool's workers and the
// calling thread, and returns when all are done. The native entry points split their work into
// tasks whose number depends on the sizes only (never on the thread count: batch_chunks below, the
// log-joint's task_count) and reduce the partial results in task order, so a result is the same bits
// on any number of threads.
#pragma once
#include <algorithm>
#include <functional>
#include <utility>

#include "core/types.h"

namespace plrnn {

// The split of n items into `parts` contiguous ranges: part c is [begin, end).
inline std::pair<index_t, index_t> chunk_range(index_t n, int parts, int c) {
  return {n * c / parts, n * (c + 1) / parts};
}

// The number of chunks a batch of B sequences is cut into (the BPTT core, free runs, the supervised
// model): B / kChunkSeqs, at least 1 and at most kMaxBatchChunks. A chunk of 8 sequences fills one
// register tile of the step's products (core/packed_gemm.h) and two lane packets (core/lanes.h).
constexpr index_t kChunkSeqs = 8;
constexpr int kMaxBatchChunks = 16;
inline int batch_chunks(index_t B) {
  return static_cast<int>(std::clamp<index_t>(B / kChunkSeqs, 1, kMaxBatchChunks));
}

// Number of threads the native calls use (default: std::thread::hardware_concurrency()).
int get_num_threads();
// n >= 1. Takes effect for the next call.
void set_num_threads(int n);

// Runs fn(i) for i in [0, n_tasks), with subnormal numbers flushed to zero (core/fp_env.h).
// Exceptions thrown by fn are rethrown (the first one) after all tasks finished. Reentrant calls
// (from inside a task, or from another thread while the pool is busy) run their tasks on the
// calling thread.
void parallel_for(int n_tasks, const std::function<void(int)>& fn);

}  // namespace plrnn
