// Two tiers of errors (after faiss): a caller's mistake throws std::invalid_argument with a message
// naming the argument (the binding turns it into ValueError); a broken internal invariant aborts.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

namespace plrnn {

template <typename... Parts>
[[noreturn]] inline void throw_invalid(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw std::invalid_argument(os.str());
}

}  // namespace plrnn

// Caller-facing check: `PLRNN_CHECK(T >= 2, "x: need at least 2 time steps, got T=", T)`.
#define PLRNN_CHECK(cond, ...)                              \
  do {                                                      \
    if (!(cond)) ::plrnn::throw_invalid(__VA_ARGS__);       \
  } while (0)

// Internal invariant: a failure is a bug in plrnn_native, never the caller's fault.
#define PLRNN_ASSERT(cond)                                                                   \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "plrnn_native internal error: %s (%s:%d)\n", #cond, __FILE__, \
                   __LINE__);                                                                \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)
