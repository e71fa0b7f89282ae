#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define PLRNN_CPU_RELAX() _mm_pause()
#else
#define PLRNN_CPU_RELAX() std::this_thread::yield()
#endif

#include "core/errors.h"
#include "core/fp_env.h"
#include "core/interrupt.h"

namespace plrnn {
namespace {

// Idle workers (and a caller waiting for them) spin this long before blocking: back-to-back calls,
// as in a training loop, then skip the wake-up of a sleeping thread (costly on virtual machines).
constexpr auto kSpin = std::chrono::microseconds(200);

// Spins until pred() holds or kSpin passed; returns pred().
template <class Pred>
bool spin_until(Pred pred) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; !pred(); ++i) {
    PLRNN_CPU_RELAX();
    if ((i & 63) == 0 && std::chrono::steady_clock::now() - start > kSpin) return pred();
  }
  return true;
}

class Pool {
 public:
  ~Pool() { resize(0); }

  int threads() const { return n_threads_.load(); }
  void set_threads(int n) { n_threads_.store(n); }

  void run(int n_tasks, const std::function<void(int)>& fn) {
    FlushSubnormals fp_env;  // core/fp_env.h; the workers run under it from their start
    CancelScope* scope = current_scope();
    if (scope == nullptr) return run_tasks(n_tasks, fn, nullptr);
    // tasks run under the caller's scope; once it is cancelled, the remaining ones are skipped
    run_tasks(n_tasks, [&](int i) {
      ScopeOnThread on(scope);
      if (scope->cancelled()) throw Interrupted();
      fn(i);
    }, scope);
  }

 private:
  void run_tasks(int n_tasks, const std::function<void(int)>& fn, CancelScope* scope) {
    const int want = std::min(n_threads_.load(), n_tasks);
    std::unique_lock<std::mutex> busy(run_mutex_, std::try_to_lock);
    if (want <= 1 || !busy.owns_lock()) {  // serial, or the pool is in use: stay on this thread
      for (int i = 0; i < n_tasks; ++i) fn(i);
      return;
    }
    resize(want - 1);
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = &fn;
      n_tasks_ = n_tasks;
      next_.store(0);
      pending_.store(static_cast<int>(workers_.size()));
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_start_.notify_all();
    work();  // the caller takes tasks too
    if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lk(m_);
      // the caller keeps polling for an interrupt while the workers finish their tasks
      while (!cv_done_.wait_for(lk, kPollInterval, [&] { return pending_.load() == 0; })) {
        if (scope == nullptr) continue;
        lk.unlock();
        scope->poll();
        lk.lock();
      }
    }
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  void work() {
    for (;;) {
      const int i = next_.fetch_add(1);
      if (i >= n_tasks_) return;
      try {
        (*fn_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lk(m_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void worker_loop(int id, long seen) {
    FlushSubnormals fp_env;
    for (;;) {
      auto started = [&] { return generation_.load(std::memory_order_acquire) != seen || id >= stop_from_.load(); };
      if (!spin_until(started)) {
        std::unique_lock<std::mutex> lk(m_);
        cv_start_.wait(lk, started);
      }
      if (id >= stop_from_.load()) return;
      seen = generation_.load(std::memory_order_acquire);
      work();
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(m_);  // pairs with the caller's predicate check
        cv_done_.notify_one();
      }
    }
  }

  // Keep exactly n workers (called only while holding run_mutex_, or from the destructor).
  void resize(int n) {
    if (static_cast<int>(workers_.size()) == n) return;
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_from_.store(n);
    }
    cv_start_.notify_all();
    for (int i = n; i < static_cast<int>(workers_.size()); ++i) workers_[i].join();
    if (static_cast<int>(workers_.size()) > n) workers_.resize(n);
    stop_from_.store(1 << 30);
    for (int i = static_cast<int>(workers_.size()); i < n; ++i) {
      // A new worker must not run the last generation again: it starts from the current one.
      workers_.emplace_back([this, i, g = generation_.load()] { worker_loop(i, g); });
    }
  }

  std::atomic<int> n_threads_{static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};
  std::mutex run_mutex_;
  std::mutex m_;
  std::condition_variable cv_start_, cv_done_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* fn_ = nullptr;
  int n_tasks_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> pending_{0};
  std::atomic<long> generation_{0};
  std::atomic<int> stop_from_{1 << 30};
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

int get_num_threads() { return pool().threads(); }

void set_num_threads(int n) {
  PLRNN_CHECK(n >= 1, "num_threads: must be >= 1, got ", n);
  pool().set_threads(n);
}

void parallel_for(int n_tasks, const std::function<void(int)>& fn) { pool().run(n_tasks, fn); }

}  // namespace plrnn
