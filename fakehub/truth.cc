#include "fakehub/truth.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "config/family_config.h"
#include "fakehub/json_text.h"

namespace hubcensus::fakehub {
namespace {

// (family, weight) pairs a repo's lineage is attributed to; empty: no lineage family.
using Attribution = std::vector<std::pair<int, double>>;

class LineageWalker {
 public:
  LineageWalker(const TruthGraph& g, int max_steps) : g_(g), max_steps_(max_steps) {}

  // First parent at each step, stopping at the nearest first-party repo.
  int Nearest(int32_t r) {
    path_.clear();
    path_.push_back(r);
    int32_t cur = r;
    for (int steps = 0;;) {
      if (g_.first_party[cur] >= 0) return g_.first_party[cur];
      if (g_.parent_begin[cur] == g_.parent_begin[cur + 1]) return -1;
      int32_t p = g_.parents[g_.parent_begin[cur]];
      if (++steps > max_steps_) return -1;
      if (p < 0) return p == -1 ? -1 : -2 - p;  // missing: its namespace's family, if any
      if (std::find(path_.begin(), path_.end(), p) != path_.end()) return -1;  // cycle
      path_.push_back(p);
      cur = p;
    }
  }

  // First parent at each step, to the farthest first-party repo on the walk.
  int Root(int32_t r) {
    path_.clear();
    path_.push_back(r);
    int32_t cur = r;
    int found = -1;
    for (int steps = 0;;) {
      if (g_.first_party[cur] >= 0) found = g_.first_party[cur];
      if (g_.parent_begin[cur] == g_.parent_begin[cur + 1]) return found;
      int32_t p = g_.parents[g_.parent_begin[cur]];
      if (++steps > max_steps_) return -1;
      if (p < 0) return p == -1 ? found : -2 - p;
      if (std::find(path_.begin(), path_.end(), p) != path_.end()) return -1;
      path_.push_back(p);
      cur = p;
    }
  }

  // Every parent, each of k getting 1/k, each path stopping at its nearest first-party repo.
  Attribution Split(int32_t r) {
    parts_.clear();
    path_.clear();
    path_.push_back(r);
    SplitFrom(r, 1.0, 0);
    Attribution out;
    for (const auto& [f, w] : parts_) out.emplace_back(f, w);
    return out;
  }

 private:
  void SplitFrom(int32_t cur, double weight, int steps) {
    if (g_.first_party[cur] >= 0) {
      parts_[g_.first_party[cur]] += weight;
      return;
    }
    uint32_t b = g_.parent_begin[cur], e = g_.parent_begin[cur + 1];
    if (b == e) return;
    if (steps + 1 > max_steps_) return;
    double share = weight / static_cast<double>(e - b);
    for (uint32_t k = b; k < e; ++k) {
      int32_t p = g_.parents[k];
      if (p < 0) {
        if (p != -1) parts_[-2 - p] += share;
        continue;
      }
      if (std::find(path_.begin(), path_.end(), p) != path_.end()) continue;
      path_.push_back(p);
      SplitFrom(p, share, steps + 1);
      path_.pop_back();
    }
  }

  const TruthGraph& g_;
  int max_steps_;
  std::vector<int32_t> path_;
  std::map<int, double> parts_;
};

struct FamilySums {
  double first_party_repos = 0;
  double first_party_all_time = 0;
  double first_party_30d = 0;
  double ecosystem_all_time = 0;
  double derivatives[5] = {0, 0, 0, 0, 0};

