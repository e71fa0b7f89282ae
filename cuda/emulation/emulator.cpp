// The CUDA emulator's runtime (include/cuda_runtime.h declares it; docs/gpu.md describes it).
//
// Execution model: a launch runs its blocks one after another (in the order the schedule picks); a
// block runs each of its threads as a coroutine (one stack per thread; a small stack switch on x86-64,
// ucontext elsewhere or with -DCUEMU_USE_UCONTEXT). The scheduler
// resumes every runnable thread in turn; a thread runs until it reaches a barrier or a warp
// collective, or returns. When no thread can run:
//   * a warp collective whose mask lanes have all arrived (same intrinsic, mask and call site) is
//     evaluated with the lanes' values and its lanes run on;
//   * a barrier that every thread of the block has reached (same call site and kind) releases them;
//   * anything else is a fault, reported with the kernel, block, call sites and thread ranges:
//     a barrier reached after some threads returned, threads at different barriers, a collective
//     reached by only some lanes of its mask, lanes waiting for each other (deadlock).
// Device memory comes from malloc (so AddressSanitizer sees every access outside an allocation) and is
// recorded in an allocation table: copies, memsets, frees and pointer-typed kernel arguments are checked
// against it. Dynamic shared memory is a fresh NaN-filled buffer per block followed by a guard zone
// (poisoned under AddressSanitizer, checked for writes otherwise).
//
// Configuration (environment, read once):
//   CUEMU_SCHEDULE  forward (default) | reverse | shuffle   order of blocks and of threads at every pass
//   CUEMU_SEED      seed of the shuffled schedule (default 1)
//   CUEMU_SMEM_OPTIN  opt-in dynamic shared memory per block in bytes (default 232448, an H100's 227 KiB)
//   CUEMU_SMS       number of multiprocessors reported (default 132, an H100 SXM)
//   CUEMU_STACK_KIB stack of each emulated thread (default 256)
//   CUEMU_ABORT_ON_FAULT=1  abort the process at the first fault (for a debugger or a sanitizer trace)
#include <cuda_runtime.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CUEMU_ASAN 1
#else
#define CUEMU_ASAN 0
#endif

