#include "core/fma_peak.h"

#include <chrono>

#include "core/eigen.h"

namespace plrnn {

template <typename S>
double fma_peak_flops(double seconds) {
  using namespace Eigen::internal;
  using P = typename packet_traits<S>::type;
  constexpr int kLanes = unpacket_traits<P>::size;
  constexpr int kChains = 10;  // > FMA latency x FMA units on current x86 and ARM cores
  constexpr long kInner = 4096;
  P acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = pset1<P>(S(i) * S(1e-3));
  const P x = pset1<P>(S(0.999)), y = pset1<P>(S(1e-4));  // a contraction: stays finite
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  long fmas = 0;
  double elapsed = 0;
  do {
    for (long r = 0; r < kInner; ++r)
      for (int i = 0; i < kChains; ++i) acc[i] = pmadd(acc[i], x, y);
    fmas += kInner * kChains;
    elapsed = std::chrono::duration<double>(clock::now() - t0).count();
  } while (elapsed < seconds);
  P sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = padd(sum, acc[i]);
  volatile S sink = predux(sum);  // keeps the chains alive
  (void)sink;
  return 2.0 * kLanes * static_cast<double>(fmas) / elapsed;
}

template double fma_peak_flops<float>(double);
template double fma_peak_flops<double>(double);

}  // namespace plrnn
