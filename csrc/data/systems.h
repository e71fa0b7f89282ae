// The right-hand sides du/dt = f(t, u) of the built-in benchmark systems, the same formulas as
// python/plrnn_native/data/odes.py (which keeps the Jacobians and initial-condition samplers), for the
// native integrator (csrc/data/dop853.h). Parameters come in the order of the Python generators.
#pragma once
#include <cmath>

#include "core/types.h"

namespace plrnn::ode {

struct Lorenz63 {  // sigma, rho, beta
  double sigma, rho, beta;
  void operator()(double, const double* u, double* du) const {
    const double x = u[0], y = u[1], z = u[2];
    du[0] = sigma * (y - x);
    du[1] = x * (rho - z) - y;
    du[2] = x * y - beta * z;
  }
};

struct Lorenz96 {  // N sites on a ring, forcing F
  index_t N;
  double F;
  void operator()(double, const double* x, double* dx) const {
    for (index_t i = 0; i < N; ++i) {
      const index_t ip1 = (i + 1) % N, im1 = (i + N - 1) % N, im2 = (i + N - 2) % N;
      dx[i] = (x[ip1] - x[im2]) * x[im1] - x[i] + F;
    }
  }
};

struct Rossler {  // a, b, c
  double a, b, c;
  void operator()(double, const double* u, double* du) const {
    const double x = u[0], y = u[1], z = u[2];
    du[0] = -y - z;
    du[1] = x + a * y;
    du[2] = b + z * (x - c);
  }
};

struct HindmarshRose {  // a, b, c, d, r, s, x_rest, I_ext
  double a, b, c, d, r, s, x_rest, I_ext;
  void operator()(double, const double* u, double* du) const {
    const double x = u[0], y = u[1], z = u[2];
    du[0] = y - a * (x * x * x) + b * (x * x) - z + I_ext;
    du[1] = c - d * (x * x) - y;
    du[2] = r * (s * (x - x_rest) - z);
  }
};

struct VanDerPol {  // mu
  double mu;
  void operator()(double, const double* u, double* du) const {
    const double x = u[0], y = u[1];
    du[0] = y;
    du[1] = mu * (1.0 - x * x) * y - x;
  }
};

struct Duffing {  // delta, alpha, beta, gamma, omega
  double delta, alpha, beta, gamma, omega;
  void operator()(double t, const double* u, double* du) const {
    const double x = u[0], y = u[1];
    du[0] = y;
    du[1] = -delta * y - alpha * x - beta * (x * x * x) + gamma * std::cos(omega * t);
  }
};

}  // namespace plrnn::ode
