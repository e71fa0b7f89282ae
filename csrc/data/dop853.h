// Adaptive Runge-Kutta integration with the Dormand-Prince 8(5,3) pair and its 7th-order dense
// output (DOP853), the integrator of the benchmark data (python/plrnn_native/data/odes.py).
//
// It takes the steps scipy.integrate.solve_ivp(method="DOP853", rtol, atol, t_eval) takes: the same
// initial step (Hairer, Norsett & Wanner II.4), the same error norm (the 5th-order estimate damped by
// the 3rd-order one), the same step-size rule (safety 0.9, factors in [0.2, 10], exponent -1/8, no
// growth right after a rejection) and the same dense output at the requested times. Only the order of
// the floating-point sums differs, so results agree with SciPy's to rounding at first (and, for a
// chaotic system, to the tolerance over the horizon its Lyapunov time allows).
//
// `f(t, u, du)` writes du/dt at (t, u) for the n-dimensional state u.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/interrupt.h"
#include "core/types.h"
#include "data/dop853_coefficients.h"

namespace plrnn::ode {

namespace detail {

inline double rms_norm(const double* x, index_t n) {
  double s = 0.0;
  for (index_t i = 0; i < n; ++i) s += x[i] * x[i];
  return std::sqrt(s) / std::sqrt(static_cast<double>(n));
}

[[noreturn]] inline void fail(double t, const char* message) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", t);
  throw std::runtime_error(std::string("ODE integration failed at t = ") + buf + ": " + message);
}

}  // namespace detail

