// The Adam (Kingma & Ba 2015) / RAdam (Liu et al. 2020) update with global-norm clipping, shared by the
// CPU trainer (training/train_step.cpp), the CUDA trainer (cuda/training/train_step.cu) and, through the
// CPU module's `adam_step`, the Python optimiser (python/plrnn_native/optim.py) of the other trainers:
//   g' = g * min(1, clip / |g|)          (clip = 0: no clipping)
//   m = b1 m + (1 - b1) g',  v = b2 v + (1 - b2) g'^2
//   Adam:  p -= lr / c1 * m / (sqrt(v / c2) + eps),      c1 = 1 - b1^t, c2 = 1 - b2^t
//   RAdam: p -= lr / c1 * r_t * m / (sqrt(v / c2) + eps) once rho_t > 5, else p -= lr / c1 * m
// with rho_inf = 2 / (1 - b2) - 1, rho_t = rho_inf - 2 t b2^t / c2 and the rectification
// r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "training/counter_rng.h"  // PLRNN_HD

#if !defined(__CUDACC__) && defined(__AVX__) && defined(__FMA__)
#include <immintrin.h>
#define PLRNN_ADAM_AVX 1  // apply_all in 256-bit packets
#endif

namespace plrnn::training {

// a * b + c rounded once where the target has an FMA instruction (the moment updates below, written
// out so that no compiler chooses which product to fuse), else rounded twice
template <typename S>
PLRNN_HD S fused_madd(S a, S b, S c) {
#if defined(__CUDA_ARCH__)
  return fma(a, b, c);
#elif defined(__FMA__) || defined(__AVX512F__) || defined(__ARM_FEATURE_FMA)
  return std::fma(a, b, c);
#else
  return a * b + c;  // (no FMA instruction for a compiler to contract this into)
#endif
}

struct AdamCoeffs {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, c1 = 1, c2 = 1;
  double rect = 1.0;  // RAdam rectification; < 0: variance not tractable yet (momentum SGD step)
  double clip = 0.0;  // global-norm clipping threshold (0: off)
};

// The coefficients of step t (>= 1, the count after this step). Host only.
inline AdamCoeffs adam_coeffs(double lr, double beta1, double beta2, double eps, bool radam, std::int64_t t,
                              double clip) {
  AdamCoeffs c;
  c.lr = lr;
  c.beta1 = beta1;
  c.beta2 = beta2;
  c.eps = eps;
  c.clip = clip;
  const double tt = static_cast<double>(t);
  c.c1 = 1.0 - std::pow(beta1, tt);
  c.c2 = 1.0 - std::pow(beta2, tt);
  if (radam) {
    const double rho_inf = 2.0 / (1.0 - beta2) - 1.0;
    const double rho_t = rho_inf - 2.0 * tt * std::pow(beta2, tt) / c.c2;
    c.rect = rho_t > 5 ? std::sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) : -1.0;
  }
  return c;
}

// The per-element update in the parameters' precision S, for a gradient of global norm `norm`.
template <typename S>
struct AdamStep {
  S scale, b1, b2, ob1, ob2, step, eps, c2;
  bool sgd;

  PLRNN_HD AdamStep(const AdamCoeffs& c, double norm)
      : scale(c.clip > 0 && norm > c.clip ? static_cast<S>(c.clip / norm) : S(1)),
        b1(static_cast<S>(c.beta1)), b2(static_cast<S>(c.beta2)), ob1(static_cast<S>(1.0 - c.beta1)),
        ob2(static_cast<S>(1.0 - c.beta2)),
        step(static_cast<S>(c.rect < 0 ? c.lr / c.c1 : c.lr / c.c1 * c.rect)), eps(static_cast<S>(c.eps)),
        c2(static_cast<S>(c.c2)), sgd(c.rect < 0) {}

