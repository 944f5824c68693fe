#include "store/crawl_snapshot.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/parallel.h"
#include "store/internal/repo_meta.h"
#include "store/internal/store_encoding.h"

namespace hubcensus::store {

namespace {
// The arena's blocks double from 64 KB (a snapshot of a few repos stays small) up to a huge page.
constexpr size_t kFirstArenaBlock = 64 << 10;

// The fields of hubcensus.v1.RepoMeta and Parent that the columns hold.
constexpr uint32_t kObjectIdField = v1::RepoMeta::kObjectIdFieldNumber;
constexpr uint32_t kCreatedAtField = v1::RepoMeta::kCreatedAtFieldNumber;
constexpr uint32_t kCreatedAtPlaceholderField = v1::RepoMeta::kCreatedAtPlaceholderFieldNumber;
constexpr uint32_t kPipelineTagField = v1::RepoMeta::kPipelineTagFieldNumber;
constexpr uint32_t kParentsField = v1::RepoMeta::kParentsFieldNumber;
constexpr uint32_t kParentIdField = v1::Parent::kIdFieldNumber;
constexpr uint32_t kParentRelationField = v1::Parent::kRelationFieldNumber;

}  // namespace

char* CrawlSnapshot::ArenaRoom(size_t bytes) {
  if (arena_used_ + bytes > arena_capacity_) {
    const size_t next =
        arena_capacity_ == 0 ? kFirstArenaBlock : std::min(kHugePage, 2 * arena_capacity_);
    const size_t size = std::max(next, bytes);
    arena_blocks_.emplace_back(static_cast<char*>(AllocateHugePages(size)));
    arena_used_ = 0;
    arena_capacity_ = size;
  }
  return arena_blocks_.back().get() + arena_used_;
}

absl::string_view CrawlSnapshot::Intern(absl::string_view s) {
  if (s.empty()) return absl::string_view();
  char* p = ArenaRoom(s.size());
  std::memcpy(p, s.data(), s.size());
  arena_used_ += s.size();
  return absl::string_view(p, s.size());
}

void CrawlSnapshot::Reserve(size_t repos) {
  ids_.reserve(repos);
  created_at_.reserve(repos);
  created_at_placeholder_.reserve(repos);
  downloads_30d_.reserve(repos);
  downloads_all_time_.reserve(repos);
  has_downloads_all_time_.reserve(repos);
  likes_.reserve(repos);
  pipeline_tag_.reserve(repos);
  parent_begin_.reserve(repos + 1);
}

uint16_t CrawlSnapshot::TagIndex(absl::string_view tag) {
  if (tag.empty()) return 0;
  auto it = pipeline_tag_index_.find(tag);
  if (it != pipeline_tag_index_.end()) return it->second;
  if (pipeline_tags_.size() >= 65535) return 0;  // more distinct tags than the Hub has: unknown
  uint16_t index = static_cast<uint16_t>(pipeline_tags_.size());
  pipeline_tags_.emplace_back(tag);
  pipeline_tag_index_.emplace(std::string(tag), index);
  return index;
}

void CrawlSnapshot::Add(const v1::RepoSnapshot& repo) {
  for (const v1::Parent& p : repo.parents()) {
    parent_ids_.push_back(Intern(p.id()));
    parent_relations_.push_back(static_cast<uint8_t>(p.relation()));
  }
  Counters counters;
  counters.downloads_30d = repo.downloads_30d();
  counters.has_downloads_all_time = repo.has_downloads_all_time();
  counters.downloads_all_time = repo.downloads_all_time();
  counters.likes = repo.likes();
  AppendRow(repo.id(), repo.created_at(), repo.created_at_placeholder(), counters,
            repo.pipeline_tag());
}

void CrawlSnapshot::AppendRow(absl::string_view id, int64_t created_at, bool created_at_placeholder,
                              const Counters& counters, absl::string_view pipeline_tag) {
  AddRow(id, created_at, created_at_placeholder, counters, TagIndex(pipeline_tag));
}

void CrawlSnapshot::AddParent(absl::string_view parent_id, uint8_t relation) {
  parent_ids_.push_back(Intern(parent_id));
  parent_relations_.push_back(relation);
}

void CrawlSnapshot::AddRow(absl::string_view id, int64_t created_at, bool created_at_placeholder,
                           const Counters& counters, uint16_t pipeline_tag_index) {
  index_.reset();
  ids_.push_back(Intern(id));
  created_at_.push_back(created_at);
  created_at_placeholder_.push_back(created_at_placeholder ? 1 : 0);
  downloads_30d_.push_back(counters.downloads_30d);
  has_downloads_all_time_.push_back(counters.has_downloads_all_time ? 1 : 0);
  downloads_all_time_.push_back(counters.has_downloads_all_time ? counters.downloads_all_time : 0);
  likes_.push_back(counters.likes);
  pipeline_tag_.push_back(pipeline_tag_index < pipeline_tags_.size() ? pipeline_tag_index : 0);
  parent_begin_.push_back(static_cast<uint32_t>(parent_ids_.size()));
}

void CrawlSnapshot::ResizeRows(size_t n) {
  ids_.resize(n);
  created_at_.resize(n);
  created_at_placeholder_.resize(n);
  downloads_30d_.resize(n);
  downloads_all_time_.resize(n);
  has_downloads_all_time_.resize(n);
  likes_.resize(n);
  pipeline_tag_.resize(n);
  parent_begin_.resize(n + 1);
}

std::vector<std::vector<uint16_t>> CrawlSnapshot::AdoptTags(
    const std::vector<CrawlSnapshot>& parts) {
  std::vector<std::vector<uint16_t>> tag_of(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    for (const std::string& tag : parts[p].pipeline_tags_) tag_of[p].push_back(TagIndex(tag));
  }
  return tag_of;
}

void CrawlSnapshot::AdoptArenas(std::vector<CrawlSnapshot>* parts) {
  for (CrawlSnapshot& part : *parts) {
    for (auto& block : part.arena_blocks_) arena_blocks_.push_back(std::move(block));
    part = CrawlSnapshot();
  }
  // Anything added later goes to a block of its own.
  arena_used_ = arena_capacity_ = 0;
}

CrawlSnapshot CrawlSnapshot::TakeRows(const std::vector<uint32_t>& rows) && {
  std::vector<CrawlSnapshot> parts;
  parts.push_back(std::move(*this));
  *this = CrawlSnapshot();
  return TakeRows(std::move(parts), rows);
}

CrawlSnapshot CrawlSnapshot::TakeRows(std::vector<CrawlSnapshot>&& parts,
                                      const std::vector<uint32_t>& rows, size_t threads) {
  CrawlSnapshot out;
  // Where each row comes from: its part and its index there.
  std::vector<uint32_t> base = {0};
  for (const CrawlSnapshot& part : parts) {
    base.push_back(base.back() + static_cast<uint32_t>(part.size()));
  }
  const std::vector<std::vector<uint16_t>> tag_of = out.AdoptTags(parts);
  const size_t n = rows.size();
  auto locate = [&base](uint32_t row) {
    size_t p = 0;
    while (row >= base[p + 1]) ++p;
    return std::make_pair(p, row - base[p]);
  };
  out.ResizeRows(n);
  const size_t ranges = std::max<size_t>(1, std::min(threads, n / 65536 + 1));
  // Column by column, each part's column freed once gathered: the peak holds the parts and one
  // sorted column, not the parts and a whole sorted copy (a 2.2M-repo commit's peak memory).
  auto gather = [&](auto member, auto convert) {
    auto& to = out.*member;
    ForEachRange(n, ranges, [&](size_t, size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) {
        const auto [p, r] = locate(rows[i]);
        to[i] = convert(p, (parts[p].*member)[r]);
      }
    });
    for (CrawlSnapshot& part : parts) std::decay_t<decltype(to)>().swap(part.*member);
  };
  auto same = [](size_t, auto v) { return v; };
  gather(&CrawlSnapshot::ids_, same);
  gather(&CrawlSnapshot::created_at_, same);
  gather(&CrawlSnapshot::created_at_placeholder_, same);
  gather(&CrawlSnapshot::downloads_30d_, same);
  gather(&CrawlSnapshot::downloads_all_time_, same);
  gather(&CrawlSnapshot::has_downloads_all_time_, same);
  gather(&CrawlSnapshot::likes_, same);
  gather(&CrawlSnapshot::pipeline_tag_,
         [&tag_of](size_t p, uint16_t tag) { return tag_of[p][tag]; });
  // Each row's parent count, made offsets below.
  ForEachRange(n, ranges, [&](size_t, size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const auto [p, r] = locate(rows[i]);
      const CrawlSnapshot& from = parts[p];
      out.parent_begin_[i + 1] = from.parent_begin_[r + 1] - from.parent_begin_[r];
    }
  });
  for (size_t i = 0; i < n; ++i) out.parent_begin_[i + 1] += out.parent_begin_[i];
  const size_t edges = out.parent_begin_[n];
  out.parent_ids_.resize(edges);
  out.parent_relations_.resize(edges);
  ForEachRange(n, ranges, [&](size_t, size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const auto [p, r] = locate(rows[i]);
      const CrawlSnapshot& from = parts[p];
      const uint32_t src = from.parent_begin_[r], dst = out.parent_begin_[i];
      const uint32_t count = out.parent_begin_[i + 1] - dst;
      for (uint32_t k = 0; k < count; ++k) {
        out.parent_ids_[dst + k] = from.parent_ids_[src + k];
        out.parent_relations_[dst + k] = from.parent_relations_[src + k];
      }
    }
  });
  out.AdoptArenas(&parts);
  return out;
}