  void Add(const FamilySums& o) {
    first_party_repos += o.first_party_repos;
    first_party_all_time += o.first_party_all_time;
    first_party_30d += o.first_party_30d;
    ecosystem_all_time += o.ecosystem_all_time;
    for (int k = 0; k < 5; ++k) derivatives[k] += o.derivatives[k];
  }
};

void AppendSums(std::string* out, const FamilySums& s) {
  absl::StrAppend(out, "\"first_party_repos\":", JsonNumber(s.first_party_repos),
                  ",\"first_party_downloads_all_time\":", JsonNumber(s.first_party_all_time),
                  ",\"first_party_downloads_30d\":", JsonNumber(s.first_party_30d),
                  ",\"ecosystem_downloads_all_time\":", JsonNumber(s.ecosystem_all_time),
                  ",\"derivatives\":{");
  for (int k = 0; k < 5; ++k) {
    absl::StrAppend(out, k ? "," : "", "\"", kRelationNames[k],
                    "\":", JsonNumber(s.derivatives[k]));
  }
  out->append("}");
}

}  // namespace

absl::StatusOr<TruthPolicy> ParseTruthPolicy(absl::string_view text) {
  if (text.empty() || text == "first_parent" || text == "nearest") {
    return TruthPolicy::kFirstParentNearest;
  }
  if (text == "split") return TruthPolicy::kSplitNearest;
  if (text == "root") return TruthPolicy::kFirstParentRoot;
  return absl::InvalidArgumentError(
      absl::StrCat("policy: \"", text, "\" is not one of first_parent, split, root"));
}

std::string MonthLabel(int month) {
  return absl::StrFormat("%04d-%02d", month / 12, month % 12 + 1);
}

std::string TruthJson(const TruthGraph& g, const v1::FamilyConfig& raw_config, TruthPolicy policy) {
  v1::FamilyConfig config = WithDefaults(raw_config);
  int max_steps =
      config.lineage().max_steps() > 0 ? config.lineage().max_steps() : kDefaultMaxLineageSteps;
  int64_t min_downloads = config.new_model_filter().min_downloads_all_time();
  int families = config.family_size();
  std::vector<FamilySums> sums(static_cast<size_t>(families));
  // month -> (total, per-family counts)
  std::map<int, std::pair<double, std::vector<double>>> months;

  // Repos that would be new derivatives of some month but carry a placeholder createdAt.
  int64_t placeholder_dated_left_out = 0;
  LineageWalker walker(g, max_steps);
  Attribution attribution;
  for (size_t r = 0; r < g.size(); ++r) {
    int fp = g.first_party[r];
    if (fp >= 0) {
      sums[fp].first_party_repos += 1;
      sums[fp].first_party_all_time += static_cast<double>(g.downloads_all_time[r]);
      sums[fp].first_party_30d += static_cast<double>(g.downloads_30d[r]);
    }
    attribution.clear();
    int32_t node = static_cast<int32_t>(r);
    if (policy == TruthPolicy::kSplitNearest) {
      attribution = walker.Split(node);
    } else {
      int f = policy == TruthPolicy::kFirstParentRoot ? walker.Root(node) : walker.Nearest(node);
      if (f >= 0) attribution.emplace_back(f, 1.0);
    }
    if (attribution.empty()) continue;
    bool is_derivative = fp < 0;
    bool share_candidate = is_derivative && g.share_pipeline[r] &&
                           (!g.has_all_time[r] || g.downloads_all_time[r] >= min_downloads);
    bool placeholder = g.created_month[r] == TruthGraph::kPlaceholderMonth;
    if (share_candidate && placeholder) ++placeholder_dated_left_out;
    bool new_model = share_candidate && !placeholder && g.created_month[r] <= g.date_month;
    for (const auto& [f, w] : attribution) {
      sums[f].ecosystem_all_time += static_cast<double>(g.downloads_all_time[r]) * w;
      if (is_derivative) sums[f].derivatives[g.first_relation[r]] += w;
      if (new_model) {
        auto& month = months[g.created_month[r]];
        if (month.second.empty()) month.second.assign(static_cast<size_t>(families), 0.0);
        month.first += w;
        month.second[f] += w;
      }
    }
  }

  std::string out = "{\"families\":{\"crawl_id\":\"\",\"date\":";
  absl::StrAppend(&out, JsonString(g.date), ",\"families\":[");
  for (int f = 0; f < families; ++f) {
    absl::StrAppend(&out, f ? "," : "", "{\"family\":", JsonString(config.family(f).name()),
                    ",\"region\":", JsonString(config.family(f).region()), ",");
    AppendSums(&out, sums[f]);
    out.append("}");
  }
  out.append("],\"regions\":[");
  bool first_region = true;
  for (const char* region : kRegions) {
    FamilySums total;
    for (int f = 0; f < families; ++f) {
      if (config.family(f).region() == region) total.Add(sums[f]);
    }
    absl::StrAppend(&out, first_region ? "" : ",", "{\"region\":", JsonString(region), ",");
    first_region = false;
    AppendSums(&out, total);
    out.append("}");
  }
  absl::StrAppend(&out, "]},\"shares\":{\"date\":", JsonString(g.date), ",\"months\":[");
  if (!months.empty()) {
    int first = months.begin()->first;
    for (int m = first; m <= g.date_month; ++m) {
      absl::StrAppend(&out, m == first ? "" : ",", "{\"month\":", JsonString(MonthLabel(m)));
      auto it = months.find(m);
      double total = it == months.end() ? 0 : it->second.first;
      absl::StrAppend(&out, ",\"total\":", JsonNumber(total), ",\"families\":{");
      bool first_family = true;
      if (it != months.end()) {
        for (int f = 0; f < families; ++f) {
          double count = it->second.second[f];
          if (count <= 0) continue;
          absl::StrAppend(&out, first_family ? "" : ",", JsonString(config.family(f).name()),
                          ":{\"count\":", JsonNumber(count),
                          ",\"share\":", JsonNumber(count / total), "}");
          first_family = false;
        }
      }
      out.append("}}");
    }
  }
  absl::StrAppend(&out, "],\"placeholder_dated_left_out\":", placeholder_dated_left_out, "}}");
  return out;
}

}  // namespace hubcensus::fakehub
