#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/errors.h"

namespace plrnn {
namespace {

class Pool {
 public:
  ~Pool() { resize(0); }

  int threads() const { return n_threads_.load(); }
  void set_threads(int n) { n_threads_.store(n); }

  void run(int n_tasks, const std::function<void(int)>& fn) {
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
      pending_workers_ = static_cast<int>(workers_.size());
      error_ = nullptr;
      ++generation_;
    }
    cv_start_.notify_all();
    work();  // the caller takes tasks too
    std::unique_lock<std::mutex> lk(m_);
    cv_done_.wait(lk, [&] { return pending_workers_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
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

  // Keep exactly n workers (called only while holding run_mutex_, or from the destructor).
  void resize(int n) {
    if (static_cast<int>(workers_.size()) == n) return;
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_from_ = n;
    }
    cv_start_.notify_all();
    for (int i = n; i < static_cast<int>(workers_.size()); ++i) workers_[i].join();
    if (static_cast<int>(workers_.size()) > n) workers_.resize(n);
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_from_ = 1 << 30;
    }
    for (int i = static_cast<int>(workers_.size()); i < n; ++i) {
      // A new worker must not run the last generation again: it starts from the current one.
      workers_.emplace_back([this, i, g = generation_] { worker_loop_from(i, g); });
    }
  }

  void worker_loop_from(int id, long start_generation) {
    long seen = start_generation;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_start_.wait(lk, [&] { return generation_ != seen || id >= stop_from_; });
        if (id >= stop_from_) return;
        seen = generation_;
      }
      work();
      {
        std::lock_guard<std::mutex> lk(m_);
        if (--pending_workers_ == 0) cv_done_.notify_one();
      }
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
  int pending_workers_ = 0;
  long generation_ = 0;
  int stop_from_ = 1 << 30;
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