absl::Status CrawlSnapshot::AddStored(absl::string_view id, const Counters& counters,
                                      absl::string_view meta, absl::string_view* object_id) {
  if (object_id != nullptr) *object_id = absl::string_view();
  // Protobuf's rules: the last occurrence of a scalar wins, repeated fields append, fields of an
  // unexpected wire type are unknown fields and skipped.
  int64_t created_at = 0;
  bool created_at_placeholder = false;
  absl::string_view tag;
  const size_t parents_before = parent_ids_.size();
  auto corrupt = [&](absl::string_view what) {
    parent_ids_.resize(parents_before);
    parent_relations_.resize(parents_before);
    return absl::DataLossError(absl::StrCat("repo_meta of ", id, " is corrupt: ", what));
  };
  absl::string_view in = meta;
  WireField f;
  while (!in.empty()) {
    if (!NextWireField(&in, &f)) return corrupt("a malformed field");
    if (f.number == kCreatedAtField && f.type == kVarint) {
      created_at = static_cast<int64_t>(f.varint);
    } else if (f.number == kCreatedAtPlaceholderField && f.type == kVarint) {
      created_at_placeholder = f.varint != 0;
    } else if (f.number == kPipelineTagField && f.type == kLengthDelimited) {
      tag = f.bytes;
    } else if (f.number == kObjectIdField && f.type == kLengthDelimited) {
      if (object_id != nullptr) *object_id = f.bytes;
    } else if (f.number == kParentsField && f.type == kLengthDelimited) {
      absl::string_view parent_id;
      int32_t relation = 0;
      absl::string_view p = f.bytes;
      WireField pf;
      while (!p.empty()) {
        if (!NextWireField(&p, &pf)) return corrupt("a malformed parent");
        if (pf.number == kParentIdField && pf.type == kLengthDelimited) {
          parent_id = pf.bytes;
        } else if (pf.number == kParentRelationField && pf.type == kVarint) {
          relation = static_cast<int32_t>(pf.varint);
        }
      }
      parent_ids_.push_back(Intern(parent_id));
      parent_relations_.push_back(static_cast<uint8_t>(relation));
    }
  }
  AppendRow(id, created_at, created_at_placeholder, counters, tag);
  return absl::OkStatus();
}

