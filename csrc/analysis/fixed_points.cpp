#include "analysis/fixed_points.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include "core/errors.h"
#include "core/interrupt.h"
#include "core/thread_pool.h"

namespace plrnn {
namespace {

using MatX = Eigen::MatrixXd;
using VecX = Eigen::VectorXd;
using RowMatX = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Eigen view of the map plus what the solvers derive from it once.
class Form {
 public:
  explicit Form(const PiecewiseMap& m)
      : M(m.M), n(m.n), map(m),
        J0(Eigen::Map<const RowMatX>(m.J0, m.M, m.M)),
        U(Eigen::Map<const RowMatX>(m.U, m.M, m.n)),
        V(Eigen::Map<const RowMatX>(m.V, m.M, m.n)),
        b(Eigen::Map<const VecX>(m.b, m.M)) {
    PLRNN_CHECK(static_cast<index_t>(m.breakpoints.size()) == n && static_cast<index_t>(m.slopes.size()) == n &&
                    static_cast<index_t>(m.intercepts.size()) == n,
                "breakpoints: need one list of breakpoints, slopes and intercepts per switch unit");
    for (index_t j = 0; j < n; ++j) {
      const auto& beta = m.breakpoints[j];
      PLRNN_CHECK(std::is_sorted(beta.begin(), beta.end()) &&
                      std::adjacent_find(beta.begin(), beta.end()) == beta.end(),
                  "breakpoints: unit ", j, " needs sorted, distinct breakpoints");
      PLRNN_CHECK(m.slopes[j].size() == beta.size() + 1 && m.intercepts[j].size() == beta.size() + 1,
                  "slopes: unit ", j, " needs len(breakpoints) + 1 slopes and intercepts");
      radix.push_back(static_cast<std::int32_t>(beta.size() + 1));
    }
    // v_j = e_i for every unit (standard, ALRNN, dendritic): arguments are state entries
    unit_index.resize(n, -1);
    bool all_unit = true;
    for (index_t j = 0; j < n && all_unit; ++j) {
      index_t hot = -1;
      for (index_t i = 0; i < M; ++i) {
        const double v = V(i, j);
        if (v == 1.0 && hot < 0) hot = i;
        else if (v != 0.0) { all_unit = false; break; }
      }
      all_unit = all_unit && hot >= 0;
      if (all_unit) unit_index[j] = hot;
    }
    if (!all_unit) unit_index.clear();
  }

  // J and c of the region with the given pieces [n].
  void region(const std::int32_t* pieces, MatX& J, VecX& c) const {
    J = J0;
    c = b;
    for (index_t j = 0; j < n; ++j) {
      const double s = map.slopes[j][pieces[j]], k = map.intercepts[j][pieces[j]];
      if (s != 0.0) J.noalias() += s * U.col(j) * V.col(j).transpose();
      if (k != 0.0) c.noalias() += k * U.col(j);
    }
  }

  // argument of unit j at z
  double argument(index_t j, const VecX& z) const {
    return unit_index.empty() ? V.col(j).dot(z) : z[unit_index[j]];
  }

  // piece containing a: the number of breakpoints < a (a breakpoint belongs to the piece below)
  std::int32_t piece_of(index_t j, double a) const {
    const auto& beta = map.breakpoints[j];
    return static_cast<std::int32_t>(std::lower_bound(beta.begin(), beta.end(), a) - beta.begin());
  }

  // whether z lies in the region `pieces`, up to a tolerance (a cheap screen before exact checks)
  bool near_region(const VecX& z, const std::int32_t* pieces, double tol) const {
    for (index_t j = 0; j < n; ++j) {
      const double a = argument(j, z), slack = tol * (1.0 + std::abs(a));
      const auto& beta = map.breakpoints[j];
      const std::int32_t p = pieces[j];
      if (p > 0 && a <= beta[p - 1] - slack) return false;
      if (p < static_cast<std::int32_t>(beta.size()) && a > beta[p] + slack) return false;
    }
    return true;
  }

  bool in_region(const VecX& z, const std::int32_t* pieces) const {
    for (index_t j = 0; j < n; ++j)
      if (piece_of(j, argument(j, z)) != pieces[j]) return false;
    return true;
  }

