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
#include <cstdint>

#include "training/counter_rng.h"  // PLRNN_HD

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

}  // namespace plrnn::training