CrawlSnapshot CrawlSnapshot::Concat(std::vector<CrawlSnapshot>&& parts, size_t threads) {
  CrawlSnapshot out;
  if (parts.empty()) return out;
  if (parts.size() == 1) {
    out = std::move(parts[0]);
    parts[0] = CrawlSnapshot();
    return out;
  }
  // Where each part's rows and parent edges start in the result.
  std::vector<size_t> row_base = {0}, edge_base = {0};
  const std::vector<std::vector<uint16_t>> tag_of = out.AdoptTags(parts);
  for (const CrawlSnapshot& part : parts) {
    row_base.push_back(row_base.back() + part.size());
    edge_base.push_back(edge_base.back() + part.parent_ids_.size());
  }
  const size_t n = row_base.back(), edges = edge_base.back();
  out.ResizeRows(n);
  out.parent_begin_[n] = static_cast<uint32_t>(edges);
  out.parent_ids_.resize(edges);
  out.parent_relations_.resize(edges);
  ForEachRange(
      parts.size(), std::min(threads, parts.size()), [&](size_t, size_t begin, size_t end) {
        for (size_t p = begin; p < end; ++p) {
          const CrawlSnapshot& from = parts[p];
          const size_t at = row_base[p];
          auto copy = [at](const auto& src, auto& dst) {
            std::copy(src.begin(), src.end(), dst.begin() + at);
          };
          copy(from.ids_, out.ids_);
          copy(from.created_at_, out.created_at_);
          copy(from.created_at_placeholder_, out.created_at_placeholder_);
          copy(from.downloads_30d_, out.downloads_30d_);
          copy(from.downloads_all_time_, out.downloads_all_time_);
          copy(from.has_downloads_all_time_, out.has_downloads_all_time_);
          copy(from.likes_, out.likes_);
          for (size_t i = 0; i < from.size(); ++i) {
            out.pipeline_tag_[at + i] = tag_of[p][from.pipeline_tag_[i]];
            out.parent_begin_[at + i] = static_cast<uint32_t>(edge_base[p] + from.parent_begin_[i]);
          }
          std::copy(from.parent_ids_.begin(), from.parent_ids_.end(),
                    out.parent_ids_.begin() + edge_base[p]);
          std::copy(from.parent_relations_.begin(), from.parent_relations_.end(),
                    out.parent_relations_.begin() + edge_base[p]);
        }
      });
  out.AdoptArenas(&parts);
  return out;
}

