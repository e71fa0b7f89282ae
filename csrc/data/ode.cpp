// The built-in benchmark systems integrated natively (csrc/api.h: ode_integrate).
#include <string>
#include <vector>

#include "api.h"
#include "core/errors.h"
#include "data/dop853.h"
#include "data/systems.h"

namespace plrnn {

namespace {

void check_params(const std::string& system, const std::vector<double>& params, size_t expected) {
  PLRNN_CHECK(params.size() == expected, "params: system '", system, "' takes ", expected,
              " parameters, got ", params.size());
}

}  // namespace

index_t ode_dimension(const std::string& system, const std::vector<double>& params) {
  if (system == "lorenz96") {
    check_params(system, params, 2);
    PLRNN_CHECK(params[0] >= 4 && params[0] == static_cast<double>(static_cast<index_t>(params[0])),
                "params: lorenz96 needs an integer N >= 4, got ", params[0]);
    return static_cast<index_t>(params[0]);
  }
  if (system == "lorenz63" || system == "rossler" || system == "hindmarsh_rose") return 3;
  if (system == "van_der_pol" || system == "duffing") return 2;
  throw_invalid("system: unknown built-in system '", system,
                "' (lorenz63, lorenz96, rossler, hindmarsh_rose, van_der_pol, duffing)");
}

void ode_integrate(const std::string& system, const std::vector<double>& params, double t0, double t1,
                   double* u, double rtol, double atol, const double* t_eval, index_t n_eval, double* out) {
  const index_t n = ode_dimension(system, params);
  const auto& p = params;
  auto run = [&](const auto& f) { ode::dop853_integrate(f, n, t0, t1, u, rtol, atol, t_eval, n_eval, out); };
  if (system == "lorenz63") {
    check_params(system, p, 3);
    run(ode::Lorenz63{p[0], p[1], p[2]});
  } else if (system == "lorenz96") {
    run(ode::Lorenz96{n, p[1]});
  } else if (system == "rossler") {
    check_params(system, p, 3);
    run(ode::Rossler{p[0], p[1], p[2]});
  } else if (system == "hindmarsh_rose") {
    check_params(system, p, 8);
    run(ode::HindmarshRose{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]});
  } else if (system == "van_der_pol") {
    check_params(system, p, 1);
    run(ode::VanDerPol{p[0]});
  } else {  // duffing (ode_dimension rejected every other name)
    check_params(system, p, 5);
    run(ode::Duffing{p[0], p[1], p[2], p[3], p[4]});
  }
}

}  // namespace plrnn
