#include "regularizers/mar.h"

#include <vector>

#include "core/errors.h"
#include "core/param_layout.h"

namespace plrnn {

template <typename S>
double mar_penalty(const ModelSpec& spec, const Params<S>& p, const index_t* units, index_t n_units,
                   double weight, bool mean, const Grads<S>& grads) {
  check_mar(spec, units, n_units, weight);
  const index_t M = spec.dims.M;
  const bool shallow = is_shallow(spec.kind);
  const index_t cols = shallow ? spec.dims.H : M;
  const S* Wrow = shallow ? p.W1 : p.W;
  const S* bias = shallow ? p.h1 : p.h;
  S* gW = shallow ? grads.W1 : grads.W;
  S* gbias = shallow ? grads.h1 : grads.h;
  PLRNN_ASSERT(p.A && Wrow && bias);
  if (n_units == 0) return 0.0;

  const double cA = mean ? double(n_units) : 1.0;
  const double cW = mean ? double(n_units * cols) : 1.0;
  const double ch = mean ? double(n_units) : 1.0;
  double sA = 0, sW = 0, sh = 0;
  for (index_t k = 0; k < n_units; ++k) {
    const index_t i = units[k];
    const double a = double(p.A[i]) - 1.0;
    sA += a * a;
    if (grads.A) grads.A[i] += static_cast<S>(2.0 * weight * a / cA);
    for (index_t j = 0; j < cols; ++j) {
      const double w = Wrow[i * cols + j];
      sW += w * w;
      if (gW) gW[i * cols + j] += static_cast<S>(2.0 * weight * w / cW);
    }
    const double b = bias[i];
    sh += b * b;
    if (gbias) gbias[i] += static_cast<S>(2.0 * weight * b / ch);
  }
  return weight * (sA / cA + sW / cW + sh / ch);
}

template double mar_penalty<float>(const ModelSpec&, const Params<float>&, const index_t*, index_t,
                                   double, bool, const Grads<float>&);
template double mar_penalty<double>(const ModelSpec&, const Params<double>&, const index_t*, index_t,
                                    double, bool, const Grads<double>&);

}  // namespace plrnn
