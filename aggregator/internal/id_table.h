// A fixed-capacity set of ids (string views that stay valid elsewhere) that threads fill and
// query at once: what the lineage graph uses to find the repo each parent id names. An id is
// stored as the number the caller gave it (an edge index), so a slot is 8 bytes: at 2.2M repos
// the table is 8 MB, where a flat_hash_map<string_view, int32_t> reserved for the edges was
// 26 MB, and on this project's VMs each fresh page costs as much as thousands of lookups.
#ifndef HUBCENSUS_AGGREGATOR_INTERNAL_ID_TABLE_H_
#define HUBCENSUS_AGGREGATOR_INTERNAL_ID_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace hubcensus::aggregator::internal {

class IdTable {
 public:
  // Room for `max_ids` distinct ids (at most 2^31). Slots are zeroed here.
  explicit IdTable(size_t max_ids);
  IdTable(const IdTable&) = delete;
  IdTable& operator=(const IdTable&) = delete;

  // The slot of `id`, inserting it with `number` when absent. `id_of(number)` gives back the id
  // stored under a number; it is called only on slots whose hash tag matches. Safe from several
  // threads at once (lock-free linear probing: a slot goes from empty to filled once).
  template <typename IdOf>
  uint32_t Insert(absl::string_view id, uint32_t number, const IdOf& id_of) {
    return Insert(id, HashOf(id), number, id_of);
  }
  // The same with the id's HashOf, computed (and its slot prefetched) ahead.
  template <typename IdOf>
  uint32_t Insert(absl::string_view id, uint64_t hash, uint32_t number, const IdOf& id_of);
  // The slot of `id`, or -1 when absent. Safe concurrently with Insert and with itself; to find
  // every id inserted before, call it after the inserting threads are joined.
  template <typename IdOf>
  int64_t Find(absl::string_view id, const IdOf& id_of) const;
  // The same, in steps a caller can interleave over a batch of ids so that their cache misses
  // overlap (a pass over 2.2M ids is bound by them): HashOf, Prefetch(hash) for the filter,
  // MayHold, PrefetchSlot, then Find with the hash.
  static uint64_t HashOf(absl::string_view id) { return absl::Hash<absl::string_view>{}(id); }
  void Prefetch(uint64_t hash) const { __builtin_prefetch(&filter_[FilterBit(hash) / 64]); }
  bool MayHold(uint64_t hash) const {
    const uint64_t bit = FilterBit(hash);
    return (filter_[bit / 64].load(std::memory_order_relaxed) >> (bit % 64)) & 1;
  }
  void PrefetchSlot(uint64_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }
  template <typename IdOf>
  int64_t Find(absl::string_view id, uint64_t hash, const IdOf& id_of) const;
  // The number stored in a slot Insert or Find returned.
  uint32_t number(uint32_t slot) const {
    return static_cast<uint32_t>(slots_[slot].load(std::memory_order_relaxed));
  }
  size_t capacity() const { return mask_ + 1; }

 private:
  // A slot is 0 when empty, else (tag << 32) | number; tags are never 0.
  static uint32_t TagOf(uint64_t hash) { return static_cast<uint32_t>(hash >> 32) | 1u; }

  // One bit per 8 slots' worth of ids, set by Insert: most ids looked up are absent (of 2.2M
  // repos, a tenth are someone's parent), and this 1 MB answers most of them from the cache
  // instead of a slot of the 8 MB table.
  uint64_t FilterBit(uint64_t hash) const { return (hash >> 7) & filter_mask_; }
  void Note(uint64_t hash) {
    const uint64_t bit = FilterBit(hash);
    // A load first: most words soon hold the bit, and a plain read keeps the line shared.
    if (((filter_[bit / 64].load(std::memory_order_relaxed) >> (bit % 64)) & 1) == 0) {
      filter_[bit / 64].fetch_or(uint64_t{1} << (bit % 64), std::memory_order_relaxed);
    }
  }

  size_t mask_;
  std::unique_ptr<std::atomic<uint64_t>[]> slots_;
  uint64_t filter_mask_;
  std::unique_ptr<std::atomic<uint64_t>[]> filter_;
};

template <typename IdOf>
uint32_t IdTable::Insert(absl::string_view id, uint64_t hash, uint32_t number, const IdOf& id_of) {
  const uint32_t tag = TagOf(hash);
  const uint64_t mine = (uint64_t{tag} << 32) | number;
  Note(hash);
  for (size_t pos = hash & mask_;; pos = (pos + 1) & mask_) {
    uint64_t seen = slots_[pos].load(std::memory_order_relaxed);
    // The numbers name strings the caller already holds, so nothing is published through a slot
    // but the slot itself: relaxed order is enough.
    if (seen == 0 && slots_[pos].compare_exchange_strong(seen, mine, std::memory_order_relaxed)) {
      return static_cast<uint32_t>(pos);
    }
    // Filled (maybe just now by another thread with the same id): ours if the id is.
    if (static_cast<uint32_t>(seen >> 32) == tag && id_of(static_cast<uint32_t>(seen)) == id) {
      return static_cast<uint32_t>(pos);
    }
  }
}

template <typename IdOf>
int64_t IdTable::Find(absl::string_view id, const IdOf& id_of) const {
  const uint64_t hash = HashOf(id);
  if (!MayHold(hash)) return -1;
  return Find(id, hash, id_of);
}

template <typename IdOf>
int64_t IdTable::Find(absl::string_view id, uint64_t hash, const IdOf& id_of) const {
  const uint32_t tag = TagOf(hash);
  for (size_t pos = hash & mask_;; pos = (pos + 1) & mask_) {
    const uint64_t seen = slots_[pos].load(std::memory_order_relaxed);
    if (seen == 0) return -1;
    if (static_cast<uint32_t>(seen >> 32) == tag && id_of(static_cast<uint32_t>(seen)) == id) {
      return static_cast<int64_t>(pos);
    }
  }
}

}  // namespace hubcensus::aggregator::internal

#endif  // HUBCENSUS_AGGREGATOR_INTERNAL_ID_TABLE_H_