namespace cuemu {
namespace {

// ---- configuration -------------------------------------------------------------------------------
enum class Order { Forward, Reverse, Shuffle };

struct Config {
  Order order = Order::Forward;
  std::uint64_t seed = 1;
  std::size_t smem_optin = 227 * 1024;
  std::size_t smem_default = 48 * 1024;
  std::size_t smem_per_sm = 228 * 1024;
  int sms = 132;
  std::size_t stack_bytes = 256 * 1024;
  bool abort_on_fault = false;
};

[[noreturn]] void config_error(const std::string& msg) {
  std::fprintf(stderr, "[cuda-emulator] configuration error: %s\n", msg.c_str());
  std::abort();
}

long long env_int(const char* name, long long fallback, long long lo, long long hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (end == v || *end != '\0' || x < lo || x > hi)
    config_error(std::string(name) + "=" + v + ": expected an integer in [" + std::to_string(lo) + ", " +
                 std::to_string(hi) + "]");
  return x;
}

const Config& config() {
  static const Config c = [] {
    Config k;
    if (const char* s = std::getenv("CUEMU_SCHEDULE"); s != nullptr && *s != '\0') {
      const std::string v(s);
      if (v == "forward") k.order = Order::Forward;
      else if (v == "reverse") k.order = Order::Reverse;
      else if (v == "shuffle") k.order = Order::Shuffle;
      else config_error("CUEMU_SCHEDULE=" + v + ": expected forward, reverse or shuffle");
    }
    k.seed = static_cast<std::uint64_t>(env_int("CUEMU_SEED", 1, 0, (1LL << 62)));
    k.smem_optin = static_cast<std::size_t>(env_int("CUEMU_SMEM_OPTIN", 227 * 1024, 1024, 227 * 1024));
    k.smem_default = std::min(k.smem_default, k.smem_optin);
    k.sms = static_cast<int>(env_int("CUEMU_SMS", 132, 1, 1024));
    k.stack_bytes = static_cast<std::size_t>(env_int("CUEMU_STACK_KIB", 256, 64, 1 << 20)) * 1024;
    k.abort_on_fault = env_int("CUEMU_ABORT_ON_FAULT", 0, 0, 1) != 0;
    return k;
  }();
  return c;
}

constexpr std::size_t kTotalMemory = std::size_t(80) << 30;  // reported, and the allocation limit
constexpr std::size_t kGuardBytes = 64;                      // after each block's dynamic shared memory
constexpr unsigned char kGuardByte = 0xA5;

// ---- errors --------------------------------------------------------------------------------------
thread_local cudaError_t t_last_error = cudaSuccess;  // cudaGetLastError
thread_local cudaError_t t_pending = cudaSuccess;     // a kernel fault not yet seen by a synchronisation
thread_local std::string t_detail;                    // message of the last error, for cudaGetErrorString
thread_local cudaError_t t_detail_code = cudaSuccess;

const char* error_name(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* error_string(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

// Records an error of an API call or a launch: returned, kept for cudaGetLastError, its message kept
// for cudaGetErrorString and printed (every one is a bug in the caller or in a kernel).
cudaError_t fail(cudaError_t e, const std::string& what, bool kernel_fault = false) {
  t_last_error = e;
  if (kernel_fault) t_pending = e;
  t_detail = std::string(error_string(e)) + " [CUDA emulator: " + what + "]";
  t_detail_code = e;
  std::fprintf(stderr, "[cuda-emulator] %s: %s\n", error_name(e), what.c_str());
  std::fflush(stderr);
  if (config().abort_on_fault) std::abort();
  return e;
}

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

// ---- device memory -------------------------------------------------------------------------------
std::mutex g_mem_mutex;
std::map<std::uintptr_t, std::size_t> g_allocs;  // base -> bytes
std::size_t g_allocated = 0;

// The allocation containing [p, p + bytes), or false. bytes = 0 matches a pointer inside or one past
// the end of an allocation.
bool find_range(const void* p, std::size_t bytes, std::uintptr_t* base = nullptr, std::size_t* size = nullptr) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return false;
  --it;
  const std::uintptr_t lo = it->first, hi = it->first + it->second;
  if (base) *base = lo;
  if (size) *size = it->second;
  if (a < lo || a > hi) return false;
  return bytes <= hi - a;
}

bool is_device(const void* p) { return find_range(p, 0); }

std::string range_problem(const char* role, const void* p, std::size_t bytes) {
  std::uintptr_t base = 0;
  std::size_t size = 0;
  if (!find_range(p, 0, &base, &size))
    return std::string(role) + " " + hex(p) + " is not a device pointer (a host pointer, or freed memory)";
  return std::string(role) + " range [" + hex(p) + ", +" + std::to_string(bytes) + ") runs past the end of its device allocation (" +
         std::to_string(size) + " bytes at " + hex(reinterpret_cast<const void*>(base)) + ")";
}

// ---- devices -------------------------------------------------------------------------------------
thread_local int t_device = 0;

void fill_properties(cudaDeviceProp* p) {
  const Config& c = config();
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "CPU emulator of a CUDA device (plrnn_native, sm_90-like, %d SMs)", c.sms);
  p->totalGlobalMem = kTotalMemory;
  p->sharedMemPerBlock = c.smem_default;
  p->sharedMemPerBlockOptin = c.smem_optin;
  p->sharedMemPerMultiprocessor = c.smem_per_sm;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = c.sms;
}

// ---- function attributes -------------------------------------------------------------------------
std::mutex g_attr_mutex;
std::map<const void*, std::size_t> g_max_dynamic_smem;

std::size_t dynamic_smem_limit(const void* kernel) {
  std::lock_guard<std::mutex> lock(g_attr_mutex);
  const auto it = g_max_dynamic_smem.find(kernel);
  return it == g_max_dynamic_smem.end() ? config().smem_default : it->second;
}

// ---- coroutines ----------------------------------------------------------------------------------
struct Stack {
  void* mapping = nullptr;  // guard page + stack
  std::size_t mapped = 0;
  char* base = nullptr;     // lowest usable address
  std::size_t size = 0;
};

Stack make_stack(std::size_t bytes) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  bytes = (bytes + page - 1) / page * page;
  Stack s;
  s.mapped = bytes + page;
  s.mapping = mmap(nullptr, s.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (s.mapping == MAP_FAILED) {
    std::fprintf(stderr, "[cuda-emulator] cannot map a thread stack of %zu bytes\n", bytes);
    std::abort();
  }
  mprotect(s.mapping, page, PROT_NONE);  // a stack overflow faults instead of corrupting memory
  s.base = static_cast<char*>(s.mapping) + page;
  s.size = bytes;
  return s;
}

// A coroutine's saved context and the switch between two of them.
#if defined(__x86_64__) && !defined(CUEMU_USE_UCONTEXT)
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the
// stack pointer in *save_sp, and resumes the context whose stack pointer is new_sp (System V ABI: the
// caller-saved registers are the compiler's business). No system call, unlike swapcontext.
extern "C" void cuemu_switch_stack(void** save_sp, void* new_sp);
asm(R"(
  .text
  .globl cuemu_switch_stack
  .hidden cuemu_switch_stack
  .type cuemu_switch_stack, @function
cuemu_switch_stack:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuemu_switch_stack, .-cuemu_switch_stack
)");

struct Context {
  void* sp = nullptr;
};

// A fresh context that starts entry() on `stack` (16-byte aligned top; entry never returns).
void context_init(Context& c, char* base, std::size_t size, void (*entry)()) {
  auto top = reinterpret_cast<std::uintptr_t>(base + size) & ~std::uintptr_t(15);
  auto* sp = reinterpret_cast<std::uint64_t*>(top) - 9;
  sp[0] = 0x1F80ull | (0x037Full << 32);  // MXCSR and x87 control word: the defaults
  for (int k = 1; k <= 6; ++k) sp[k] = 0;  // r15, r14, r13, r12, rbx, rbp
  sp[7] = reinterpret_cast<std::uint64_t>(entry);  // `ret` goes here, with rsp = 8 (mod 16) as after a call
  sp[8] = 0;                                       // entry's return address: never used
  c.sp = sp;
}
inline void context_switch(Context& from, Context& to) { cuemu_switch_stack(&from.sp, to.sp); }
#else
struct Context {
  ucontext_t uc;
};
void context_init(Context& c, char* base, std::size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = base;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
inline void context_switch(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

enum class State { Runnable, AtBarrier, AtWarp, Done };

struct Fiber {
  Context ctx;
  ThreadState st;
  State state = State::Runnable;
  int linear = 0, lane = 0, warp = 0;
  const char* file = "";
  int line = 0;
  // barrier
  BarrierOp bop = BarrierOp::Sync;
  int pred = 0;
  // warp collective
  WarpOp wop = WarpOp::Sync;
  unsigned mask = 0;
  std::uint64_t value = 0;
  int arg = 0, width = 32;
  std::uint64_t result = 0;
  void* fake_stack = nullptr;
};

struct Block {
  std::vector<Fiber> fibers;
  Context sched;
  const std::function<void()>* body = nullptr;
  unsigned char* smem = nullptr;
  std::string fault;
  const void* sched_bottom = nullptr;  // the scheduler's stack (for the AddressSanitizer fiber annotations)
  std::size_t sched_size = 0;
  void* sched_fake = nullptr;
};

thread_local Block* t_block = nullptr;
thread_local Fiber* t_fiber = nullptr;
thread_local std::vector<Stack> t_stacks;
thread_local bool t_stacks_dirty = false;  // a fault abandoned threads mid-kernel

void switch_start(void** fake, const void* bottom, std::size_t size) {
#if CUEMU_ASAN
  __sanitizer_start_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}
void switch_finish(void* fake, const void** bottom, std::size_t* size) {
#if CUEMU_ASAN
  __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}

// From a thread back to the scheduler; returns when the scheduler resumes it.
void yield_thread(Fiber* f) {
  Block* b = t_block;
  switch_start(&f->fake_stack, b->sched_bottom, b->sched_size);
  context_switch(f->ctx, b->sched);
  switch_finish(f->fake_stack, &b->sched_bottom, &b->sched_size);
}

void thread_entry() {
  Block* b = t_block;
  Fiber* f = t_fiber;
  switch_finish(nullptr, &b->sched_bottom, &b->sched_size);
  try {
    (*b->body)();
  } catch (const std::exception& e) {
    if (b->fault.empty()) b->fault = std::string("an exception escaped the kernel: ") + e.what();
  } catch (...) {
    if (b->fault.empty()) b->fault = "an exception escaped the kernel";
  }
  f->state = State::Done;
  switch_start(nullptr, b->sched_bottom, b->sched_size);  // this coroutine ends
  context_switch(f->ctx, b->sched);
}

void resume(Block& b, Fiber& f, const Stack& stack) {
  t_fiber = &f;
  current_thread = &f.st;
  switch_start(&b.sched_fake, stack.base, stack.size);
  context_switch(b.sched, f.ctx);
  switch_finish(b.sched_fake, nullptr, nullptr);
  current_thread = nullptr;
  t_fiber = nullptr;
}

Fiber* running(const char* what) {
  if (t_fiber == nullptr) outside_kernel(what);
  return t_fiber;
}

// "0-31, 64-95" from sorted linear thread indices
std::string ranges(const std::vector<int>& ids) {
  std::ostringstream os;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (i) os << ", ";
    os << ids[i];
    if (j > i) os << "-" << ids[j];
    i = j + 1;
  }
  return os.str();
}

const char* barrier_name(BarrierOp op) {
  switch (op) {
    case BarrierOp::Sync: return "__syncthreads";
    case BarrierOp::And: return "__syncthreads_and";
    case BarrierOp::Or: return "__syncthreads_or";
    case BarrierOp::Count: return "__syncthreads_count";
  }
  return "?";
}
const char* warp_name(WarpOp op) {
  switch (op) {
    case WarpOp::Shfl: return "__shfl_sync";
    case WarpOp::ShflUp: return "__shfl_up_sync";
    case WarpOp::ShflDown: return "__shfl_down_sync";
    case WarpOp::ShflXor: return "__shfl_xor_sync";
    case WarpOp::Ballot: return "__ballot_sync";
    case WarpOp::Any: return "__any_sync";
    case WarpOp::All: return "__all_sync";
    case WarpOp::Sync: return "__syncwarp";
  }
  return "?";
}

std::string site(const Fiber& f) { return std::string(f.file) + ":" + std::to_string(f.line); }

// What every thread of the block is doing, grouped: "threads 0-15 wait at __syncthreads (f.cu:10); ..."
std::string describe(const Block& b) {
  std::map<std::string, std::vector<int>> groups;
  for (const Fiber& f : b.fibers) {
    std::string what;
    char mask[16];
    switch (f.state) {
      case State::Runnable: what = "are runnable"; break;
      case State::Done: what = "have returned"; break;
      case State::AtBarrier: what = std::string("wait at ") + barrier_name(f.bop) + " (" + site(f) + ")"; break;
      case State::AtWarp:
        std::snprintf(mask, sizeof mask, "0x%08x", f.mask);
        what = std::string("wait at ") + warp_name(f.wop) + " (" + site(f) + ", mask " + mask + ")";
        break;
    }
    groups[what].push_back(f.linear);
  }
  std::string out;
  for (const auto& [what, ids] : groups) out += (out.empty() ? "" : "; ") + std::string("threads ") + ranges(ids) + " " + what;
  return out;
}

// Evaluates every warp collective whose lanes have all arrived; returns whether any did. Sets
// b.fault for a collective that cannot complete correctly.
bool resolve_warps(Block& b, int nthreads) {
  bool any = false;
  const int nwarps = (nthreads + 31) / 32;
  for (int w = 0; w < nwarps && b.fault.empty(); ++w) {
    const int first = w * 32, lanes = std::min(32, nthreads - first);
    const unsigned existing = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
    unsigned handled = 0;
    for (int l = 0; l < lanes && b.fault.empty(); ++l) {
      Fiber& lead = b.fibers[first + l];
      if (lead.state != State::AtWarp || (handled >> l & 1u)) continue;
      const unsigned m = lead.mask;
      char mk[16];
      std::snprintf(mk, sizeof mk, "0x%08x", m);
      if (!(m >> l & 1u)) {
        b.fault = std::string(warp_name(lead.wop)) + " (" + site(lead) + "): lane " + std::to_string(l) + " of warp " +
                  std::to_string(w) + " calls it with mask " + mk + ", which does not include itself";
        return any;
      }
      if (m & ~existing) {
        b.fault = std::string(warp_name(lead.wop)) + " (" + site(lead) + "): mask " + mk + " names lanes of warp " +
                  std::to_string(w) + " that do not exist (the block has " + std::to_string(nthreads) +
                  " threads, so this warp has " + std::to_string(lanes) + ")";
        return any;
      }
      bool ready = true;
      for (int k = 0; k < lanes; ++k) {
        if (!(m >> k & 1u)) continue;
        const Fiber& o = b.fibers[first + k];
        if (o.state == State::Done) {
          b.fault = std::string(warp_name(lead.wop)) + " (" + site(lead) + ") with mask " + mk +
                    " reached by only some lanes: lane " + std::to_string(k) + " of warp " + std::to_string(w) +
                    " (thread " + std::to_string(first + k) + ") returned without calling it. " + describe(b);
          return any;
        }
        if (o.state != State::AtWarp) {
          ready = false;
          continue;
        }
        if (o.wop != lead.wop || o.mask != m || o.file != lead.file || o.line != lead.line ||
            o.width != lead.width) {
          b.fault = std::string("divergent warp collective in warp ") + std::to_string(w) + ": lane " +
                    std::to_string(l) + " is at " + warp_name(lead.wop) + " (" + site(lead) + "), lane " +
                    std::to_string(k) + " at " + warp_name(o.wop) + " (" + site(o) + ")";
          return any;
        }
      }
      if (!ready) continue;
      const int width = lead.width;
      if (width < 1 || width > 32 || (width & (width - 1))) {
        b.fault = std::string(warp_name(lead.wop)) + " (" + site(lead) + "): width " + std::to_string(width) +
                  " is not a power of two in [1, 32]";
        return any;
      }
      std::uint64_t vote = 0;
      int count = 0;
      for (int k = 0; k < lanes; ++k)
        if ((m >> k & 1u) && b.fibers[first + k].value) {
          vote |= 1ull << k;
          ++count;
        }
      for (int k = 0; k < lanes; ++k) {
        if (!(m >> k & 1u)) continue;
        Fiber& f = b.fibers[first + k];
        const int seg = k & ~(width - 1), pos = k & (width - 1);
        int src = k;
        switch (f.wop) {
          case WarpOp::Shfl: src = seg + (f.arg & (width - 1)); break;
          case WarpOp::ShflUp: src = pos >= f.arg ? k - f.arg : k; break;
          case WarpOp::ShflDown: src = pos + f.arg < width ? k + f.arg : k; break;
          case WarpOp::ShflXor: {
            const int x = k ^ f.arg;
            src = (x < seg + width && x >= 0) ? x : k;
            break;
          }
          default: break;
        }
        switch (f.wop) {
          case WarpOp::Shfl:
          case WarpOp::ShflUp:
          case WarpOp::ShflDown:
          case WarpOp::ShflXor:
            if (src >= lanes || !(m >> src & 1u)) {
              b.fault = std::string(warp_name(f.wop)) + " (" + site(f) + "): lane " + std::to_string(k) + " of warp " +
                        std::to_string(w) + " reads lane " + std::to_string(src) + ", which is not in the mask " + mk;
              return any;
            }
            f.result = b.fibers[first + src].value;
            break;
          case WarpOp::Ballot: f.result = vote; break;
          case WarpOp::Any: f.result = count > 0; break;
          case WarpOp::All: f.result = count == __builtin_popcount(m); break;
          case WarpOp::Sync: f.result = 0; break;
        }
        handled |= 1u << k;
      }
      for (int k = 0; k < lanes; ++k)
        if (m >> k & 1u) b.fibers[first + k].state = State::Runnable;
      any = true;
    }
  }
  return any;
}

// Releases a barrier that every thread has reached; returns whether it did (else b.fault or deadlock).
bool resolve_barrier(Block& b) {
  const Fiber* lead = nullptr;
  int done = 0, at = 0, count = 0;
  for (const Fiber& f : b.fibers) {
    if (f.state == State::Done) ++done;
    if (f.state != State::AtBarrier) continue;
    ++at;
    count += f.pred != 0;
    if (lead == nullptr) lead = &f;
  }
  if (lead == nullptr || at + done != static_cast<int>(b.fibers.size())) return false;
  if (done > 0) {
    b.fault = std::string(barrier_name(lead->bop)) + " (" + site(*lead) + ") after an early return: " +
              std::to_string(done) + " of " + std::to_string(b.fibers.size()) +
              " threads returned before it, so the barrier can never be reached by the whole block. " + describe(b);
    return false;
  }
  for (const Fiber& f : b.fibers)
    if (f.bop != lead->bop || f.file != lead->file || f.line != lead->line) {
      b.fault = std::string("divergent barriers: threads of one block wait at different barriers: thread ") +
                std::to_string(lead->linear) + " at " + barrier_name(lead->bop) + " (" + site(*lead) + "), thread " +
                std::to_string(f.linear) + " at " + barrier_name(f.bop) + " (" + site(f) + ")";
      return false;
    }
  const int n = static_cast<int>(b.fibers.size());
  int r = 0;
  switch (lead->bop) {
    case BarrierOp::Sync: r = 0; break;
    case BarrierOp::And: r = count == n; break;
    case BarrierOp::Or: r = count > 0; break;
    case BarrierOp::Count: r = count; break;
  }
  for (Fiber& f : b.fibers) {
    f.result = static_cast<std::uint64_t>(r);
    f.state = State::Runnable;
  }
  return true;
}

void permute(std::vector<int>& order, std::mt19937_64& rng) {
  switch (config().order) {
    case Order::Forward: std::iota(order.begin(), order.end(), 0); break;
    case Order::Reverse: std::iota(order.rbegin(), order.rend(), 0); break;
    case Order::Shuffle:
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      break;
  }
}

// Runs one block to completion; returns "" or the fault.
std::string run_block(Block& b, int nthreads, std::mt19937_64& rng) {
  std::vector<int> order(static_cast<std::size_t>(nthreads));
  for (;;) {
    permute(order, rng);
    for (int i : order) {
      Fiber& f = b.fibers[i];
      if (f.state != State::Runnable) continue;
      resume(b, f, t_stacks[i]);
      if (!b.fault.empty()) return b.fault;
    }
    bool all_done = true;
    for (const Fiber& f : b.fibers) all_done = all_done && f.state == State::Done;
    if (all_done) return "";
    if (resolve_warps(b, nthreads)) continue;
    if (!b.fault.empty()) return b.fault;
    if (resolve_barrier(b)) continue;
    if (!b.fault.empty()) return b.fault;
    return "deadlock: no thread of the block can proceed. " + describe(b);
  }
}

std::mutex g_launch_mutex;
std::uint64_t g_launches = 0;

}  // namespace

thread_local const ThreadState* current_thread = nullptr;

[[noreturn]] void outside_kernel(const char* what) {
  std::fprintf(stderr, "[cuda-emulator] %s used outside a kernel\n", what);
  std::abort();
}

namespace {
// Records where the running thread waits, hands control to the scheduler and returns the result the
// scheduler left when it let the thread go on.
std::uint64_t wait_at(Fiber* f, State state, const char* file, int line) {
  f->state = state;
  f->file = file;
  f->line = line;
  yield_thread(f);
  return f->result;
}
}  // namespace

int barrier(BarrierOp op, int predicate, const char* file, int line) {
  Fiber* f = running(barrier_name(op));
  f->bop = op;
  f->pred = predicate;
  return static_cast<int>(wait_at(f, State::AtBarrier, file, line));
}

std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t value, int arg, int width, const char* file,
                              int line) {
  Fiber* f = running(warp_name(op));
  f->wop = op;
  f->mask = mask;
  f->value = value;
  f->arg = arg;
  f->width = width;
  return wait_at(f, State::AtWarp, file, line);
}

void* dynamic_shared_memory() {
  if (t_block == nullptr) outside_kernel("extern __shared__ memory");
  return t_block->smem;
}

cudaError_t set_function_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (kernel == nullptr) return fail(cudaErrorInvalidDeviceFunction, "cudaFuncSetAttribute: null kernel");
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || static_cast<std::size_t>(value) > config().smem_optin)
      return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute(MaxDynamicSharedMemorySize, " + std::to_string(value) +
                                             "): above the device's opt-in limit of " +
                                             std::to_string(config().smem_optin) + " bytes");
    std::lock_guard<std::mutex> lock(g_attr_mutex);
    g_max_dynamic_smem[kernel] = static_cast<std::size_t>(value);
    return cudaSuccess;
  }
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: unsupported attribute " + std::to_string(int(attr)));
}

