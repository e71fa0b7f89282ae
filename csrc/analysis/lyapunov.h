// Lyapunov exponents by the QR method: an orthonormal frame carried through a trajectory's Jacobians.
//
// python/plrnn_native/metrics/dynamics.py (lyapunov_spectrum) runs the model and forms the exact
// Jacobians J_s = dF/dz(z_s) (piecewise.jacobian, float64); this carries the frame Q [M, k] through
// them, Q <- J_s Q, and re-orthonormalises it, Q, R = qr(Q), where the schedule says. The exponents are
// lambda_i = (1/T) sum log|R_ii| over the QRs after the transient. The readable reference of the same
// loop is python/plrnn_native/reference.py (lyapunov_frame), with NumPy's QR.
#pragma once
#include "core/types.h"

namespace plrnn {

// When the frame is re-orthonormalised: after step s (0-based over the whole run of `total` steps)
// when s + 1 ends a block of `renorm_every` steps (blocks counted from 0 in the transient and from
// `transient` after it), the transient or the run. The QRs after steps s >= transient count.
struct FrameSchedule {
  index_t transient = 0;
  index_t total = 0;
  index_t renorm_every = 1;

  bool renormalises_after(index_t s) const {
    if (s + 1 == transient || s + 1 == total) return true;
    const index_t base = s < transient ? 0 : transient;
    return (s + 1 - base) % renorm_every == 0;
  }
  bool counts(index_t s) const { return s >= transient; }
};

// Carries the frame Q [M, k] (row-major, in place; k <= M) through the Jacobians J [n, M, M]
// (row-major) of the steps first .. first + n - 1 of the schedule: Q <- J_s Q each step, and a
// Householder QR where the schedule says, adding log|R_ii| to log_growth[i] (k entries) for the QRs
// that count (a zero R_ii adds -inf). The thin Q of each QR (its first k columns) is the new frame.
// Throws std::overflow_error when the frame is not finite at a QR (renorm_every too large for the
// growth). Serial (a chain of dependent steps); interruptible (core/interrupt.h).
void propagate_frame(const double* J, index_t first, index_t n, index_t M, index_t k,
                     const FrameSchedule& schedule, double* Q, double* log_growth);

}  // namespace plrnn
