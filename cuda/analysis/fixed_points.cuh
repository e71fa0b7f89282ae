// Exhaustive fixed-point search on the GPU for piecewise-linear maps whose switch units all have two
// pieces (standard PLRNN, ALRNN, unclipped shallow PLRNN). Dendritic and clipped kinds have more
// pieces per unit and stay on the CPU solver (csrc/analysis/fixed_points.h).
//
// Plain C++ interface (no CUDA types), so the binding compiles with the host compiler.
//
// The map is the generic form of python/plrnn_native/piecewise.py restricted to two pieces:
//   F(z) = J0 z + b + sum_j u_j f_j(v_j . z),   f_j(a) = s_j0 a + k_j0 if a <= beta_j (piece 0),
//                                                         s_j1 a + k_j1 if a >  beta_j (piece 1).
// A region is a bitmask r (bit j = piece of unit j); in it F(z) = J_r z + c_r with
//   J_r = J0 + U diag(s_{j, r_j}) V^T,   c_r = b + U k_{r},
// and its fixed-point candidate is z = (I - J_r)^{-1} c_r, real if every unit's piece at z is r_j.
#pragma once
#include <cstdint>
#include <vector>

namespace plrnn::cuda {

constexpr int kFixedPointsMaxM = 64;      // (I - J)^{-1} lives in one block's shared memory
constexpr int kFixedPointsMaxUnits = 40;  // 2^40 regions; the region code is a 64-bit mask

// Host pointers, float64, row-major.
struct TwoPieceMap {
  int M = 0;                            // state dimension, 1..64
  int n = 0;                            // switch units, 0..40
  const double* J0 = nullptr;           // [M, M]
  const double* b = nullptr;            // [M]
  const double* U = nullptr;            // [M, n]
  const double* V = nullptr;            // [M, n]   column j is v_j
  const double* beta = nullptr;         // [n]      breakpoint of unit j
  const double* slopes = nullptr;       // [n, 2]   s_j0, s_j1
  const double* intercepts = nullptr;   // [n, 2]   k_j0, k_j1
};

struct FixedPointOptions {
  int device = 0;
  std::int64_t max_points = 100000;  // capacity of the candidate buffer
  // A candidate passes the piece check when each unit's argument a lies on its side of beta up to
  // piece_tol * (1 + |a|) (the screen of the CPU solver). Candidates near a breakpoint can pass in
  // both adjacent regions: the caller re-verifies them exactly.
  double piece_tol = 1e-7;
  // I - J counts as singular when a Gauss-Jordan pivot is <= singular_tol * max|I - J|;
  // <= 0 selects M * DBL_EPSILON (the rank threshold of Eigen's FullPivLU).
  double singular_tol = 0.0;
  int refactor_every = 256;          // Sherman-Morrison steps between fresh factorisations
};

struct FixedPointCandidates {
  std::vector<double> points;          // [count, M]
  std::vector<std::uint64_t> regions;  // [count] bit j = piece of unit j; sorted ascending
  std::uint64_t n_candidates = 0;      // found; more than `count` when the buffer overflowed
  std::uint64_t n_degenerate = 0;      // regions whose I - J is singular
  std::uint64_t regions_visited = 0;   // 2^n when the search completed
  std::size_t count() const { return regions.size(); }
  bool overflowed() const { return n_candidates > regions.size(); }
};

// Visits all 2^n regions on `options.device`. Throws std::invalid_argument for a bad map or option
// (message names it) and std::runtime_error when CUDA is unavailable or a CUDA call fails.
FixedPointCandidates fixed_points_exhaustive(const TwoPieceMap& map, const FixedPointOptions& options);

}  // namespace plrnn::cuda
