// pinv(B) of the linear observation model, the forcing operator of its teacher forcing
// (csrc/observation/observation.h): B [N, M] row-major -> Binv [M, N] row-major, computed in float64
// by a complete orthogonal decomposition (defined for every B, also rank-deficient ones) and
// rounded to S. The one implementation (pinv.cpp; no Eigen in this header, so that CUDA host code
// includes it): the CPU trainer, the CUDA trainer (on the host, from the device copy of B) and
// PLRNN.pinv_B (through _core.pinv_B) all call it, so that every path forces with the same bits.
#pragma once
#include "core/types.h"

namespace plrnn {

template <typename S>
void pinv_B(const S* B, index_t N, index_t M, S* Binv);  // S = float, double

}  // namespace plrnn
