// A small persistent pool: parallel_for(n, fn) runs fn(0..n-1) on the pool's workers and the
// calling thread, and returns when all are done. The native entry points split a batch into
// per-thread chunks and reduce the partial results in chunk order, so a result depends on the
// thread count only through float rounding of that reduction.
#pragma once
#include <functional>

namespace plrnn {

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
