#include "brainlatent/mapping_guard.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#ifndef _WIN32
#include <sched.h>
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
// A slot's word: its state in the low 2 bits, above them a generation bumped by every claim and every free. The
// handler reads the word, then begin/end, then the word again (a seqlock): a slot freed, or freed and claimed for
// another file, between those reads has another word, and the handler leaves it alone instead of mapping zeros over
// memory that is no longer that file.
enum SlotState : std::uint64_t { kFree = 0, kFilling = 1, kActive = 2 };
constexpr std::uint64_t kStateMask = 3, kGeneration = 4;
struct Slot {
  std::atomic<std::uint64_t> word{kFree};
  std::atomic<std::uintptr_t> begin{0}, end{0};  // end rounded up to a page: the mapping's last page is its own
  std::atomic<bool> truncated{false};
};
Slot g_slots[kSlots];
// Handlers between their first read of a slot and their mmap over it: a guard's destructor waits for none to be
// left before its owner unmaps the range (a handler that read the slot active maps over that file's pages, never
// over whatever is mapped there after the owner's munmap).
std::atomic<int> g_in_handler{0};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uintptr_t>::is_always_lock_free &&
                  std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "the SIGBUS handler needs lock-free atomics");

#ifndef _WIN32
std::uintptr_t g_page = 4096;  // set before the handler is installed (sysconf is not async-signal-safe)
struct sigaction g_previous {};
std::atomic<void (*)(int)> g_fallback{nullptr};  // set_sigbus_fallback's

// Not ours: what would have happened without this handler. A handler installed before ours is called. A SIGBUS
// sent by kill() to a process that ignores SIGBUS is ignored, as it was (a fault cannot be ignored: the kernel
// delivers it with the default action). Otherwise the fallback runs where one is set, else the default is restored,
// and the faulting instruction, run again on return, ends the process as it would have (a SIGBUS sent by kill()
// is raised again).
void pass_on(int sig, siginfo_t* info, void* context) {
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) return g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler == SIG_IGN) {
    if (info->si_code <= 0) return;  // sent, and ignored before this handler was installed
  } else if (g_previous.sa_handler != SIG_DFL) {
    return g_previous.sa_handler(sig);
  }
  if (void (*fallback)(int) = g_fallback.load(std::memory_order_acquire)) return fallback(sig);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGBUS, &dfl, nullptr);
  if (info->si_code <= 0) ::raise(SIGBUS);  // sent, not a fault: nothing runs again
}

// Whether a guarded range holds `at`; if so, zero pages are mapped from its page to the range's end.
bool claim_fault(std::uintptr_t at) {
  for (Slot& s : g_slots) {
    const std::uint64_t word = s.word.load(std::memory_order_acquire);
    if ((word & kStateMask) != kActive) continue;
    const std::uintptr_t begin = s.begin.load(std::memory_order_relaxed), end = s.end.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s.word.load(std::memory_order_relaxed) != word) continue;  // freed or reused meanwhile: not these bounds
    if (at < begin || at >= end) continue;
    // Zero pages from the faulting page to the end of the range: the file was cut there, so every later page
    // would fault too (one signal, not one per page of a 3.4 GB file). mmap is async-signal-safe in practice
    // (a plain system call); the range stays mapped until its owner unmaps it whole (it waits for this handler).
    const std::uintptr_t from = at & ~(g_page - 1);
    void* p = ::mmap(reinterpret_cast<void*>(from), end - from, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;  // cannot repair it: the process dies as it would have
    s.truncated.store(true, std::memory_order_release);
    return true;
  }
  return false;
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;  // (mmap, sigaction and a previous handler may set it; the thread interrupted reads it)
  bool claimed = false;
  if (info->si_code > 0) {
    g_in_handler.fetch_add(1, std::memory_order_seq_cst);  // (before any slot is read: see ~MappingGuard)
    claimed = claim_fault(reinterpret_cast<std::uintptr_t>(info->si_addr));
    g_in_handler.fetch_sub(1, std::memory_order_seq_cst);
  }
  if (!claimed) pass_on(sig, info, context);
  errno = saved_errno;
}

void install_handler() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    const long page = ::sysconf(_SC_PAGESIZE);
    if (page > 0) g_page = static_cast<std::uintptr_t>(page);
    // the previous action first: a SIGBUS arriving once ours is installed is passed on to it, not to an empty one
    ::sigaction(SIGBUS, nullptr, &g_previous);
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;  // (on an alternate stack where the thread has one)
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, nullptr);
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
    Slot& s = g_slots[i];
    std::uint64_t word = s.word.load(std::memory_order_relaxed);
    if ((word & kStateMask) != kFree) continue;
    const std::uint64_t generation = (word & ~kStateMask) + kGeneration;
    if (!s.word.compare_exchange_strong(word, generation | kFilling, std::memory_order_acq_rel)) continue;
    std::atomic_thread_fence(std::memory_order_release);  // (the claim is seen before the bounds written below)
    const auto begin = reinterpret_cast<std::uintptr_t>(base);
    s.begin.store(begin, std::memory_order_relaxed);
    s.end.store((begin + size + g_page - 1) & ~(g_page - 1), std::memory_order_relaxed);
    s.truncated.store(false, std::memory_order_relaxed);
    s.word.store(generation | kActive, std::memory_order_release);
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
  if (slot_ < 0) return;
  Slot& s = g_slots[slot_];
  s.word.store(((s.word.load(std::memory_order_relaxed) & ~kStateMask) + kGeneration) | kFree, std::memory_order_seq_cst);
#ifndef _WIN32
  // A handler that read the slot before it was freed may be about to map zeros over the range: its owner unmaps it
  // only once none is (a handler counted after the store above sees the slot free). A handler is one mmap long.
  while (g_in_handler.load(std::memory_order_seq_cst) != 0) ::sched_yield();
#endif
  slot_ = -1;
}

bool MappingGuard::truncated() const { return slot_ >= 0 && g_slots[slot_].truncated.load(std::memory_order_acquire); }

}  // namespace brainlatent