// Integrates du/dt = f(t, u) from t0 to t1 > t0; u [n] holds u(t0) on entry and u(t1) on return.
// With t_eval (n_eval times, ascending, within [t0, t1]) the states at those times are written to
// out [n_eval, n] from the dense output of the step that covers each.
template <class F>
void dop853_integrate(const F& f, index_t n, double t0, double t1, double* u, double rtol, double atol,
                      const double* t_eval, index_t n_eval, double* out) {
  using namespace plrnn::dop853;
  constexpr double kSafety = 0.9, kMinFactor = 0.2, kMaxFactor = 10.0;
  constexpr double kErrorExponent = -1.0 / 8.0;  // -1 / (error estimator order 7 + 1)
  PLRNN_CHECK(n >= 1, "ode: the state needs at least one dimension");
  PLRNN_CHECK(t1 > t0, "ode: t1 must be > t0, got t0=", t0, ", t1=", t1);
  rtol = std::max(rtol, 100 * std::numeric_limits<double>::epsilon());  // SciPy's floor

  const size_t sn = static_cast<size_t>(n);
  std::vector<double> K(kStagesExtended * sn);  // stage derivatives, row s at K + s n
  std::vector<double> y(u, u + n), y_new(sn), f_cur(sn), tmp(sn), scale(sn), err5(sn), err3(sn);
  std::vector<double> Fd(kInterpolatorPower * sn);
  auto stage = [&](int s) { return K.data() + s * sn; };
  // tmp = y + h sum_{j<s} a[s][j] K_j
  auto stage_state = [&](int s, double h, const double* y0) {
    for (index_t i = 0; i < n; ++i) {
      double acc = 0.0;
      for (int j = 0; j < s; ++j) acc += stage(j)[i] * A[s * kStagesExtended + j];
      tmp[i] = y0[i] + acc * h;
    }
  };

  double t = t0;
  f(t, y.data(), f_cur.data());

  // initial step
  double h_abs;
  {
    const double interval = t1 - t0;
    for (index_t i = 0; i < n; ++i) scale[i] = atol + std::abs(y[i]) * rtol;
    for (index_t i = 0; i < n; ++i) tmp[i] = y[i] / scale[i];
    const double d0 = detail::rms_norm(tmp.data(), n);
    for (index_t i = 0; i < n; ++i) tmp[i] = f_cur[i] / scale[i];
    const double d1 = detail::rms_norm(tmp.data(), n);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    h0 = std::min(h0, interval);
    for (index_t i = 0; i < n; ++i) tmp[i] = y[i] + h0 * f_cur[i];
    f(t0 + h0, tmp.data(), err5.data());
    for (index_t i = 0; i < n; ++i) err3[i] = (err5[i] - f_cur[i]) / scale[i];
    const double d2 = detail::rms_norm(err3.data(), n) / h0;
    const double h1 = (d1 <= 1e-15 && d2 <= 1e-15) ? std::max(1e-6, h0 * 1e-3)
                                                   : std::pow(0.01 / std::max(d1, d2), 1.0 / 8.0);
    h_abs = std::min({100 * h0, h1, interval});
  }

  index_t next_eval = 0;
  const double work = 16.0 * 4.0 * static_cast<double>(n);  // a step's rough flop count
  while (t < t1) {
    interruption_point(work);
    const double min_step = 10 * std::abs(std::nextafter(t, std::numeric_limits<double>::infinity()) - t);
    if (h_abs < min_step) h_abs = min_step;
    bool rejected = false;
    double h, t_new;
    for (;;) {  // until a step is accepted
      if (h_abs < min_step) detail::fail(t, "Required step size is less than spacing between numbers.");
      t_new = t + h_abs;
      if (t_new > t1) t_new = t1;
      h = t_new - t;
      h_abs = std::abs(h);
      // the 12 stages and the FSAL derivative
      std::copy(f_cur.begin(), f_cur.end(), stage(0));
      for (int s = 1; s < kStages; ++s) {
        stage_state(s, h, y.data());
        f(t + C[s] * h, tmp.data(), stage(s));
      }
      for (index_t i = 0; i < n; ++i) {
        double acc = 0.0;
        for (int j = 0; j < kStages; ++j) acc += stage(j)[i] * B[j];
        y_new[i] = y[i] + h * acc;
      }
      f(t + h, y_new.data(), stage(kStages));
      // error norm
      double e5 = 0.0, e3 = 0.0;
      for (index_t i = 0; i < n; ++i) {
        const double sc = atol + std::max(std::abs(y[i]), std::abs(y_new[i])) * rtol;
        double a5 = 0.0, a3 = 0.0;
        for (int j = 0; j <= kStages; ++j) {
          a5 += stage(j)[i] * E5[j];
          a3 += stage(j)[i] * E3[j];
        }
        a5 /= sc;
        a3 /= sc;
        e5 += a5 * a5;
        e3 += a3 * a3;
      }
      double error_norm = 0.0;
      if (e5 != 0.0 || e3 != 0.0) error_norm = h_abs * e5 / std::sqrt((e5 + 0.01 * e3) * static_cast<double>(n));
      if (!std::isfinite(error_norm)) detail::fail(t, "the state or its derivative is not finite.");
      if (error_norm < 1) {
        double factor = error_norm == 0 ? kMaxFactor
                                        : std::min(kMaxFactor, kSafety * std::pow(error_norm, kErrorExponent));
        if (rejected) factor = std::min(1.0, factor);
        h_abs *= factor;
        break;
      }
      h_abs *= std::max(kMinFactor, kSafety * std::pow(error_norm, kErrorExponent));
      rejected = true;
    }
    // accepted: [t, t_new] with y -> y_new; the dense output for the requested times in (t, t_new]
    // (and t itself for the first step)
    index_t last = next_eval;
    while (last < n_eval && t_eval[last] <= t_new) ++last;
    if (last > next_eval) {
      for (int s = kStages + 1; s < kStagesExtended; ++s) {
        stage_state(s, h, y.data());
        f(t + C[s] * h, tmp.data(), stage(s));
      }
      const double* f_new = stage(kStages);
      const double* f_old = stage(0);
      for (index_t i = 0; i < n; ++i) {
        const double dy = y_new[i] - y[i];
        Fd[0 * sn + i] = dy;
        Fd[1 * sn + i] = h * f_old[i] - dy;
        Fd[2 * sn + i] = 2 * dy - h * (f_new[i] + f_old[i]);
        for (int r = 0; r < kInterpolatorPower - 3; ++r) {
          double acc = 0.0;
          for (int s = 0; s < kStagesExtended; ++s) acc += D[r * kStagesExtended + s] * stage(s)[i];
          Fd[(3 + r) * sn + i] = h * acc;
        }
      }
      for (index_t k = next_eval; k < last; ++k) {
        const double x = (t_eval[k] - t) / h;
        double* o = out + k * n;
        for (index_t i = 0; i < n; ++i) {
          double v = 0.0;
          for (int r = kInterpolatorPower - 1, m = 0; r >= 0; --r, ++m) {
            v += Fd[r * sn + i];
            v *= (m % 2 == 0) ? x : 1 - x;
          }
          o[i] = v + y[i];
        }
      }
      next_eval = last;
    }
    t = t_new;
    y.swap(y_new);
    std::copy(stage(kStages), stage(kStages) + n, f_cur.begin());
  }
  PLRNN_CHECK(next_eval == n_eval, "t_eval: the times must lie in [t0, t1]");
  std::copy(y.begin(), y.end(), u);
}

}  // namespace plrnn::ode
