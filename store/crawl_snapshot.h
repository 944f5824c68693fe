// One committed crawl held in memory column by column: what lineage resolution and the family
// metrics read, without a RepoSnapshot object per repo (2.2M repos must aggregate in a second).
#ifndef HUBCENSUS_STORE_CRAWL_SNAPSHOT_H_
#define HUBCENSUS_STORE_CRAWL_SNAPSHOT_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/huge_pages.h"
#include "hubcensus/v1/repo.pb.h"

namespace hubcensus::store {

struct DedupColumns;    // store/internal/crawl_columns.h
struct RowMetaColumns;  // store/internal/crawl_columns.h

class CrawlSnapshot {
 public:
  CrawlSnapshot() = default;
  CrawlSnapshot(const CrawlSnapshot&) = delete;
  CrawlSnapshot& operator=(const CrawlSnapshot&) = delete;
  CrawlSnapshot(CrawlSnapshot&&) = default;
  CrawlSnapshot& operator=(CrawlSnapshot&&) = default;

  // Appends a repo; the strings are copied into the snapshot's arena.
  void Add(const v1::RepoSnapshot& repo);
  // The daily counters of a stored row (the store keeps them apart from the metadata).
  struct Counters {
    int64_t downloads_30d = 0;
    bool has_downloads_all_time = false;
    int64_t downloads_all_time = 0;
    int64_t likes = 0;
  };
  // Appends a repo from its stored parts: `meta` is a serialised v1::RepoMeta. Reads only the
  // fields the columns hold, straight from the wire format, without a message object (this is most
  // of a commit's time at 2.2M repos). DataLoss when `meta` is not a well-formed RepoMeta; nothing
  // is appended then. `object_id`, when given, is set to the repo's object id (a view into `meta`).
  absl::Status AddStored(absl::string_view id, const Counters& counters, absl::string_view meta,
                         absl::string_view* object_id = nullptr);
  // A copy without the rows whose `drop` is true (a commit dropping duplicates).
  CrawlSnapshot Without(const std::vector<bool>& drop) const;
  // `parts` one after the other, each column sized once and filled on up to `threads` threads
  // (a load decoded on threads). The strings are not copied; the parts are left empty.
  static CrawlSnapshot Concat(std::vector<CrawlSnapshot>&& parts, size_t threads = 1);
  void Reserve(size_t repos);

  // The columns decoder's ways in (store/internal/crawl_columns.cc). One row at a time: a row's
  // parents first, then the row; `pipeline_tag_index` is what PipelineTagIndex gave for the row's
  // tag. Or column by column: DecodeColumns is a friend and fills the columns directly.
  void AddParent(absl::string_view parent_id, uint8_t relation);
  void AddRow(absl::string_view id, int64_t created_at, bool created_at_placeholder,
              const Counters& counters, uint16_t pipeline_tag_index);
  // The index of `tag` in this snapshot's tag table (added when new); 0 is the empty tag.
  uint16_t PipelineTagIndex(absl::string_view tag) { return TagIndex(tag); }
  // The rows `rows` names, in that order (a commit sorting pages by repo id). The strings are
  // not copied: the result takes this snapshot's arena, so this one is left empty.
  CrawlSnapshot TakeRows(const std::vector<uint32_t>& rows) &&;
  // The same over `parts` taken as one snapshot (part 0's rows first, then part 1's, ...), on up
  // to `threads` threads: a commit's per-thread reads, sorted, without joining them first. The
  // parts are left empty.
  static CrawlSnapshot TakeRows(std::vector<CrawlSnapshot>&& parts,
                                const std::vector<uint32_t>& rows, size_t threads = 1);

