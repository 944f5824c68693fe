// FNV-1a (64-bit) of arbitrary bytes: the simulator's stable hash of names, seeds and tokens
// (never stored or shown). The same function as common/checksum.h's RepoIdHash, which is for
// repo ids only.
#ifndef HUBCENSUS_FAKEHUB_FNV1A_H_
#define HUBCENSUS_FAKEHUB_FNV1A_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace hubcensus::fakehub {

inline uint64_t Fnv1a64(absl::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_FNV1A_H_
