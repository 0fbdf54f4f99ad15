#include "brainlatent/mapping_guard.h"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#ifndef _WIN32
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "brainlatent/error.h"

namespace brainlatent {

namespace {

// The registry the handler reads: fixed-size and lock-free, since a signal handler may neither lock nor allocate.
// 256 ranges: one per external-data file of every model being loaded at this moment (an SD pipeline has a few).
constexpr int kSlots = 256;
enum SlotState : int { kFree = 0, kFilling = 1, kActive = 2 };
struct Slot {
  std::atomic<int> state{kFree};
  std::atomic<std::uintptr_t> begin{0}, end{0};  // end rounded up to a page: the mapping's last page is its own
  std::atomic<bool> truncated{false};
};
Slot g_slots[kSlots];
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<std::uintptr_t>::is_always_lock_free &&
                  std::atomic<bool>::is_always_lock_free,
              "the SIGBUS handler needs lock-free atomics");

#ifndef _WIN32
std::uintptr_t g_page = 4096;  // set before the handler is installed (sysconf is not async-signal-safe)
struct sigaction g_previous {};
std::atomic<void (*)(int)> g_fallback{nullptr};  // set_sigbus_fallback's

// Not ours: what would have happened without this handler. A handler installed before ours is called; with the
// default action (or SIGBUS ignored, which a fault cannot be) the fallback runs where one is set, else the
// default is restored, and the faulting instruction, run again on return, ends the process as it would have (a
// SIGBUS sent by kill() is raised again).
void pass_on(int sig, siginfo_t* info, void* context) {
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) return g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    return g_previous.sa_handler(sig);
  }
  if (void (*fallback)(int) = g_fallback.load(std::memory_order_acquire)) return fallback(sig);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGBUS, &dfl, nullptr);
  if (info->si_code <= 0) ::raise(SIGBUS);  // sent, not a fault: nothing runs again
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const auto at = reinterpret_cast<std::uintptr_t>(info->si_addr);
  if (info->si_code > 0) {
    for (Slot& s : g_slots) {
      if (s.state.load(std::memory_order_acquire) != kActive) continue;
      const std::uintptr_t begin = s.begin.load(std::memory_order_relaxed), end = s.end.load(std::memory_order_relaxed);
      if (at < begin || at >= end) continue;
      // Zero pages from the faulting page to the end of the range: the file was cut there, so every later page
      // would fault too (one signal, not one per page of a 3.4 GB file). mmap is async-signal-safe in practice
      // (a plain system call); the range stays mapped until its owner unmaps it whole.
      const std::uintptr_t from = at & ~(g_page - 1);
      void* p = ::mmap(reinterpret_cast<void*>(from), end - from, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) break;  // cannot repair it: the process dies as it would have
      s.truncated.store(true, std::memory_order_release);
      return;
    }
  }
  pass_on(sig, info, context);
}

void install_handler() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    const long page = ::sysconf(_SC_PAGESIZE);
    if (page > 0) g_page = static_cast<std::uintptr_t>(page);
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;  // (on an alternate stack where the thread has one)
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previous);
  });
}
#endif

}  // namespace

void set_sigbus_fallback(void (*fallback)(int)) noexcept {
#ifdef _WIN32
  (void)fallback;
#else
  install_handler();
  g_fallback.store(fallback, std::memory_order_release);
#endif
}

MappingGuard::MappingGuard(const void* base, std::size_t size) {
#ifdef _WIN32
  (void)base;
  (void)size;
#else
  if (!base || size == 0) return;
  install_handler();
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!g_slots[i].state.compare_exchange_strong(expected, kFilling, std::memory_order_acq_rel)) continue;
    const auto begin = reinterpret_cast<std::uintptr_t>(base);
    g_slots[i].begin.store(begin, std::memory_order_relaxed);
    g_slots[i].end.store((begin + size + g_page - 1) & ~(g_page - 1), std::memory_order_relaxed);
    g_slots[i].truncated.store(false, std::memory_order_relaxed);
    g_slots[i].state.store(kActive, std::memory_order_release);
    slot_ = i;
    return;
  }
  throw Error(ErrorCode::InvalidArgument, "cannot guard another mapped model file: " + std::to_string(kSlots) +
                                              " are being loaded at once (load fewer models at a time)");
#endif
}

MappingGuard::MappingGuard(MappingGuard&& o) noexcept : slot_(std::exchange(o.slot_, -1)) {}

MappingGuard& MappingGuard::operator=(MappingGuard&& o) noexcept {
  if (this != &o) {
    this->~MappingGuard();
    slot_ = std::exchange(o.slot_, -1);
  }
  return *this;
}

MappingGuard::~MappingGuard() {
  if (slot_ >= 0) g_slots[slot_].state.store(kFree, std::memory_order_release);
  slot_ = -1;
}

bool MappingGuard::truncated() const { return slot_ >= 0 && g_slots[slot_].truncated.load(std::memory_order_acquire); }

}  // namespace brainlatent
