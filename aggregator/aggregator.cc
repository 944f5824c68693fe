#include "aggregator/aggregator.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <functional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "aggregator/census_format.h"
#include "aggregator/census_metrics.h"
#include "aggregator/census_server.h"
#include "aggregator/internal/answer_builders.h"
#include "aggregator/lineage.h"
#include "common/dates.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "config/input_quote.h"
#include "google/protobuf/descriptor.h"
#include "hubcensus/v1/census.grpc.pb.h"
#include "hubcensus/v1/store.grpc.pb.h"

namespace hubcensus::aggregator {
namespace {

constexpr absl::string_view kSummaryRollup = "summary";
constexpr int kMaxTopK = 1000;
// The Lineage RPC reads a repo's ancestors one by one; a bound keeps a huge tangle cheap.
constexpr size_t kMaxLineageAncestors = 200000;

// The rollups of a crawl (store::Rollups names them; the store keys them by crawl): "summary"
// (CrawlRollup: the fingerprint, the families' figures, top_k; what Families and Series read),
// "shares" (SharesResponse, every month: only Shares reads it) and "family/<index>" (FamilyRollup:
// one family's top lists, in config order). Crawls committed before this layout have the shares
// inside "summary" and family rollups under other names: Shares reads the former, TopRepos
// computes the latter's lists again (the figures are the same).
constexpr absl::string_view kSharesRollup = "shares";
std::string FamilyRollupName(int family) { return absl::StrCat("family/", family); }

const std::vector<std::string>& MetricNames() {
  static const auto* names = new std::vector<std::string>{"first_party_repos",
                                                          "first_party_downloads_all_time",
                                                          "first_party_downloads_30d",
                                                          "ecosystem_downloads_all_time",
                                                          "derivatives",
                                                          "derivatives_finetune",
                                                          "derivatives_adapter",
                                                          "derivatives_quantized",
                                                          "derivatives_merge",
                                                          "derivatives_unknown",
                                                          "downloads_in_period"};
  return *names;
}

absl::Status CheckMetric(const std::string& metric, absl::string_view field) {
  for (const auto& m : MetricNames()) {
    if (m == metric) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": unknown metric ", QuoteInput(metric),
                                                 " (one of ", absl::StrJoin(MetricNames(), ", "),
                                                 ")"));
}

// The value of `metric` in a family's or region's figures, chosen once per Series call rather than
// by name at each of its up to 39,420 points.
using MetricReader = double (*)(const v1::Figures&);
MetricReader MetricReaderOf(const std::string& metric) {
  if (metric == "first_party_repos") {
    return [](const v1::Figures& f) { return static_cast<double>(f.first_party_repos()); };
  }
  if (metric == "first_party_downloads_all_time" || metric == "downloads_in_period") {
    return [](const v1::Figures& f) {
      return static_cast<double>(f.first_party_downloads_all_time());
    };
  }
  if (metric == "first_party_downloads_30d") {
    return [](const v1::Figures& f) { return static_cast<double>(f.first_party_downloads_30d()); };
  }
  if (metric == "ecosystem_downloads_all_time") {
    return [](const v1::Figures& f) { return f.ecosystem_downloads_all_time(); };
  }
  if (metric == "derivatives") {
    return [](const v1::Figures& f) {
      const auto& d = f.derivatives();
      return d.finetune() + d.adapter() + d.quantized() + d.merge() + d.unknown();
    };
  }
  if (metric == "derivatives_finetune") {
    return [](const v1::Figures& f) { return f.derivatives().finetune(); };
  }
  if (metric == "derivatives_adapter") {
    return [](const v1::Figures& f) { return f.derivatives().adapter(); };
  }
  if (metric == "derivatives_quantized") {
    return [](const v1::Figures& f) { return f.derivatives().quantized(); };
  }
  if (metric == "derivatives_merge") {
    return [](const v1::Figures& f) { return f.derivatives().merge(); };
  }
  if (metric == "derivatives_unknown") {
    return [](const v1::Figures& f) { return f.derivatives().unknown(); };
  }
  return [](const v1::Figures&) { return 0.0; };
}

// Protocol buffer wire format, for the Series answer written as bytes (Impl::SeriesBytes).
void PutVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}
// A string, bytes or message field; proto3 leaves an empty string out.
void PutLengthDelimited(int field, absl::string_view bytes, std::string* out) {
  PutVarint(static_cast<uint64_t>(field) << 3 | 2, out);
  PutVarint(bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}
void PutStringField(int field, absl::string_view text, std::string* out) {
  if (!text.empty()) PutLengthDelimited(field, text, out);
}

absl::Status CheckOptionalDate(const std::string& text, absl::string_view field) {
  if (text.empty()) return absl::OkStatus();
  if (text.size() > 10) {  // ParseDate would quote all of it
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", QuoteInput(text), " is not a date of the form YYYY-MM-DD"));
  }
  auto parsed = ParseDate(text);
  if (!parsed.ok()) return Annotate(parsed.status(), field);
  return absl::OkStatus();
}

absl::Status CheckOptionalMonth(const std::string& text, absl::string_view field) {
  if (text.empty()) return absl::OkStatus();
  if (text.size() > 7) {  // ParseMonth would quote all of it
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", QuoteInput(text), " is not a month of the form YYYY-MM"));
  }
  auto parsed = ParseMonth(text);
  if (!parsed.ok()) return Annotate(parsed.status(), field);
  return absl::OkStatus();
}

// Crawl records sorted by date, then commit order.
std::vector<v1::StoredCrawl> ByDate(std::vector<v1::StoredCrawl> crawls) {
  std::stable_sort(crawls.begin(), crawls.end(),
                   [](const v1::StoredCrawl& a, const v1::StoredCrawl& b) {
                     if (a.date() != b.date()) return a.date() < b.date();
                     return a.crawl_number() < b.crawl_number();
                   });
  return crawls;
}

struct IngestMetrics {
  prometheus::Family<prometheus::Counter>& batches_family =
      prometheus::BuildCounter()
          .Name("hubcensus_store_batches_total")
          .Help("Snapshot batches by outcome")
          .Register(*MetricsRegistry());
  prometheus::Counter& batches_ok = batches_family.Add({{"outcome", "ok"}});
  prometheus::Counter& batches_refused = batches_family.Add({{"outcome", "refused"}});
  prometheus::Counter& repos = prometheus::BuildCounter()
                                   .Name("hubcensus_store_repos_total")
                                   .Help("Repo snapshots written")
                                   .Register(*MetricsRegistry())
                                   .Add({});
  prometheus::Counter& commits = prometheus::BuildCounter()
                                     .Name("hubcensus_store_commits_total")
                                     .Help("Crawls committed")
                                     .Register(*MetricsRegistry())
                                     .Add({});
  prometheus::Family<prometheus::Counter>& queries = prometheus::BuildCounter()
                                                         .Name("hubcensus_census_queries_total")
                                                         .Help("Census RPCs by method")
                                                         .Register(*MetricsRegistry());
};

// What a committed census counted and left out; `repos` is always the published count (crawls
// committed before counts were kept have only that).
v1::CensusCounts CountsOf(const v1::StoredCrawl& crawl) {
  v1::CensusCounts counts = crawl.counts();
  counts.set_repos(crawl.repos());
  return counts;
}

IngestMetrics& Metrics() {
  static IngestMetrics* m = [] {
    auto* metrics = new IngestMetrics();
    // Every series exported from the start (at 0): one per Census method.
    const auto* census = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
        "hubcensus.v1.Census");
    for (int k = 0; census != nullptr && k < census->method_count(); ++k) {
      metrics->queries.Add({{"method", census->method(k)->name()}});
    }
    return metrics;
  }();
  return *m;
}

