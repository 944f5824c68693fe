// The checksum of a batch's repo ids that the crawler reports to the coordinator and the store
// records per (item, fence): the commit refuses a crawl whose manifest does not match.
// Order-independent (a sum of FNV-1a hashes), so it does not depend on how a page was split.
#ifndef HUBCENSUS_COMMON_CHECKSUM_H_
#define HUBCENSUS_COMMON_CHECKSUM_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace hubcensus {

// FNV-1a (64-bit) of arbitrary bytes: repo ids here, and elsewhere names, seeds and tokens that
// need a stable hash (never stored in place of the bytes, never shown for a secret).
inline uint64_t Fnv1a64(absl::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Accumulates ids: the checksum of a set is the sum (mod 2^64) of their hashes.
class RepoIdChecksum {
 public:
  void Add(absl::string_view id) {
    sum_ += Fnv1a64(id);
    ++count_;
  }
  uint64_t value() const { return sum_; }
  int64_t count() const { return count_; }

 private:
  uint64_t sum_ = 0;
  int64_t count_ = 0;
};

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_CHECKSUM_H_
