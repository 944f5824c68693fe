// Hand-built crawls for the aggregator tests: repos with parents, downloads and dates, as
// RepoSnapshots and as an in-memory CrawlSnapshot.
#ifndef HUBCENSUS_TESTS_AGGREGATOR_CRAWL_BUILDER_H_
#define HUBCENSUS_TESTS_AGGREGATOR_CRAWL_BUILDER_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/dates.h"
#include "hubcensus/v1/repo.pb.h"
#include "store/crawl_snapshot.h"

namespace hubcensus::testing {

struct RepoSpec {
  std::string id;
  std::vector<std::pair<std::string, v1::Relation>> parents = {};
  std::optional<int64_t> downloads_all_time = 100;
  int64_t downloads_30d = 10;
  std::string created = "2025-03-01T00:00:00.000Z";
  std::string pipeline_tag = "text-generation";
};

inline v1::RepoSnapshot MakeRepo(const RepoSpec& spec) {
  v1::RepoSnapshot r;
  r.set_id(spec.id);
  auto slash = spec.id.find('/');
  r.set_author(slash == std::string::npos ? "" : spec.id.substr(0, slash));
  r.set_object_id("0123456789abcdef01234567");
  auto created = ParseHubTimestamp(spec.created);
  r.set_created_at(created.ok() ? *created : 0);
  r.set_last_modified(r.created_at() + 3600);
  r.set_downloads_30d(spec.downloads_30d);
  if (spec.downloads_all_time.has_value()) r.set_downloads_all_time(*spec.downloads_all_time);
  r.set_likes(3);
  r.set_pipeline_tag(spec.pipeline_tag);
  r.set_library_name("transformers");
  r.set_sha("c38364dbff0607b3a2a233f82b5bc893218775b8");
  for (const auto& [id, relation] : spec.parents) {
    auto* p = r.add_parents();
    p->set_id(id);
    p->set_relation(relation);
  }
  return r;
}

// Sorted by id, as the store returns a crawl.
inline store::CrawlSnapshot MakeSnapshot(std::vector<RepoSpec> specs) {
  std::sort(specs.begin(), specs.end(),
            [](const RepoSpec& a, const RepoSpec& b) { return a.id < b.id; });
  store::CrawlSnapshot snap;
  for (const auto& s : specs) snap.Add(MakeRepo(s));
  return snap;
}

constexpr v1::Relation kFinetune = v1::RELATION_FINETUNE;
constexpr v1::Relation kAdapter = v1::RELATION_ADAPTER;
constexpr v1::Relation kQuantized = v1::RELATION_QUANTIZED;
constexpr v1::Relation kMerge = v1::RELATION_MERGE;
constexpr v1::Relation kUnknown = v1::RELATION_UNKNOWN;

}  // namespace hubcensus::testing

#endif  // HUBCENSUS_TESTS_AGGREGATOR_CRAWL_BUILDER_H_
