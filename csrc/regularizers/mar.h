// Manifold-attractor regularisation (Schmidt et al. 2021), penalty and gradient side by side:
//   L_MAR = lam * ( sum_{i in R} (A_i - 1)^2 + sum_{i in R} sum_j Wrow_ij^2 + sum_{i in R} bias_i^2 )
// Wrow = W (standard, alrnn, dendritic) or W1 (shallow), bias = h or h1. With `mean`, each of the
// three sums is divided by its number of terms (|R|, |R| * columns of Wrow, |R|).
#pragma once
#include "core/types.h"

namespace plrnn {

// units [n_units]: distinct indices in [0, M). Adds the gradient into grads (pointers may be null
// to skip a parameter) and returns the penalty.
template <typename S>
double mar_penalty(const ModelSpec& spec, const Params<S>& p, const index_t* units, index_t n_units,
                   double weight, bool mean, const Grads<S>& grads);

}  // namespace plrnn
