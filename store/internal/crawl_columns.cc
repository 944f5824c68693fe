#include "store/internal/crawl_columns.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "store/internal/store_encoding.h"

namespace hubcensus::store {
namespace {

// The layout of a column value: a header, then one section per column (varint byte length +
// bytes), so that each column is read with its own cursor.
//   byte kFormatVersion, byte flags (kDedupFlag), varint seen_sequence, varint rows,
//   varint tags, tags x (varint length, bytes)
//   ids:        per row varint bytes shared with the previous id, varint suffix length, suffix
//   created_at: per row zigzag varint
//   flags:      per row one byte (kPlaceholderBit, kHasDownloadsAllTimeBit)
//   tags:       per row varint index into the header's tags (0: none)
//   counters:   per row zigzag varints downloads_30d, [downloads_all_time,] likes
//   parent counts: per row varint
//   parents:    per parent varint length, id bytes, one relation byte
//   dedup (page chunks only): per row varint length, object id bytes, zigzag last_modified
//   row meta (kRowMetaFlag only): per row varint meta version, varint of the trending score's
//     IEEE bits byte-swapped (0.0 is one byte)
constexpr char kFormatVersion = 1;
constexpr uint8_t kDedupFlag = 1;
constexpr uint8_t kRowMetaFlag = 2;
constexpr uint8_t kPlaceholderBit = 1;
constexpr uint8_t kHasDownloadsAllTimeBit = 2;
constexpr int kSections = 8;

constexpr char kColumnsMark = '\xff';

void PutBytes(std::string* out, absl::string_view bytes) {
  PutVarint(out, bytes.size());
  out->append(bytes.data(), bytes.size());
}

bool GetBytes(absl::string_view* in, absl::string_view* bytes) {
  uint64_t n = 0;
  if (!GetVarint(in, &n) || n > in->size()) return false;
  *bytes = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

bool GetSigned(absl::string_view* in, int64_t* v) {
  uint64_t u = 0;
  if (!GetVarint(in, &u)) return false;
  *v = UnZigZag(u);
  return true;
}

}  // namespace

uint64_t ObjectIdHash(absl::string_view object_id) {
  if (object_id.empty()) return 0;
  uint64_t h = Fnv1a64(object_id);
  return h == 0 ? 1 : h;
}

std::string ColumnsCrawlPrefix(uint32_t crawl_number) {
  std::string k(1, kColumnsMark);
  PutBigEndian32(&k, crawl_number);
  return k;
}

std::string PageChunkKey(uint32_t crawl_number, absl::string_view item_id, uint64_t fence) {
  std::string k = PageChunksBegin(crawl_number);
  k.append(item_id.data(), item_id.size());
  k.push_back('\0');
  PutBigEndian64(&k, fence);
  return k;
}

std::string PageChunksBegin(uint32_t crawl_number) {
  return ColumnsCrawlPrefix(crawl_number) + "p";
}
std::string PageChunksEnd(uint32_t crawl_number) { return ColumnsCrawlPrefix(crawl_number) + "q"; }

std::string CommittedPartKey(uint32_t crawl_number, uint32_t part) {
  std::string k = ColumnsCrawlPrefix(crawl_number) + "c";
  PutBigEndian32(&k, part);
  return k;
}

std::string CommittedPartIndexKey(uint32_t crawl_number) {
  return ColumnsCrawlPrefix(crawl_number) + "i";
}

std::string EncodePartIndex(const std::vector<std::string>& first_ids) {
  std::string out;
  PutVarint(&out, first_ids.size());
  for (const std::string& id : first_ids) PutBytes(&out, id);
  return out;
}

absl::Status DecodePartIndex(absl::string_view value, absl::string_view what,
                             std::vector<std::string>* first_ids) {
  first_ids->clear();
  uint64_t count = 0;
  if (!GetVarint(&value, &count) || count > value.size()) {
    return absl::DataLossError(absl::StrCat(what, " is corrupt: its count"));
  }
  for (uint64_t i = 0; i < count; ++i) {
    absl::string_view id;
    if (!GetBytes(&value, &id) || (i > 0 && id <= first_ids->back())) {
      return absl::DataLossError(absl::StrCat(what, " is corrupt at id ", i));
    }
    first_ids->emplace_back(id);
  }
  if (!value.empty()) return absl::DataLossError(absl::StrCat(what, " is corrupt: trailing bytes"));
  return absl::OkStatus();
}

std::string ColumnsBegin() { return std::string(1, kColumnsMark); }
std::string ColumnsEnd() { return std::string(6, kColumnsMark); }

void ColumnWriter::AddParent(absl::string_view parent_id, uint8_t relation) {
  PutBytes(&parents_, parent_id);
  parents_.push_back(static_cast<char>(relation));
  ++parents_of_next_row_;
}

uint32_t ColumnWriter::TagNumber(absl::string_view pipeline_tag) {
  if (pipeline_tag.empty()) return 0;
  auto it = std::find_if(tag_index_.begin(), tag_index_.end(),
                         [&](const auto& e) { return e.first == pipeline_tag; });
  if (it != tag_index_.end()) return it->second;
  tags_.emplace_back(pipeline_tag);
  const uint32_t tag = static_cast<uint32_t>(tags_.size());
  tag_index_.emplace_back(std::string(pipeline_tag), tag);
  return tag;
}

void ColumnWriter::AddRow(absl::string_view id, int64_t created_at, bool created_at_placeholder,
                          absl::string_view pipeline_tag, const CrawlSnapshot::Counters& counters,
                          absl::string_view object_id, int64_t last_modified,
                          const RowMeta& row_meta) {
  AddNumberedRow(id, created_at, created_at_placeholder, TagNumber(pipeline_tag), counters,
                 object_id, last_modified, row_meta);
}

void ColumnWriter::AddNumberedRow(absl::string_view id, int64_t created_at,
                                  bool created_at_placeholder, uint32_t tag,
                                  const CrawlSnapshot::Counters& counters,
                                  absl::string_view object_id, int64_t last_modified,
                                  const RowMeta& row_meta) {
  size_t shared = 0;
  const size_t max_shared = std::min(id.size(), last_id_.size());
  while (shared < max_shared && id[shared] == last_id_[shared]) ++shared;
  PutVarint(&ids_, shared);
  PutBytes(&ids_, id.substr(shared));
  last_id_.assign(id.data(), id.size());
  PutVarint(&created_at_, ZigZag(created_at));
  flags_.push_back(
      static_cast<char>((created_at_placeholder ? kPlaceholderBit : 0) |
                        (counters.has_downloads_all_time ? kHasDownloadsAllTimeBit : 0)));
  PutVarint(&tag_column_, tag);
  PutVarint(&counters_, ZigZag(counters.downloads_30d));
  if (counters.has_downloads_all_time) PutVarint(&counters_, ZigZag(counters.downloads_all_time));
  PutVarint(&counters_, ZigZag(counters.likes));
  PutVarint(&parent_counts_, parents_of_next_row_);
  parents_of_next_row_ = 0;
  if (dedup_) {
    PutBytes(&dedup_column_, object_id);
    PutVarint(&dedup_column_, ZigZag(last_modified));
  }
  if (row_meta_) {
    PutVarint(&row_meta_column_, row_meta.meta_version);
    uint64_t bits = 0;
    static_assert(sizeof bits == sizeof row_meta.trending_score);
    std::memcpy(&bits, &row_meta.trending_score, sizeof bits);
    // The sign and exponent are the high bytes: swapped low, a round score takes a few bytes.
    PutVarint(&row_meta_column_, __builtin_bswap64(bits));
  }
  ++rows_;
}

void ColumnWriter::AddRepo(const v1::RepoSnapshot& repo, uint32_t meta_version) {
  for (const v1::Parent& p : repo.parents()) AddParent(p.id(), static_cast<uint8_t>(p.relation()));
  CrawlSnapshot::Counters counters;
  counters.downloads_30d = repo.downloads_30d();
  counters.has_downloads_all_time = repo.has_downloads_all_time();
  counters.downloads_all_time = repo.downloads_all_time();
  counters.likes = repo.likes();
  AddRow(repo.id(), repo.created_at(), repo.created_at_placeholder(), repo.pipeline_tag(), counters,
         repo.object_id(), repo.last_modified(), RowMeta{meta_version, repo.trending_score()});
}

void ColumnWriter::AddSnapshotRow(const CrawlSnapshot& s, size_t i, absl::string_view object_id,
                                  int64_t last_modified, const RowMeta& row_meta) {
  for (int k = 0; k < s.parent_count(i); ++k) {
    AddParent(s.parent_id(i, k), static_cast<uint8_t>(s.parent_relation(i, k)));
  }
  CrawlSnapshot::Counters counters;
  counters.downloads_30d = s.downloads_30d(i);
  counters.has_downloads_all_time = s.has_downloads_all_time(i);
  counters.downloads_all_time = s.downloads_all_time(i);
  counters.likes = s.likes(i);
  // The snapshot numbers its tags already: each is looked up here once, not once a row.
  const uint16_t snapshot_tag = s.pipeline_tag_index(i);
  if (snapshot_tag >= tag_of_snapshot_tag_.size()) {
    tag_of_snapshot_tag_.resize(s.pipeline_tag_count(), kUnnumbered);
  }
  uint32_t& tag = tag_of_snapshot_tag_[snapshot_tag];
  if (tag == kUnnumbered) tag = TagNumber(s.pipeline_tag_name(snapshot_tag));
  AddNumberedRow(s.id(i), s.created_at(i), s.created_at_placeholder(i), tag, counters, object_id,
                 last_modified, row_meta);
}

std::string ColumnWriter::Finish(uint64_t seen_sequence) {
  std::string out;
  out.push_back(kFormatVersion);
  out.push_back(static_cast<char>((dedup_ ? kDedupFlag : 0) | (row_meta_ ? kRowMetaFlag : 0)));
  PutVarint(&out, seen_sequence);
  PutVarint(&out, rows_);
  PutVarint(&out, tags_.size());
  for (const std::string& tag : tags_) PutBytes(&out, tag);
  for (const std::string* section : {&ids_, &created_at_, &flags_, &tag_column_, &counters_,
                                     &parent_counts_, &parents_, &dedup_column_}) {
    PutBytes(&out, *section);
  }
  if (row_meta_) PutBytes(&out, row_meta_column_);
  return out;
}

bool HasRowMeta(absl::string_view value) {
  return value.size() >= 2 && value[0] == kFormatVersion &&
         (static_cast<uint8_t>(value[1]) & kRowMetaFlag) != 0;
}

absl::Status DecodeColumns(absl::string_view value, absl::string_view what, CrawlSnapshot* out,
                           DedupColumns* dedup, RowMetaColumns* row_meta) {
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(what, " is corrupt: ", why));
  };
  absl::string_view in = value;
  if (in.size() < 2) return corrupt("truncated header");
  if (in[0] != kFormatVersion) {
    return corrupt(absl::StrCat("unknown format version ", static_cast<int>(in[0])));
  }
  const uint8_t value_flags = static_cast<uint8_t>(in[1]);
  if ((value_flags & ~(kDedupFlag | kRowMetaFlag)) != 0) {
    return corrupt(absl::StrCat("unknown flags ", static_cast<int>(value_flags)));
  }
  const bool has_dedup = (value_flags & kDedupFlag) != 0;
  const bool has_row_meta = (value_flags & kRowMetaFlag) != 0;
  in.remove_prefix(2);
  uint64_t seen_sequence = 0, rows = 0, tag_count = 0;
  if (!GetVarint(&in, &seen_sequence) || !GetVarint(&in, &rows) || !GetVarint(&in, &tag_count)) {
    return corrupt("truncated header");
  }
  // Every row takes at least one byte in the flags column: a count beyond the value is a lie.
  if (rows > value.size() || tag_count > value.size()) return corrupt("impossible counts");
  std::vector<uint16_t> tag_of(tag_count + 1, 0);
  for (uint64_t t = 1; t <= tag_count; ++t) {
    absl::string_view tag;
    if (!GetBytes(&in, &tag)) return corrupt("truncated pipeline tags");
    tag_of[t] = out->PipelineTagIndex(tag);
  }
  absl::string_view sections[kSections];
  for (auto& section : sections) {
    if (!GetBytes(&in, &section)) return corrupt("truncated column");
  }
  absl::string_view row_meta_column;
  if (has_row_meta && !GetBytes(&in, &row_meta_column)) return corrupt("truncated column");
  if (!in.empty()) return corrupt("trailing bytes");
  auto& [ids, created, flags, tags, counters, parent_counts, parents, dedup_column] = sections;
  if (flags.size() != rows) return corrupt("the flags column does not match the row count");
  if (has_dedup != !dedup_column.empty() && rows > 0) {
    return corrupt("the de-duplication column does not match the flags");
  }
  if (dedup != nullptr && !has_dedup && rows > 0) {
    return corrupt("a committed part where a page chunk was expected");
  }
  if (has_row_meta != !row_meta_column.empty() && rows > 0) {
    return corrupt("the row meta column does not match the flags");
  }
  if (row_meta != nullptr && !has_row_meta && rows > 0) {
    return corrupt("no meta versions (written before they were kept)");
  }
  // Column by column, each into its own array: one tight loop a column.
  const size_t base = out->size();
  const size_t n = static_cast<size_t>(rows);
  out->index_.reset();
  out->ResizeRows(base + n);
  // Ids: each is the shared prefix of the one before plus its own suffix, built in the arena.
  absl::string_view previous;
  for (size_t row = 0; row < n; ++row) {
    uint64_t shared = 0;
    absl::string_view suffix;
    if (!GetVarint(&ids, &shared) || shared > previous.size() || !GetBytes(&ids, &suffix)) {
      return corrupt(absl::StrCat("ids column at row ", row));
    }
    const size_t size = shared + suffix.size();
    if (size == 0) return corrupt(absl::StrCat("empty id at row ", row));
    char* p = out->ArenaRoom(size);
    std::memmove(p, previous.data(), shared);
    std::memcpy(p + shared, suffix.data(), suffix.size());
    out->arena_used_ += size;
    previous = absl::string_view(p, size);
    out->ids_[base + row] = previous;
  }
  for (size_t row = 0; row < n; ++row) {
    int64_t created_at = 0;
    if (!GetSigned(&created, &created_at)) return corrupt("created_at column");
    out->created_at_[base + row] = created_at;
    const uint8_t f = static_cast<uint8_t>(flags[row]);
    out->created_at_placeholder_[base + row] = (f & kPlaceholderBit) != 0 ? 1 : 0;
    out->has_downloads_all_time_[base + row] = (f & kHasDownloadsAllTimeBit) != 0 ? 1 : 0;
  }
  for (size_t row = 0; row < n; ++row) {
    uint64_t tag = 0;
    if (!GetVarint(&tags, &tag) || tag > tag_count) return corrupt("pipeline tag column");
    out->pipeline_tag_[base + row] = tag_of[tag];
  }
  for (size_t row = 0; row < n; ++row) {
    int64_t d30 = 0, all_time = 0, likes = 0;
    if (!GetSigned(&counters, &d30) ||
        (out->has_downloads_all_time_[base + row] && !GetSigned(&counters, &all_time)) ||
        !GetSigned(&counters, &likes)) {
      return corrupt("counters column");
    }
    out->downloads_30d_[base + row] = d30;
    out->downloads_all_time_[base + row] = all_time;
    out->likes_[base + row] = likes;
  }
  uint32_t edge = out->parent_begin_[base];
  uint64_t edges = 0;
  for (size_t row = 0; row < n; ++row) {
    uint64_t count = 0;
    if (!GetVarint(&parent_counts, &count) || count > parents.size()) {
      return corrupt("parent counts column");
    }
    edges += count;
    // Every parent takes at least two bytes (a length and a relation).
    if (edges > parents.size()) return corrupt("parent counts column");
    edge += static_cast<uint32_t>(count);
    out->parent_begin_[base + row + 1] = edge;
  }
  for (uint64_t k = 0; k < edges; ++k) {
    absl::string_view parent_id;
    if (!GetBytes(&parents, &parent_id) || parents.empty()) return corrupt("parents column");
    out->parent_ids_.push_back(out->Intern(parent_id));
    out->parent_relations_.push_back(static_cast<uint8_t>(parents[0]));
    parents.remove_prefix(1);
  }
  if (has_dedup) {
    for (size_t row = 0; row < n; ++row) {
      absl::string_view object_id;
      int64_t last_modified = 0;
      if (!GetBytes(&dedup_column, &object_id) || !GetSigned(&dedup_column, &last_modified)) {
        return corrupt("object id column");
      }
      if (dedup == nullptr) continue;
      if (dedup->hashes_only) {
        dedup->object_id_hash.push_back(ObjectIdHash(object_id));
        continue;
      }
      dedup->last_modified.push_back(last_modified);
      dedup->object_id_bytes.append(object_id.data(), object_id.size());
      dedup->object_id_end.push_back(static_cast<uint32_t>(dedup->object_id_bytes.size()));
    }
  }
  if (row_meta != nullptr) {
    for (size_t row = 0; row < n; ++row) {
      uint64_t version = 0, bits = 0;
      if (!GetVarint(&row_meta_column, &version) || version > UINT32_MAX ||
          !GetVarint(&row_meta_column, &bits)) {
        return corrupt("row meta column");
      }
      bits = __builtin_bswap64(bits);
      double trending = 0;
      std::memcpy(&trending, &bits, sizeof trending);
      row_meta->meta_version.push_back(static_cast<uint32_t>(version));
      row_meta->trending_score.push_back(trending);
    }
  } else {
    row_meta_column = {};  // not asked for: not read
  }
  if (dedup != nullptr) {
    const size_t before = dedup->rows();
    dedup->page_seen_sequence.push_back(seen_sequence);
    dedup->page_end.push_back(static_cast<uint32_t>(before + n));
  }
  for (const auto& left :
       {ids, created, tags, counters, parent_counts, parents, dedup_column, row_meta_column}) {
    if (!left.empty()) return corrupt("a column longer than its rows");
  }
  return absl::OkStatus();
}

}  // namespace hubcensus::store
