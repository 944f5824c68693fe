// The columnar form of a crawl in the store: what a commit and a load read instead of joining
// 2.2M snapshot rows with their repo_meta versions one by one.
//
// Two kinds of values, both in the snapshots column family (zstd) under a key space of their
// own, after every crawl's rows ("\xff" sorts after any BE32 crawl number below 0xff000000):
// - a page chunk, written with each page (SnapshotStore::Write, same WriteBatch), keyed like the
//   page's marker by (crawl, item, fence): the page's repos column by column, with their object
//   ids, last_modified and the page's seen sequence (what the commit's de-duplication reads);
// - a committed part, made by the commit into table files ingested ahead of the crawl's record
//   (which says how many parts there are): a range of the published crawl sorted by repo id
//   (kRowsPerPart repos), without the de-duplication columns. A load reads the parts on threads
//   and concatenates them: no sort, no join, no de-duplication.
// The page chunks of a crawl are deleted at commit and abort.
//
// Both kinds also carry each row's meta version (the crawl number of its repo_meta version) and
// trending score, written since the store keeps a committed crawl's parts alone: once a later
// crawl is committed, an older crawl's rows are deleted and its point reads and exports read
// these (StoredCrawl.rows_dropped). A crawl committed before has parts without them and keeps
// its rows.
#ifndef HUBCENSUS_STORE_INTERNAL_CRAWL_COLUMNS_H_
#define HUBCENSUS_STORE_INTERNAL_CRAWL_COLUMNS_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/huge_pages.h"
#include "hubcensus/v1/repo.pb.h"
#include "store/crawl_snapshot.h"

namespace hubcensus::store {

// Repos per committed part: a part is decoded by one thread; 2.2M repos make ~135 parts.
inline constexpr size_t kRowsPerPart = 16384;

// "\xff" + BE32(crawl): every column value of the crawl.
std::string ColumnsCrawlPrefix(uint32_t crawl_number);
// "\xff" + BE32(crawl) + 'p' + item id + '\0' + BE64(fence).
std::string PageChunkKey(uint32_t crawl_number, absl::string_view item_id, uint64_t fence);
// [first, last) of every page chunk of a crawl.
std::string PageChunksBegin(uint32_t crawl_number);
std::string PageChunksEnd(uint32_t crawl_number);
// "\xff" + BE32(crawl) + 'c' + BE32(part): every part sorts before the page chunks.
std::string CommittedPartKey(uint32_t crawl_number, uint32_t part);
// "\xff" + BE32(crawl) + 'i': the first repo id of every committed part (PartIndex).
std::string CommittedPartIndexKey(uint32_t crawl_number);
// The part index's value, and back: DataLoss naming `what` when malformed.
std::string EncodePartIndex(const std::vector<std::string>& first_ids);
absl::Status DecodePartIndex(absl::string_view value, absl::string_view what,
                             std::vector<std::string>* first_ids);
// [first, last) of every column value of every crawl (storage accounting).
std::string ColumnsBegin();
std::string ColumnsEnd();

// What a row's stored snapshot holds beside the census columns: where its metadata is, and the
// trending score (no census reads it; GetRepo and export do).
struct RowMeta {
  uint32_t meta_version = 0;  // the crawl number of the repo_meta version in effect
  double trending_score = 0;
};

// Builds one column value row by row: a row's parents first (AddParent), then the row.
class ColumnWriter {
 public:
  // `with_dedup_columns`: a page chunk (object ids, last_modified, the page's seen sequence).
  // `with_row_meta`: each row's RowMeta too.
  explicit ColumnWriter(bool with_dedup_columns, bool with_row_meta = false)
      : dedup_(with_dedup_columns), row_meta_(with_row_meta) {}
  void AddParent(absl::string_view parent_id, uint8_t relation);
  void AddRow(absl::string_view id, int64_t created_at, bool created_at_placeholder,
              absl::string_view pipeline_tag, const CrawlSnapshot::Counters& counters,
              absl::string_view object_id = {}, int64_t last_modified = 0,
              const RowMeta& row_meta = {});
  // A repo as a crawler sent it, its metadata stored under `meta_version`.
  void AddRepo(const v1::RepoSnapshot& repo, uint32_t meta_version = 0);
  // Row `i` of `snapshot` (with its de-duplication columns in a page chunk). One writer takes
  // rows of one snapshot only.
  void AddSnapshotRow(const CrawlSnapshot& snapshot, size_t i, absl::string_view object_id = {},
                      int64_t last_modified = 0, const RowMeta& row_meta = {});
  size_t rows() const { return rows_; }
  std::string Finish(uint64_t seen_sequence = 0);

