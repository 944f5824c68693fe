// Splits a loop over [0, n) into contiguous ranges run on threads, for the few passes over a whole
// crawl that dominate a commit (2.2M repos). Small inputs run inline on the caller's thread.
#ifndef HUBCENSUS_COMMON_PARALLEL_H_
#define HUBCENSUS_COMMON_PARALLEL_H_

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace hubcensus {

// How many ranges a pass over `n` items is worth: one per core, at most 8, and none smaller than
// `min_per_range` items (a thread costs tens of microseconds).
inline size_t RangesFor(size_t n, size_t min_per_range) {
  size_t cores = std::max(1u, std::thread::hardware_concurrency());
  size_t by_size = min_per_range == 0 ? cores : n / min_per_range;
  return std::max<size_t>(1, std::min({cores, by_size, size_t{8}}));
}

// Calls fn(range, begin, end) for `ranges` contiguous ranges covering [0, n), range 0 on the
// calling thread, and returns when all are done. fn must not throw.
template <typename Fn>
void ForEachRange(size_t n, size_t ranges, const Fn& fn) {
  ranges = std::max<size_t>(1, std::min(ranges, std::max<size_t>(n, 1)));
  auto bound = [&](size_t r) { return n * r / ranges; };
  std::vector<std::thread> threads;
  threads.reserve(ranges - 1);
  for (size_t r = 1; r < ranges; ++r) {
    threads.emplace_back([&fn, r, b = bound(r), e = bound(r + 1)] { fn(r, b, e); });
  }
  fn(size_t{0}, bound(0), bound(1));
  for (auto& t : threads) t.join();
}

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_PARALLEL_H_