int occupancy_blocks_per_sm(const void*, int block_size, std::size_t dynamic_smem) {
  if (block_size <= 0 || block_size > 1024) return 0;
  int n = std::min(32, 2048 / block_size);
  if (dynamic_smem > 0) n = std::min<int>(n, static_cast<int>(config().smem_per_sm / dynamic_smem));
  return n;
}

cudaError_t run_launch(const char* name, const void* kernel, const LaunchConfig& cfg, const PointerArg* ptrs,
                       int n_ptrs, const std::function<void()>& body, const char* file, int line) {
  const std::string where = std::string("kernel ") + name + " launched at " + file + ":" + std::to_string(line);
  const dim3 g = cfg.grid, bd = cfg.block;
  const unsigned long long nthreads_ll = 1ull * bd.x * bd.y * bd.z;
  if (bd.x == 0 || bd.y == 0 || bd.z == 0 || bd.x > 1024 || bd.y > 1024 || bd.z > 64 || nthreads_ll > 1024)
    return fail(cudaErrorInvalidConfiguration, where + ": block (" + std::to_string(bd.x) + ", " +
                                                   std::to_string(bd.y) + ", " + std::to_string(bd.z) +
                                                   ") is empty or has more than 1024 threads (or a dimension above its limit)");
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.x > 2147483647u || g.y > 65535 || g.z > 65535)
    return fail(cudaErrorInvalidConfiguration, where + ": grid (" + std::to_string(g.x) + ", " + std::to_string(g.y) +
                                                   ", " + std::to_string(g.z) + ") is empty or above its limits");
  const std::size_t limit = dynamic_smem_limit(kernel);
  if (cfg.shared_bytes > limit)
    return fail(cudaErrorInvalidValue,
                where + ": " + std::to_string(cfg.shared_bytes) + " bytes of dynamic shared memory, above the kernel's limit of " +
                    std::to_string(limit) + " bytes (default " + std::to_string(config().smem_default) +
                    "; cudaFuncSetAttribute(MaxDynamicSharedMemorySize) raises it up to the opt-in limit " +
                    std::to_string(config().smem_optin) + ")");
  for (int i = 0; i < n_ptrs; ++i)
    if (ptrs[i].ptr != nullptr && !is_device(ptrs[i].ptr))
      return fail(cudaErrorIllegalAddress, where + ": argument " + std::to_string(ptrs[i].index) + " (" +
                                               hex(ptrs[i].ptr) + ") is not a device pointer (a host pointer, or freed memory)",
                  true);

  std::lock_guard<std::mutex> lock(g_launch_mutex);
  const int nthreads = static_cast<int>(nthreads_ll);
  const Config& c = config();
  std::mt19937_64 rng(c.seed * 0x9E3779B97F4A7C15ull + (++g_launches));
  while (t_stacks.size() < static_cast<std::size_t>(nthreads)) t_stacks.push_back(make_stack(c.stack_bytes));

  const std::size_t smem_bytes = cfg.shared_bytes;
  std::unique_ptr<unsigned char, void (*)(void*)> smem(
      static_cast<unsigned char*>(std::malloc(smem_bytes + kGuardBytes)), std::free);
  const unsigned long long nblocks = 1ull * g.x * g.y * g.z;
  std::vector<unsigned long long> block_order;
  if (c.order != Order::Forward || nblocks < (1ull << 26)) {
    block_order.resize(nblocks);
    std::iota(block_order.begin(), block_order.end(), 0ull);
    if (c.order == Order::Reverse) std::reverse(block_order.begin(), block_order.end());
    if (c.order == Order::Shuffle) std::shuffle(block_order.begin(), block_order.end(), rng);
  }

  Block blk;
  blk.body = &body;
  blk.smem = smem.get();
  blk.fibers.resize(static_cast<std::size_t>(nthreads));
  Block* const saved_block = t_block;
  t_block = &blk;
  std::string fault;
  unsigned long long bad_block = 0;
  for (unsigned long long n = 0; n < nblocks && fault.empty(); ++n) {
    const unsigned long long id = block_order.empty() ? n : block_order[n];
    // fresh shared memory: NaN bit patterns, so a read before any write shows up in the results
    std::memset(blk.smem, 0xFF, smem_bytes);
    std::memset(blk.smem + smem_bytes, kGuardByte, kGuardBytes);
#if CUEMU_ASAN
    ASAN_POISON_MEMORY_REGION(blk.smem + smem_bytes, kGuardBytes);
#endif
    const uint3 bid{static_cast<unsigned>(id % g.x), static_cast<unsigned>(id / g.x % g.y),
                    static_cast<unsigned>(id / (1ull * g.x * g.y))};
    for (int t = 0; t < nthreads; ++t) {
      Fiber& f = blk.fibers[t];
      f = Fiber{};
      f.linear = t;
      f.lane = t % 32;
      f.warp = t / 32;
      f.st.thread_idx = uint3{static_cast<unsigned>(t % bd.x), static_cast<unsigned>(t / bd.x % bd.y),
                              static_cast<unsigned>(t / (bd.x * bd.y))};
      f.st.block_idx = bid;
      f.st.block_dim = bd;
      f.st.grid_dim = g;
#if CUEMU_ASAN
      // frames left on a reused stack keep their poisoned redzones: the entry frame of the previous
      // thread (near the top), or whole stacks of threads abandoned by a fault
      {
        const std::size_t clear = t_stacks_dirty ? t_stacks[t].size : std::min<std::size_t>(t_stacks[t].size, 16384);
        ASAN_UNPOISON_MEMORY_REGION(t_stacks[t].base + t_stacks[t].size - clear, clear);
      }
#endif
      context_init(f.ctx, t_stacks[t].base, t_stacks[t].size, thread_entry);
    }
    blk.fault.clear();
    fault = run_block(blk, nthreads, rng);
    t_stacks_dirty = !fault.empty();
#if CUEMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(blk.smem + smem_bytes, kGuardBytes);
#endif
    if (fault.empty())
      for (std::size_t k = 0; k < kGuardBytes; ++k)
        if (blk.smem[smem_bytes + k] != kGuardByte) {
          fault = "write past the end of dynamic shared memory: byte " + std::to_string(smem_bytes + k) + " of a " +
                  std::to_string(smem_bytes) + "-byte allocation was changed";
          break;
        }
    bad_block = id;
  }
  t_block = saved_block;
  if (!fault.empty()) {
    const uint3 bid{static_cast<unsigned>(bad_block % g.x), static_cast<unsigned>(bad_block / g.x % g.y),
                    static_cast<unsigned>(bad_block / (1ull * g.x * g.y))};
    return fail(cudaErrorLaunchFailure,
                where + ", block (" + std::to_string(bid.x) + ", " + std::to_string(bid.y) + ", " +
                    std::to_string(bid.z) + ") of " + std::to_string(bd.x * bd.y * bd.z) + " threads: " + fault,
                true);
  }
  return cudaSuccess;
}

}  // namespace cuemu

