// Hand-built crawls for the aggregator tests: repos with parents, downloads and dates, as
// RepoSnapshots and as an in-memory CrawlSnapshot.
#ifndef HUBCENSUS_TESTS_AGGREGATOR_CRAWL_BUILDER_H_
#define HUBCENSUS_TESTS_AGGREGATOR_CRAWL_BUILDER_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/checksum.h"
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
  std::string object_id = "";  // empty: one derived from the id (unique per id)
};

// The Hub's placeholder createdAt values (hub-api.md): repos older than its creation dates.
inline bool IsPlaceholderCreatedAt(const std::string& created) {
  return created == "2022-03-02T23:29:04.000Z" || created == "2022-03-02T23:29:05.000Z";
}

inline v1::RepoSnapshot MakeRepo(const RepoSpec& spec) {
  v1::RepoSnapshot r;
  r.set_id(spec.id);
  auto slash = spec.id.find('/');
  r.set_author(slash == std::string::npos ? "" : spec.id.substr(0, slash));
  // Distinct ids are distinct repos: the store de-duplicates by object id (_id).
  r.set_object_id(spec.object_id.empty()
                      ? absl::StrFormat("%08x%016x", 0x65000000u, Fnv1a64(spec.id))
                      : spec.object_id);
  auto created = ParseHubTimestamp(spec.created);
  r.set_created_at(created.ok() ? *created : 0);
  r.set_created_at_placeholder(IsPlaceholderCreatedAt(spec.created));
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
