// Manifold-attractor regularisation on the device (csrc/regularizers/mar.h is the CPU version):
//   L_MAR = lam * ( sum_{i in R} (A_i - 1)^2 + sum_{i in R} sum_j Wrow_ij^2 + sum_{i in R} bias_i^2 )
// (each sum divided by its number of terms with `mean`). One block: every (unit, column) term is
// owned by one thread, which adds its gradient (units are distinct, so no two threads touch the same
// element) and its share of the penalty; the penalty is summed in a fixed order.
// Device-side interface for the trainer; the per-call API is mar_penalty() in cuda/api.h.
#pragma once
#include "core/types.h"

namespace plrnn::cuda {

struct MarConfig {
  const index_t* units = nullptr;  // device pointer [n_units], distinct, in [0, M)
  index_t n_units = 0;
  double weight = 0.0;
  bool mean = false;
};

// Adds the MAR gradient into grads (device pointers) and the penalty into *value (device double).
template <typename S>
void mar_penalty_device(const ModelSpec& spec, const Params<S>& p, const MarConfig& mar, const Grads<S>& grads,
                        double* value);

}  // namespace plrnn::cuda
