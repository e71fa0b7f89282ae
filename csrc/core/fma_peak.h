// The FMA throughput of one core in the SIMD width the core is compiled for: the roofline against
// which benchmarks/train_step.py reports the CPU core's matrix products (fraction of peak).
#pragma once

namespace plrnn {

// Floating-point operations per second (2 per fused multiply-add) of independent FMA chains on the
// calling thread, measured for about `seconds`; S = float or double.
template <typename S>
double fma_peak_flops(double seconds);

}  // namespace plrnn
