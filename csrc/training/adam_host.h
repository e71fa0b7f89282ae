// The host's loop of the Adam/RAdam update (training/adam.h) over arrays, for the CPU trainer
// (training/train_step.cpp) and the Python optimiser's `adam_step` (bindings/adam_binding.h): 256-bit
// packets where the target has AVX and FMA, elementwise the operations of AdamStep::apply (the same bits).
// Host only (the CUDA trainer applies AdamStep in its kernel, cuda/training/train_step.cu).
#pragma once
#include <cmath>
#include <cstddef>

#include "core/eigen.h"
#include "training/adam.h"

#if defined(EIGEN_VECTORIZE_AVX) && defined(EIGEN_VECTORIZE_FMA)
#define PLRNN_ADAM_AVX 1
#endif

namespace plrnn::training {

namespace detail {
#if defined(PLRNN_ADAM_AVX)
// 256-bit packets of S; their square root and whether every element is finite (|a| < inf, false for
// NaN). (Eigen's psqrt is an approximation under EIGEN_FAST_MATH, its default: the instructions here.)
template <typename S> struct AdamPacket;
template <> struct AdamPacket<float> {
  using type = Eigen::internal::Packet8f;
  static type sqrt(type a) { return _mm256_sqrt_ps(a); }
  static bool finite(type a) {
    const type abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a);
    return _mm256_movemask_ps(_mm256_cmp_ps(abs, _mm256_set1_ps(INFINITY), _CMP_LT_OQ)) == 0xFF;
  }
};
template <> struct AdamPacket<double> {
  using type = Eigen::internal::Packet4d;
  static type sqrt(type a) { return _mm256_sqrt_pd(a); }
  static bool finite(type a) {
    const type abs = _mm256_andnot_pd(_mm256_set1_pd(-0.0), a);
    return _mm256_movemask_pd(_mm256_cmp_pd(abs, _mm256_set1_pd(INFINITY), _CMP_LT_OQ)) == 0xF;
  }
};

// apply() on a packet of elements at a time (pmadd is the FMA instruction here): the same operations,
// elementwise, so the same bits; returns the number of elements done (a multiple of the packet size).
template <typename S>
std::size_t apply_packets(const AdamStep<S>& st, S* p, S* m, S* v, const S* g, std::size_t n, bool& finite) {
  using namespace Eigen::internal;
  using A = AdamPacket<S>;
  using Pk = typename A::type;
  constexpr std::size_t W = sizeof(Pk) / sizeof(S);  // elements per packet
  const Pk scale = pset1<Pk>(st.scale), b1 = pset1<Pk>(st.b1), ob1 = pset1<Pk>(st.ob1), b2 = pset1<Pk>(st.b2),
           ob2 = pset1<Pk>(st.ob2), step = pset1<Pk>(st.step), nstep = pset1<Pk>(-st.step),
           eps = pset1<Pk>(st.eps), c2 = pset1<Pk>(st.c2);
  std::size_t e = 0;
  for (; e + W <= n; e += W) {
    Pk ge = ploadu<Pk>(g + e);
    if (st.scale != S(1)) ge = pmul(ge, scale);
    const Pk me = pmadd(b1, ploadu<Pk>(m + e), pmul(ob1, ge));
    const Pk ve = pmadd(b2, ploadu<Pk>(v + e), pmul(pmul(ob2, ge), ge));
    pstoreu(m + e, me);
    pstoreu(v + e, ve);
    const Pk pe = st.sgd ? pmadd(nstep, me, ploadu<Pk>(p + e))
                         : psub(ploadu<Pk>(p + e), pdiv(pmul(step, me), padd(A::sqrt(pdiv(ve, c2)), eps)));
    pstoreu(p + e, pe);
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

}  // namespace plrnn::training