CrawlSnapshot CrawlSnapshot::Without(const std::vector<bool>& drop) const {
  CrawlSnapshot out;
  out.Reserve(size());
  for (size_t i = 0; i < size(); ++i) {
    if (i < drop.size() && drop[i]) continue;
    for (int k = 0; k < parent_count(i); ++k) {
      out.parent_ids_.push_back(out.Intern(parent_id(i, k)));
      out.parent_relations_.push_back(parent_relations_[parent_begin_[i] + k]);
    }
    Counters counters;
    counters.downloads_30d = downloads_30d(i);
    counters.has_downloads_all_time = has_downloads_all_time(i);
    counters.downloads_all_time = downloads_all_time(i);
    counters.likes = likes(i);
    out.AppendRow(id(i), created_at(i), created_at_placeholder(i), counters, pipeline_tag(i));
  }
  return out;
}

int64_t CrawlSnapshot::Find(absl::string_view repo_id) const {
  if (index_ == nullptr) {
    index_ = std::make_unique<absl::flat_hash_map<absl::string_view, int64_t>>();
    index_->reserve(ids_.size());
    for (size_t i = 0; i < ids_.size(); ++i) index_->emplace(ids_[i], static_cast<int64_t>(i));
  }
  auto it = index_->find(repo_id);
  return it == index_->end() ? -1 : it->second;
}

}  // namespace hubcensus::store
