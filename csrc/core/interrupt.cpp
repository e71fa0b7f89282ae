#include "core/interrupt.h"

namespace plrnn {
namespace {
thread_local CancelScope* t_scope = nullptr;
thread_local char t_identity = 0;  // its address identifies the thread
}  // namespace

namespace detail {
thread_local double work_since_check = 0.0;

void interruption_check() {
  work_since_check = 0.0;
  CancelScope* s = t_scope;
  if (s != nullptr && s->poll()) throw Interrupted();
}
}  // namespace detail

CancelScope::CancelScope(InterruptHook* hook)
    : hook_(hook), outer_(t_scope), next_poll_(std::chrono::steady_clock::now() + kPollInterval),
      owner_(&t_identity) {
  t_scope = this;
}

CancelScope::~CancelScope() { t_scope = outer_; }

bool CancelScope::poll(bool force) noexcept {
  if (cancelled()) return true;
  if (hook_ == nullptr || owner_ != &t_identity) return false;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now < next_poll_) return false;
  bool stop = true;  // a hook that throws cancels the call
  try {
    stop = hook_->poll(done_.load(std::memory_order_relaxed));
  } catch (...) {
  }
  next_poll_ = std::chrono::steady_clock::now() + kPollInterval;
  if (stop) cancelled_.store(true, std::memory_order_relaxed);
  return stop;
}

CancelScope* current_scope() { return t_scope; }

ScopeOnThread::ScopeOnThread(CancelScope* scope) : saved_(t_scope) { t_scope = scope; }
ScopeOnThread::~ScopeOnThread() { t_scope = saved_; }

}  // namespace plrnn
