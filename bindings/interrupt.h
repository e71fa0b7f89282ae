// The Python side of core/interrupt.h: run a native call without the GIL while the calling thread
// polls Python's signal handlers (Ctrl-C) and, optionally, reports progress to a Python callable.
#pragma once
#include <pybind11/pybind11.h>

#include <memory>
#include <type_traits>
#include <utility>

#include "core/interrupt.h"

namespace plrnn::bind {

namespace py = pybind11;

// Python's signal handlers run on the main thread only; captured once at import (module init).
inline unsigned long& main_thread_ident() {
  static unsigned long ident = 0;
  return ident;
}

inline void init_interrupts() {
  main_thread_ident() = py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
}

class PythonInterruptHook final : public InterruptHook {
 public:
  explicit PythonInterruptHook(py::object progress)
      : progress_(std::move(progress)), main_(PyThread_get_thread_ident() == main_thread_ident()) {}

  // Called without the GIL on the thread that started the call.
  bool poll(std::uint64_t done) override {
    if (!main_ && progress_.is_none()) return false;
    py::gil_scoped_acquire gil;
    if (!progress_.is_none()) {
      try {
        progress_(done);
      } catch (py::error_already_set& e) {
        pending_ = std::make_unique<py::error_already_set>(std::move(e));
        return true;
      }
    }
    if (main_ && PyErr_CheckSignals() != 0) {
      pending_ = std::make_unique<py::error_already_set>();  // fetches KeyboardInterrupt (or the handler's error)
      return true;
    }
    return false;
  }

  // With the GIL: raise what a poll caught (the call's result, if any, is discarded).
  void raise_pending() {
    if (pending_) {
      auto e = std::move(pending_);
      throw std::move(*e);
    }
  }

 private:
  py::object progress_;
  bool main_;
  std::unique_ptr<py::error_already_set> pending_;
};

// fn() without the GIL, interruptible by Ctrl-C; `progress(done)` (if not None) is called with the
// GIL every kPollInterval with the progress units the core reported. Raises the signal handler's
// exception (KeyboardInterrupt) once the work has unwound.
template <class Fn>
auto call_interruptible(Fn&& fn, py::object progress = py::none()) {
  PythonInterruptHook hook(std::move(progress));
  using R = std::invoke_result_t<Fn&>;
  try {
    CancelScope scope(&hook);
    if constexpr (std::is_void_v<R>) {
      {
        py::gil_scoped_release nogil;
        fn();
      }
      hook.raise_pending();
    } else {
      R result;
      {
        py::gil_scoped_release nogil;
        result = fn();
      }
      hook.raise_pending();
      return result;
    }
  } catch (const Interrupted&) {
    hook.raise_pending();
    PyErr_SetNone(PyExc_KeyboardInterrupt);  // a hook that failed without a Python error
    throw py::error_already_set();
  }
}

}  // namespace plrnn::bind
