#include "core/kernel_rates.h"

#include <chrono>
#include <cstdint>

#include "core/eigen.h"
#include "core/errors.h"
#include "core/fp_env.h"
#include "core/interrupt.h"
#include "core/packed_gemm.h"
#include "core/thread_pool.h"

namespace plrnn {

namespace {

// Values in [-1, 1) from a counter (splitmix64 of the index and a stream id).
template <typename S>
Mat<S> pseudo_random(index_t rows, index_t cols, uint64_t stream) {
  Mat<S> out(rows, cols);
  for (index_t i = 0; i < out.size(); ++i) {
    uint64_t z = (static_cast<uint64_t>(i) + 1) * 0x9e3779b97f4a7c15ull + stream * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    out.data()[i] = static_cast<S>(static_cast<double>(z >> 11) * 0x1.0p-52 - 1.0);
  }
  return out;
}

// flop/s of `sweep` (returning its flop count), repeated for at least `seconds` after one untimed call.
template <class Sweep>
double rate(const Sweep& sweep, double seconds) {
  using clock = std::chrono::steady_clock;
  sweep();
  const auto t0 = clock::now();
  double flops = 0, elapsed = 0;
  do {
    flops += sweep();
    elapsed = std::chrono::duration<double>(clock::now() - t0).count();
  } while (elapsed < seconds);
  return flops / elapsed;
}

}  // namespace

template <typename S>
KernelRates kernel_rates(index_t M, index_t B, index_t T, double seconds) {
  PLRNN_ASSERT(M >= 1 && B >= 1 && T >= 2 && seconds > 0);
  FlushSubnormals fp_env;
  const auto [b0, b1] = chunk_range(B, batch_chunks(B), 0);
  const index_t nb = b1 - b0, cols = (T - 1) * nb;
  const Mat<S> W = pseudo_random<S>(M, M, 1), X = pseudo_random<S>(M, cols, 2), G = pseudo_random<S>(M, cols, 3);
  const packed::PackedRows<S> Wp(W.data(), 1, M, M, M);  // as WPhiModel packs W^T for the backward step
  packed::ProductBuffers<S> buf(M, M, nb);
  Mat<S> D(M, M);
  volatile S sink = S(0);  // keeps the results alive

  KernelRates r{};
  r.nb = nb;
  r.cols = cols;
  r.product = rate([&] {  // one chunk's time loop: a product per step, each step's block in turn
    S acc = S(0);
    for (index_t c0 = 0; c0 < cols; c0 += nb) {
      interruption_point(2.0 * double(M) * double(M) * double(nb));
      acc += packed::multiply(Wp, X.middleCols(c0, nb), buf)(0, 0);
    }
    sink = acc;
    return 2.0 * double(M) * double(M) * double(cols);
  }, seconds);
  // The gradient of W reads phi(U): at the sizes where the model keeps phi on the tape it is read in
  // place, elsewhere recomputed while U is packed (WPhiModel::param_grads, packed::read_in_place).
  const Mat<S> Phi = X.cwiseMax(S(0));
  const bool tape_phi = packed::read_in_place<S>(M);
  r.weight_grad = rate([&] {
    interruption_point(2.0 * double(M) * double(M) * double(cols));  // a sweep: a few seconds at most (the binding's limits)
    D.setZero();
    if (tape_phi)
      packed::times_transpose_into<S>(G, Phi, D);
    else
      packed::times_transpose_into<S>(G, X, D, [](index_t, S u) { return u > S(0) ? u : S(0); });
    sink = D(0, 0);
    return 2.0 * double(M) * double(M) * double(cols);
  }, seconds);
  (void)sink;
  return r;
}

template KernelRates kernel_rates<float>(index_t, index_t, index_t, double);
template KernelRates kernel_rates<double>(index_t, index_t, index_t, double);

}  // namespace plrnn
