// The floating-point environment of the native core: subnormal numbers are flushed to zero.
//
// Arithmetic on subnormal (denormal) operands takes a microcode assist on x86 CPUs, about a hundred
// cycles instead of one. Gradients decaying through time in BPTT reach that range (at the standard
// PLRNN's default init, M = 128, about 1 % of the backpropagated float32 entries were subnormal),
// and a product with such operands ran 10x slower than with normal ones. So every task of the
// thread pool (thread_pool.cpp) runs with flush-to-zero (subnormal results become 0) and
// denormals-are-zero (subnormal operands read as 0), as XLA's CPU runtime and GPU fast math do.
// A value that differs by this is below 1.2e-38 (float) or 2.2e-308 (double) in magnitude.
// The caller's environment is restored afterwards, so NumPy and Python code never see the change.
#pragma once

#if defined(__SSE2__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace plrnn {

class FlushSubnormals {
 public:
#if defined(__SSE2__) || defined(_M_X64)
  FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtzDaz); }
  ~FlushSubnormals() { _mm_setcsr(saved_); }

 private:
  static constexpr unsigned kFtzDaz = 0x8040;  // MXCSR bits FTZ (15) and DAZ (6)
  unsigned saved_;
#elif defined(__aarch64__)
  FlushSubnormals() {
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved_));
    const unsigned long fz = saved_ | kFz;
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fz));
  }
  ~FlushSubnormals() { __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_)); }

 private:
  static constexpr unsigned long kFz = 1ul << 24;  // FPCR.FZ: flush subnormal inputs and results
  unsigned long saved_;
#else
  FlushSubnormals() = default;  // other targets: IEEE subnormals (slower, results within 1e-38)
#endif
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;
};

}  // namespace plrnn
