#include "aggregator/census_metrics.h"

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "aggregator/internal/month_index.h"
#include "aggregator/lineage.h"
#include "aggregator/relation_names.h"
#include "common/checksum.h"
#include "common/dates.h"
#include "common/parallel.h"
#include "common/status.h"
#include "config/family_config.h"

namespace hubcensus::aggregator {
namespace {

using internal::MonthIndex;

std::string MonthName(int index) {
  return absl::StrFormat("%04d-%02d", index / 12, index % 12 + 1);
}

// A bounded best-first list: the k largest (value, then smallest id) of one family and order.
class TopList {
 public:
  explicit TopList(int k) : k_(k) {}
  void Offer(int64_t value, int32_t repo, const store::CrawlSnapshot& snap) {
    if (k_ <= 0) return;
    Entry e{value, repo};
    auto better = [&snap](const Entry& a, const Entry& b) {
      if (a.value != b.value) return a.value > b.value;
      return snap.id(a.repo) < snap.id(b.repo);
    };
    if (static_cast<int>(heap_.size()) < k_) {
      heap_.push_back(e);
      std::push_heap(heap_.begin(), heap_.end(), better);
    } else if (better(e, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better);
      heap_.back() = e;
      std::push_heap(heap_.begin(), heap_.end(), better);
    }
  }
  // Offers every repo `other` kept: the k best of both (the order is total, so the same as one
  // list offered every repo).
  void Merge(const TopList& other, const store::CrawlSnapshot& snap) {
    for (const Entry& e : other.heap_) Offer(e.value, e.repo, snap);
  }
  std::vector<int32_t> Sorted(const store::CrawlSnapshot& snap) const {
    std::vector<Entry> v = heap_;
    std::sort(v.begin(), v.end(), [&snap](const Entry& a, const Entry& b) {
      if (a.value != b.value) return a.value > b.value;
      return snap.id(a.repo) < snap.id(b.repo);
    });
    std::vector<int32_t> out;
    for (const Entry& e : v) out.push_back(e.repo);
    return out;
  }

