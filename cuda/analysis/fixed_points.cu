// Exhaustive fixed-point search for two-piece switch units: kernel and launcher (fixed_points.cuh).
//
// The 2^n regions are visited in reflected binary Gray-code order: region of rank r has the mask
// g(r) = r ^ (r >> 1), and g(r) differs from g(r - 1) in bit ctz(r) only. Flipping unit j changes
// I - J by the rank-1 term -ds u_j v_j^T (ds = slope difference), so
//   Binv' = Binv + ds (Binv u)(v^T Binv) / den,   den = 1 - ds v^T Binv u   (Sherman-Morrison).
// The ranks are cut into contiguous ranges; a block takes ranges in a grid-stride loop. Per range it
// factorises I - J of the first region (Gauss-Jordan with partial pivoting, in shared memory, float64),
// then walks the range with rank-1 updates, re-factorising every `refactor_every` steps (drift),
// whenever den is tiny, and whenever an update shrinks max|Binv| by more than kMaxShrink relative to
// its peak since the last factorisation (cancellation on leaving an ill-conditioned region: without
// this check the errors of a region with cond 1e9 spread along the rest of the walk). After each step
// z = Binv c and the piece of every unit at z is checked.
//
// Thread layout: the block's threads form "row teams" of T lanes (a power of two <= 32, T * M <= 128
// where possible); team t owns rows t, t + nteams, ..., its lanes the columns lane, lane + T, ...
// Row sums are reduced within the team by warp shuffles. The inverse is stored with a leading
// dimension ld = T (mod 32), so a warp's row accesses hit distinct shared-memory banks.
#include "analysis/fixed_points.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>
#include <string>

#include "core/errors.h"
#include "core/cuda_check.cuh"
#include "core/device_buffer.cuh"
#include "core/device_info.h"

