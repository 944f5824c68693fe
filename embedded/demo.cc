#include "embedded/demo.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "aggregator/aggregator.h"
#include "aggregator/census_format.h"
#include "common/dates.h"
#include "common/log.h"
#include "common/status.h"
#include "config/family_config.h"
#include "embedded/local_census.h"
#include "embedded/progress.h"
#include "embedded/report.h"
#include "embedded/truth_check.h"
#include "fakehub/fakehub.h"

namespace hubcensus {
namespace {

// The truth endpoint answers {"families": ..., "shares": ...}: pull out one member.
absl::StatusOr<std::string> Member(const std::string& json, const std::string& key) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc)) return absl::InternalError("ground truth is not JSON");
  simdjson::dom::element member;
  if (doc[key].get(member)) return absl::InternalError(absl::StrCat("ground truth has no ", key));
  return simdjson::minify(member);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> MonthEnds(const std::string& from_month,
                                                   const std::string& to_month) {
  ASSIGN_OR_RETURN(absl::Time from, ParseMonth(from_month));
  ASSIGN_OR_RETURN(absl::Time to, ParseMonth(to_month));
  if (to < from) {
    return absl::InvalidArgumentError(
        absl::StrCat("--to_month=", to_month, " is before --from_month=", from_month));
  }
  std::vector<std::string> out;
  absl::CivilMonth m = absl::ToCivilMonth(from, absl::UTCTimeZone());
  absl::CivilMonth last = absl::ToCivilMonth(to, absl::UTCTimeZone());
  for (; m <= last; ++m) {
    absl::CivilDay end = absl::CivilDay(m + 1) - 1;
    out.push_back(absl::FormatCivilTime(end));
  }
  return out;
}

