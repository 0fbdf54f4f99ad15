#include "brainlatent/host_memory.h"

#include <cstdint>
#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace brainlatent {

namespace {
constexpr std::size_t kHugePage = std::size_t(2) << 20;
}

void* alloc_pages(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes < kHugePage) return std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  const std::size_t size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, size);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p) madvise(p, size, MADV_HUGEPAGE);
#endif
  return p;
}

void free_pages(void* p) noexcept { std::free(p); }

void advise_huge_pages(void* p, std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t b = (a + kHugePage - 1) / kHugePage * kHugePage, e = (a + bytes) / kHugePage * kHugePage;
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);
#else
  (void)p, (void)bytes;
#endif
}

}  // namespace brainlatent