// ---- the runtime API -----------------------------------------------------------------------------
using cuemu::fail;

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDeviceCount: null pointer");
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device != 0) {
    cuemu::t_last_error = cudaErrorInvalidDevice;
    return cudaErrorInvalidDevice;  // an expected outcome for a bad index: no report
  }
  cuemu::t_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDevice: null pointer");
  *device = cuemu::t_device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return fail(cudaErrorInvalidValue, "cudaGetDeviceProperties: null pointer");
  if (device != 0) {
    cuemu::t_last_error = cudaErrorInvalidDevice;
    return cudaErrorInvalidDevice;
  }
  cuemu::fill_properties(prop);
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr) return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: null pointer");
  if (device != 0) {
    cuemu::t_last_error = cudaErrorInvalidDevice;
    return cudaErrorInvalidDevice;
  }
  cudaDeviceProp p;
  cuemu::fill_properties(&p);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(p.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = static_cast<int>(p.sharedMemPerMultiprocessor); break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(p.sharedMemPerBlockOptin); break;
    default: return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute " + std::to_string(int(attr)) + " is not emulated");
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  const cudaError_t e = cuemu::t_pending;  // kernels ran at their launch; report a fault not yet seen
  cuemu::t_pending = cudaSuccess;
  return e;
}

cudaError_t cudaDeviceReset() { return cudaSuccess; }

