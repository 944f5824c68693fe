// Memory for the big arrays of a crawl held in columns (millions of elements each): blocks of
// 2 MB and more are asked of the kernel as transparent huge pages (madvise(MADV_HUGEPAGE); the
// kernel's THP mode "madvise", Debian's default, honours it), so touching them the first time
// faults once every 2 MB instead of once every 4 KB. On this project's machines a page fault is
// the single largest cost of loading 2.2M repos (a quarter of an ad-hoc query's CPU); where the
// kernel has no huge page to give, the memory is ordinary pages and nothing else changes.
#ifndef HUBCENSUS_COMMON_HUGE_PAGES_H_
#define HUBCENSUS_COMMON_HUGE_PAGES_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

namespace hubcensus {

inline constexpr size_t kHugePage = size_t{2} << 20;

// `bytes` of memory, 2 MB aligned and advised as huge pages when `bytes` is 2 MB or more; free
// it with std::free. Throws std::bad_alloc when there is none.
inline void* AllocateHugePages(size_t bytes) {
  if (bytes < kHugePage) {
    void* p = std::malloc(bytes == 0 ? 1 : bytes);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  const size_t rounded = (bytes + kHugePage - 1) & ~(kHugePage - 1);
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (p == nullptr) throw std::bad_alloc();
  madvise(p, rounded, MADV_HUGEPAGE);  // advice only: ordinary pages when it fails
  return p;
}

// A std::vector allocator over AllocateHugePages. It also default-initialises what resize()
// adds (no zero fill of numbers the caller overwrites next: the arrays are filled right after
// they are sized).
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: rebinding, as std::allocator
  T* allocate(size_t n) { return static_cast<T*>(AllocateHugePages(n * sizeof(T))); }
  void deallocate(T* p, size_t) { std::free(p); }
  template <typename U>
  void construct(U* p) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const HugePageAllocator<U>&) const {
    return false;
  }
};

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_HUGE_PAGES_H_
