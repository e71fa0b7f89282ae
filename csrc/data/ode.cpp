// The built-in benchmark systems integrated natively (csrc/api.h: ode_integrate).
#include <string>
#include <vector>

#include "api.h"
#include "core/errors.h"
#include "data/dop853.h"
#include "data/systems.h"

namespace plrnn {

namespace {

// fn(f, n) with the right-hand side f of `system` (csrc/data/systems.h) and its dimension n: the one
// list of the built-in systems, each with its parameter count.
template <class Fn>
void with_system(const std::string& system, const std::vector<double>& p, Fn&& fn) {
  auto params = [&](size_t expected) {
    PLRNN_CHECK(p.size() == expected, "params: system '", system, "' takes ", expected, " parameters, got ",
                p.size());
  };
  if (system == "lorenz63") {
    params(3);
    fn(ode::Lorenz63{p[0], p[1], p[2]}, index_t{3});
  } else if (system == "lorenz96") {
    params(2);
    PLRNN_CHECK(p[0] >= 4 && p[0] == static_cast<double>(static_cast<index_t>(p[0])),
                "params: lorenz96 needs an integer N >= 4, got ", p[0]);
    const auto N = static_cast<index_t>(p[0]);
    fn(ode::Lorenz96{N, p[1]}, N);
  } else if (system == "rossler") {
    params(3);
    fn(ode::Rossler{p[0], p[1], p[2]}, index_t{3});
  } else if (system == "hindmarsh_rose") {
    params(8);
    fn(ode::HindmarshRose{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]}, index_t{3});
  } else if (system == "van_der_pol") {
    params(1);
    fn(ode::VanDerPol{p[0]}, index_t{2});
  } else if (system == "duffing") {
    params(5);
    fn(ode::Duffing{p[0], p[1], p[2], p[3], p[4]}, index_t{2});
  } else {
    throw_invalid("system: unknown built-in system '", system,
                  "' (lorenz63, lorenz96, rossler, hindmarsh_rose, van_der_pol, duffing)");
  }
}

}  // namespace

index_t ode_dimension(const std::string& system, const std::vector<double>& params) {
  index_t n = 0;
  with_system(system, params, [&](const auto&, index_t dim) { n = dim; });
  return n;
}

void ode_integrate(const std::string& system, const std::vector<double>& params, double t0, double t1,
                   double* u, double rtol, double atol, const double* t_eval, index_t n_eval, double* out) {
  with_system(system, params, [&](const auto& f, index_t n) {
    ode::dop853_integrate(f, n, t0, t1, u, rtol, atol, t_eval, n_eval, out);
  });
}

}  // namespace plrnn
