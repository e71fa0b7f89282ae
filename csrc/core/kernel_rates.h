// The speed of the standard PLRNN step's two matrix kernels on their own (core/packed_gemm.h), on
// the data layout of a step: the measured primitive costs from which benchmarks/train_step.py bounds
// the whole step's fraction of the FMA peak (what the kernels allow if everything else took no time).
#pragma once

#include "core/types.h"

namespace plrnn {

struct KernelRates {
  double product;      // flop/s of A X for one chunk's [M, nb] block per step (the forward W phi and
                       // the backward W^T G; both are packed::multiply with a packed [M, M] matrix)
  double weight_grad;  // flop/s of the gradient of W over all steps of one chunk, G phi(U)^T
                       // (packed::times_transpose_into, as WPhiModel::param_grads runs it)
  index_t nb;          // sequences per chunk (core/thread_pool.h: batch_chunks(B))
  index_t cols;        // the chunk's columns over all steps, (T - 1) nb
};

// One thread (the caller), flushing subnormals like the pool's tasks; each kernel is timed over
// repeated sweeps of a chunk's T - 1 steps for at least `seconds` after one untimed sweep. Data:
// deterministic pseudo-random values in [-1, 1] (no global random state). M >= 1, B >= 1, T >= 2.
// Interruptible (core/interrupt.h: between steps of the product, before each sweep of the gradient).
template <typename S>
KernelRates kernel_rates(index_t M, index_t B, index_t T, double seconds);

}  // namespace plrnn