  // Updates m, v and returns the new parameter value. The products b1 m and b2 v are fused into their
  // sums (as GCC contracted the formulas before this was written out), and so is RAdam's momentum step
  // p - step m: written out, the update has the same bits in every compiler's code and vector width.
  PLRNN_HD S apply(S p, S& m, S& v, S g) const {
    const S ge = scale != S(1) ? g * scale : g;
    const S me = fused_madd(b1, m, ob1 * ge);
    const S ve = fused_madd(b2, v, ob2 * ge * ge);
    m = me;
    v = ve;
    if (sgd) return fused_madd(-step, me, p);
#if defined(__CUDA_ARCH__)
    return p - step * me / (sqrt(ve / c2) + eps);
#else
    return p - step * me / (std::sqrt(ve / c2) + eps);
#endif
  }
};

#if !defined(__CUDACC__)
namespace detail {
#if defined(PLRNN_ADAM_AVX)
// apply() on 8 floats / 4 doubles at a time: the same operations, elementwise (the same bits)
struct AdamAvxF {
  using V = __m256;
  static constexpr std::size_t kW = 8;
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V a) { _mm256_storeu_ps(p, a); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V sqrt(V a) { return _mm256_sqrt_ps(a); }
  static bool finite(V a) {  // |a| < inf in every element (false for NaN)
    const V abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a);
    return _mm256_movemask_ps(_mm256_cmp_ps(abs, _mm256_set1_ps(INFINITY), _CMP_LT_OQ)) == 0xFF;
  }
};
struct AdamAvxD {
  using V = __m256d;
  static constexpr std::size_t kW = 4;
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V a) { _mm256_storeu_pd(p, a); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V sqrt(V a) { return _mm256_sqrt_pd(a); }
  static bool finite(V a) {
    const V abs = _mm256_andnot_pd(_mm256_set1_pd(-0.0), a);
    return _mm256_movemask_pd(_mm256_cmp_pd(abs, _mm256_set1_pd(INFINITY), _CMP_LT_OQ)) == 0xF;
  }
};
template <typename S> struct AdamAvx;
template <> struct AdamAvx<float> : AdamAvxF {};
template <> struct AdamAvx<double> : AdamAvxD {};

template <typename S>
std::size_t apply_packets(const AdamStep<S>& st, S* p, S* m, S* v, const S* g, std::size_t n, bool& finite) {
  using A = AdamAvx<S>;
  const auto scale = A::set1(st.scale), b1 = A::set1(st.b1), ob1 = A::set1(st.ob1), b2 = A::set1(st.b2),
             ob2 = A::set1(st.ob2), step = A::set1(st.step), nstep = A::set1(-st.step), eps = A::set1(st.eps),
             c2 = A::set1(st.c2);
  std::size_t e = 0;
  for (; e + A::kW <= n; e += A::kW) {
    auto ge = A::load(g + e);
    if (st.scale != S(1)) ge = A::mul(ge, scale);
    const auto me = A::fma(b1, A::load(m + e), A::mul(ob1, ge));
    const auto ve = A::fma(b2, A::load(v + e), A::mul(A::mul(ob2, ge), ge));
    A::store(m + e, me);
    A::store(v + e, ve);
    const auto pe = st.sgd ? A::fma(nstep, me, A::load(p + e))
                           : A::sub(A::load(p + e), A::div(A::mul(step, me), A::add(A::sqrt(A::div(ve, c2)), eps)));
    A::store(p + e, pe);
    finite = finite && A::finite(pe);
  }
  return e;
}
#endif
}  // namespace detail

// apply() to n elements (p, m and v updated in place); whether every new p is finite. The host's
// update of every trainer (the CPU trainer's step, the Python optimiser's adam_step): 256-bit packets
// where the target has AVX and FMA (the Lorenz-63 default's update: 6 us a step in scalars, serial work
// beside the step's threads), the rest (and elsewhere all) one element at a time.
template <typename S>
bool apply_all(const AdamStep<S>& st, S* p, S* m, S* v, const S* g, std::size_t n) {
  bool finite = true;
  std::size_t e = 0;
#if defined(PLRNN_ADAM_AVX)
  e = detail::apply_packets(st, p, m, v, g, n, finite);
#endif
  for (; e < n; ++e) {
    p[e] = st.apply(p[e], m[e], v[e], g[e]);
    finite = finite && std::isfinite(p[e]);
  }
  return finite;
}
#endif

}  // namespace plrnn::training
