// Large host arrays backed by transparent huge pages. A freshly mapped 4 KiB page costs a page
// fault at first touch, and on virtual machines those faults dominate: ~4 ms per MiB measured
// here, against ~0.1 ms per MiB in 2 MiB pages — more than the GEMM that writes the array. Arrays
// of 2 MiB and more are therefore 2 MiB-aligned and advised MADV_HUGEPAGE (Linux; elsewhere a
// plain aligned allocation). Used for the backend's buffers, LAPACK workspaces and the results
// handed to JavaScript.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace brainlatent {

// 64-byte aligned (2 MiB-aligned and huge-page advised from 2 MiB); nullptr when out of memory.
void* alloc_pages(std::size_t bytes);
// Frees what alloc_pages returned (nullptr is a no-op).
void free_pages(void* p) noexcept;
// Advises huge pages for the whole 2 MiB pages inside [p, p + bytes) not yet touched (memory
// allocated elsewhere, e.g. by JavaScript). A no-op where unsupported.
void advise_huge_pages(void* p, std::size_t bytes) noexcept;

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
  template <typename U>
  bool operator==(const PageAllocator<U>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const PageAllocator<U>&) const noexcept { return false; }
};

// A std::vector in huge-page backed memory (large results and workspaces).
template <typename T>
using LargeVector = std::vector<T, PageAllocator<T>>;

}  // namespace brainlatent
