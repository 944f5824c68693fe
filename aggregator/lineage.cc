#include "aggregator/lineage.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
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
  g.repos = static_cast<int32_t>(n);
  g.first_party.resize(n);
  g.parent_begin.resize(n + 1);
  // Only ids that someone names as a parent need an index (about a tenth of a crawl), so the
  // map holds parents, and one pass over the crawl finds which of them are in it.
  absl::flat_hash_map<absl::string_view, int32_t> parent_node;
  size_t edges = 0;
  for (size_t i = 0; i < n; ++i) edges += snapshot.parent_count(i);
  parent_node.reserve(edges);
  for (size_t i = 0; i < n; ++i) {
    for (int k = 0; k < snapshot.parent_count(i); ++k)
      parent_node.emplace(snapshot.parent_id(i, k), -1);
  }
  // The pass over every repo, in ranges on threads: the map is only read (each id is unique, so
  // no two repos write the same entry's value), and first_party is written at distinct indices.
  const size_t ranges = threads > 0 ? static_cast<size_t>(threads) : RangesFor(n, 1 << 18);
  ForEachRange(n, ranges, [&](size_t, size_t begin, size_t end) {
    // Ids come sorted, so a namespace's repos are adjacent: most namespaces are no family's, and
    // one look-up answers for all of their repos.
    absl::string_view untracked_ns;
    bool have_untracked = false;
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
      if (parent_node.empty()) continue;
      auto it = parent_node.find(id);
      if (it != parent_node.end()) it->second = static_cast<int32_t>(i);
    }
  });
  g.parent_node.reserve(edges);
  for (size_t i = 0; i < n; ++i) {
    g.parent_begin[i] = static_cast<uint32_t>(g.parent_node.size());
    for (int k = 0; k < snapshot.parent_count(i); ++k) {
      auto it = parent_node.find(snapshot.parent_id(i, k));
      if (it->second < 0) {
        // Missing from the crawl: a node of its own, classified by its namespace only.
        it->second = static_cast<int32_t>(g.first_party.size());
        g.missing_ids.emplace_back(it->first);
        g.first_party.push_back(matcher.FirstPartyFamily(it->first));
      }
      g.parent_node.push_back(it->second);
    }
  }
  g.parent_begin[n] = static_cast<uint32_t>(g.parent_node.size());
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

void LineageResolver::ResolveAll() {
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
