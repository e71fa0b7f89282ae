// Cooperative cancellation of long native work (no Python here: the binding supplies the hook).
//
// A native call that may run long opens a CancelScope on the thread that starts it, with an
// InterruptHook (bindings/interrupt.h: acquires the GIL and runs Python's signal handlers). The
// loops of the core call interruption_point(work) with an estimate of the work (flops) done since
// the last call; about every kPollInterval of work the starting thread calls the hook, and a true
// answer sets the scope's cancel flag. Every thread that sees the flag (the pool's workers run
// their tasks under the caller's scope) throws Interrupted at its next interruption point, so the
// call unwinds cleanly: parallel_for waits for all tasks (polling meanwhile) before it rethrows.
// Without a scope on the thread, interruption_point does nothing.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>

namespace plrnn {

// Thrown by interruption_point once the call was cancelled; the binding turns it into the pending
// Python exception (KeyboardInterrupt for Ctrl-C).
struct Interrupted : std::exception {
  const char* what() const noexcept override { return "plrnn_native: native call interrupted"; }
};

// What the binding installs; poll runs on the thread that opened the scope only.
class InterruptHook {
 public:
  virtual ~InterruptHook() = default;
  // `done`: progress units reported so far (add_progress). True: cancel the call.
  virtual bool poll(std::uint64_t done) = 0;
};

// Time between two polls of the hook (while the starting thread does native work or waits for the
// pool's workers).
constexpr std::chrono::milliseconds kPollInterval{5};

class CancelScope {
 public:
  explicit CancelScope(InterruptHook* hook);
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  // Polls the hook now when the calling thread owns the scope and the poll interval has passed
  // (or `force`); returns cancelled(). Never throws.
  bool poll(bool force = false) noexcept;
  void add_progress(std::uint64_t n) { done_.fetch_add(n, std::memory_order_relaxed); }

 private:
  friend class ScopeOnThread;
  InterruptHook* hook_;
  CancelScope* outer_;  // the scope this one replaced on the owning thread
  std::atomic<bool> cancelled_{false};
  std::atomic<std::uint64_t> done_{0};
  std::chrono::steady_clock::time_point next_poll_;
  const void* owner_;  // identifies the owning thread (address of a thread_local)
};

// The scope of the calling thread (nullptr when none).
CancelScope* current_scope();

// Runs the caller's scope on a pool worker for the duration of a task (thread_pool.cpp).
class ScopeOnThread {
 public:
  explicit ScopeOnThread(CancelScope* scope);
  ~ScopeOnThread();

 private:
  CancelScope* saved_;
};

namespace detail {
void interruption_check();  // the slow path of interruption_point
extern thread_local double work_since_check;
}  // namespace detail

// Work between two looks at the clock and the cancel flag: about 10 us at the vectorised core's rates
// (~1e11 flops/s per core), 2 ms at 1e9 flops/s, well inside kPollInterval either way. (2e5 read the
// clock every 1-2 us there, about 1 % of the M = 32 training step.)
constexpr double kCheckWork = 2e6;

// Call from long loops with the work (flops, roughly) done since the previous call. Throws
// Interrupted once the current call was cancelled.
inline void interruption_point(double work = kCheckWork) {
  detail::work_since_check += work;
  if (detail::work_since_check >= kCheckWork) detail::interruption_check();
}

// Progress units (e.g. regions visited) for the hook's progress report.
inline void add_progress(std::uint64_t n) {
  if (CancelScope* s = current_scope()) s->add_progress(n);
}

}  // namespace plrnn