cudaError_t cudaGetLastError() {
  const cudaError_t e = cuemu::t_last_error;
  cuemu::t_last_error = cudaSuccess;
  cuemu::t_pending = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return cuemu::t_last_error; }

const char* cudaGetErrorName(cudaError_t err) { return cuemu::error_name(err); }

const char* cudaGetErrorString(cudaError_t err) {
  // the message of the emulator's last report when it is about this error: it names the kernel and the fault
  if (err != cudaSuccess && err == cuemu::t_detail_code) return cuemu::t_detail.c_str();
  return cuemu::error_string(err);
}

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  if (ptr == nullptr) return fail(cudaErrorInvalidValue, "cudaMalloc: null pointer");
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(cuemu::g_mem_mutex);
    if (bytes > cuemu::kTotalMemory - cuemu::g_allocated) {
      cuemu::t_last_error = cudaErrorMemoryAllocation;
      return cudaErrorMemoryAllocation;
    }
  }
  void* p = std::malloc(bytes);
  if (p == nullptr) {
    cuemu::t_last_error = cudaErrorMemoryAllocation;
    return cudaErrorMemoryAllocation;
  }
  std::memset(p, 0xFF, bytes);  // uninitialised device memory reads as NaN
  std::lock_guard<std::mutex> lock(cuemu::g_mem_mutex);
  cuemu::g_allocs[reinterpret_cast<std::uintptr_t>(p)] = bytes;
  cuemu::g_allocated += bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(cuemu::g_mem_mutex);
    const auto it = cuemu::g_allocs.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it != cuemu::g_allocs.end()) {
      cuemu::g_allocated -= it->second;
      cuemu::g_allocs.erase(it);
      std::free(ptr);
      return cudaSuccess;
    }
  }
  return fail(cudaErrorInvalidValue, "cudaFree(" + cuemu::hex(ptr) + "): not the start of a live device allocation");
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return fail(cudaErrorInvalidValue, "cudaMemcpy: null pointer");
  if (kind == cudaMemcpyDefault)
    kind = cuemu::is_device(dst) ? (cuemu::is_device(src) ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                 : (cuemu::is_device(src) ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice)
    return fail(cudaErrorInvalidMemcpyDirection, "cudaMemcpy: kind " + std::to_string(int(kind)));
  const std::string call = "cudaMemcpy(" + std::to_string(bytes) + " bytes, kind " + std::to_string(int(kind)) + "): ";
  if (dst_dev && !cuemu::find_range(dst, bytes)) return fail(cudaErrorInvalidValue, call + cuemu::range_problem("destination", dst, bytes));
  if (src_dev && !cuemu::find_range(src, bytes)) return fail(cudaErrorInvalidValue, call + cuemu::range_problem("source", src, bytes));
  if (!dst_dev && cuemu::is_device(dst))
    return fail(cudaErrorInvalidValue, call + "destination " + cuemu::hex(dst) + " is a device pointer, passed as a host pointer");
  if (!src_dev && cuemu::is_device(src))
    return fail(cudaErrorInvalidValue, call + "source " + cuemu::hex(src) + " is a device pointer, passed as a host pointer");
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* ptr, int value, std::size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!cuemu::find_range(ptr, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemset(" + std::to_string(bytes) + " bytes): " + cuemu::range_problem("destination", ptr, bytes));
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, std::size_t bytes, cudaStream_t) { return cudaMemset(ptr, value, bytes); }

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return fail(cudaErrorInvalidValue, "cudaMemGetInfo: null pointer");
  std::lock_guard<std::mutex> lock(cuemu::g_mem_mutex);
  *total_bytes = cuemu::kTotalMemory;
  *free_bytes = cuemu::kTotalMemory - cuemu::g_allocated;
  return cudaSuccess;
}