absl::StatusOr<DemoResult> RunDemo(const DemoOptions& options, FILE* out) {
  ASSIGN_OR_RETURN(std::vector<std::string> dates, MonthEnds(options.from_month, options.to_month));
  if (options.repos < 1000 || options.repos > 10000000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--repos=", options.repos, ": must be between 1000 and 10000000"));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat(options.out_dir, ": ", ec.message()));
  }
  // The demo's store is its own: start from nothing so every run shows the same census.
  const std::string data_dir = options.out_dir + "/data";
  std::filesystem::remove_all(data_dir, ec);

  std::fprintf(stderr, "demo: generating a Hub of %lld repos (scenario article, seed %llu)\n",
               static_cast<long long>(options.repos),
               static_cast<unsigned long long>(options.seed));
  fakehub::FakeHubOptions hub_options;
  hub_options.repos = options.repos;
  hub_options.seed = options.seed;
  hub_options.scenario = "article";
  hub_options.rate_limit = "off";
  hub_options.date = dates.front();
  ASSIGN_OR_RETURN(auto hub, fakehub::FakeHub::Start(hub_options));

  LocalCensusOptions local;
  local.data_dir = data_dir;
  local.hub_url = hub->url();
  local.workers = options.workers;
  local.families = DefaultFamilyConfig();
  local.hub_quota = "off";
  // The demo's store is rebuilt on every run: durability against power loss buys nothing here.
  local.sync_writes = false;
  ASSIGN_OR_RETURN(auto census, LocalCensus::Start(local));

  DemoResult result;
  ProgressDisplay display(stderr, absl::Seconds(10));
  absl::Time started = absl::Now();
  for (size_t i = 0; i < dates.size(); ++i) {
    const std::string& date = dates[i];
    RETURN_IF_ERROR(hub->SetDate(date));
    auto progress = [&](const v1::Crawl& c) {
      ProgressSnapshot p;
      p.label = absl::StrFormat("[%d/%d] %s", i + 1, dates.size(), c.crawl_id());
      p.items_done = c.stats().items_done();
      p.items_total = c.stats().items_total();
      p.repos = c.stats().repos();
      p.eta_seconds = c.stats().eta_seconds();
      display.Update(p);
    };
    ASSIGN_OR_RETURN(LocalCrawlOutcome outcome, census->RunCrawl(date, progress));
    ProgressSnapshot done;
    done.label = absl::StrFormat("[%d/%d] %s", i + 1, dates.size(), outcome.crawl.crawl_id());
    done.items_done = outcome.crawl.stats().items_done();
    done.items_total = outcome.crawl.stats().items_total();
    done.repos = outcome.crawl.stats().repos();
    done.eta_seconds = 0;
    display.Finish(done);
    ++result.crawls;
    result.repos_last_crawl = outcome.crawl.stats().repos();

    // Every figure of this census against what the simulator knows.
    v1::FamiliesRequest freq;
    freq.mutable_crawl()->set_date(date);
    ASSIGN_OR_RETURN(v1::FamiliesResponse families, census->census()->Families(freq));
    v1::SharesRequest sreq;
    sreq.mutable_crawl()->set_date(date);
    ASSIGN_OR_RETURN(v1::SharesResponse shares, census->census()->Shares(sreq));
    ASSIGN_OR_RETURN(std::string truth, hub->TruthJson(date));
    ASSIGN_OR_RETURN(std::string truth_families, Member(truth, "families"));
    ASSIGN_OR_RETURN(std::string truth_shares, Member(truth, "shares"));
    for (const auto& [ours, theirs, what] :
         {std::tuple{aggregator::FamiliesToJson(families), truth_families, "families"},
          std::tuple{aggregator::SharesToJson(shares), truth_shares, "shares"}}) {
      ASSIGN_OR_RETURN(auto diffs, JsonDifferences(ours, theirs));
      for (const auto& d : diffs)
        result.mismatches.push_back(absl::StrCat(date, " ", what, " ", d));
    }
  }
  double seconds = absl::ToDoubleSeconds(absl::Now() - started);

  ASSIGN_OR_RETURN(ReportData report, GatherReportData(*census->census()));
  report.ground_truth_note =
      result.mismatches.empty()
          ? absl::StrCat("Every figure of all ", result.crawls,
                         " censuses equals the simulator's ground truth.")
          : absl::StrCat(result.mismatches.size(),
                         " figures differ from the simulator's ground truth.");
  RETURN_IF_ERROR(WriteReport(report, options.out_dir));
  result.report_path = options.out_dir + "/index.html";

  // The headline.
  std::string h;
  const v1::FamiliesResponse& latest = report.crawls.back();
  std::vector<const v1::FamilyFigures*> ranked;
  for (const auto& f : latest.families()) ranked.push_back(&f);
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto* a, const auto* b) {
    return a->figures().first_party_downloads_all_time() >
           b->figures().first_party_downloads_all_time();
  });
  absl::StrAppend(&h, "hubcensus demo: ", result.crawls, " monthly censuses of a simulated Hub (",
                  options.repos, " repos), ", dates.front(), " to ", dates.back(), ", in ",
                  absl::StrFormat("%.0f", seconds), " s\n");
  absl::StrAppend(&h, "leaders in cumulative first-party downloads at ", latest.date(), ":");
  for (size_t i = 0; i < ranked.size() && i < 3; ++i) {
    absl::StrAppend(
        &h, i == 0 ? " " : ", ", ranked[i]->family(), " ",
        aggregator::FormatCompact(ranked[i]->figures().first_party_downloads_all_time()));
  }
  h += "\n";
  if (report.crossover.found()) {
    absl::StrAppend(&h, "Qwen passed Llama in the census of ", report.crossover.date(), " (",
                    aggregator::FormatCompact(report.crossover.a_value()), " vs ",
                    aggregator::FormatCompact(report.crossover.b_value()), "; ",
                    aggregator::FormatCompact(report.crossover.previous_a_value()), " vs ",
                    aggregator::FormatCompact(report.crossover.previous_b_value()), " on ",
                    report.crossover.previous_date(), ")\n");
  } else {
    h += "Qwen has not passed Llama in these censuses\n";
  }
  for (const auto& m : report.shares.months()) {
    if (m.month() != "2025-10") continue;
    auto share = [&](const std::string& f) {
      auto it = m.families().find(f);
      return it == m.families().end() ? 0.0 : it->second.share();
    };
    absl::StrAppend(&h, "new derivative models in 2025-10: Qwen ",
                    absl::StrFormat("%.1f%%", 100 * share("Qwen")), ", Llama ",
                    absl::StrFormat("%.1f%%", 100 * share("Llama")), " of ",
                    aggregator::FormatNumber(m.total()), "\n");
  }
  if (result.mismatches.empty()) {
    absl::StrAppend(&h, "ground truth: every figure of all ", result.crawls,
                    " censuses equals the simulator's (families, regions, derivatives, shares)\n");
  } else {
    absl::StrAppend(&h, "ground truth: ", result.mismatches.size(),
                    " figures DIFFER, first: ", result.mismatches.front(), "\n");
  }
  absl::StrAppend(&h, "report: ", result.report_path, "\n");
  result.headline = h;
  std::fputs(h.c_str(), out);
  std::fflush(out);
  census->Stop();
  hub->Stop();
  return result;
}

}  // namespace hubcensus