  // The exact fixed point of a region (fresh LU), or false when I - J is singular or z is virtual.
  bool solve_fixed_point(const std::int32_t* pieces, VecX& z) const {
    MatX J;
    VecX c;
    region(pieces, J, c);
    Eigen::FullPivLU<MatX> lu(MatX::Identity(M, M) - J);
    if (lu.rank() < M) return false;
    z = lu.solve(c);
    return z.allFinite() && in_region(z, pieces);
  }

  index_t M, n;
  const PiecewiseMap& map;
  MatX J0, U, V;
  VecX b;
  std::vector<std::int32_t> radix;
  std::vector<index_t> unit_index;  // empty unless every v_j is a unit vector
};

// Sort the solutions of a PointSet by their pieces (lexicographically), for deterministic output.
void sort_by_pieces(PointSet& ps, index_t M, index_t n) {
  const index_t count = ps.count(), k = ps.period;
  std::vector<index_t> order(count);
  for (index_t i = 0; i < count; ++i) order[i] = i;
  auto key = [&](index_t i) { return ps.pieces.begin() + i * k * n; };
  std::sort(order.begin(), order.end(), [&](index_t a, index_t b) {
    return std::lexicographical_compare(key(a), key(a) + k * n, key(b), key(b) + k * n);
  });
  PointSet out = ps;
  for (index_t r = 0; r < count; ++r) {
    std::copy_n(ps.points.begin() + order[r] * k * M, k * M, out.points.begin() + r * k * M);
    std::copy_n(ps.pieces.begin() + order[r] * k * n, k * n, out.pieces.begin() + r * k * n);
  }
  ps = std::move(out);
}

}  // namespace

std::uint64_t count_regions(const PiecewiseMap& map) {
  std::uint64_t total = 1;
  for (const auto& s : map.slopes) {
    const std::uint64_t r = s.size();
    if (r == 0 || total > (std::numeric_limits<std::uint64_t>::max() >> 1) / r) return 0;
    total *= r;
  }
  return total;
}

PointSet exhaustive_fixed_points(const PiecewiseMap& map, int refactor_every, std::size_t max_listed) {
  const Form form(map);
  const index_t M = form.M, n = form.n;
  const std::uint64_t R = count_regions(map);
  PLRNN_CHECK(R > 0, "regions: too many linear regions to enumerate");
  PLRNN_CHECK(refactor_every >= 1, "refactor_every: must be >= 1");

  PointSet result;
  result.M = M;
  result.period = 1;
  std::mutex mutex;
  const int n_chunks = static_cast<int>(std::min<std::uint64_t>(R, 64ull * std::max(1, get_num_threads())));
  parallel_for(n_chunks, [&](int chunk) {
    const std::uint64_t r0 = R * chunk / n_chunks, r1 = R * (chunk + 1) / n_chunks;
    if (r0 == r1) return;
    // reflected mixed-radix Gray code of rank r0: digit j is reflected when the number formed by
    // the digits above it is odd; dir is the direction digit j moves in next
    std::vector<std::int32_t> g(n), dir(n);
    std::uint64_t q = r0;
    for (index_t j = 0; j < n; ++j) {
      const std::int32_t a = static_cast<std::int32_t>(q % form.radix[j]);
      q /= form.radix[j];
      const bool reflected = q & 1u;
      g[j] = reflected ? form.radix[j] - 1 - a : a;
      dir[j] = reflected ? -1 : +1;
    }
    MatX J, Binv(M, M);
    VecX c, z(M), y(M), w(M);
    bool invertible = false, refactor_next = false;
    int since_refactor = 0;
    auto refactor = [&] {
      form.region(g.data(), J, c);
      Eigen::FullPivLU<MatX> lu(MatX::Identity(M, M) - J);
      invertible = lu.rank() == M;
      if (invertible) {
        Binv = lu.inverse();
        z.noalias() = Binv * c;
      }
      since_refactor = 0;
    };
    refactor();
    std::vector<double> points;
    std::vector<std::int32_t> pieces, degenerate;
    std::uint64_t n_degenerate = 0;
    const double work = 4.0 * static_cast<double>(M) * static_cast<double>(M);  // of one region
    for (std::uint64_t r = r0; r < r1; ++r) {
      interruption_point(work);
      if (((r - r0) & 4095) == 4095) add_progress(4096);
      if (r > r0) {  // step to the next region: the lowest digit that can move does
        index_t j = 0;
        while (g[j] + dir[j] < 0 || g[j] + dir[j] >= form.radix[j]) {
          dir[j] = -dir[j];
          ++j;
        }
        const std::int32_t old = g[j];
        g[j] += dir[j];
        const double ds = map.slopes[j][g[j]] - map.slopes[j][old];
        const double dk = map.intercepts[j][g[j]] - map.intercepts[j][old];
        c.noalias() += dk * form.U.col(j);
        bool updated = false, ill_conditioned = false;
        if (invertible && !refactor_next && ++since_refactor < refactor_every) {
          // (I - J') = (I - J) - ds u v^T, c' = c + dk u, y = Binv u, t = v^T y, a = v^T z:
          //   Binv' = Binv + ds y (v^T Binv) / den,  den = 1 - ds t      (Sherman-Morrison)
          //   z'    = Binv' c' = z + y (dk + ds (a + dk t) / den)         (O(M), no matrix product)
          y.noalias() = Binv * form.U.col(j);
          const double t = form.unit_index.empty() ? form.V.col(j).dot(y) : y[form.unit_index[j]];
          const double den = 1.0 - ds * t;
          // |den| small: the new region is ill-conditioned (the update amplifies Binv by ~1/|den|);
          // factorise it afresh, and the next one too, so that the cancellation error of leaving it
          // is not carried along the walk
          if (std::abs(den) > 1e-4 * (1.0 + std::abs(ds * t))) {
            const double a = form.argument(j, z);
            z.noalias() += (dk + ds * (a + dk * t) / den) * y;
            if (ds != 0.0) {
              if (form.unit_index.empty()) w.noalias() = Binv.transpose() * form.V.col(j);
              else w = Binv.row(form.unit_index[j]).transpose();
              Binv.noalias() += (ds / den) * y * w.transpose();
            }
            updated = true;
          } else {
            ill_conditioned = true;
          }
        }
        refactor_next = false;
        if (!updated) {
          refactor();
          refactor_next = ill_conditioned;  // leave an ill-conditioned region with a fresh factorisation too
        }
      }
      if (!invertible) {
        ++n_degenerate;
        if (degenerate.size() / n < max_listed) degenerate.insert(degenerate.end(), g.begin(), g.end());
        continue;
      }
      if (!form.near_region(z, g.data(), 1e-7)) continue;
      VecX exact;
      if (!form.solve_fixed_point(g.data(), exact)) continue;
      points.insert(points.end(), exact.data(), exact.data() + M);
      pieces.insert(pieces.end(), g.begin(), g.end());
    }
    add_progress((r1 - r0) & 4095);
    std::lock_guard<std::mutex> lk(mutex);
    result.points.insert(result.points.end(), points.begin(), points.end());
    result.pieces.insert(result.pieces.end(), pieces.begin(), pieces.end());
    for (std::size_t i = 0; i < degenerate.size() && result.degenerate.size() / n < max_listed; i += n)
      result.degenerate.insert(result.degenerate.end(), degenerate.begin() + i, degenerate.begin() + i + n);
    result.n_degenerate += n_degenerate;
    result.visited += r1 - r0;
  });
  sort_by_pieces(result, M, n);
  return result;
}

PointSet exhaustive_cycles(const PiecewiseMap& map, int k, std::size_t max_listed) {
  const Form form(map);
  const index_t M = form.M, n = form.n;
  PLRNN_CHECK(k >= 1, "k: the period must be >= 1, got ", k);
  const std::uint64_t R = count_regions(map);
  PLRNN_CHECK(R > 0, "regions: too many linear regions to enumerate");
  PointSet result;
  result.M = M;
  result.period = k;
  if (R == 1 && k > 1) return result;  // one region: no primitive sequence longer than 1
  // R^k sequences (about R^k / k of them Lyndon words) must be countable in 63 bits
  std::uint64_t sequences = 1;
  for (int i = 0; i < k; ++i) {
    PLRNN_CHECK(sequences <= (std::numeric_limits<std::uint64_t>::max() >> 1) / R, "k: ", R,
                "^", k, " region sequences of length k=", k, " are too many to enumerate");
    sequences *= R;
  }

  // region index (ordinary mixed radix, unit 0 most significant, so that the order of region
  // indices is the lexicographic order of the piece tuples) -> pieces
  auto decode = [&](std::uint64_t r, std::int32_t* pieces) {
    for (index_t j = n - 1; j >= 0; --j) {
      pieces[j] = static_cast<std::int32_t>(r % form.radix[j]);
      r /= form.radix[j];
    }
  };
  std::mutex mutex;
  const int n_tasks = static_cast<int>(std::min<std::uint64_t>(R, 4096));
  parallel_for(n_tasks, [&](int task) {
    std::vector<double> points;
    std::vector<std::int32_t> pieces, degenerate;
    std::uint64_t visited = 0, n_degenerate = 0;
    std::vector<std::int32_t> seq(static_cast<std::size_t>(k) * n);
    std::vector<MatX> Js(k);
    std::vector<VecX> cs(k);
    MatX Pi;
    VecX c, z;
    const double work = 2.0 * k * static_cast<double>(M) * static_cast<double>(M) * static_cast<double>(M + n);
    auto solve_sequence = [&](const std::vector<std::uint64_t>& word) {
      interruption_point(work);
      add_progress(1);
      ++visited;
      for (int i = 0; i < k; ++i) {
        decode(word[i], seq.data() + i * n);
        form.region(seq.data() + i * n, Js[i], cs[i]);
      }
      Pi = MatX::Identity(M, M);
      c = VecX::Zero(M);
      for (int i = 0; i < k; ++i) {  // Pi = J_k ... J_1, c = sum_i J_k ... J_(i+1) c_i
        Pi = Js[i] * Pi;
        c = Js[i] * c + cs[i];
      }
      Eigen::FullPivLU<MatX> lu(MatX::Identity(M, M) - Pi);
      if (lu.rank() < M) {
        ++n_degenerate;
        if (degenerate.size() / (k * n) < max_listed) degenerate.insert(degenerate.end(), seq.begin(), seq.end());
        return;
      }
      z = lu.solve(c);
      std::vector<double> orbit(static_cast<std::size_t>(k) * M);
      for (int i = 0; i < k; ++i) {  // real only if the orbit visits exactly the assumed regions
        if (!z.allFinite() || !form.in_region(z, seq.data() + i * n)) return;
        std::copy_n(z.data(), M, orbit.begin() + i * M);
        z = Js[i] * z + cs[i];
      }
      points.insert(points.end(), orbit.begin(), orbit.end());
      pieces.insert(pieces.end(), seq.begin(), seq.end());
    };
    // Lyndon words of length k over [0, R) whose first letter lies in this task's range (Duval's
    // generation restricted to one first letter at a time)
    const std::uint64_t a0 = R * task / n_tasks, a1 = R * (task + 1) / n_tasks;
    for (std::uint64_t a = a0; a < a1; ++a) {
      std::vector<std::uint64_t> w{a};
      for (;;) {
        interruption_point(static_cast<double>(k));
        if (static_cast<int>(w.size()) == k) solve_sequence(w);
        const std::size_t m = w.size();
        while (static_cast<int>(w.size()) < k) w.push_back(w[w.size() - m]);
        while (!w.empty() && w.back() == R - 1) w.pop_back();
        if (w.size() <= 1) break;  // the next word would start with a + 1
        ++w.back();
      }
    }
    std::lock_guard<std::mutex> lk(mutex);
    result.points.insert(result.points.end(), points.begin(), points.end());
    result.pieces.insert(result.pieces.end(), pieces.begin(), pieces.end());
    for (std::size_t i = 0; i < degenerate.size() && result.degenerate.size() / (k * n) < max_listed; i += k * n)
      result.degenerate.insert(result.degenerate.end(), degenerate.begin() + i, degenerate.begin() + i + k * n);
    result.n_degenerate += n_degenerate;
    result.visited += visited;
  });
  sort_by_pieces(result, M, n);
  return result;
}

}  // namespace plrnn
