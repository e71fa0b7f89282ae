// Manifold-attractor regularisation (Schmidt et al. 2021), penalty and gradient side by side:
//   L_MAR = lam * ( sum_{i in R} (A_i - 1)^2 + sum_{i in R} sum_j Wrow_ij^2 + sum_{i in R} bias_i^2 )
// Wrow = W (standard, alrnn, dendritic) or W1 (shallow), bias = h or h1. With `mean`, each of the
// three sums is divided by its number of terms (|R|, |R| * columns of Wrow, |R|).
#pragma once
#include <vector>

#include "core/errors.h"
#include "core/param_layout.h"
#include "core/types.h"

namespace plrnn {

// units [n_units]: distinct indices in [0, M). Adds the gradient into grads (pointers may be null
// to skip a parameter) and returns the penalty.
template <typename S>
double mar_penalty(const ModelSpec& spec, const Params<S>& p, const index_t* units, index_t n_units,
                   double weight, bool mean, const Grads<S>& grads);

// The checks of a MAR call shared by both backends: a valid spec, weight >= 0, distinct units in [0, M).
inline void check_mar(const ModelSpec& spec, const index_t* units, index_t n_units, double weight) {
  check_spec(spec);
  const index_t M = spec.dims.M;
  PLRNN_CHECK(weight >= 0.0, "weight: must be >= 0, got ", weight);
  std::vector<char> seen(static_cast<size_t>(M), 0);
  for (index_t k = 0; k < n_units; ++k) {
    const index_t i = units[k];
    PLRNN_CHECK(i >= 0 && i < M, "units: index ", i, " outside [0, M=", M, ")");
    PLRNN_CHECK(!seen[i], "units: index ", i, " appears twice");
    seen[i] = 1;
  }
}

}  // namespace plrnn
