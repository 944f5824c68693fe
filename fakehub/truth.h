// Ground truth: the metrics of shared/design.md for one date, computed from what the simulator
// itself knows (the parent edges it created, which repos are listed), by code that shares
// nothing with the aggregator's lineage resolution, so a crawl plus aggregation can be checked.
#ifndef HUBCENSUS_FAKEHUB_TRUTH_H_
#define HUBCENSUS_FAKEHUB_TRUTH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "hubcensus/v1/config.pb.h"

namespace hubcensus::fakehub {

enum class Relation : uint8_t { kFinetune = 0, kAdapter, kQuantized, kMerge, kUnknown };
inline constexpr const char* kRelationNames[] = {"finetune", "adapter", "quantized", "merge",
                                                 "unknown"};

// The repos listed at one date, reduced to what the metrics read: the ground truth's graph, built
// from the generator's own edges (aggregator::LineageGraph is the one built from crawled tags). A
// parent reference is a node
// (>= 0) or a parent missing from the listing: -1 when its namespace belongs to no family,
// else -2 - family.
struct TruthGraph {
  std::string date;                         // YYYY-MM-DD
  int date_month = 0;                       // year * 12 + month - 1 of `date`
  std::vector<int16_t> first_party;         // family index or -1, per node
  std::vector<int64_t> downloads_all_time;  // 0 when absent
  std::vector<uint8_t> has_all_time;
  std::vector<int64_t> downloads_30d;
  std::vector<int32_t> created_month;  // year * 12 + month - 1 (UTC createdAt), or:
  // A placeholder createdAt (2022-03-02T23:29:04.000Z or :05.000Z): counted in every sum,
  // new in no month.
  static constexpr int32_t kPlaceholderMonth = -1;
  std::vector<uint8_t> share_pipeline;  // pipeline_tag passes the new-model filter
  std::vector<uint8_t> first_relation;  // Relation of the first parent edge
  std::vector<uint32_t> parent_begin;   // size nodes + 1
  std::vector<int32_t> parents;

  static int32_t MissingParent(int family) { return family < 0 ? -1 : -2 - family; }
  size_t size() const { return first_party.size(); }
  void AddNode(int16_t fp, bool has_all_time_value, int64_t all_time, int64_t d30, int32_t month,
               bool pipeline_ok, Relation relation) {
    first_party.push_back(fp);
    has_all_time.push_back(has_all_time_value ? 1 : 0);
    downloads_all_time.push_back(has_all_time_value ? all_time : 0);
    downloads_30d.push_back(d30);
    created_month.push_back(month);
    share_pipeline.push_back(pipeline_ok ? 1 : 0);
    first_relation.push_back(static_cast<uint8_t>(relation));
    if (parent_begin.empty()) parent_begin.push_back(0);
  }
  void AddParent(int32_t ref) { parents.push_back(ref); }
  void EndNode() { parent_begin.push_back(static_cast<uint32_t>(parents.size())); }
};

enum class TruthPolicy { kFirstParentNearest, kSplitNearest, kFirstParentRoot };
absl::StatusOr<TruthPolicy> ParseTruthPolicy(absl::string_view text);  // ""|first_parent|split|root

// {"families": <query families --format=json>, "shares": <query shares --format=json>}.
// `config` gives the families (file order), regions, the new-model filter and max steps.
std::string TruthJson(const TruthGraph& graph, const v1::FamilyConfig& config, TruthPolicy policy);

// "2025-10" for year * 12 + month - 1.
std::string MonthLabel(int month);

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_TRUTH_H_