 private:
  struct Entry {
    int64_t value;
    int32_t repo;
  };
  int k_;
  std::vector<Entry> heap_;  // a min-heap under `better`: front is the worst kept
};

struct FamilyTotals {
  int64_t first_party_repos = 0;
  int64_t first_party_downloads_all_time = 0;
  int64_t first_party_downloads_30d = 0;
  double ecosystem_downloads_all_time = 0;
  double derivatives[5] = {0, 0, 0, 0, 0};  // by v1::Relation
};

void FillFigures(const FamilyTotals& t, v1::Figures* f) {
  f->set_first_party_repos(t.first_party_repos);
  f->set_first_party_downloads_all_time(t.first_party_downloads_all_time);
  f->set_first_party_downloads_30d(t.first_party_downloads_30d);
  f->set_ecosystem_downloads_all_time(t.ecosystem_downloads_all_time);
  auto* d = f->mutable_derivatives();
  d->set_unknown(t.derivatives[v1::RELATION_UNKNOWN]);
  d->set_finetune(t.derivatives[v1::RELATION_FINETUNE]);
  d->set_adapter(t.derivatives[v1::RELATION_ADAPTER]);
  d->set_quantized(t.derivatives[v1::RELATION_QUANTIZED]);
  d->set_merge(t.derivatives[v1::RELATION_MERGE]);
}

void AddTotals(const FamilyTotals& from, FamilyTotals* to) {
  to->first_party_repos += from.first_party_repos;
  to->first_party_downloads_all_time += from.first_party_downloads_all_time;
  to->first_party_downloads_30d += from.first_party_downloads_30d;
  to->ecosystem_downloads_all_time += from.ecosystem_downloads_all_time;
  for (int r = 0; r < 5; ++r) to->derivatives[r] += from.derivatives[r];
}

}  // namespace

uint64_t FamilyConfigFingerprint(const v1::FamilyConfig& config) {
  std::string bytes;
  v1::FamilyConfig normal = WithDefaults(config);
  normal.SerializeToString(&bytes);
  // The rules of the figures, too: rollups materialised under older rules are recomputed.
  // 2: placeholder-dated repos are new in no month (issue 11).
  bytes.append("\0rules=2", 8);
  return Fnv1a64(bytes);
}

absl::StatusOr<CensusFigures> ComputeCensus(const store::CrawlSnapshot& snap,
                                            const v1::FamilyConfig& raw_config,
                                            const std::string& crawl_id, const std::string& date,
                                            int top_k) {
  const v1::FamilyConfig config = WithDefaults(raw_config);
  ASSIGN_OR_RETURN(absl::Time crawl_day, ParseDate(date));
  const int crawl_month = MonthIndex(absl::ToUnixSeconds(crawl_day));
  FamilyMatcher matcher(config);
  const int families = matcher.size();
  LineageGraph graph = BuildLineageGraph(snap, matcher);
  LineageResolver resolver(graph, config.lineage());
  resolver.ResolveAll();

  const auto& filter = config.new_model_filter();
  absl::flat_hash_set<std::string> tags(filter.pipeline_tag().begin(), filter.pipeline_tag().end());
  // Per tag of the snapshot's dictionary: whether the filter lets it through.
  std::vector<uint8_t> tag_passes(snap.pipeline_tag_count());
  for (size_t t = 0; t < tag_passes.size(); ++t) {
    tag_passes[t] = tags.empty() || tags.contains(snap.pipeline_tag_name(static_cast<uint16_t>(t)));
  }
  const int64_t min_downloads = filter.min_downloads_all_time();

  // The pass over every repo. Under FIRST_PARENT every weight is 1, so each double it sums is a
  // sum of integers: while their magnitudes add up to at most 2^53 every partial sum is exact, in
  // any order, and the pass runs in ranges on threads whose partial figures are added after. Else
  // (SPLIT's fractions, or sums that large) it runs in one range, in snapshot order, so that every
  // figure stays the one the definitions' order of summation gives.
  struct Partial {
    Partial(int families, int top_k)
        : totals(families),
          top_all_dat(families, TopList(top_k)),
          top_all_30d(families, TopList(top_k)),
          top_fp_dat(families, TopList(top_k)),
          top_fp_30d(families, TopList(top_k)) {}
    std::vector<FamilyTotals> totals;
    std::map<int, std::vector<double>> months;  // month index -> per-family new derivatives
    int64_t placeholder_dated_left_out = 0;
    std::vector<TopList> top_all_dat, top_all_30d, top_fp_dat, top_fp_30d;
    uint64_t attributed_downloads = 0;  // sum of |downloads_all_time| over attributed repos
    bool past_exact = false;            // that sum went over 2^53
  };
  constexpr uint64_t kExact = uint64_t{1} << 53;
  auto tally = [&](int32_t begin, int32_t end, Partial* part) {
    for (int32_t i = begin; i < end; ++i) {
      const int32_t fp = graph.first_party[i];
      const int64_t dat = snap.downloads_all_time(i);  // 0 when absent
      const int64_t d30 = snap.downloads_30d(i);
      if (fp >= 0) {
        FamilyTotals& t = part->totals[fp];
        ++t.first_party_repos;
        t.first_party_downloads_all_time += dat;
        t.first_party_downloads_30d += d30;
        part->top_fp_dat[fp].Offer(dat, i, snap);
        part->top_fp_30d[fp].Offer(d30, i, snap);
      }
      auto attribution = resolver.Attribution(i);
      if (attribution.empty()) continue;
      const uint64_t magnitude =
          dat < 0 ? uint64_t{0} - static_cast<uint64_t>(dat) : static_cast<uint64_t>(dat);
      if (magnitude > kExact - part->attributed_downloads) {
        part->past_exact = true;
      } else {
        part->attributed_downloads += magnitude;
      }
      for (const FamilyShare& s : attribution) {
        part->totals[s.family].ecosystem_downloads_all_time += s.weight * static_cast<double>(dat);
        part->top_all_dat[s.family].Offer(dat, i, snap);
        part->top_all_30d[s.family].Offer(d30, i, snap);
      }
      if (fp >= 0) continue;  // derivatives and shares count only repos no family claims
      const v1::Relation relation =
          snap.parent_count(i) > 0 ? snap.parent_relation(i, 0) : v1::RELATION_UNKNOWN;
      const int r = (relation >= 0 && relation < 5) ? relation : v1::RELATION_UNKNOWN;
      for (const FamilyShare& s : attribution) part->totals[s.family].derivatives[r] += s.weight;
      if (!tag_passes[snap.pipeline_tag_index(i)]) continue;
      if (snap.has_downloads_all_time(i) && dat < min_downloads) continue;
      // A placeholder createdAt says "older than the Hub's creation dates", not when: such a
      // repo is new in no month (it still counts in every sum above).
      if (snap.created_at_placeholder(i)) {
        ++part->placeholder_dated_left_out;
        continue;
      }
      const int month = MonthIndex(snap.created_at(i));
      if (month > crawl_month) continue;
      auto& counts = part->months[month];
      if (counts.empty()) counts.assign(families, 0.0);
      for (const FamilyShare& s : attribution) counts[s.family] += s.weight;
    }
  };
  const bool whole_weights = config.lineage().parent_policy() != v1::SPLIT;
  const size_t ranges = whole_weights ? RangesFor(graph.repos, 1 << 18) : 1;
  std::vector<Partial> parts(ranges, Partial(families, top_k));
  ForEachRange(graph.repos, ranges, [&](size_t range, size_t begin, size_t end) {
    tally(static_cast<int32_t>(begin), static_cast<int32_t>(end), &parts[range]);
  });
  uint64_t attributed_downloads = 0;
  bool exact = true;
  for (const Partial& part : parts) {
    exact = exact && !part.past_exact;
    attributed_downloads += part.attributed_downloads;  // at most 8 * 2^53: no overflow
  }
  if (parts.size() > 1 && (!exact || attributed_downloads > kExact)) {
    parts.assign(1, Partial(families, top_k));
    tally(0, graph.repos, &parts[0]);
  }
  Partial& all = parts[0];
  for (size_t r = 1; r < parts.size(); ++r) {
    const Partial& part = parts[r];
    for (int f = 0; f < families; ++f) {
      AddTotals(part.totals[f], &all.totals[f]);
      all.top_all_dat[f].Merge(part.top_all_dat[f], snap);
      all.top_all_30d[f].Merge(part.top_all_30d[f], snap);
      all.top_fp_dat[f].Merge(part.top_fp_dat[f], snap);
      all.top_fp_30d[f].Merge(part.top_fp_30d[f], snap);
    }
    for (const auto& [month, counts] : part.months) {
      auto& into = all.months[month];
      if (into.empty()) into.assign(families, 0.0);
      for (int f = 0; f < families; ++f) into[f] += counts[f];
    }
    all.placeholder_dated_left_out += part.placeholder_dated_left_out;
  }
  const std::vector<FamilyTotals>& totals = all.totals;
  const std::map<int, std::vector<double>>& months = all.months;
  const int64_t placeholder_dated_left_out = all.placeholder_dated_left_out;
  const std::vector<TopList>& top_all_dat = all.top_all_dat;
  const std::vector<TopList>& top_all_30d = all.top_all_30d;
  const std::vector<TopList>& top_fp_dat = all.top_fp_dat;
  const std::vector<TopList>& top_fp_30d = all.top_fp_30d;

  CensusFigures out;
  out.lineage_over_budget = resolver.over_budget();
  out.families.set_crawl_id(crawl_id);
  out.families.set_date(date);
  std::vector<FamilyTotals> region_totals(std::size(kRegions));
  for (int f = 0; f < families; ++f) {
    auto* ff = out.families.add_families();
    ff->set_family(matcher.name(f));
    ff->set_region(matcher.region(f));
    FillFigures(totals[f], ff->mutable_figures());
    for (size_t r = 0; r < std::size(kRegions); ++r) {
      if (matcher.region(f) == kRegions[r]) AddTotals(totals[f], &region_totals[r]);
    }
  }
  for (size_t r = 0; r < std::size(kRegions); ++r) {
    auto* rf = out.families.add_regions();
    rf->set_region(kRegions[r]);
    FillFigures(region_totals[r], rf->mutable_figures());
  }

  out.shares.set_crawl_id(crawl_id);
  out.shares.set_date(date);
  out.shares.set_placeholder_dated_left_out(placeholder_dated_left_out);
  if (!months.empty()) {
    for (int m = months.begin()->first; m <= crawl_month; ++m) {
      auto* ms = out.shares.add_months();
      ms->set_month(MonthName(m));
      auto it = months.find(m);
      if (it == months.end()) continue;
      double total = 0;
      for (double c : it->second) total += c;
      ms->set_total(total);
      for (int f = 0; f < families; ++f) {
        double c = it->second[f];
        if (c <= 0) continue;
        v1::ShareCount sc;
        sc.set_count(c);
        sc.set_share(c / total);
        (*ms->mutable_families())[matcher.name(f)] = sc;
      }
    }
  }

  auto fill_list = [&](const TopList& list, bool first_party_only, const char* order,
                       v1::FamilyRollup* rollup) {
    auto* l = rollup->add_top();
    l->set_first_party_only(first_party_only);
    l->set_order_by(order);
    for (int32_t i : list.Sorted(snap)) {
      auto* t = l->add_repos();
      t->set_id(std::string(snap.id(i)));
      t->set_downloads_all_time(snap.downloads_all_time(i));
      t->set_downloads_30d(snap.downloads_30d(i));
      t->set_first_party(graph.first_party[i] >= 0);
      if (graph.first_party[i] < 0 && snap.parent_count(i) > 0) {
        t->set_relation(RelationName(snap.parent_relation(i, 0)));
      }
      t->set_created_at(snap.created_at(i));
    }
  };
  out.top.resize(families);
  for (int f = 0; f < families; ++f) {
    out.top[f].set_family(matcher.name(f));
    fill_list(top_all_dat[f], false, "downloads_all_time", &out.top[f]);
    fill_list(top_all_30d[f], false, "downloads_30d", &out.top[f]);
    fill_list(top_fp_dat[f], true, "downloads_all_time", &out.top[f]);
    fill_list(top_fp_30d[f], true, "downloads_30d", &out.top[f]);
  }
  return out;
}

}  // namespace hubcensus::aggregator
