#include "observation/pinv.h"

#include <Eigen/QR>

#include "core/eigen.h"

namespace plrnn {

template <typename S>
void pinv_B(const S* B, index_t N, index_t M, S* Binv) {
  const RowMat<double> Bd = Eigen::Map<const RowMat<S>>(B, N, M).template cast<double>();
  const RowMat<double> P = Bd.completeOrthogonalDecomposition().pseudoInverse();
  Eigen::Map<RowMat<S>>(Binv, M, N) = P.template cast<S>();
}

template void pinv_B<float>(const float*, index_t, index_t, float*);
template void pinv_B<double>(const double*, index_t, index_t, double*);

}  // namespace plrnn