void CountQuery(const char* method) { Metrics().queries.Add({{"method", method}}).Increment(); }

// The serialized answers of Families, Series and Shares under the served families config, for one
// commit generation of the store (Impl::commit_generation_): every commit makes a new generation,
// and an answer built in an older one is never returned. A committed crawl's served figures never
// change, so within a generation an answer depends on the request alone. Keyed by the method and
// the request as received.
class AnswerCache {
 public:
  // What one generation's answers may hold: a Series of every family over 365 crawls is 1.3 MB.
  static constexpr size_t kMaxBytes = size_t{64} << 20;
  static constexpr size_t kMaxAnswers = 1024;

  std::shared_ptr<const std::string> Find(uint64_t generation, const std::string& key) {
    absl::ReaderMutexLock lock(&mu_);
    if (generation != generation_) return nullptr;
    auto it = answers_.find(key);
    return it == answers_.end() ? nullptr : it->second;
  }

  // An answer built from a view taken in `generation`; dropped when a newer generation has
  // answers already.
  void Insert(uint64_t generation, std::string key, std::shared_ptr<const std::string> answer) {
    absl::MutexLock lock(&mu_);
    if (generation < generation_) return;
    if (generation > generation_ || bytes_ + answer->size() > kMaxBytes ||
        answers_.size() >= kMaxAnswers) {
      // A new generation, or a full cache (many distinct requests): start over.
      answers_.clear();
      bytes_ = 0;
      generation_ = generation;
    }
    if (answer->size() > kMaxBytes) return;
    bytes_ += answer->size();
    answers_.insert_or_assign(std::move(key), std::move(answer));
  }

 private:
  absl::Mutex mu_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::shared_ptr<const std::string>> answers_
      ABSL_GUARDED_BY(mu_);
};

// The bytes of a received message, in one string.
std::string BytesOf(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// Sends `answer` without copying it: the slice holds a reference until gRPC has written it.
void SendAnswer(std::shared_ptr<const std::string> answer, grpc::ByteBuffer* response) {
  auto* held = new std::shared_ptr<const std::string>(std::move(answer));
  grpc::Slice slice(
      const_cast<char*>((*held)->data()), (*held)->size(),
      [](void* p) { delete static_cast<std::shared_ptr<const std::string>*>(p); }, held);
  grpc::ByteBuffer buffer(&slice, 1);
  response->Swap(&buffer);
}

}  // namespace

// The gRPC faces and the query machinery behind the public methods.
class Aggregator::Impl {
 public:
  explicit Impl(Aggregator* agg, AggregatorOptions options)
      : agg_(agg),
        options_(std::move(options)),
        served_fingerprint_(FamilyConfigFingerprint(agg->families_)),
        matcher_(agg->families_),
        store_service_(agg),
        census_service_(agg, this) {}

  // A config for a request: the served one, or a validated ad-hoc one.
  absl::StatusOr<v1::FamilyConfig> ConfigFor(const v1::FamilyConfig& requested,
                                             bool* ad_hoc) const {
    *ad_hoc = false;
    if (requested.family_size() == 0) return agg_->families_;
    RETURN_IF_ERROR(ValidateFamilyConfig(requested, "families"));
    v1::FamilyConfig config = WithDefaults(requested);
    *ad_hoc = FamilyConfigFingerprint(config) != served_fingerprint_;
    return config;
  }

  absl::StatusOr<v1::StoredCrawl> Select(const store::StoreView& view,
                                         const v1::CrawlSelector& selector) const {
    if (!selector.date().empty()) RETURN_IF_ERROR(CheckOptionalDate(selector.date(), "crawl.date"));
    if (!selector.crawl_id().empty()) {
      auto crawl = view.FindCrawl(selector.crawl_id());
      if (!crawl.ok() || crawl->state() != v1::STORED_CRAWL_COMMITTED) {
        return absl::NotFoundError(
            absl::StrCat("crawl.crawl_id: no committed crawl ", QuoteInput(selector.crawl_id())));
      }
      if (!selector.date().empty() && crawl->date() != selector.date()) {
        return absl::InvalidArgumentError(absl::StrCat("crawl.date: crawl ", crawl->crawl_id(),
                                                       " is of ", crawl->date(), ", not ",
                                                       selector.date()));
      }
      return *crawl;
    }
    auto committed = ByDate(view.CommittedCrawls());
    if (committed.empty()) return absl::NotFoundError("no committed crawl yet");
    if (selector.date().empty()) return committed.back();
    for (auto it = committed.rbegin(); it != committed.rend(); ++it) {
      if (it->date() == selector.date()) return *it;
    }
    return absl::NotFoundError(absl::StrCat("crawl.date: no committed crawl of ", selector.date()));
  }

  absl::StatusOr<CensusFigures> Compute(const store::StoreView& view, const v1::StoredCrawl& crawl,
                                        const v1::FamilyConfig& config, int top_k) const {
    ASSIGN_OR_RETURN(store::CrawlSnapshot snapshot, view.LoadCrawl(crawl));
    return ComputeCensus(snapshot, config, crawl.crawl_id(), crawl.date(), top_k);
  }