 private:
  static constexpr uint32_t kUnnumbered = ~0u;
  // The number of `pipeline_tag` in this value's tag list (added when new); 0 for none.
  uint32_t TagNumber(absl::string_view pipeline_tag);
  void AddNumberedRow(absl::string_view id, int64_t created_at, bool created_at_placeholder,
                      uint32_t tag, const CrawlSnapshot::Counters& counters,
                      absl::string_view object_id, int64_t last_modified, const RowMeta& row_meta);

  bool dedup_;
  bool row_meta_;
  size_t rows_ = 0;
  std::vector<uint32_t> tag_of_snapshot_tag_;  // AddSnapshotRow: snapshot tag index -> number
  uint32_t parents_of_next_row_ = 0;
  std::string last_id_;
  std::vector<std::string> tags_;
  std::vector<std::pair<std::string, uint32_t>> tag_index_;  // small: linear
  std::string ids_, created_at_, flags_, tag_column_, counters_, parents_, parent_counts_,
      dedup_column_, row_meta_column_;
};

// The RowMeta of decoded rows, one element a row (appended by DecodeColumns).
struct RowMetaColumns {
  std::vector<uint32_t> meta_version;
  std::vector<double> trending_score;
  RowMeta at(size_t row) const { return {meta_version[row], trending_score[row]}; }
};

// 0 for "no object id" (such rows are never merged); else a hash of it that is never 0.
uint64_t ObjectIdHash(absl::string_view object_id);

// The de-duplication columns of page chunks, appended by DecodeColumns value after value.
// Two forms: whole (each row's object id and last_modified: a page merged with its retry), or
// hashes only (`hashes_only`: 8 bytes a row instead of about 44, what a commit of millions of
// rows holds while it sorts; it reads a candidate's page again when two hashes meet).
struct DedupColumns {
  template <typename T>
  using Column = std::vector<T, HugePageAllocator<T>>;  // millions of rows at commit
  bool hashes_only = false;
  // Per decoded value (page): its seen sequence, and the rows decoded up to its end.
  std::vector<uint64_t> page_seen_sequence;
  std::vector<uint32_t> page_end;
  Column<uint64_t> object_id_hash;  // per row, hashes_only
  Column<int64_t> last_modified;    // per row, whole
  std::string object_id_bytes;      // whole: the object ids back to back
  Column<uint32_t> object_id_end;   // whole: end offset in object_id_bytes
  void Reserve(size_t rows) {
    if (hashes_only) {
      object_id_hash.reserve(rows);
      return;
    }
    last_modified.reserve(rows);
    object_id_end.reserve(rows);
    object_id_bytes.reserve(rows * 24);  // the Hub's object ids are 24 hex digits
  }
  size_t rows() const { return page_end.empty() ? 0 : page_end.back(); }
  // The value (in decode order) that row `row` came from, and the row's index within it.
  std::pair<size_t, uint32_t> PageOf(size_t row) const {
    const size_t page = static_cast<size_t>(
        std::upper_bound(page_end.begin(), page_end.end(), static_cast<uint32_t>(row)) -
        page_end.begin());
    return {page, static_cast<uint32_t>(row - (page == 0 ? 0 : page_end[page - 1]))};
  }
  uint64_t row_seen_sequence(size_t row) const { return page_seen_sequence[PageOf(row).first]; }
  // Whole form only.
  absl::string_view object_id(size_t row) const {
    uint32_t begin = row == 0 ? 0 : object_id_end[row - 1];
    return absl::string_view(object_id_bytes).substr(begin, object_id_end[row] - begin);
  }
};

// Whether column value `value` holds its rows' RowMeta (false for a malformed one too).
bool HasRowMeta(absl::string_view value);

// Appends the rows of column value `value` to `out` (and, for a page chunk, their
// de-duplication columns to `dedup` when given; their RowMeta to `row_meta` when given).
// DataLoss naming `what` when `value` is not a well-formed column value, or lacks the columns
// asked for; `out` may then hold part of it.
absl::Status DecodeColumns(absl::string_view value, absl::string_view what, CrawlSnapshot* out,
                           DedupColumns* dedup = nullptr, RowMetaColumns* row_meta = nullptr);

}  // namespace hubcensus::store

#endif  // HUBCENSUS_STORE_INTERNAL_CRAWL_COLUMNS_H_
