#include "aggregator/lineage.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "aggregator/internal/id_table.h"
#include "aggregator/relation_names.h"
#include "common/parallel.h"

namespace hubcensus::aggregator {
namespace {

// Walks have a bounded recursion depth; keep it well within a thread's stack.
constexpr int kMaxStepsCap = 4096;
// Per repo: more visits than this means a pathological cyclic tangle, resolved as no family.
constexpr int64_t kWalkBudget = 1'000'000;

void AddShare(std::vector<FamilyShare>* out, int32_t family, double weight) {
  for (FamilyShare& s : *out) {
    if (s.family == family) {
      s.weight += weight;
      return;
    }
  }
  out->push_back({family, weight});
}

}  // namespace

LineageGraph BuildLineageGraph(const store::CrawlSnapshot& snapshot, const FamilyMatcher& matcher,
                               int threads) {
  LineageGraph g;
  const size_t n = snapshot.size();
  const size_t edges = snapshot.parent_edges();
  g.repos = static_cast<int32_t>(n);
  g.first_party.resize(n);
  g.parent_begin = snapshot.parent_begins();
  g.parent_node.resize(edges);
  const size_t repo_ranges = threads > 0 ? static_cast<size_t>(threads) : RangesFor(n, 1 << 18);
  const size_t edge_ranges = threads > 0 ? static_cast<size_t>(threads) : RangesFor(edges, 1 << 16);
  // Only ids that someone names as a parent need an index (about a tenth of a crawl), so the
  // table holds parents, each under the first edge to reach its slot, and one pass over the
  // crawl finds which of them are in it.
  internal::IdTable table(edges);
  auto id_of_edge = [&snapshot](uint32_t edge) { return snapshot.parent_id_at(edge); };
  // 1. Each edge to its id's slot (kept in parent_node until step 3).
  ForEachRange(edges, edge_ranges, [&](size_t, size_t begin, size_t end) {
    constexpr size_t kBatch = 16;
    uint64_t hashes[kBatch];
    for (size_t batch = begin; batch < end; batch += kBatch) {
      const size_t batch_end = std::min(end, batch + kBatch);
      for (size_t e = batch; e < batch_end; ++e) {
        hashes[e - batch] = internal::IdTable::HashOf(snapshot.parent_id_at(e));
        table.PrefetchSlot(hashes[e - batch]);
      }
      for (size_t e = batch; e < batch_end; ++e) {
        g.parent_node[e] = static_cast<int32_t>(table.Insert(
            snapshot.parent_id_at(e), hashes[e - batch], static_cast<uint32_t>(e), id_of_edge));
      }
    }
  });
  // Per slot: 1 + the repo of its id, 0 while none is (yet) known.
  std::unique_ptr<std::atomic<int32_t>[]> repo_of(new std::atomic<int32_t>[table.capacity()]());
  // 2. The pass over every repo, in ranges on threads: first_party is written at distinct
  // indices; a repo named as a parent records itself in its id's slot (the last repo of an id
  // wins, as in snapshot order, should an id ever appear twice).
  ForEachRange(n, repo_ranges, [&](size_t, size_t begin, size_t end) {
    // Ids come sorted, so a namespace's repos are adjacent: most namespaces are no family's, and
    // one look-up answers for all of their repos.
    absl::string_view untracked_ns;
    bool have_untracked = false;
    // Ids are looked up a batch at a time, so that the cache misses of a batch overlap.
    constexpr size_t kBatch = 16;
    uint64_t hashes[kBatch];
    for (size_t batch = begin; batch < end; batch += kBatch) {
      const size_t batch_end = std::min(end, batch + kBatch);
      if (edges == 0) continue;
      for (size_t i = batch; i < batch_end; ++i) {
        hashes[i - batch] = internal::IdTable::HashOf(snapshot.id(i));
        table.Prefetch(hashes[i - batch]);
      }
      uint32_t may_hold = 0;  // bit k: batch + k may be someone's parent
      for (size_t i = batch; i < batch_end; ++i) {
        if (table.MayHold(hashes[i - batch])) {
          table.PrefetchSlot(hashes[i - batch]);
          may_hold |= 1u << (i - batch);
        }
      }
      for (size_t i = batch; i < batch_end; ++i) {
        if ((may_hold >> (i - batch) & 1) == 0) continue;
        const int64_t slot = table.Find(snapshot.id(i), hashes[i - batch], id_of_edge);
        if (slot < 0) continue;
        std::atomic<int32_t>& repo = repo_of[slot];
        const int32_t mine = static_cast<int32_t>(i) + 1;
        int32_t seen = repo.load(std::memory_order_relaxed);
        while (seen < mine && !repo.compare_exchange_weak(seen, mine, std::memory_order_relaxed)) {
        }
      }
    }
    for (size_t i = begin; i < end; ++i) {
      absl::string_view id = snapshot.id(i);
      size_t slash = id.find('/');
      absl::string_view ns = slash == absl::string_view::npos ? id : id.substr(0, slash);
      if (have_untracked && ns == untracked_ns) {
        g.first_party[i] = -1;
      } else if (slash != absl::string_view::npos && !matcher.TracksNamespace(ns)) {
        g.first_party[i] = -1;
        untracked_ns = ns;
        have_untracked = true;
      } else {
        g.first_party[i] = matcher.FirstPartyFamily(id);
      }
    }
  });
  // 3. Each edge to its repo; a missing parent is marked -2 - (its id's slot).
  std::vector<size_t> missing_edges(edge_ranges, 0);
  ForEachRange(edges, edge_ranges, [&](size_t range, size_t begin, size_t end) {
    size_t missing = 0;
    for (size_t e = begin; e < end; ++e) {
      if (e + 16 < end) __builtin_prefetch(&repo_of[g.parent_node[e + 16]]);
      const int32_t slot = g.parent_node[e];
      const int32_t repo = repo_of[slot].load(std::memory_order_relaxed) - 1;
      g.parent_node[e] = repo >= 0 ? repo : -2 - slot;
      missing += repo < 0;
    }
    missing_edges[range] = missing;
  });
  size_t to_missing = 0;
  for (size_t m : missing_edges) to_missing += m;
  if (to_missing == 0) return g;
  // 4. Missing parents, in edge order: a node of their own each, classified by namespace only.
  g.first_party.reserve(n + to_missing);
  for (size_t e = 0; e < edges; ++e) {
    if (g.parent_node[e] >= 0) continue;
    std::atomic<int32_t>& node = repo_of[-2 - g.parent_node[e]];
    int32_t x = node.load(std::memory_order_relaxed) - 1;
    if (x < 0) {
      x = static_cast<int32_t>(g.first_party.size());
      node.store(x + 1, std::memory_order_relaxed);
      g.missing_ids.emplace_back(snapshot.parent_id_at(e));
      g.first_party.push_back(matcher.FirstPartyFamily(snapshot.parent_id_at(e)));
    }
    g.parent_node[e] = x;
  }
  return g;
}

LineageResolver::LineageResolver(const LineageGraph& graph, const v1::LineageOptions& options)
    : graph_(graph),
      split_(options.parent_policy() == v1::SPLIT),
      root_(options.attribution() == v1::ROOT),
      max_steps_(options.max_steps() <= 0 ? kDefaultMaxLineageSteps
                                          : std::min(options.max_steps(), kMaxStepsCap)) {}

void LineageResolver::FindCycles() {
  // Iterative Tarjan over the edges the policy follows (the first parent, or all under SPLIT).
  const int32_t n = graph_.nodes();
  cyclic_.assign(n, 0);
  std::vector<int32_t> index(n, -1), low(n, 0);
  std::vector<uint8_t> on_stack(n, 0);
  std::vector<int32_t> stack;
  struct Frame {
    int32_t node;
    int next_edge;
  };
  std::vector<Frame> frames;
  int32_t counter = 0;
  auto follows = [&](int32_t v) {
    int k = graph_.parent_count(v);
    return split_ ? k : std::min(k, 1);
  };
  for (int32_t start = 0; start < graph_.repos; ++start) {
    // Most repos declare no base model: they are on no cycle, and need no index unless reached.
    if (index[start] >= 0 || follows(start) == 0) continue;
    frames.push_back({start, 0});
    index[start] = low[start] = counter++;
    stack.push_back(start);
    on_stack[start] = 1;
    while (!frames.empty()) {
      Frame& f = frames.back();
      int32_t v = f.node;
      if (f.next_edge < follows(v)) {
        int32_t w = graph_.parent(v, f.next_edge++);
        if (w == v) cyclic_[v] = 1;  // a self-loop
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack.push_back(w);
          on_stack[w] = 1;
          frames.push_back({w, 0});
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
        continue;
      }
      if (low[v] == index[v]) {
        size_t top = stack.size();
        size_t pos = top;
        do {
          --pos;
        } while (stack[pos] != v);
        bool component = top - pos > 1;
        for (size_t i = pos; i < top; ++i) {
          on_stack[stack[i]] = 0;
          if (component) cyclic_[stack[i]] = 1;
        }
        stack.resize(pos);
      }
      frames.pop_back();
      if (!frames.empty()) {
        int32_t parent = frames.back().node;
        low[parent] = std::min(low[parent], low[v]);
      }
    }
  }
}

LineageResolver::Visit LineageResolver::Walk(int32_t x, int depth, Dist* out) {
  out->clear();
  if (--budget_left_ < 0) return {true, 0};
  // A cycle or a walk over max_steps ends without a family. Under ROOT that holds for the whole
  // walk, first-party repos seen before included: the branch's weight is marked lost.
  if (on_path_[x]) {
    if (root_) out->push_back({kLost, 1.0});
    return {false, 0};
  }
  if (depth > max_steps_) {
    if (root_) out->push_back({kLost, 1.0});
    return {true, 0};
  }
  if (memo_done_[x] && depth + memo_reach_[x] <= max_steps_) {
    out->assign(memo_pool_.begin() + memo_begin_[x],
                memo_pool_.begin() + memo_begin_[x] + memo_len_[x]);
    return {false, memo_reach_[x]};
  }
  const int32_t fp = graph_.first_party[x];
  Visit v;
  if (!root_ && fp >= 0) {
    out->push_back({fp, 1.0});
  } else {
    int k = graph_.parent_count(x);
    int follow = split_ ? k : std::min(k, 1);
    if (follow > 0) {
      on_path_[x] = 1;
      const double w = 1.0 / follow;
      for (int j = 0; j < follow; ++j) {
        Dist* child = &scratch_[depth + 1];
        Visit cv = Walk(graph_.parent(x, j), depth + 1, child);
        v.cut |= cv.cut;
        v.reach = std::max(v.reach, cv.reach + 1);
        for (const FamilyShare& s : *child) AddShare(out, s.family, s.weight * w);
      }
      on_path_[x] = 0;
    }
    if (root_ && fp >= 0) {
      // Weight that found no farther first-party repo (and was not lost) is this repo's.
      double mass = 0;
      for (const FamilyShare& s : *out) mass += s.weight;
      double rest = 1.0 - mass;
      if (rest > 1e-12) AddShare(out, fp, rest);
    }
  }
  if (!v.cut && !cyclic_[x] && out->size() < 256) {
    memo_done_[x] = 1;
    memo_reach_[x] = static_cast<int16_t>(std::min(v.reach, 32767));
    memo_begin_[x] = static_cast<uint32_t>(memo_pool_.size());
    memo_len_[x] = static_cast<uint8_t>(out->size());
    memo_pool_.insert(memo_pool_.end(), out->begin(), out->end());
  }
  return v;
}

// FIRST_PARENT resolution. A walk from r follows one parent a step, so it is a chain: it ends at
// the first node where the walk stops on its own (under NEAREST a first-party node or one without
// a followed parent, under ROOT one without a parent), or it never ends (a cycle). Its result is
// then, with k the number of edges from r to that end:
// - NEAREST: the end's family, if k <= max_steps;
// - ROOT: the farthest first-party family on the chain (the end's side first), if k <= max_steps;
// - nothing, on a cycle or when k > max_steps (a walk cut there has no family under either).
// Each node's k and family follow from its parent's, so one pass resolves every node.
//
// The word of a node: bits 0-15 family + 1 (0: none), bits 16-28 k capped at max_steps + 1
// (cycles too), bits 29-30 the pass's state.
namespace {
constexpr uint32_t kChainFamilyBits = 0xffff;
constexpr int kChainStepsShift = 16;
constexpr uint32_t kChainStepsMask = 0x1fff;  // holds kMaxStepsCap + 1
constexpr uint32_t kChainOnPath = 1u << 29;
constexpr uint32_t kChainResolved = 1u << 30;
static_assert(kMaxStepsCap + 1 <= static_cast<int>(kChainStepsMask));

uint32_t ChainWord(int steps, int32_t family) {
  return kChainResolved | (static_cast<uint32_t>(steps) << kChainStepsShift) |
         static_cast<uint32_t>(family + 1);
}
int ChainSteps(uint32_t word) { return (word >> kChainStepsShift) & kChainStepsMask; }
int32_t ChainWordFamily(uint32_t word) { return static_cast<int32_t>(word & kChainFamilyBits) - 1; }
}  // namespace

int32_t LineageResolver::ChainFamily(uint32_t word) const {
  return ChainSteps(word) <= max_steps_ ? ChainWordFamily(word) : -1;
}

bool LineageResolver::ResolveChains() {
  const int32_t n = graph_.nodes();
  const int far = max_steps_ + 1;
  chain_.assign(n, 0);
  // The ends: resolved where they stand. Threads write distinct words.
  std::vector<int32_t> max_family(RangesFor(n, 1 << 18), -1);
  ForEachRange(n, max_family.size(), [&](size_t range, size_t begin, size_t end) {
    int32_t most = -1;
    for (size_t x = begin; x < end; ++x) {
      const int32_t fp = graph_.first_party[x];
      most = std::max(most, fp);
      const int32_t node = static_cast<int32_t>(x);
      if (graph_.parent_count(node) == 0 || (!root_ && fp >= 0)) chain_[x] = ChainWord(0, fp);
    }
    max_family[range] = most;
  });
  const int32_t families = *std::max_element(max_family.begin(), max_family.end()) + 1;
  if (families >= static_cast<int32_t>(kChainFamilyBits)) {
    chain_.clear();
    return false;
  }
  whole_family_.clear();
  for (int32_t f = 0; f < families; ++f) whole_family_.push_back({f, 1.0});
  // Every other node: follow first parents to a resolved node (or back onto the path: a cycle),
  // then resolve the path from its far end back.
  std::vector<int32_t> path;
  constexpr int32_t kAhead = 16;  // the parent's word of a repo this far on is prefetched
  for (int32_t r = 0; r < graph_.repos; ++r) {
    if (r + kAhead < graph_.repos && graph_.parent_count(r + kAhead) > 0) {
      __builtin_prefetch(&chain_[graph_.parent(r + kAhead, 0)]);
    }
    if (chain_[r] & kChainResolved) continue;
    path.clear();
    int32_t x = r;
    while ((chain_[x] & (kChainResolved | kChainOnPath)) == 0) {
      chain_[x] = kChainOnPath;
      path.push_back(x);
      x = graph_.parent(x, 0);
    }
    const bool cycle = (chain_[x] & kChainResolved) == 0;
    int steps = cycle ? far : ChainSteps(chain_[x]);
    int32_t family = cycle ? -1 : ChainWordFamily(chain_[x]);
    for (size_t j = path.size(); j-- > 0;) {
      const int32_t y = path[j];
      if (!cycle) {
        steps = std::min(steps + 1, far);
        if (root_ && family < 0) family = graph_.first_party[y];
      }
      chain_[y] = ChainWord(steps, family);
    }
  }
  return true;
}

void LineageResolver::ResolveAll() {
  over_budget_ = 0;
  chains_ = !split_ && ResolveChains();
  if (!chains_) WalkAll();
}

void LineageResolver::WalkAll() {
  const int32_t n = graph_.nodes();
  FindCycles();
  on_path_.assign(n, 0);
  memo_done_.assign(n, 0);
  memo_reach_.assign(n, 0);
  memo_begin_.assign(n, 0);
  memo_len_.assign(n, 0);
  memo_pool_.clear();
  memo_pool_.reserve(graph_.repos);
  result_begin_.assign(graph_.repos + 1, 0);
  result_pool_.clear();
  result_pool_.reserve(graph_.repos);
  // Sized once: Walk holds pointers into it, one per depth (at most max_steps + 1).
  scratch_.assign(max_steps_ + 3, Dist());
  over_budget_ = 0;
  for (int32_t i = 0; i < graph_.repos; ++i) {
    budget_left_ = kWalkBudget;
    Dist* dist = &scratch_[0];
    Walk(i, 0, dist);
    result_begin_[i] = static_cast<uint32_t>(result_pool_.size());
    if (budget_left_ < 0) {
      ++over_budget_;
    } else {
      for (const FamilyShare& s : *dist) {
        if (s.family >= 0 && s.weight > 0) result_pool_.push_back(s);
      }
    }
  }
  result_begin_[graph_.repos] = static_cast<uint32_t>(result_pool_.size());
}

v1::LineageResponse ExplainLineage(const store::CrawlSnapshot& snapshot, const LineageGraph& graph,
                                   const LineageResolver& resolver, const FamilyMatcher& matcher,
                                   const v1::LineageOptions& options, int32_t repo) {
  const int max_steps = options.max_steps() <= 0 ? kDefaultMaxLineageSteps
                                                 : std::min(options.max_steps(), kMaxStepsCap);
  const bool root = options.attribution() == v1::ROOT;
  v1::LineageResponse out;
  std::vector<uint8_t> seen;
  std::vector<int32_t> visited;
  int32_t x = repo;
  v1::Relation relation = v1::RELATION_UNKNOWN;
  int last_first_party_step = -1;
  std::string why;
  for (int step = 0;; ++step) {
    if (std::find(visited.begin(), visited.end(), x) != visited.end()) {
      out.set_stop(v1::LINEAGE_STOP_CYCLE);
      why = absl::StrCat(
          "the walk came back to ",
          x < graph.repos ? std::string(snapshot.id(x)) : graph.missing_ids[x - graph.repos],
          " (a cycle)");
      break;
    }
    if (step > max_steps) {
      out.set_stop(v1::LINEAGE_STOP_TOO_DEEP);
      why = absl::StrCat("the walk went over ", max_steps, " steps");
      break;
    }
    visited.push_back(x);
    const bool in_crawl = x < graph.repos;
    v1::LineageStep* s = out.add_walk();
    s->set_repo_id(in_crawl ? std::string(snapshot.id(x)) : graph.missing_ids[x - graph.repos]);
    if (step > 0) s->set_relation(RelationName(relation));
    s->set_in_crawl(in_crawl);
    const int32_t fp = graph.first_party[x];
    if (fp >= 0) {
      s->set_first_party_family(matcher.name(fp));
      last_first_party_step = step;
      if (!root) {
        out.set_stop(v1::LINEAGE_STOP_FIRST_PARTY);
        why = absl::StrCat(s->repo_id(), " is first-party for ", matcher.name(fp), " (step ", step,
                           ")");
        break;
      }
    }
    if (!in_crawl) {
      out.set_stop(v1::LINEAGE_STOP_NO_PARENT);
      why = absl::StrCat("parent ", s->repo_id(),
                         " is not in the crawl; classified by its namespace only");
      break;
    }
    if (graph.parent_count(x) == 0) {
      out.set_stop(v1::LINEAGE_STOP_NO_PARENT);
      why = absl::StrCat(s->repo_id(), " declares no base model");
      break;
    }
    relation = snapshot.parent_relation(x, 0);
    x = graph.parent(x, 0);
  }
  const bool ended_normally =
      out.stop() != v1::LINEAGE_STOP_CYCLE && out.stop() != v1::LINEAGE_STOP_TOO_DEEP;
  if (root && last_first_party_step >= 0 && ended_normally) {
    const auto& step = out.walk(last_first_party_step);
    why = absl::StrCat("the farthest first-party repo on the walk is ", step.repo_id(), " (",
                       step.first_party_family(), "); the walk ended because ", why);
    out.set_stop(v1::LINEAGE_STOP_ROOT);
  }
  auto attribution = resolver.Attribution(repo);
  const FamilyShare* best = nullptr;
  for (const FamilyShare& s : attribution) {
    if (best == nullptr || s.weight > best->weight) best = &s;
  }
  if (best != nullptr) out.set_family(matcher.name(best->family));
  if (options.parent_policy() == v1::SPLIT && attribution.size() > 0) {
    std::string split;
    for (const FamilyShare& s : attribution) {
      absl::StrAppend(&split, split.empty() ? "" : ", ", matcher.name(s.family), " ", s.weight);
    }
    absl::StrAppend(&why, "; SPLIT attribution over every parent: ", split);
  } else if (best == nullptr) {
    absl::StrAppend(&why, "; no family");
  }
  out.set_explanation(why);
  return out;
}

}  // namespace hubcensus::aggregator