  static absl::StatusOr<store::Rollups> RollupsOf(const CensusFigures& figures,
                                                  uint64_t fingerprint, int top_k) {
    store::Rollups rollups;
    v1::CrawlRollup summary;
    summary.set_config_fingerprint(fingerprint);
    *summary.mutable_families() = figures.families;
    summary.set_top_k(top_k);
    rollups.emplace_back(std::string(kSummaryRollup), summary.SerializeAsString());
    rollups.emplace_back(std::string(kSharesRollup), figures.shares.SerializeAsString());
    for (size_t f = 0; f < figures.top.size(); ++f) {
      rollups.emplace_back(FamilyRollupName(static_cast<int>(f)),
                           figures.top[f].SerializeAsString());
    }
    return rollups;
  }

  // The served config's figures of one committed crawl, as Series reads them: a crawl's served
  // rollup never changes once written (crawl numbers are not reused), so they are parsed once per
  // process and kept (a few KB a crawl).
  struct ServedFigures {
    v1::CrawlRollup summary;  // families and top_k; shares are not kept here
    absl::flat_hash_map<std::string, const v1::Figures*> by_family;
    absl::flat_hash_map<std::string, const v1::Figures*> by_region;
  };

  // The served config's rollup of a crawl (families and top_k; shares too when `with_shares`);
  // recomputed (and re-materialised when writable) when it was computed under another families
  // config or is missing.
  absl::StatusOr<v1::CrawlRollup> ServedRollup(const store::StoreView& view,
                                               const v1::StoredCrawl& crawl, bool with_shares) {
    if (!with_shares) {
      ASSIGN_OR_RETURN(std::shared_ptr<const ServedFigures> cached, Served(view, crawl));
      return cached->summary;
    }
    ASSIGN_OR_RETURN(std::optional<v1::CrawlRollup> stored, StoredRollup(view, crawl, true));
    if (stored.has_value()) return std::move(*stored);
    return Rematerialise(view, crawl);
  }

  // The served figures of a crawl, from the process's cache, the stored rollup, or computed.
  absl::StatusOr<std::shared_ptr<const ServedFigures>> Served(const store::StoreView& view,
                                                              const v1::StoredCrawl& crawl) {
    {
      absl::MutexLock lock(&served_mu_);
      auto it = served_.find(crawl.crawl_number());
      if (it != served_.end()) return it->second;
    }
    ASSIGN_OR_RETURN(std::optional<v1::CrawlRollup> stored, StoredRollup(view, crawl, false));
    auto figures = std::make_shared<ServedFigures>();
    if (stored.has_value()) {
      figures->summary = std::move(*stored);
      figures->summary.clear_shares();  // in summaries written before the shares rollup
    } else {
      ASSIGN_OR_RETURN(figures->summary, Rematerialise(view, crawl));
      figures->summary.clear_shares();
    }
    for (const auto& f : figures->summary.families().families()) {
      figures->by_family.emplace(f.family(), &f.figures());
    }
    for (const auto& r : figures->summary.families().regions()) {
      figures->by_region.emplace(r.region(), &r.figures());
    }
    absl::MutexLock lock(&served_mu_);
    return served_.try_emplace(crawl.crawl_number(), std::move(figures)).first->second;
  }

  // The stored served rollup of a crawl; nullopt when it is missing or of another config.
  absl::StatusOr<std::optional<v1::CrawlRollup>> StoredRollup(const store::StoreView& view,
                                                              const v1::StoredCrawl& crawl,
                                                              bool with_shares) const {
    ASSIGN_OR_RETURN(auto value, view.GetRollup(crawl.crawl_number(), kSummaryRollup));
    if (!value.has_value()) return std::nullopt;
    v1::CrawlRollup rollup;
    if (!rollup.ParseFromString(*value)) {
      return absl::DataLossError(absl::StrCat("rollup of crawl ", crawl.crawl_id(), " is corrupt"));
    }
    if (rollup.config_fingerprint() != served_fingerprint_) return std::nullopt;
    // Crawls committed before shares had their own rollup carry them in the summary.
    if (with_shares && !rollup.has_shares()) {
      ASSIGN_OR_RETURN(auto shares, view.GetRollup(crawl.crawl_number(), kSharesRollup));
      if (!shares.has_value()) return std::nullopt;
      if (!rollup.mutable_shares()->ParseFromString(*shares)) {
        return absl::DataLossError(
            absl::StrCat("shares rollup of crawl ", crawl.crawl_id(), " is corrupt"));
      }
    }
    return rollup;
  }

  // Computes the served config's figures of a crawl and writes them as its rollups.
  absl::StatusOr<v1::CrawlRollup> Rematerialise(const store::StoreView& view,
                                                const v1::StoredCrawl& crawl) {
    ASSIGN_OR_RETURN(CensusFigures figures, Compute(view, crawl, agg_->families_, options_.top_k));
    if (!agg_->store_->secondary()) {
      ASSIGN_OR_RETURN(auto rollups, RollupsOf(figures, served_fingerprint_, options_.top_k));
      absl::Status put = agg_->store_->PutRollups(crawl.crawl_number(), rollups);
      if (put.ok()) {
        HC_LOG(kInfo, "rollups_rematerialised").Field("crawl", crawl.crawl_id());
      } else {
        // A full disk must not stop the queries: answer from the figures just computed.
        HC_LOG(kWarning, "rollups_not_rematerialised")
            .Field("crawl", crawl.crawl_id())
            .Field("status", put);
      }
    }
    v1::CrawlRollup rollup;
    rollup.set_config_fingerprint(served_fingerprint_);
    *rollup.mutable_families() = std::move(figures.families);
    *rollup.mutable_shares() = std::move(figures.shares);
    rollup.set_top_k(options_.top_k);
    return rollup;
  }