// Streams: every operation runs at its call, so a stream is only a handle.
struct CUstream_st {
  int unused = 0;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point when;
  bool recorded = false;
};

namespace cuemu {
namespace {
template <class H>
cudaError_t create_handle(H** out, const char* call) {
  if (out == nullptr) return fail(cudaErrorInvalidValue, std::string(call) + ": null pointer");
  *out = new H;
  return cudaSuccess;
}
template <class H>
cudaError_t destroy_handle(H* h, const char* call) {
  if (h == nullptr) return fail(cudaErrorInvalidResourceHandle, std::string(call) + ": null handle");
  delete h;
  return cudaSuccess;
}
}  // namespace
}  // namespace cuemu

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cuemu::create_handle(stream, "cudaStreamCreate"); }
cudaError_t cudaStreamDestroy(cudaStream_t stream) { return cuemu::destroy_handle(stream, "cudaStreamDestroy"); }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaDeviceSynchronize(); }
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cuemu::create_handle(event, "cudaEventCreate"); }
cudaError_t cudaEventDestroy(cudaEvent_t event) { return cuemu::destroy_handle(event, "cudaEventDestroy"); }
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (event == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: null event");
  event->when = std::chrono::steady_clock::now();
  event->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (event == nullptr) return fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: null event");
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr || start == nullptr || end == nullptr)
    return fail(cudaErrorInvalidValue, "cudaEventElapsedTime: null pointer");
  if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event not recorded");
  *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}
