#include "aggregator/internal/id_table.h"

#include <algorithm>

namespace hubcensus::aggregator::internal {

IdTable::IdTable(size_t max_ids) {
  // At most 3/4 full, so a probe for an absent id ends after a few slots.
  size_t capacity = 16;
  while (capacity * 3 < std::max<size_t>(max_ids, 1) * 4) capacity *= 2;
  mask_ = capacity - 1;
  slots_ = std::make_unique<std::atomic<uint64_t>[]>(capacity);  // value-initialised: all 0
  // 8 filter bits per slot: with the table at most 3/4 full, at most 1 in 10 absent ids pass.
  filter_mask_ = capacity * 8 - 1;
  filter_ = std::make_unique<std::atomic<uint64_t>[]>(capacity * 8 / 64);
}

}  // namespace hubcensus::aggregator::internal
