// Lineage resolution (shared/design.md, "lineage family"): which family each repo of a crawl is
// built on, memoised over the whole crawl in one pass.
#ifndef HUBCENSUS_AGGREGATOR_LINEAGE_H_
#define HUBCENSUS_AGGREGATOR_LINEAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "config/family_config.h"
#include "hubcensus/v1/census.pb.h"
#include "hubcensus/v1/config.pb.h"
#include "store/crawl_snapshot.h"

namespace hubcensus::aggregator {

// The (id, parents, namespace) graph of one crawl. Nodes [0, repos) are the crawl's repos, in
// snapshot order; nodes from `repos` on are parents missing from the crawl (no parents of their
// own, classified by namespace only). It borrows the snapshot's parent offsets: use it only while
// the snapshot it was built from lives unchanged.
struct LineageGraph {
  int32_t repos = 0;
  std::vector<int32_t> first_party;         // per node: family index or -1
  absl::Span<const uint32_t> parent_begin;  // per repo node, plus one: parents in tag order
  std::vector<int32_t> parent_node;         // per parent edge: the node it names
  std::vector<std::string> missing_ids;     // node repos + k is missing_ids[k]

  int32_t nodes() const { return static_cast<int32_t>(first_party.size()); }
  int parent_count(int32_t node) const {
    return node < repos ? static_cast<int>(parent_begin[node + 1] - parent_begin[node]) : 0;
  }
  int32_t parent(int32_t node, int k) const { return parent_node[parent_begin[node] + k]; }
};

// `threads`: how many threads the pass over every repo may use; 0: one per core (see
// common/parallel.h), 1: the caller's only.
LineageGraph BuildLineageGraph(const store::CrawlSnapshot& snapshot, const FamilyMatcher& matcher,
                               int threads = 0);

// One family's part of a repo's attribution: 1 under FIRST_PARENT, a fraction under SPLIT.
struct FamilyShare {
  int32_t family;
  double weight;
};

// Resolves the lineage family of every repo of a graph under a LineageOptions policy.
//
// Semantics, for a walk that reached node x after d parent edges with the nodes before it S:
// - x in S (a cycle), or d > max_steps: contributes nothing;
// - NEAREST: x first-party for F gives {F: 1}; else a missing x or one without parents gives
//   nothing; else the parents' values, each weighted 1/k under SPLIT (the first alone otherwise);
// - ROOT: the parents' values as above; when x is first-party for F, whatever weight found no
//   farther first-party repo goes to F (the farthest first-party repo on the walk decides), but
//   weight whose walk ended in a cycle or went over max_steps is lost: such a walk has no family
//   even when it passed first-party repos (the definition fakehub's ground truth implements).
// Repos outside every cycle have a value that does not depend on how the walk reached them, so
// they are memoised; repos on a cycle are re-walked (exactly) from every entry.
//
// FIRST_PARENT walks are chains, so they are resolved without walking: each node's distance to
// the end of its chain and the family found there, one pass over the graph with a 4-byte word a
// node (a chain never comes near the work budget, so the result is the walk's).
class LineageResolver {
 public:
  LineageResolver(const LineageGraph& graph, const v1::LineageOptions& options);

  // Resolves every repo node. Afterwards Attribution(i) is valid for i < graph.repos.
  void ResolveAll();
  absl::Span<const FamilyShare> Attribution(int32_t repo) const {
    if (chains_) {
      const int32_t family = ChainFamily(chain_[repo]);
      return family < 0 ? absl::Span<const FamilyShare>()
                        : absl::MakeConstSpan(&whole_family_[family], 1);
    }
    return absl::MakeConstSpan(result_pool_.data() + result_begin_[repo],
                               result_begin_[repo + 1] - result_begin_[repo]);
  }
  // Repos whose resolution exceeded the work budget (pathological cyclic graphs): no family.
  int64_t over_budget() const { return over_budget_; }

 private:
  using Dist = std::vector<FamilyShare>;
  static constexpr int32_t kLost = -2;  // ROOT: weight of walks that ended in a cycle or too deep
  struct Visit {
    bool cut = false;  // depends on the depth it was reached at: not memoisable
    int reach = 0;     // deepest edge count walked below the node
  };
  Visit Walk(int32_t node, int depth, Dist* out);
  void FindCycles();
  void WalkAll();
  // FIRST_PARENT: a word per node, see lineage.cc. False when the families do not fit in it.
  bool ResolveChains();
  int32_t ChainFamily(uint32_t word) const;

  const LineageGraph& graph_;
  bool split_;
  bool root_;
  int max_steps_;
  std::vector<uint8_t> cyclic_;  // on a cycle of the edges the policy follows
  std::vector<uint8_t> on_path_;
  std::vector<uint8_t> memo_done_;
  std::vector<int16_t> memo_reach_;
  std::vector<uint32_t> memo_begin_;
  std::vector<uint8_t> memo_len_;
  std::vector<FamilyShare> memo_pool_;
  std::vector<uint32_t> result_begin_;
  std::vector<FamilyShare> result_pool_;
  bool chains_ = false;
  std::vector<uint32_t> chain_;            // FIRST_PARENT: per node, see lineage.cc
  std::vector<FamilyShare> whole_family_;  // {f, 1.0} for every family f
  std::vector<Dist> scratch_;              // one per walk depth, reused
  int64_t budget_left_ = 0;
  int64_t over_budget_ = 0;
};

// The first-parent walk of one repo for the Lineage RPC, and the family the policy gives it.
// `graph` and `resolver` must come from the same snapshot; `repo` is a repo node.
v1::LineageResponse ExplainLineage(const store::CrawlSnapshot& snapshot, const LineageGraph& graph,
                                   const LineageResolver& resolver, const FamilyMatcher& matcher,
                                   const v1::LineageOptions& options, int32_t repo);

}  // namespace hubcensus::aggregator

#endif  // HUBCENSUS_AGGREGATOR_LINEAGE_H_