  size_t size() const { return ids_.size(); }
  absl::string_view id(size_t i) const { return ids_[i]; }
  int64_t created_at(size_t i) const { return created_at_[i]; }
  // createdAt was one of the Hub's placeholders: counted in every sum, new in no month.
  bool created_at_placeholder(size_t i) const { return created_at_placeholder_[i] != 0; }
  int64_t downloads_30d(size_t i) const { return downloads_30d_[i]; }
  bool has_downloads_all_time(size_t i) const { return has_downloads_all_time_[i] != 0; }
  // 0 when absent.
  int64_t downloads_all_time(size_t i) const { return downloads_all_time_[i]; }
  int64_t likes(size_t i) const { return likes_[i]; }
  absl::string_view pipeline_tag(size_t i) const { return pipeline_tags_[pipeline_tag_[i]]; }
  int parent_count(size_t i) const { return parent_begin_[i + 1] - parent_begin_[i]; }
  absl::string_view parent_id(size_t i, int k) const { return parent_ids_[parent_begin_[i] + k]; }
  v1::Relation parent_relation(size_t i, int k) const {
    return static_cast<v1::Relation>(parent_relations_[parent_begin_[i] + k]);
  }
  // The same columns as whole arrays, for passes over every repo or edge (lineage, figures): the
  // parents of repo i are edges [parent_begins()[i], parent_begins()[i + 1]). Valid until the
  // snapshot changes.
  absl::Span<const uint32_t> parent_begins() const { return parent_begin_; }
  size_t parent_edges() const { return parent_ids_.size(); }
  absl::string_view parent_id_at(size_t edge) const { return parent_ids_[edge]; }
  // pipeline_tag(i) is pipeline_tag_name(pipeline_tag_index(i)); index 0 is the empty tag.
  uint16_t pipeline_tag_index(size_t i) const { return pipeline_tag_[i]; }
  size_t pipeline_tag_count() const { return pipeline_tags_.size(); }
  absl::string_view pipeline_tag_name(uint16_t index) const { return pipeline_tags_[index]; }
  // Index of a repo id, or -1. Builds the index on first use.
  int64_t Find(absl::string_view repo_id) const;

 private:
  friend absl::Status DecodeColumns(absl::string_view value, absl::string_view what,
                                    CrawlSnapshot* out, DedupColumns* dedup,
                                    RowMetaColumns* row_meta);

  absl::string_view Intern(absl::string_view s);
  // Every row column sized for `n` rows (parent_begin_ for n + 1).
  void ResizeRows(size_t n);
  // The tags of `parts` added to this snapshot's table: [part][its tag index] -> index here.
  std::vector<std::vector<uint16_t>> AdoptTags(const std::vector<CrawlSnapshot>& parts);
  // Takes every arena block of `parts` (the strings stay where they are); the parts are left
  // empty.
  void AdoptArenas(std::vector<CrawlSnapshot>* parts);
  // Room for `bytes` more in the arena's current block (a new block when it has not); where
  // they go. Intern(s) is Reserve + copy.
  char* ArenaRoom(size_t bytes);
  uint16_t TagIndex(absl::string_view tag);
  // Appends a row's columns; its parents were pushed just before.
  void AppendRow(absl::string_view id, int64_t created_at, bool created_at_placeholder,
                 const Counters& counters, absl::string_view pipeline_tag);

  // The columns are millions of elements each: their memory is asked for as huge pages
  // (common/huge_pages.h), as are the arena's 2 MB blocks.
  template <typename T>
  using Column = std::vector<T, HugePageAllocator<T>>;
  struct FreeBlock {
    void operator()(char* p) const { std::free(p); }
  };

  std::vector<std::unique_ptr<char[], FreeBlock>> arena_blocks_;
  size_t arena_used_ = 0;
  size_t arena_capacity_ = 0;

  Column<absl::string_view> ids_;
  Column<int64_t> created_at_;
  Column<uint8_t> created_at_placeholder_;
  Column<int64_t> downloads_30d_;
  Column<int64_t> downloads_all_time_;
  Column<uint8_t> has_downloads_all_time_;
  Column<int64_t> likes_;
  Column<uint16_t> pipeline_tag_;
  std::vector<std::string> pipeline_tags_ = {""};
  absl::flat_hash_map<std::string, uint16_t> pipeline_tag_index_;
  Column<uint32_t> parent_begin_ = Column<uint32_t>(1, 0);
  Column<absl::string_view> parent_ids_;
  Column<uint8_t> parent_relations_;
  mutable std::unique_ptr<absl::flat_hash_map<absl::string_view, int64_t>> index_;
};

}  // namespace hubcensus::store

#endif  // HUBCENSUS_STORE_CRAWL_SNAPSHOT_H_
