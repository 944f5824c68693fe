// Byte layouts of the snapshot store's keys and values: big-endian numbers so that one crawl is
// one contiguous key range, varints so that a repo's daily counters stay within a few bytes.
#ifndef HUBCENSUS_STORE_INTERNAL_STORE_ENCODING_H_
#define HUBCENSUS_STORE_INTERNAL_STORE_ENCODING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hubcensus::store {

void PutBigEndian32(std::string* out, uint32_t v);
void PutBigEndian64(std::string* out, uint64_t v);
uint32_t GetBigEndian32(absl::string_view in);  // in.size() >= 4
uint64_t GetBigEndian64(absl::string_view in);  // in.size() >= 8
void PutVarint(std::string* out, uint64_t v);
// Consumes a varint from the front of `in`; false when truncated or over 10 bytes.
bool GetVarint(absl::string_view* in, uint64_t* v);
inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

// snapshots: BE32(crawl number) + repo id.
std::string SnapshotKey(uint32_t crawl_number, absl::string_view repo_id);
std::string CrawlPrefix(uint32_t crawl_number);  // BE32(crawl number)
// repo_meta: repo id + '\0' + BE32(crawl number of the version). '\0' sorts first, so the
// versions of "a/b" come before those of "a/b-c", as in the snapshots column family.
std::string RepoMetaKey(absl::string_view repo_id, uint32_t crawl_number);
// markers: BE32(crawl) + 'm' + item id + '\0' + BE64(fence).
std::string MarkerKey(uint32_t crawl_number, absl::string_view item_id, uint64_t fence);
std::string MarkerItemPrefix(uint32_t crawl_number, absl::string_view item_id);
// crawls: "c/" + crawl id -> StoredCrawl; "next_crawl_number" -> BE32.
std::string CrawlRecordKey(absl::string_view crawl_id);
inline constexpr absl::string_view kCrawlRecordPrefix = "c/";
inline constexpr absl::string_view kNextCrawlNumberKey = "next_crawl_number";
// rollups: BE32(crawl) + name.
std::string RollupKey(uint32_t crawl_number, absl::string_view name);

// Which (item, fence) wrote a snapshot row. Items are numbered per crawl by the store.
struct SnapshotWriter {
  uint32_t item_number = 0;
  uint64_t fence = 0;
  bool operator==(const SnapshotWriter& o) const {
    return item_number == o.item_number && fence == o.fence;
  }
};

// The daily counters of one repo in one crawl, plus where its slowly changing metadata lives
// (the crawl number of the repo_meta version) and who wrote it.
struct SnapshotCounters {
  int64_t downloads_30d = 0;
  bool has_downloads_all_time = false;
  int64_t downloads_all_time = 0;
  int64_t likes = 0;
  double trending_score = 0;
  uint32_t meta_crawl_number = 0;
  // Usually one; several when pages of different items carried the same repo.
  absl::InlinedVector<SnapshotWriter, 2> writers;
  // When the store received the row's page: milliseconds since the crawl's record was made,
  // increasing page after page; 0 in rows written before it was recorded. Decides which name of
  // a renamed repo a commit keeps.
  uint64_t seen_sequence = 0;
};

// `crawl_number` is the row's own crawl: the meta version is stored as a delta from it.
std::string EncodeSnapshotCounters(const SnapshotCounters& counters, uint32_t crawl_number);
absl::StatusOr<SnapshotCounters> DecodeSnapshotCounters(absl::string_view value,
                                                        uint32_t crawl_number);

}  // namespace hubcensus::store

#endif  // HUBCENSUS_STORE_INTERNAL_STORE_ENCODING_H_