namespace plrnn::cuda {
namespace {

using u64 = unsigned long long;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullMask = 0xffffffffu;
// Sherman-Morrison is skipped (fresh factorisation instead) when |den| < kTinyDen * (1 + |ds v.w|).
constexpr double kTinyDen = 1e-10;
// A rank-1 update that leaves max|Binv| more than kMaxShrink times below its largest value since the
// last factorisation is redone as a fresh factorisation: the inverse carries the rounding errors of
// that larger matrix (leaving a near-singular region), which would otherwise dominate from then on.
constexpr double kMaxShrink = 1e3;
// Smallest range of Gray-code ranks per block visit (each range starts with a factorisation).
constexpr u64 kMinRange = 32;

// Everything the kernel reads, in one plain struct (sizes, device pointers in elements).
struct FixedPointArgs {
  int M = 0, n = 0;
  int ld = 0;    // leading dimension of the inverse in shared memory
  int team = 1;  // lanes per row team (the kernel's template parameter)
  // map (device, row-major)
  const double* J0 = nullptr;          // [M, M]
  const double* b = nullptr;           // [M]
  const double* U = nullptr;           // [M, n]
  const double* V = nullptr;           // [M, n]
  const double* Ut = nullptr;          // [n, M]  row j is u_j
  const double* Vt = nullptr;          // [n, M]  row j is v_j
  const double* beta = nullptr;        // [n]
  const double* slopes = nullptr;      // [n, 2]
  const double* intercepts = nullptr;  // [n, 2]
  const int* v_index = nullptr;        // [n]  v_j = e_{v_index[j]} (unit-vector kernel only)
  // search
  u64 total = 0;      // 2^n regions
  u64 range_len = 0;  // ranks per range
  u64 n_ranges = 0;
  int refactor_every = 256;
  double piece_tol = 0.0;
  double singular_tol = 0.0;
  // outputs
  double* points = nullptr;  // [capacity, M]
  u64* regions = nullptr;    // [capacity]
  u64 capacity = 0;
  u64* counters = nullptr;   // [3] candidates, degenerate regions, visited regions
};

// Dynamic shared memory of one block, carved from one array.
struct SharedView {
  u64* slot;        // [1]       output slot of the current candidate
  double* inv;      // [M, ld]   (I - J)^{-1} of the current region
  double* w;        // [M]       Binv u_j
  double* q;        // [M]       Binv^T v_j
  double* z;        // [M]       fixed-point candidate
  double* c;        // [M]       c of the current region
  double* col;      // [M]       pivot column (factorisation)
  double* slope;    // [n]       slope of each unit's current piece (factorisation)
  double* icpt;     // [n]       intercept of each unit's current piece (factorisation)
  double* red;      // [kWarps]  block reduction scratch
  int* piv;         // [M]       row interchanges
};

__host__ __device__ inline std::size_t shared_doubles(int M, int n, int ld) {
  const std::size_t m = static_cast<std::size_t>(M);
  return 1 + m * ld + 5 * m + 2 * static_cast<std::size_t>(n) + kWarps;
}

__host__ __device__ inline std::size_t shared_bytes(int M, int n, int ld) {
  return shared_doubles(M, n, ld) * sizeof(double) + static_cast<std::size_t>(M) * sizeof(int);
}

__device__ inline SharedView carve(double* smem, int M, int n, int ld) {
  SharedView s;
  s.slot = reinterpret_cast<u64*>(smem);
  s.inv = smem + 1;
  s.w = s.inv + static_cast<std::size_t>(M) * ld;
  s.q = s.w + M;
  s.z = s.q + M;
  s.c = s.z + M;
  s.col = s.c + M;
  s.slope = s.col + M;
  s.icpt = s.slope + n;
  s.red = s.icpt + n;
  s.piv = reinterpret_cast<int*>(smem + shared_doubles(M, n, ld));
  return s;
}

// Position of this thread in the row-team layout; the team size is a template parameter, so the
// shuffle reductions unroll.
template <int kSize>
struct Team {
  static constexpr int size = kSize;               // lanes per team (power of two <= 32)
  static constexpr int count = kThreads / kSize;   // teams per block
  int id;                                          // team index
  int lane;                                        // lane within the team
};

// Sum over the lanes of a team; every lane gets the (bitwise identical) result. All 32 lanes of the
// warp must call it together.
template <int kSize>
__device__ __forceinline__ double team_sum(double v) {
#pragma unroll
  for (int off = kSize >> 1; off > 0; off >>= 1) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}

__device__ __forceinline__ double warp_sum(double v) { return team_sum<32>(v); }

__device__ __forceinline__ double warp_max(double v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = fmax(v, __shfl_xor_sync(kFullMask, v, off));
  return v;
}

// Lane 0 of each warp stores the warp's maximum in red[warp]; read back with gathered_max after a
// __syncthreads().
__device__ __forceinline__ void scatter_max(double v, double* red) {
  v = warp_max(v);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
}

__device__ __forceinline__ double gathered_max(const double* red) {
  double m = red[0];
#pragma unroll
  for (int w = 1; w < kWarps; ++w) m = fmax(m, red[w]);
  return m;
}

// Maximum over the block (synchronises; the caller syncs again before reusing `red`).
__device__ __forceinline__ double block_max(double v, double* red) {
  scatter_max(v, red);
  __syncthreads();
  return gathered_max(red);
}

// Whether `arg` lies in piece `bit` of a unit with breakpoint `beta` (0: arg <= beta, 1: arg > beta),
// up to a slack of tol * (1 + |arg|). NaN fails both.
__device__ __forceinline__ bool in_piece(double arg, double beta, int bit, double tol) {
  const double slack = tol * (1.0 + fabs(arg));
  return bit ? (arg > beta - slack) : (arg <= beta + slack);
}

// Builds I - J and c of region `bits`, then inverts I - J in place: Gauss-Jordan with partial pivoting
// (row interchanges recorded in piv, undone at the end as column interchanges in reverse order).
// Returns false, uniformly over the block, when a pivot is <= singular_tol * max|I - J|.
// Starts with a __syncthreads(), and ends with one when it returns true.
template <class TeamT>
__device__ __forceinline__ bool factorize(const FixedPointArgs& a, const SharedView& s, u64 bits,
                                          const TeamT& t) {
  const int M = a.M, n = a.n, ld = a.ld;
  __syncthreads();  // the previous step's readers of inv, c, z are done
  for (int j = threadIdx.x; j < n; j += kThreads) {
    const int bit = static_cast<int>((bits >> j) & 1u);
    s.slope[j] = a.slopes[2 * j + bit];
    s.icpt[j] = a.intercepts[2 * j + bit];
  }
  __syncthreads();
  // I - J = I - J0 - U diag(slope) V^T,   c = b + U icpt
  double amax = 0.0;
  for (int i = t.id; i < M; i += t.count) {
    const double* Ui = a.U + static_cast<std::size_t>(i) * n;
    for (int k = t.lane; k < M; k += t.size) {
      const double* Vk = a.V + static_cast<std::size_t>(k) * n;
      double jik = a.J0[i * M + k];
      for (int j = 0; j < n; ++j) jik += Ui[j] * s.slope[j] * Vk[j];
      const double x = (i == k ? 1.0 : 0.0) - jik;
      s.inv[i * ld + k] = x;
      amax = fmax(amax, fabs(x));
    }
    if (t.lane == 0) {
      double ci = a.b[i];
      for (int j = 0; j < n; ++j) ci += Ui[j] * s.icpt[j];
      s.c[i] = ci;
    }
  }
  const double tol = a.singular_tol * block_max(amax, s.red);  // (synchronises)
  bool singular = false;

  for (int k = 0; k < M; ++k) {
    // every warp finds the pivot row (largest |entry| at or below k, lowest index on ties) in the
    // same order, so all threads agree without a broadcast; NaN entries never win
    double best = -1.0;
    int p = -1;
    for (int i = k + static_cast<int>(threadIdx.x & 31); i < M; i += 32) {
      const double v = fabs(s.inv[i * ld + k]);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    for (int off = 16; off > 0; off >>= 1) {
      const double ob = __shfl_xor_sync(kFullMask, best, off);
      const int op = __shfl_xor_sync(kFullMask, p, off);
      if (ob > best || (ob == best && op < p)) {
        best = ob;
        p = op;
      }
    }
    if (!(best > tol)) {  // singular (or no finite pivot); the same decision in every warp
      singular = true;
      break;
    }
    for (int i = threadIdx.x; i < M; i += kThreads) s.col[i] = s.inv[i * ld + k];
    __syncthreads();
    if (threadIdx.x == 0) s.piv[k] = p;
    const double d = 1.0 / s.col[p];
    // swap rows k and p; the new row k is scaled by 1/pivot, its diagonal entry becoming 1/pivot
    for (int c = threadIdx.x; c < M; c += kThreads) {
      const double rk = s.inv[k * ld + c], rp = s.inv[p * ld + c];
      s.inv[k * ld + c] = (c == k ? 1.0 : rp) * d;
      if (p != k) s.inv[p * ld + c] = rk;
    }
    __syncthreads();
    // eliminate column k from the other rows; their column-k entries become -f/pivot
    for (int i = t.id; i < M; i += t.count) {
      if (i == k) continue;
      const double f = s.col[i == p ? k : i];  // column-k entry of row i after the interchange
      for (int c = t.lane; c < M; c += t.size)
        s.inv[i * ld + c] = (c == k ? 0.0 : s.inv[i * ld + c]) - f * s.inv[k * ld + c];
    }
    __syncthreads();
  }
  if (singular) return false;
  // undo the row interchanges as column interchanges, last first (one thread per row)
  for (int i = threadIdx.x; i < M; i += kThreads) {
    double* row = s.inv + i * ld;
    for (int k = M - 1; k >= 0; --k) {
      const int p = s.piv[k];
      if (p != k) {
        const double x = row[k];
        row[k] = row[p];
        row[p] = x;
      }
    }
  }
  __syncthreads();
  return true;
}

// z = Binv c (after a factorisation), and max|Binv| scattered into red. The caller syncs before z or
// red is read.
template <class TeamT>
__device__ __forceinline__ void solve_z(const FixedPointArgs& a, const SharedView& s, const TeamT& t) {
  const int M = a.M, ld = a.ld;
  double amax = 0.0;
  for (int i0 = 0; i0 < M; i0 += t.count) {  // uniform trip count: every lane reaches the shuffles
    const int i = i0 + t.id;
    double acc = 0.0;
    if (i < M) {
      for (int c = t.lane; c < M; c += t.size) {
        const double x = s.inv[i * ld + c];
        acc += x * s.c[c];
        amax = fmax(amax, fabs(x));
      }
    }
    acc = team_sum<TeamT::size>(acc);
    if (i < M && t.lane == 0) s.z[i] = acc;
  }
  scatter_max(amax, s.red);
}

// w = Binv u_j and q = Binv^T v_j. The caller syncs before they are read.
template <bool kUnitV, class TeamT>
__device__ __forceinline__ void rank1_vectors(const FixedPointArgs& a, const SharedView& s, int j,
                                              const TeamT& t) {
  const int M = a.M, ld = a.ld;
  const double* u = a.Ut + static_cast<std::size_t>(j) * M;
  [[maybe_unused]] const double* v = a.Vt + static_cast<std::size_t>(j) * M;
  if constexpr (kUnitV) {  // v_j = e_r: q is row r of Binv
    const int r = a.v_index[j];
    for (int c = threadIdx.x; c < M; c += kThreads) s.q[c] = s.inv[r * ld + c];
  }
  for (int i0 = 0; i0 < M; i0 += t.count) {
    const int i = i0 + t.id;
    double aw = 0.0, aq = 0.0;
    if (i < M) {
      for (int c = t.lane; c < M; c += t.size) {
        aw += s.inv[i * ld + c] * u[c];
        if constexpr (!kUnitV) aq += s.inv[c * ld + i] * v[c];
      }
    }
    aw = team_sum<TeamT::size>(aw);
    if constexpr (!kUnitV) aq = team_sum<TeamT::size>(aq);
    if (i < M && t.lane == 0) {
      s.w[i] = aw;
      if constexpr (!kUnitV) s.q[i] = aq;
    }
  }
}

// v_j . w, computed by every warp in the same order (so every thread gets the same value).
template <bool kUnitV>
__device__ __forceinline__ double v_dot_w(const FixedPointArgs& a, const SharedView& s, int j) {
  if constexpr (kUnitV) {
    return s.w[a.v_index[j]];
  } else {
    const double* v = a.Vt + static_cast<std::size_t>(j) * a.M;
    double acc = 0.0;
    for (int i = threadIdx.x & 31; i < a.M; i += 32) acc += v[i] * s.w[i];
    return warp_sum(acc);
  }
}

// Binv += f w q^T and, row by row with the updated entries, z = Binv (c + dk u_j); max|Binv| is
// scattered into red. The caller syncs before inv, z or red is read.
template <class TeamT>
__device__ __forceinline__ void rank1_update(const FixedPointArgs& a, const SharedView& s, int j, double f,
                                             double dk, const TeamT& t) {
  const int M = a.M, ld = a.ld;
  const double* u = a.Ut + static_cast<std::size_t>(j) * M;
  double amax = 0.0;
  for (int i0 = 0; i0 < M; i0 += t.count) {
    const int i = i0 + t.id;
    double acc = 0.0;
    if (i < M) {
      const double fw = f * s.w[i];
      double* row = s.inv + i * ld;
      for (int c = t.lane; c < M; c += t.size) {
        const double x = row[c] + fw * s.q[c];
        row[c] = x;
        acc += x * (s.c[c] + dk * u[c]);
        amax = fmax(amax, fabs(x));
      }
    }
    acc = team_sum<TeamT::size>(acc);
    if (i < M && t.lane == 0) s.z[i] = acc;
  }
  scatter_max(amax, s.red);
}

// Whether z is finite and every unit's argument lies in its piece of `bits` (up to piece_tol).
// When `shift_c`, also c += dk u_j (the region's new c, already used for z by rank1_update).
// Synchronises; the result is the same for every thread.
template <bool kUnitV, class TeamT>
__device__ __forceinline__ bool check_pieces(const FixedPointArgs& a, const SharedView& s, u64 bits,
                                             bool shift_c, int j, double dk, const TeamT& t) {
  const int M = a.M, n = a.n;
  bool ok = true;
  for (int i = threadIdx.x; i < M; i += kThreads) ok = ok && isfinite(s.z[i]);
  if constexpr (kUnitV) {
    for (int jj = threadIdx.x; jj < n; jj += kThreads)
      ok = ok && in_piece(s.z[a.v_index[jj]], a.beta[jj], static_cast<int>((bits >> jj) & 1u), a.piece_tol);
  } else {
    for (int j0 = 0; j0 < n; j0 += t.count) {  // uniform trip count
      const int jj = j0 + t.id;
      double acc = 0.0;
      if (jj < n) {
        const double* v = a.Vt + static_cast<std::size_t>(jj) * M;
        for (int c = t.lane; c < M; c += t.size) acc += v[c] * s.z[c];
      }
      acc = team_sum<TeamT::size>(acc);
      if (jj < n && t.lane == 0)
        ok = ok && in_piece(acc, a.beta[jj], static_cast<int>((bits >> jj) & 1u), a.piece_tol);
    }
  }
  if (shift_c) {
    const double* u = a.Ut + static_cast<std::size_t>(j) * M;
    for (int i = threadIdx.x; i < M; i += kThreads) s.c[i] += dk * u[i];
  }
  return __syncthreads_and(ok) != 0;
}

// Launched with kThreads threads. No __launch_bounds__: under __launch_bounds__(128) ptxas 13.0 held
// the kernel to 64 registers and spilled on every architecture; without it, 64-96 registers, no spills.
template <bool kUnitV, int kTeam>
__global__ void fixed_points_kernel(const __grid_constant__ FixedPointArgs a) {
  extern __shared__ double smem[];
  const SharedView s = carve(smem, a.M, a.n, a.ld);
  Team<kTeam> t;
  t.id = static_cast<int>(threadIdx.x) / kTeam;
  t.lane = static_cast<int>(threadIdx.x) & (kTeam - 1);

  u64 degenerate = 0, visited = 0;
  for (u64 range = blockIdx.x; range < a.n_ranges; range += gridDim.x) {
    const u64 first = range * a.range_len;
    const u64 last = first + a.range_len < a.total ? first + a.range_len : a.total;
    visited += last - first;
    u64 bits = first ^ (first >> 1);
    bool valid = false;  // whether inv holds (I - J)^{-1} of the previous region
    int since = 0;       // rank-1 updates since the last factorisation
    double peak = 0.0;   // largest max|Binv| since the last factorisation
    for (u64 rank = first; rank < last; ++rank) {
      int j = 0;
      double ds = 0.0, dk = 0.0;
      if (rank > first) {  // unit j changes its piece
        j = __ffsll(static_cast<long long>(rank)) - 1;
        bits ^= 1ull << j;
        const int bit = static_cast<int>((bits >> j) & 1u);
        ds = a.slopes[2 * j + bit] - a.slopes[2 * j + 1 - bit];
        dk = a.intercepts[2 * j + bit] - a.intercepts[2 * j + 1 - bit];
      }
      bool fresh = !valid || since >= a.refactor_every;
      if (!fresh) {
        rank1_vectors<kUnitV>(a, s, j, t);
        __syncthreads();
        const double vw = v_dot_w<kUnitV>(a, s, j);
        const double den = 1.0 - ds * vw;
        if (!(fabs(den) >= kTinyDen * (1.0 + fabs(ds * vw)))) {
          fresh = true;  // ill-conditioned update (or NaN): factorise this region afresh
        } else {
          rank1_update(a, s, j, ds / den, dk, t);
          __syncthreads();
          const double size = gathered_max(s.red);
          if (!(peak <= kMaxShrink * size)) {
            fresh = true;  // cancellation (or NaN): the updated inverse is not accurate enough
          } else {
            peak = fmax(peak, size);
            ++since;
          }
        }
      }
      if (fresh) {
        valid = factorize(a, s, bits, t);
        since = 0;
        if (!valid) {
          ++degenerate;
          continue;
        }
        solve_z(a, s, t);
        __syncthreads();
        peak = gathered_max(s.red);
      }
      if (check_pieces<kUnitV>(a, s, bits, !fresh, j, dk, t)) {
        if (threadIdx.x == 0) *s.slot = atomicAdd(a.counters, 1ull);
        __syncthreads();
        const u64 slot = *s.slot;
        if (slot < a.capacity) {
          for (int i = threadIdx.x; i < a.M; i += kThreads) a.points[slot * a.M + i] = s.z[i];
          if (threadIdx.x == 0) a.regions[slot] = bits;
        }
      }
    }
  }
  if (threadIdx.x == 0) {
    atomicAdd(a.counters + 1, degenerate);
    atomicAdd(a.counters + 2, visited);
  }
}

// ---- host side ---------------------------------------------------------------------------------

// A device allocation of at least one element (so the pointer is never null).
template <typename T>
DeviceBuffer<T> device_array(std::size_t count) {
  return DeviceBuffer<T>(std::max<std::size_t>(count, 1));
}

// Lanes per row team: the largest power of two <= 32 with team * M <= kThreads (2 for M = 64), so
// every row has its own team.
int team_size(int M) {
  int t = 1;
  while (t < 32 && 2 * t * M <= kThreads) t *= 2;
  return t;
}

// Leading dimension >= M of the shared inverse: ld = team (mod 32) makes a warp's row accesses
// conflict-free; a whole-warp team only needs an odd ld (for the column sums of the general kernel).
int leading_dimension(int M, int team) {
  if (team == 32) return M | 1;
  return M + (((team - M) % 32) + 32) % 32;
}

void check_map(const TwoPieceMap& map, const FixedPointOptions& opt) {
  const int M = map.M, n = map.n;
  PLRNN_CHECK(M >= 1 && M <= kFixedPointsMaxM, "J0: the CUDA fixed-point solver needs 1 <= M <= ",
              kFixedPointsMaxM, ", got M=", M);
  PLRNN_CHECK(n >= 0 && n <= kFixedPointsMaxUnits, "U: the CUDA fixed-point solver needs at most ",
              kFixedPointsMaxUnits, " switch units, got n=", n);
  PLRNN_CHECK(map.J0 && map.b, "J0, b: null pointer");
  PLRNN_CHECK(n == 0 || (map.U && map.V && map.beta && map.slopes && map.intercepts),
              "U, V, beta, slopes, intercepts: null pointer");
  auto finite = [](const char* name, const double* p, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
      PLRNN_CHECK(std::isfinite(p[i]), name, ": contains NaN or inf");
  };
  finite("J0", map.J0, static_cast<std::size_t>(M) * M);
  finite("b", map.b, M);
  if (n > 0) {
    finite("U", map.U, static_cast<std::size_t>(M) * n);
    finite("V", map.V, static_cast<std::size_t>(M) * n);
    finite("beta", map.beta, n);
    finite("slopes", map.slopes, 2 * static_cast<std::size_t>(n));
    finite("intercepts", map.intercepts, 2 * static_cast<std::size_t>(n));
  }
  PLRNN_CHECK(opt.max_points >= 0, "max_points: must be >= 0, got ", opt.max_points);
  PLRNN_CHECK(opt.refactor_every >= 1, "refactor_every: must be >= 1, got ", opt.refactor_every);
  PLRNN_CHECK(std::isfinite(opt.piece_tol) && opt.piece_tol >= 0.0,
              "piece_tol: must be finite and >= 0, got ", opt.piece_tol);
  PLRNN_CHECK(std::isfinite(opt.singular_tol), "singular_tol: must be finite, got ", opt.singular_tol);
}

template <bool kUnitV, int kTeam>
void launch(const FixedPointArgs& args, int device) {
  const auto kernel = fixed_points_kernel<kUnitV, kTeam>;
  const std::size_t smem = shared_bytes(args.M, args.n, args.ld);
  // M <= 64 keeps this below the 48 KiB every architecture grants without opting in
  PLRNN_ASSERT(smem <= 48 * 1024);
  int per_sm = 0, sms = 0;
  PLRNN_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
  PLRNN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const u64 resident = static_cast<u64>(std::max(per_sm, 1)) * static_cast<u64>(std::max(sms, 1));

  // ranges of at most refactor_every ranks (each starts with a factorisation), short enough to give
  // every resident block work when there are few regions
  FixedPointArgs a = args;
  const u64 per_block = (a.total + resident - 1) / resident;
  a.range_len = std::min<u64>(static_cast<u64>(a.refactor_every), std::max<u64>(kMinRange, per_block));
  a.n_ranges = (a.total + a.range_len - 1) / a.range_len;
  const unsigned grid = static_cast<unsigned>(std::min<u64>(a.n_ranges, resident));

  (void)cudaGetLastError();  // do not blame this launch for an earlier, unrelated error
  kernel<<<grid, kThreads, smem>>>(a);
  PLRNN_CUDA_CHECK_LAUNCH("fixed_points_kernel");
  PLRNN_CUDA_CHECK(cudaDeviceSynchronize());
}

// The kernel variant for this map: unit-vector V or not, and the team size (see team_size).
template <bool kUnitV>
void dispatch_team(const FixedPointArgs& a, int device) {
  switch (a.team) {
    case 2: return launch<kUnitV, 2>(a, device);
    case 4: return launch<kUnitV, 4>(a, device);
    case 8: return launch<kUnitV, 8>(a, device);
    case 16: return launch<kUnitV, 16>(a, device);
    case 32: return launch<kUnitV, 32>(a, device);
    default: PLRNN_ASSERT(false && "team size must be a power of two <= 32");
  }
}

}  // namespace

FixedPointCandidates fixed_points_exhaustive(const TwoPieceMap& map, const FixedPointOptions& options) {
  check_map(map, options);
  select_device(options.device);

  const int M = map.M, n = map.n;
  const std::size_t MM = static_cast<std::size_t>(M) * M, Mn = static_cast<std::size_t>(M) * n;

  // v_j = e_r for every unit (standard PLRNN, ALRNN): the kernel reads arguments as entries of z
  std::vector<int> v_index(n, -1);
  bool unit_v = true;
  for (int j = 0; j < n && unit_v; ++j) {
    for (int i = 0; i < M; ++i) {
      const double v = map.V[static_cast<std::size_t>(i) * n + j];
      if (v == 1.0 && v_index[j] < 0) {
        v_index[j] = i;
      } else if (v != 0.0) {
        unit_v = false;
        break;
      }
    }
    unit_v = unit_v && v_index[j] >= 0;
  }

  // one upload: J0 | b | U | V | Ut | Vt | beta | slopes | intercepts
  std::vector<double> host;
  host.reserve(MM + M + 4 * Mn + 5 * static_cast<std::size_t>(n));
  host.insert(host.end(), map.J0, map.J0 + MM);
  host.insert(host.end(), map.b, map.b + M);
  if (n > 0) {
    host.insert(host.end(), map.U, map.U + Mn);
    host.insert(host.end(), map.V, map.V + Mn);
    for (const double* X : {map.U, map.V})
      for (int j = 0; j < n; ++j)
        for (int i = 0; i < M; ++i) host.push_back(X[static_cast<std::size_t>(i) * n + j]);
    host.insert(host.end(), map.beta, map.beta + n);
    host.insert(host.end(), map.slopes, map.slopes + 2 * n);
    host.insert(host.end(), map.intercepts, map.intercepts + 2 * n);
  }
  auto d_in = device_array<double>(host.size());
  d_in.upload(host.data(), host.size());
  auto d_vindex = device_array<int>(n);
  if (unit_v) d_vindex.upload(v_index.data(), v_index.size());

  const u64 capacity = static_cast<u64>(options.max_points);
  auto d_points = device_array<double>(capacity * M);
  auto d_regions = device_array<u64>(capacity);
  auto d_counters = device_array<u64>(3);
  PLRNN_CUDA_CHECK(cudaMemset(d_counters.data(), 0, 3 * sizeof(u64)));

  FixedPointArgs a;
  a.M = M;
  a.n = n;
  a.team = team_size(M);
  a.ld = leading_dimension(M, a.team);
  const double* base = d_in.data();
  a.J0 = base;
  a.b = a.J0 + MM;
  a.U = a.b + M;
  a.V = a.U + Mn;
  a.Ut = a.V + Mn;
  a.Vt = a.Ut + Mn;
  a.beta = a.Vt + Mn;
  a.slopes = a.beta + n;
  a.intercepts = a.slopes + 2 * n;
  a.v_index = d_vindex.data();
  a.total = 1ull << n;
  a.refactor_every = options.refactor_every;
  a.piece_tol = options.piece_tol;
  a.singular_tol = options.singular_tol > 0.0 ? options.singular_tol : M * DBL_EPSILON;
  a.points = d_points.data();
  a.regions = d_regions.data();
  a.capacity = capacity;
  a.counters = d_counters.data();

  if (unit_v) dispatch_team<true>(a, options.device);
  else dispatch_team<false>(a, options.device);

  u64 counters[3] = {0, 0, 0};
  d_counters.download(counters, 3);
  const std::size_t stored = static_cast<std::size_t>(std::min<u64>(counters[0], capacity));
  std::vector<double> points(stored * M);
  std::vector<u64> regions(stored);
  d_points.download(points.data(), points.size());
  d_regions.download(regions.data(), regions.size());

  // deterministic output: sorted by region mask
  std::vector<std::size_t> order(stored);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t x, std::size_t y) { return regions[x] < regions[y]; });
  FixedPointCandidates out;
  out.points.resize(stored * M);
  out.regions.resize(stored);
  for (std::size_t r = 0; r < stored; ++r) {
    std::copy_n(points.begin() + order[r] * M, M, out.points.begin() + r * M);
    out.regions[r] = regions[order[r]];
  }
  out.n_candidates = counters[0];
  out.n_degenerate = counters[1];
  out.regions_visited = counters[2];
  return out;
}

}  // namespace plrnn::cuda
