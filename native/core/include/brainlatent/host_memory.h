// Large host arrays, 2 MiB-aligned from 2 MiB, in transparent huge pages where 4 KiB page faults
// are expensive. A freshly mapped page costs a page fault (and the kernel's zeroing) at first
// touch; on virtual machines that can dominate, and which page size is cheaper differs by 10×
// either way between hosts (host_memory.cpp has the figures), so the process measures a 4 KiB
// fault's cost once, at its first large allocation (BRAINLATENT_HUGE_PAGES=1 or 0 decides instead). Used for the
// backend's buffers, LAPACK workspaces and the results handed to JavaScript.
#pragma once
#include <cstddef>
#include <new>
#include <utility>
#include <vector>

namespace brainlatent {

// 64-byte aligned (2 MiB-aligned from 2 MiB, huge pages where chosen); nullptr when out of memory.
void* alloc_pages(std::size_t bytes);
// Frees what alloc_pages returned (nullptr is a no-op).
void free_pages(void* p) noexcept;
// Advises huge pages for the whole 2 MiB pages inside [p, p + bytes) not yet touched (memory
// allocated elsewhere, e.g. by JavaScript), where they were chosen. A no-op elsewhere.
void advise_huge_pages(void* p, std::size_t bytes) noexcept;
// Whether this process puts large arrays in huge pages (measured at the first call, see above).
bool huge_pages_in_use();

template <typename T>
struct PageAllocator {
  using value_type = T;
  PageAllocator() = default;
  template <typename U>
  PageAllocator(const PageAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    void* p = alloc_pages(n * sizeof(T));
    if (!p && n > 0) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { free_pages(p); }
  // Elements are default-initialised (a float is left as the page gives it): a LargeVector of n
  // elements is not zero-filled, so its pages are first touched by whatever writes it (in parallel,
  // in a GEMM) instead of by a serial memset. assign(n, v) and resize(n, v) still fill.
  template <typename U>
  void construct(U* p) noexcept(noexcept(::new (static_cast<void*>(p)) U)) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const PageAllocator<U>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const PageAllocator<U>&) const noexcept { return false; }
};

// A std::vector in page-aligned memory, huge pages where chosen (large results and workspaces);
// its elements are not zero-initialised (PageAllocator::construct).
template <typename T>
using LargeVector = std::vector<T, PageAllocator<T>>;

}  // namespace brainlatent
