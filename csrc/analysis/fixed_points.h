// Exact fixed points and k-cycles of a piecewise-linear map by visiting every linear region.
//
// The map is in the generic form of python/plrnn_native/piecewise.py:
//   F(z) = J0 z + b + sum_j u_j f_j(v_j . z),   f_j piecewise linear with sorted breakpoints;
// piece p of unit j is (beta_j(p-1), beta_jp] and there f_j(a) = slope_jp a + intercept_jp.
// In a region (one piece per unit) F(z) = J z + c with J = J0 + U diag(slope) V^T, c = b + U intercept.
#pragma once
#include <cstdint>
#include <vector>

#include "core/types.h"

namespace plrnn {

struct PiecewiseMap {
  index_t M = 0;             // state dimension
  index_t n = 0;             // switch units
  const double* J0 = nullptr;  // [M, M] row-major
  const double* b = nullptr;   // [M]
  const double* U = nullptr;   // [M, n]
  const double* V = nullptr;   // [M, n]  column j is v_j
  std::vector<std::vector<double>> breakpoints;  // n sorted lists
  std::vector<std::vector<double>> slopes;       // n lists of breakpoints[j].size() + 1
  std::vector<std::vector<double>> intercepts;   // same
};

struct PointSet {
  index_t M = 0;                       // state dimension
  index_t period = 1;                  // 1: fixed points, k: k-cycles
  std::vector<double> points;          // [count, period, M]
  std::vector<std::int32_t> pieces;    // [count, period, n]
  std::vector<std::int32_t> degenerate;  // [listed, period, n] regions (sequences) with singular I - Pi
  std::uint64_t n_degenerate = 0;      // all of them (only the first ones are listed)
  std::uint64_t visited = 0;           // regions (fixed points) or region sequences (cycles) visited
  index_t count() const { return M > 0 ? static_cast<index_t>(points.size()) / (period * M) : 0; }
};

// Number of linear regions, or 0 when it does not fit in 63 bits.
std::uint64_t count_regions(const PiecewiseMap& map);

// All fixed points, visiting the regions in reflected mixed-radix Gray-code order (one unit changes
// its piece per step: a rank-1 change of I - J, Sherman-Morrison update of its inverse, refactorised
// every `refactor_every` steps and whenever the update is ill-conditioned). Threads over ranges of
// the Gray-code sequence. Candidates are re-verified with a fresh LU solve; results sorted by region.
PointSet exhaustive_fixed_points(const PiecewiseMap& map, int refactor_every = 256,
                                 std::size_t max_degenerate_listed = 1000);

// All k-cycles of minimal period k whose region sequence is primitive, enumerating region sequences
// as Lyndon words (one rotation of each primitive necklace). Each cycle starts at its
// Lyndon-least rotation (regions compared as piece tuples, unit 0 first).
PointSet exhaustive_cycles(const PiecewiseMap& map, int k, std::size_t max_degenerate_listed = 1000);

}  // namespace plrnn
