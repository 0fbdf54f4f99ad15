#include "brainlatent/host_memory.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace brainlatent {

namespace {
constexpr std::size_t kHugePage = std::size_t(2) << 20;

#if defined(__linux__) && defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
#define BRAINLATENT_THP 1
// Seconds to first touch a fresh 2 MiB region in 4 KiB pages (512 page faults).
double small_page_touch_seconds() {
  void* p = mmap(nullptr, kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 0;
  madvise(p, kHugePage, MADV_NOHUGEPAGE);
  const auto t0 = std::chrono::steady_clock::now();
  std::memset(p, 1, kHugePage);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  munmap(p, kHugePage);
  return s;
}

// Huge pages only where 4 KiB page faults are expensive: measured once per process (one 2 MiB
// region, ~1–8 ms), since it differs by 10× between machines. On one VM first touching 4 KiB pages
// cost ~4 ms per MiB (a fault each) against ~0.1 ms in 2 MiB pages; on a freshly booted one 4 KiB
// pages cost 0.54 ms per MiB and fresh 2 MiB pages 1.4–2.1 ms (the host backs each new huge page,
// while 4 KiB pages reuse memory it already backs: the medium ridge bench fit took 3.3 s in 4 KiB
// pages, 3.5–3.7 s in huge pages). Where 4 KiB faults are cheap huge pages have little to gain (at
// most their cost) and much to lose. BRAINLATENT_HUGE_PAGES=1 or 0 decides instead.
constexpr double kHugePagesAboveMsPerMiB = 1.5;
bool huge_pages_chosen() {
  const char* e = std::getenv("BRAINLATENT_HUGE_PAGES");
  if (e && std::strcmp(e, "1") == 0) return true;
  if (e && std::strcmp(e, "0") == 0) return false;
  const double ms_per_mib = 1e3 * small_page_touch_seconds() / 2.0;
  return ms_per_mib > kHugePagesAboveMsPerMiB;
}

int page_advice() {
  static const int advice = huge_pages_chosen() ? MADV_HUGEPAGE : MADV_NOHUGEPAGE;
  return advice;
}
#endif
}  // namespace

bool huge_pages_in_use() {
#ifdef BRAINLATENT_THP
  return page_advice() == MADV_HUGEPAGE;
#else
  return false;
#endif
}

void* alloc_pages(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes < kHugePage) return std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  const std::size_t size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, size);
#ifdef BRAINLATENT_THP
  if (p) madvise(p, size, page_advice());
#endif
  return p;
}

void free_pages(void* p) noexcept { std::free(p); }

void advise_huge_pages(void* p, std::size_t bytes) noexcept {
#ifdef BRAINLATENT_THP
  if (!huge_pages_in_use()) return;
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t b = (a + kHugePage - 1) / kHugePage * kHugePage, e = (a + bytes) / kHugePage * kHugePage;
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);
#else
  (void)p, (void)bytes;
#endif
}

}  // namespace brainlatent
