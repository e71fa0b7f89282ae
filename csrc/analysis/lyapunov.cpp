#include "analysis/lyapunov.h"

#include <Eigen/Dense>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/errors.h"
#include "core/interrupt.h"

namespace plrnn {

void propagate_frame(const double* J, index_t first, index_t n, index_t M, index_t k,
                     const FrameSchedule& schedule, double* Q, double* log_growth) {
  using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  PLRNN_CHECK(M >= 1 && k >= 1 && k <= M, "Q: the frame needs 1 <= k <= M columns, got k = ", k, ", M = ", M);
  PLRNN_CHECK(schedule.renorm_every >= 1, "renorm_every: must be >= 1, got ", schedule.renorm_every);
  PLRNN_CHECK(first >= 0 && n >= 0 && first + n <= schedule.total,
              "J: steps ", first, " .. ", first + n - 1, " lie outside the run of ", schedule.total, " steps");
  Eigen::Map<RowMat> frame_out(Q, M, k);
  Eigen::MatrixXd frame = frame_out, next(M, k);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(M, k);
  const double work = 2.0 * static_cast<double>(M) * M * k;  // the product's flops (the QR's are fewer)
  for (index_t i = 0; i < n; ++i) {
    next.noalias() = Eigen::Map<const RowMat>(J + i * M * M, M, M) * frame;
    frame.swap(next);
    const index_t s = first + i;
    if (schedule.renormalises_after(s)) {
      if (!frame.allFinite())
        throw std::overflow_error("renorm_every: the frame overflowed in the " + std::to_string(schedule.renorm_every) +
                                  " steps before its QR after step " + std::to_string(s) +
                                  "; re-orthonormalise more often");
      qr.compute(frame);
      if (schedule.counts(s))
        for (index_t j = 0; j < k; ++j) log_growth[j] += std::log(std::abs(qr.matrixQR()(j, j)));
      frame = qr.householderQ() * Eigen::MatrixXd::Identity(M, k);  // the thin Q
    }
    interruption_point(work);
  }
  frame_out = frame;
}

}  // namespace plrnn
