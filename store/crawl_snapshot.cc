#include "store/crawl_snapshot.h"

#include <algorithm>
#include <cstring>

namespace hubcensus::store {

namespace {
constexpr size_t kArenaBlock = 1 << 20;
}  // namespace

absl::string_view CrawlSnapshot::Intern(absl::string_view s) {
  if (s.empty()) return absl::string_view();
  if (arena_used_ + s.size() > arena_capacity_) {
    size_t size = std::max(kArenaBlock, s.size());
    arena_blocks_.push_back(std::make_unique<char[]>(size));
    arena_used_ = 0;
    arena_capacity_ = size;
  }
  char* p = arena_blocks_.back().get() + arena_used_;
  std::memcpy(p, s.data(), s.size());
  arena_used_ += s.size();
  return absl::string_view(p, s.size());
}

void CrawlSnapshot::Reserve(size_t repos) {
  ids_.reserve(repos);
  created_at_.reserve(repos);
  downloads_30d_.reserve(repos);
  downloads_all_time_.reserve(repos);
  has_downloads_all_time_.reserve(repos);
  likes_.reserve(repos);
  pipeline_tag_.reserve(repos);
  parent_begin_.reserve(repos + 1);
}

void CrawlSnapshot::Add(const v1::RepoSnapshot& repo) {
  index_.reset();
  ids_.push_back(Intern(repo.id()));
  created_at_.push_back(repo.created_at());
  downloads_30d_.push_back(repo.downloads_30d());
  has_downloads_all_time_.push_back(repo.has_downloads_all_time() ? 1 : 0);
  downloads_all_time_.push_back(repo.has_downloads_all_time() ? repo.downloads_all_time() : 0);
  likes_.push_back(repo.likes());
  uint16_t tag = 0;
  if (!repo.pipeline_tag().empty()) {
    auto it = pipeline_tag_index_.find(repo.pipeline_tag());
    if (it != pipeline_tag_index_.end()) {
      tag = it->second;
    } else if (pipeline_tags_.size() < 65535) {
      tag = static_cast<uint16_t>(pipeline_tags_.size());
      pipeline_tags_.push_back(repo.pipeline_tag());
      pipeline_tag_index_.emplace(repo.pipeline_tag(), tag);
    }
  }
  pipeline_tag_.push_back(tag);
  for (const v1::Parent& p : repo.parents()) {
    parent_ids_.push_back(Intern(p.id()));
    parent_relations_.push_back(static_cast<uint8_t>(p.relation()));
  }
  parent_begin_.push_back(static_cast<uint32_t>(parent_ids_.size()));
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