  // Series values of one family or region over the committed crawls of a range.
  struct Line {
    std::string name;
    bool region;
  };
  // The lines a Series request asks for, validated: INVALID_ARGUMENT names the field.
  absl::StatusOr<std::vector<Line>> SeriesLines(const v1::SeriesRequest& request) const {
    RETURN_IF_ERROR(CheckMetric(request.metric(), "metric"));
    RETURN_IF_ERROR(CheckOptionalDate(request.from_date(), "from_date"));
    RETURN_IF_ERROR(CheckOptionalDate(request.to_date(), "to_date"));
    if (!request.from_date().empty() && !request.to_date().empty() &&
        request.from_date() > request.to_date()) {
      return absl::InvalidArgumentError(absl::StrCat("from_date: ", request.from_date(),
                                                     " is after to_date ", request.to_date()));
    }
    std::vector<Line> lines;
    if (request.regions_size() > 0) {
      for (int i = 0; i < request.regions_size(); ++i) {
        const std::string& r = request.regions(i);
        if (std::find(std::begin(kRegions), std::end(kRegions), r) == std::end(kRegions)) {
          return absl::InvalidArgumentError(absl::StrCat("regions[", i, "]: unknown region ",
                                                         QuoteInput(r),
                                                         " (china, us, eu, other, unknown)"));
        }
        lines.push_back({r, true});
      }
    } else if (request.families_size() > 0) {
      for (int i = 0; i < request.families_size(); ++i) {
        if (matcher_.IndexOf(request.families(i)) < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("families[", i, "]: unknown family ", QuoteInput(request.families(i))));
        }
        lines.push_back({request.families(i), false});
      }
    } else {
      for (const auto& f : agg_->families_.family()) lines.push_back({f.name(), false});
    }
    return lines;
  }

  // Calls point(crawl, line, value) for every point of the series, crawl by crawl in date order
  // and in `lines` order within a crawl: what SeriesOf and SeriesBytes both write.
  template <typename Point>
  absl::Status WalkSeries(const std::string& metric, const std::vector<Line>& lines,
                          const std::string& from, const std::string& to, const Point& point) {
    ASSIGN_OR_RETURN(auto view, agg_->store_->View());
    auto crawls = ByDate(view->CommittedCrawls());
    const bool in_period = metric == "downloads_in_period";
    const MetricReader read = MetricReaderOf(metric);
    bool have_previous = false;
    std::vector<double> previous(lines.size(), 0);
    for (const auto& crawl : crawls) {
      if (!to.empty() && crawl.date() > to) break;
      const bool in_range = from.empty() || crawl.date() >= from;
      // The first crawl of the range still needs its predecessor for downloads_in_period.
      if (!in_range && !in_period) continue;
      ASSIGN_OR_RETURN(std::shared_ptr<const ServedFigures> served, Served(*view, crawl));
      for (size_t i = 0; i < lines.size(); ++i) {
        const auto& index = lines[i].region ? served->by_region : served->by_family;
        auto found = index.find(lines[i].name);
        const double value = found == index.end() ? 0 : read(*found->second);
        if (!in_period) {
          if (in_range) point(crawl, i, value);
          continue;
        }
        if (in_range && have_previous) point(crawl, i, value - previous[i]);
        previous[i] = value;
      }
      have_previous = true;
    }
    return absl::OkStatus();
  }

  // Series values of families or regions over the committed crawls of a range.
  absl::StatusOr<v1::SeriesResponse> SeriesOf(const std::string& metric,
                                              const std::vector<Line>& lines,
                                              const std::string& from, const std::string& to) {
    v1::SeriesResponse out;
    out.set_metric(metric);
    for (const Line& l : lines) out.add_lines()->set_name(l.name);
    RETURN_IF_ERROR(WalkSeries(metric, lines, from, to,
                               [&](const v1::StoredCrawl& crawl, size_t line, double value) {
                                 auto* p = out.mutable_lines(static_cast<int>(line))->add_points();
                                 p->set_date(crawl.date());
                                 p->set_crawl_id(crawl.crawl_id());
                                 p->set_value(value);
                               }));
    return out;
  }

  // The same series in columns (SeriesRequest.columns): the crawls once, a packed list of values
  // a line. WalkSeries gives every line a point for each crawl it visits, so one crawl list
  // serves every line.
  absl::StatusOr<v1::SeriesResponse> SeriesColumnsOf(const std::string& metric,
                                                     const std::vector<Line>& lines,
                                                     const std::string& from,
                                                     const std::string& to) {
    v1::SeriesResponse out;
    out.set_metric(metric);
    std::vector<google::protobuf::RepeatedField<double>*> values;
    for (const Line& l : lines) {
      v1::SeriesLine* line = out.add_lines();
      line->set_name(l.name);
      values.push_back(line->mutable_values());
    }
    const v1::StoredCrawl* last = nullptr;
    RETURN_IF_ERROR(WalkSeries(metric, lines, from, to,
                               [&](const v1::StoredCrawl& crawl, size_t line, double value) {
                                 if (last != &crawl) {
                                   v1::SeriesCrawl* c = out.add_crawls();
                                   c->set_date(crawl.date());
                                   c->set_crawl_id(crawl.crawl_id());
                                   last = &crawl;
                                 }
                                 values[line]->Add(value);
                               }));
    return out;
  }

  // SeriesOf's answer serialized, written straight as bytes: a point's date and crawl id are the
  // same bytes on every line, so they are encoded once per crawl, and no message is built for
  // each of 39,420 points. Parses to exactly SeriesOf's message (tests compare the two).
  absl::StatusOr<std::string> SeriesBytes(const std::string& metric, const std::vector<Line>& lines,
                                          const std::string& from, const std::string& to) {
    std::vector<std::string> line_points(lines.size());
    const v1::StoredCrawl* prefix_crawl = nullptr;
    std::string prefix;  // SeriesPoint fields 1 and 2 of the current crawl
    RETURN_IF_ERROR(WalkSeries(metric, lines, from, to,
                               [&](const v1::StoredCrawl& crawl, size_t line, double value) {
                                 if (prefix_crawl != &crawl) {
                                   prefix.clear();
                                   PutStringField(1, crawl.date(), &prefix);
                                   PutStringField(2, crawl.crawl_id(), &prefix);
                                   prefix_crawl = &crawl;
                                 }
                                 uint64_t bits;
                                 static_assert(sizeof(bits) == sizeof(value));
                                 std::memcpy(&bits, &value, sizeof(bits));
                                 std::string& out = line_points[line];
                                 // SeriesLine.points (2): the prefix, then value (3, fixed64)
                                 // unless it is +0.0, which proto3 leaves out.
                                 PutVarint(2 << 3 | 2, &out);
                                 PutVarint(prefix.size() + (bits != 0 ? 9 : 0), &out);
                                 out.append(prefix);
                                 if (bits != 0) {
                                   out.push_back(static_cast<char>(3 << 3 | 1));
                                   for (int b = 0; b < 8; ++b)
                                     out.push_back(static_cast<char>(bits >> (8 * b)));
                                 }
                               }));
    std::string answer;
    size_t size = metric.size() + 8;
    for (size_t i = 0; i < lines.size(); ++i)
      size += line_points[i].size() + lines[i].name.size() + 16;
    answer.reserve(size);
    PutStringField(1, metric, &answer);  // SeriesResponse.metric
    std::string name;
    for (size_t i = 0; i < lines.size(); ++i) {
      name.clear();
      PutStringField(1, lines[i].name, &name);  // SeriesLine.name
      // SeriesResponse.lines (2): written even when empty, as an empty message is.
      PutVarint(2 << 3 | 2, &answer);
      PutVarint(name.size() + line_points[i].size(), &answer);
      answer.append(name);
      answer.append(line_points[i]);
    }
    return answer;
  }

  // The ancestors of one repo (up to max_steps edges away, over the edges the policy follows),
  // read by point lookups: the Lineage RPC without loading a whole crawl.
  absl::StatusOr<store::CrawlSnapshot> AncestorSnapshot(const store::StoreView& view,
                                                        const v1::StoredCrawl& crawl,
                                                        const v1::RepoSnapshot& start,
                                                        const v1::LineageOptions& lineage) {
    store::CrawlSnapshot out;
    const int max_steps = lineage.max_steps() <= 0 ? kDefaultMaxLineageSteps : lineage.max_steps();
    const bool split = lineage.parent_policy() == v1::SPLIT;
    absl::flat_hash_set<std::string> seen = {start.id()};
    std::deque<std::pair<v1::RepoSnapshot, int>> queue;
    queue.emplace_back(start, 0);
    while (!queue.empty() && seen.size() < kMaxLineageAncestors) {
      auto [repo, depth] = std::move(queue.front());
      queue.pop_front();
      out.Add(repo);
      if (depth >= max_steps) continue;
      int follow = split ? repo.parents_size() : std::min(repo.parents_size(), 1);
      for (int k = 0; k < follow; ++k) {
        const std::string& pid = repo.parents(k).id();
        if (!seen.insert(pid).second) continue;
        ASSIGN_OR_RETURN(auto parent, view.GetRepo(crawl, pid));
        if (parent.has_value()) queue.emplace_back(std::move(*parent), depth + 1);
      }
    }
    return out;
  }

  // The answers as sent, built: the typed method's answer serialized (it validates and counts
  // the call), or for Series the bytes written straight.
  absl::StatusOr<std::string> FamiliesAnswer(const v1::FamiliesRequest& request) {
    ASSIGN_OR_RETURN(v1::FamiliesResponse answer, agg_->Families(request));
    return answer.SerializeAsString();
  }
  absl::StatusOr<std::string> SharesAnswer(const v1::SharesRequest& request) {
    ASSIGN_OR_RETURN(v1::SharesResponse answer, agg_->Shares(request));
    return answer.SerializeAsString();
  }
  absl::StatusOr<std::string> SeriesAnswer(const v1::SeriesRequest& request) {
    CountQuery("Series");
    ASSIGN_OR_RETURN(std::vector<Line> lines, SeriesLines(request));
    if (request.columns()) {
      ASSIGN_OR_RETURN(
          v1::SeriesResponse answer,
          SeriesColumnsOf(request.metric(), lines, request.from_date(), request.to_date()));
      return answer.SerializeAsString();
    }
    return SeriesBytes(request.metric(), lines, request.from_date(), request.to_date());
  }

  // A Census call answered with the bytes it sends: from the answer cache on this (gRPC) thread
  // when it holds them, else built on an AnswerBuilders thread by `build` and cached when
  // `cacheable` says the answer is the served config's.
  template <typename Request>
  grpc::ServerUnaryReactor* Answer(const char* method, grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request, grpc::ByteBuffer* response,
                                   absl::StatusOr<std::string> (Impl::*build)(const Request&),
                                   bool (*cacheable)(const Request&)) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    std::string key = absl::StrCat(method, "/", BytesOf(*request));
    if (auto hit = CachedAnswer(key)) {
      CountQuery(method);
      SendAnswer(std::move(hit), response);
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    builders_.Run([this, method, key = std::move(key), response, reactor, build, cacheable] {
      // Another call may have built it while this one waited.
      if (auto hit = CachedAnswer(key)) {
        CountQuery(method);
        SendAnswer(std::move(hit), response);
        reactor->Finish(grpc::Status::OK);
        return;
      }
      Request parsed;
      const absl::string_view bytes = absl::string_view(key).substr(std::strlen(method) + 1);
      if (!parsed.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        reactor->Finish(ToGrpcStatus(absl::InvalidArgumentError(
            absl::StrCat("request: not a ", Request::descriptor()->full_name(), " message"))));
        return;
      }
      // Read before the view the answer comes from: an answer is never filed under a generation
      // newer than its view.
      const uint64_t generation = commit_generation_.load();
      absl::StatusOr<std::string> answer = (this->*build)(parsed);
      if (!answer.ok()) {
        reactor->Finish(ToGrpcStatus(answer.status()));
        return;
      }
      auto bytes_out = std::make_shared<const std::string>(std::move(*answer));
      if (!agg_->store_->secondary() && cacheable(parsed)) {
        answers_.Insert(generation, key, bytes_out);
      }
      SendAnswer(std::move(bytes_out), response);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  // The cached answer of `key` in the current commit generation. A secondary (read-only)
  // instance never caches: the commits it would have to see are another process's.
  std::shared_ptr<const std::string> CachedAnswer(const std::string& key) {
    if (agg_->store_->secondary()) return nullptr;
    return answers_.Find(commit_generation_.load(), key);
  }

  Aggregator* agg_;
  AggregatorOptions options_;
  uint64_t served_fingerprint_;
  FamilyMatcher matcher_;
  absl::Mutex served_mu_;
  // Crawl number -> the served figures of that committed crawl.
  absl::flat_hash_map<uint32_t, std::shared_ptr<const ServedFigures>> served_
      ABSL_GUARDED_BY(served_mu_);
  // Moved on by every Commit, once the store has published (or refused) the crawl: cached answers
  // of an earlier generation are dead.
  std::atomic<uint64_t> commit_generation_{0};
  AnswerCache answers_;

  class StoreService final : public v1::SnapshotStore::Service {
   public:
    explicit StoreService(Aggregator* agg) : agg_(agg) {}
    grpc::Status Write(grpc::ServerContext* context, grpc::ServerReader<v1::WriteBatch>* reader,
                       v1::WriteResponse* response) override {
      v1::WriteBatch batch;
      while (reader->Read(&batch)) {
        auto result = agg_->Write(batch);
        if (!result.ok()) return ToGrpcStatus(result.status());
        response->set_batches(response->batches() + 1);
        response->set_repos(response->repos() + result->repos);
        response->add_id_checksums(result->id_checksum);
        if (batch.report_changed()) {
          auto changed = agg_->ChangedSinceLastCrawl(batch);
          if (!changed.ok()) return ToGrpcStatus(changed.status());
          for (std::string& id : *changed) response->add_changed_repo_ids(std::move(id));
        }
      }
      return grpc::Status::OK;
    }
    grpc::Status Commit(grpc::ServerContext*, const v1::CommitRequest* request,
                        v1::CommitResponse* response) override {
      auto result = agg_->Commit(*request);
      if (!result.ok()) return ToGrpcStatus(result.status());
      *response = *result;
      return grpc::Status::OK;
    }
    grpc::Status Abort(grpc::ServerContext*, const v1::AbortRequest* request,
                       v1::AbortResponse*) override {
      return ToGrpcStatus(agg_->Abort(*request));
    }

   private:
    Aggregator* agg_;
  };

  // Families, Series and Shares are raw callback methods: a cached answer is sent as the bytes it
  // was serialized to, without copying or serializing 39,420 Series points again per call.
  class CensusService final
      : public v1::Census::WithRawCallbackMethod_Families<v1::Census::WithRawCallbackMethod_Series<
            v1::Census::WithRawCallbackMethod_Shares<v1::Census::Service>>> {
   public:
    CensusService(Aggregator* agg, Impl* impl) : agg_(agg), impl_(impl) {}
    template <typename Resp>
    static grpc::Status Reply(absl::StatusOr<Resp> result, Resp* response) {
      if (!result.ok()) return ToGrpcStatus(result.status());
      *response = std::move(*result);
      return grpc::Status::OK;
    }
    grpc::Status ListCrawls(grpc::ServerContext*, const v1::ListCommittedCrawlsRequest* request,
                            v1::ListCommittedCrawlsResponse* response) override {
      return Reply(agg_->ListCrawls(*request), response);
    }
    grpc::ServerUnaryReactor* Families(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override {
      return impl_->Answer(
          "Families", context, request, response, &Impl::FamiliesAnswer,
          +[](const v1::FamiliesRequest& r) { return r.families().family_size() == 0; });
    }
    grpc::ServerUnaryReactor* Series(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override {
      return impl_->Answer(
          "Series", context, request, response, &Impl::SeriesAnswer,
          +[](const v1::SeriesRequest&) { return true; });
    }
    grpc::ServerUnaryReactor* Shares(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* response) override {
      return impl_->Answer(
          "Shares", context, request, response, &Impl::SharesAnswer,
          +[](const v1::SharesRequest& r) { return r.families().family_size() == 0; });
    }
    grpc::Status Crossover(grpc::ServerContext*, const v1::CrossoverRequest* request,
                           v1::CrossoverResponse* response) override {
      return Reply(agg_->Crossover(*request), response);
    }
    grpc::Status TopRepos(grpc::ServerContext*, const v1::TopReposRequest* request,
                          v1::TopReposResponse* response) override {
      return Reply(agg_->TopRepos(*request), response);
    }
    grpc::Status Lineage(grpc::ServerContext*, const v1::LineageRequest* request,
                         v1::LineageResponse* response) override {
      return Reply(agg_->Lineage(*request), response);
    }
    grpc::Status Export(grpc::ServerContext*, const v1::ExportRequest* request,
                        grpc::ServerWriter<v1::ExportChunk>* writer) override {
      return StreamExport(agg_, *request, writer);
    }

   private:
    Aggregator* agg_;
    Impl* impl_;
  };

  StoreService store_service_;
  CensusService census_service_;
  // Last: its threads run calls that use every member above, and are joined first.
  internal::AnswerBuilders builders_{4};
};

absl::StatusOr<std::unique_ptr<Aggregator>> Aggregator::Open(AggregatorOptions options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data_dir: empty");
  RETURN_IF_ERROR(ValidateFamilyConfig(options.families, "families"));
  if (options.top_k <= 0 || options.top_k > kMaxTopK) options.top_k = 100;
  std::unique_ptr<Aggregator> agg(new Aggregator());
  Metrics();  // every series exported from the start
  agg->families_ = WithDefaults(options.families);
  store::SnapshotStoreOptions so;
  so.path = options.data_dir;
  so.secondary = options.read_only;
  so.clock = options.clock;
  so.sync_writes = options.sync_writes;
  so.env = options.store_env;
  ASSIGN_OR_RETURN(agg->store_, store::SnapshotStore::Open(so));
  agg->impl_ = std::make_unique<Impl>(agg.get(), std::move(options));
  return agg;
}

Aggregator::~Aggregator() = default;

grpc::Service* Aggregator::snapshot_store_service() { return &impl_->store_service_; }
grpc::Service* Aggregator::census_service() { return &impl_->census_service_; }

absl::StatusOr<std::vector<std::string>> Aggregator::ChangedSinceLastCrawl(
    const v1::WriteBatch& batch) {
  ASSIGN_OR_RETURN(std::unique_ptr<store::StoreView> view, store_->View());
  std::optional<v1::StoredCrawl> previous;
  for (const v1::StoredCrawl& c : view->CommittedCrawls()) {
    if (c.crawl_id() == batch.crawl_id() || c.date() >= batch.crawl_date()) continue;
    if (!previous || c.date() > previous->date()) previous = c;
  }
  std::vector<std::string> changed;
  for (const v1::RepoSnapshot& repo : batch.repos()) {
    if (!previous) {
      changed.push_back(repo.id());
      continue;
    }
    ASSIGN_OR_RETURN(std::optional<std::string> before, view->GetSha(*previous, repo.id()));
    if (!before || *before != repo.sha()) changed.push_back(repo.id());
  }
  return changed;
}

absl::StatusOr<store::BatchResult> Aggregator::Write(const v1::WriteBatch& batch) {
  auto result = store_->Write(batch);
  if (!result.ok()) {
    Metrics().batches_refused.Increment();
    HC_LOG(kWarning, "batch_refused")
        .Field("crawl", InputExcerpt(batch.crawl_id()))
        .Field("item", InputExcerpt(batch.item_id()))
        .Field("fence", batch.fence())
        .Field("status", result.status());
    return result;
  }
  Metrics().batches_ok.Increment();
  Metrics().repos.Increment(static_cast<double>(result->repos));
  return result;
}

absl::StatusOr<v1::CommitResponse> Aggregator::Commit(const v1::CommitRequest& request) {
  const int top_k = impl_->options_.top_k;
  const uint64_t fingerprint = impl_->served_fingerprint_;
  int64_t families = 0;
  auto build = [&](const v1::StoredCrawl& crawl,
                   const store::CrawlSnapshot& snapshot) -> absl::StatusOr<store::Rollups> {
    ASSIGN_OR_RETURN(CensusFigures figures,
                     ComputeCensus(snapshot, families_, crawl.crawl_id(), crawl.date(), top_k));
    families = figures.families.families_size();
    if (figures.lineage_over_budget > 0) {
      HC_LOG(kWarning, "lineage_over_budget")
          .Field("crawl", crawl.crawl_id())
          .Field("repos", figures.lineage_over_budget);
    }
    return Impl::RollupsOf(figures, fingerprint, top_k);
  };
  absl::StatusOr<store::CommitOutcome> committed = store_->Commit(request, build);
  // Whether published or refused (a refusal may follow a partial failure the next view shows),
  // no answer cached before this point is served again.
  impl_->commit_generation_.fetch_add(1);
  if (!committed.ok()) return committed.status();
  const store::CommitOutcome& outcome = *committed;
  if (!outcome.already_committed) Metrics().commits.Increment();
  v1::CommitResponse response;
  response.set_repos(outcome.crawl.repos());
  response.set_families(outcome.already_committed ? families_.family_size() : families);
  return response;
}

absl::Status Aggregator::Abort(const v1::AbortRequest& request) {
  return store_->Abort(request.crawl_id(), request.reason());
}

absl::StatusOr<v1::ListCommittedCrawlsResponse> Aggregator::ListCrawls(
    const v1::ListCommittedCrawlsRequest&) {
  CountQuery("ListCrawls");
  ASSIGN_OR_RETURN(auto view, store_->View());
  v1::ListCommittedCrawlsResponse out;
  for (const auto& c : ByDate(view->CommittedCrawls())) {
    auto* cc = out.add_crawls();
    cc->set_crawl_id(c.crawl_id());
    cc->set_date(c.date());
    cc->set_repos(c.repos());
    cc->set_committed_at_unix_ms(c.committed_at_unix_ms());
    *cc->mutable_counts() = CountsOf(c);
  }
  return out;
}

absl::StatusOr<v1::FamiliesResponse> Aggregator::Families(const v1::FamiliesRequest& request) {
  CountQuery("Families");
  bool ad_hoc = false;
  ASSIGN_OR_RETURN(v1::FamilyConfig config, impl_->ConfigFor(request.families(), &ad_hoc));
  ASSIGN_OR_RETURN(auto view, store_->View());
  ASSIGN_OR_RETURN(v1::StoredCrawl crawl, impl_->Select(*view, request.crawl()));
  v1::FamiliesResponse out;
  if (ad_hoc) {
    ASSIGN_OR_RETURN(CensusFigures figures, impl_->Compute(*view, crawl, config, 0));
    out = std::move(figures.families);
  } else {
    ASSIGN_OR_RETURN(v1::CrawlRollup rollup, impl_->ServedRollup(*view, crawl, false));
    out = std::move(*rollup.mutable_families());
  }
  *out.mutable_counts() = CountsOf(crawl);
  return out;
}

absl::StatusOr<v1::SeriesResponse> Aggregator::Series(const v1::SeriesRequest& request) {
  CountQuery("Series");
  ASSIGN_OR_RETURN(std::vector<Impl::Line> lines, impl_->SeriesLines(request));
  if (request.columns()) {
    return impl_->SeriesColumnsOf(request.metric(), lines, request.from_date(), request.to_date());
  }
  return impl_->SeriesOf(request.metric(), lines, request.from_date(), request.to_date());
}

absl::StatusOr<v1::SharesResponse> Aggregator::Shares(const v1::SharesRequest& request) {
  CountQuery("Shares");
  RETURN_IF_ERROR(CheckOptionalMonth(request.from_month(), "from_month"));
  RETURN_IF_ERROR(CheckOptionalMonth(request.to_month(), "to_month"));
  if (!request.from_month().empty() && !request.to_month().empty() &&
      request.from_month() > request.to_month()) {
    return absl::InvalidArgumentError(absl::StrCat("from_month: ", request.from_month(),
                                                   " is after to_month ", request.to_month()));
  }
  bool ad_hoc = false;
  ASSIGN_OR_RETURN(v1::FamilyConfig config, impl_->ConfigFor(request.families(), &ad_hoc));
  ASSIGN_OR_RETURN(auto view, store_->View());
  ASSIGN_OR_RETURN(v1::StoredCrawl crawl, impl_->Select(*view, request.crawl()));
  v1::SharesResponse all;
  if (ad_hoc) {
    ASSIGN_OR_RETURN(CensusFigures figures, impl_->Compute(*view, crawl, config, 0));
    all = std::move(figures.shares);
  } else {
    ASSIGN_OR_RETURN(v1::CrawlRollup rollup, impl_->ServedRollup(*view, crawl, true));
    all = std::move(*rollup.mutable_shares());
  }
  v1::SharesResponse out;
  out.set_crawl_id(all.crawl_id());
  out.set_date(all.date());
  // Of the whole crawl, whatever the month range: such repos belong to no month.
  out.set_placeholder_dated_left_out(all.placeholder_dated_left_out());
  for (const auto& m : all.months()) {
    if (!request.from_month().empty() && m.month() < request.from_month()) continue;
    if (!request.to_month().empty() && m.month() > request.to_month()) continue;
    *out.add_months() = m;
  }
  return out;
}

absl::StatusOr<v1::CrossoverResponse> Aggregator::Crossover(const v1::CrossoverRequest& request) {
  CountQuery("Crossover");
  if (request.a().empty()) return absl::InvalidArgumentError("a: empty (a family name)");
  if (request.b().empty()) return absl::InvalidArgumentError("b: empty (a family name)");
  if (impl_->matcher_.IndexOf(request.a()) < 0) {
    return absl::InvalidArgumentError(absl::StrCat("a: unknown family ", QuoteInput(request.a())));
  }
  if (impl_->matcher_.IndexOf(request.b()) < 0) {
    return absl::InvalidArgumentError(absl::StrCat("b: unknown family ", QuoteInput(request.b())));
  }
  if (request.a() == request.b()) {
    return absl::InvalidArgumentError("b: the same family as a");
  }
  std::string metric =
      request.metric().empty() ? "first_party_downloads_all_time" : request.metric();
  RETURN_IF_ERROR(CheckMetric(metric, "metric"));
  RETURN_IF_ERROR(CheckOptionalDate(request.from_date(), "from_date"));
  RETURN_IF_ERROR(CheckOptionalDate(request.to_date(), "to_date"));
  ASSIGN_OR_RETURN(v1::SeriesResponse series,
                   impl_->SeriesOf(metric, {{request.a(), false}, {request.b(), false}},
                                   request.from_date(), request.to_date()));
  v1::CrossoverResponse out;
  const auto& a = series.lines(0);
  const auto& b = series.lines(1);
  for (int i = 1; i < a.points_size() && i < b.points_size(); ++i) {
    if (a.points(i - 1).value() <= b.points(i - 1).value() &&
        a.points(i).value() > b.points(i).value()) {
      out.set_found(true);
      out.set_crawl_id(a.points(i).crawl_id());
      out.set_date(a.points(i).date());
      out.set_a_value(a.points(i).value());
      out.set_b_value(b.points(i).value());
      out.set_previous_date(a.points(i - 1).date());
      out.set_previous_a_value(a.points(i - 1).value());
      out.set_previous_b_value(b.points(i - 1).value());
      break;
    }
  }
  return out;
}

absl::StatusOr<v1::TopReposResponse> Aggregator::TopRepos(const v1::TopReposRequest& request) {
  CountQuery("TopRepos");
  if (request.family().empty()) return absl::InvalidArgumentError("family: empty");
  const int family = impl_->matcher_.IndexOf(request.family());
  if (family < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("family: unknown family ", QuoteInput(request.family())));
  }
  if (request.k() < 0 || request.k() > kMaxTopK) {
    return absl::InvalidArgumentError(absl::StrCat("k: ", request.k(), " is not in 1..1000"));
  }
  const int k = request.k() == 0 ? 10 : request.k();
  std::string order = request.order_by().empty() ? "downloads_all_time" : request.order_by();
  if (order != "downloads_all_time" && order != "downloads_30d") {
    return absl::InvalidArgumentError(absl::StrCat("order_by: ", QuoteInput(request.order_by()),
                                                   " is not downloads_all_time or downloads_30d"));
  }
  ASSIGN_OR_RETURN(auto view, store_->View());
  ASSIGN_OR_RETURN(v1::StoredCrawl crawl, impl_->Select(*view, request.crawl()));
  v1::FamilyRollup rollup;
  bool have = false;
  if (k <= impl_->options_.top_k) {
    ASSIGN_OR_RETURN(v1::CrawlRollup summary, impl_->ServedRollup(*view, crawl, false));
    ASSIGN_OR_RETURN(auto value, view->GetRollup(crawl.crawl_number(), FamilyRollupName(family)));
    if (summary.top_k() >= k && value.has_value() && rollup.ParseFromString(*value) &&
        rollup.family() == request.family()) {
      have = true;
    }
  }
  if (!have) {
    ASSIGN_OR_RETURN(CensusFigures figures, impl_->Compute(*view, crawl, families_, k));
    rollup = figures.top[family];
  }
  v1::TopReposResponse out;
  out.set_crawl_id(crawl.crawl_id());
  out.set_date(crawl.date());
  for (const auto& list : rollup.top()) {
    if (list.first_party_only() != request.first_party_only() || list.order_by() != order) continue;
    for (int i = 0; i < list.repos_size() && i < k; ++i) *out.add_repos() = list.repos(i);
  }
  return out;
}

absl::StatusOr<v1::LineageResponse> Aggregator::Lineage(const v1::LineageRequest& request) {
  CountQuery("Lineage");
  if (request.repo_id().empty()) return absl::InvalidArgumentError("repo_id: empty");
  bool ad_hoc = false;
  ASSIGN_OR_RETURN(v1::FamilyConfig config, impl_->ConfigFor(request.families(), &ad_hoc));
  ASSIGN_OR_RETURN(auto view, store_->View());
  ASSIGN_OR_RETURN(v1::StoredCrawl crawl, impl_->Select(*view, request.crawl()));
  ASSIGN_OR_RETURN(auto start, view->GetRepo(crawl, request.repo_id()));
  if (!start.has_value()) {
    return absl::NotFoundError(absl::StrCat("repo_id: ", QuoteInput(request.repo_id()),
                                            " is not in crawl ", crawl.crawl_id()));
  }
  ASSIGN_OR_RETURN(store::CrawlSnapshot ancestors,
                   impl_->AncestorSnapshot(*view, crawl, *start, config.lineage()));
  FamilyMatcher matcher(config);
  LineageGraph graph = BuildLineageGraph(ancestors, matcher);
  LineageResolver resolver(graph, config.lineage());
  resolver.ResolveAll();
  const int64_t index = ancestors.Find(request.repo_id());
  v1::LineageResponse out = ExplainLineage(ancestors, graph, resolver, matcher, config.lineage(),
                                           static_cast<int32_t>(index));
  out.set_crawl_id(crawl.crawl_id());
  out.set_date(crawl.date());
  return out;
}

absl::StatusOr<int64_t> Aggregator::Export(const v1::CrawlSelector& selector, ExportFormat format,
                                           std::ostream& out) {
  ASSIGN_OR_RETURN(auto view, store_->View());
  ASSIGN_OR_RETURN(v1::StoredCrawl crawl, impl_->Select(*view, selector));
  int64_t n = 0;
  if (format == ExportFormat::kCsv) out << RepoSnapshotCsvHeader();
  int64_t private_left_out = 0;
  RETURN_IF_ERROR(view->ForEachRepo(crawl, [&](const v1::RepoSnapshot& repo) {
    // The store refuses private repos; a store written before it did may still hold some.
    if (repo.is_private()) {
      ++private_left_out;
      return absl::OkStatus();
    }
    out << (format == ExportFormat::kCsv ? RepoSnapshotToCsvRow(repo)
                                         : RepoSnapshotToJsonLine(repo) + "\n");
    ++n;
    if (!out) return absl::DataLossError("export: the output stream failed");
    return absl::OkStatus();
  }));
  if (private_left_out > 0) {
    HC_LOG(kWarning, "export_private_left_out")
        .Field("crawl", crawl.crawl_id())
        .Field("repos", private_left_out);
  }
  return n;
}

}  // namespace hubcensus::aggregator
