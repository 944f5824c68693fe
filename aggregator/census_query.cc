#include "aggregator/census_query.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "aggregator/census_format.h"
#include "common/dates.h"
#include "common/grpc_server.h"
#include "common/rpc_deadline.h"
#include "common/status.h"
#include "config/family_config.h"
#include "hubcensus/v1/census.grpc.pb.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"

namespace hubcensus::aggregator {
namespace {

template <typename Resp>
std::string Render(const Resp& r, OutputFormat f, std::string (*json)(const Resp&),
                   std::string (*csv)(const Resp&), std::string (*table)(const Resp&)) {
  switch (f) {
    case OutputFormat::kJson:
      return json(r) + "\n";
    case OutputFormat::kCsv:
      return csv(r);
    default:
      return table(r);
  }
}

}  // namespace

absl::StatusOr<std::string> QueryDate(const std::string& date) {
  if (date.empty() || date == "latest") return std::string();
  auto resolved = ResolveDate(date, absl::Now());
  if (!resolved.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--date: \"", date.substr(0, 200), "\" is not YYYY-MM-DD, \"today\" or \"latest\""));
  }
  return *resolved;
}

namespace {
size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      bool same = absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}
}  // namespace

absl::StatusOr<std::string> ResolveFamilyName(const std::string& flag, const std::string& name,
                                              const std::vector<std::string>& known) {
  if (known.empty() || std::find(known.begin(), known.end(), name) != known.end()) return name;
  std::vector<std::string> folded;
  for (const auto& k : known) {
    if (absl::EqualsIgnoreCase(k, name)) folded.push_back(k);
  }
  if (folded.size() == 1) return folded[0];
  std::string quoted = name.substr(0, 200);
  if (folded.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": \"", quoted, "\" matches ",
                                                   absl::StrJoin(folded, " and "),
                                                   " ignoring case: give the exact name"));
  }
  const std::string* best = nullptr;
  size_t best_distance = 0;
  for (const auto& k : known) {
    size_t d = EditDistance(name, k);
    if (best == nullptr || d < best_distance) best = &k, best_distance = d;
  }
  std::string hint = best != nullptr && best_distance <= std::max<size_t>(2, name.size() / 3)
                         ? absl::StrCat("; did you mean ", *best, "?")
                         : "; `hubcensus query families` lists them";
  return absl::InvalidArgumentError(absl::StrCat(flag, ": unknown family \"", quoted, "\"", hint));
}

std::string NearestDatesHint(const std::string& date, const std::vector<std::string>& dates) {
  if (dates.empty()) return "no crawl is committed yet";
  auto wanted = ParseDate(date);
  std::vector<std::pair<int64_t, std::string>> by_distance;
  for (const auto& d : dates) {
    auto t = ParseDate(d);
    int64_t distance = wanted.ok() && t.ok() ? std::abs(absl::ToInt64Hours(*t - *wanted)) / 24 : 0;
    by_distance.emplace_back(distance, d);
  }
  std::stable_sort(by_distance.begin(), by_distance.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> nearest;
  for (size_t i = 0; i < by_distance.size() && i < 3; ++i) nearest.push_back(by_distance[i].second);
  std::sort(nearest.begin(), nearest.end());
  return absl::StrCat("nearest committed crawls: ", absl::StrJoin(nearest, ", "));
}

namespace {

// The family names a query can name: the ad hoc config's, else those of the latest crawl
// (empty when no crawl is committed: the server then gives its own error).
std::vector<std::string> KnownFamilies(CensusClient* census, const v1::FamilyConfig& ad_hoc) {
  std::vector<std::string> names;
  if (ad_hoc.family_size() > 0) {
    for (const auto& f : ad_hoc.family()) names.push_back(f.name());
    return names;
  }
  auto latest = census->Families(v1::FamiliesRequest());
  if (!latest.ok()) return names;
  for (const auto& f : latest->families()) names.push_back(f.family());
  return names;
}

absl::StatusOr<std::string> RunOn(CensusClient* census, const QueryOptions& o, OutputFormat format,
                                  const v1::FamilyConfig& ad_hoc, const std::string& date) {
  v1::CrawlSelector selector;
  selector.set_date(date);
  selector.set_crawl_id(o.crawl_id);
  std::vector<std::string> known;
  auto family = [&](const std::string& flag, const std::string& name) {
    if (known.empty()) known = KnownFamilies(census, ad_hoc);
    return ResolveFamilyName(flag, name, known);
  };

  if (o.kind == "families") {
    v1::FamiliesRequest r;
    *r.mutable_crawl() = selector;
    *r.mutable_families() = ad_hoc;
    ASSIGN_OR_RETURN(auto resp, census->Families(r));
    return Render(resp, format, &FamiliesToJson, &FamiliesToCsv, &FamiliesToTable);
  }
  if (o.kind == "shares") {
    v1::SharesRequest r;
    *r.mutable_crawl() = selector;
    r.set_from_month(o.from);
    r.set_to_month(o.to);
    *r.mutable_families() = ad_hoc;
    ASSIGN_OR_RETURN(auto resp, census->Shares(r));
    return Render(resp, format, &SharesToJson, &SharesToCsv, &SharesToTable);
  }
  if (o.kind == "series") {
    if (!o.families.empty() && !o.regions.empty()) {
      return absl::InvalidArgumentError(
          "series: give --family or --region, not both (a series is per family or per region)");
    }
    v1::SeriesRequest r;
    r.set_metric(o.metric.empty() ? "first_party_downloads_all_time" : o.metric);
    for (const auto& f : o.families) {
      ASSIGN_OR_RETURN(std::string name, family("--family", f));
      r.add_families(name);
    }
    for (const auto& g : o.regions) r.add_regions(g);
    r.set_from_date(o.from);
    r.set_to_date(o.to);
    ASSIGN_OR_RETURN(auto resp, census->Series(r));
    return Render(resp, format, &SeriesToJson, &SeriesToCsv, &SeriesToTable);
  }
  if (o.kind == "crossover") {
    if (o.a.empty() || o.b.empty()) {
      return absl::InvalidArgumentError("crossover: --a and --b are required (two families)");
    }
    v1::CrossoverRequest r;
    ASSIGN_OR_RETURN(std::string a, family("--a", o.a));
    ASSIGN_OR_RETURN(std::string b, family("--b", o.b));
    r.set_a(a);
    r.set_b(b);
    r.set_metric(o.metric.empty() ? "first_party_downloads_all_time" : o.metric);
    r.set_from_date(o.from);
    r.set_to_date(o.to);
    ASSIGN_OR_RETURN(auto resp, census->Crossover(r));
    if (format != OutputFormat::kTable) {
      return Render(resp, format, &CrossoverToJson, &CrossoverToCsv, &CrossoverToTable);
    }
    if (resp.found()) return CrossoverFoundSentence(a, b, resp) + "\n";
    v1::SeriesRequest series;
    series.set_metric(r.metric());
    series.add_families(a);
    series.add_families(b);
    series.set_from_date(o.from);
    series.set_to_date(o.to);
    ASSIGN_OR_RETURN(auto lines, census->Series(series));
    return CrossoverAbsentSentence(a, b, lines) + "\n";
  }
  if (o.kind == "top") {
    if (o.family.empty()) return absl::InvalidArgumentError("top: --family is required");
    if (o.k < 1 || o.k > 1000) {
      return absl::InvalidArgumentError(
          absl::StrCat("top: --k=", o.k, " is out of range: give 1 to 1000"));
    }
    if (!o.order_by.empty() && o.order_by != "downloads_all_time" &&
        o.order_by != "downloads_30d") {
      return absl::InvalidArgumentError(
          absl::StrCat("top: --order_by: \"", o.order_by.substr(0, 200),
                       "\" is not one of downloads_all_time, downloads_30d"));
    }
    v1::TopReposRequest r;
    *r.mutable_crawl() = selector;
    ASSIGN_OR_RETURN(std::string name, family("--family", o.family));
    r.set_family(name);
    r.set_k(static_cast<int32_t>(o.k));
    r.set_first_party_only(o.first_party_only);
    r.set_order_by(o.order_by);
    ASSIGN_OR_RETURN(auto resp, census->TopRepos(r));
    return Render(resp, format, &TopReposToJson, &TopReposToCsv, &TopReposToTable);
  }
  if (o.kind == "lineage") {
    if (o.repo.empty()) return absl::InvalidArgumentError("lineage: --repo is required");
    v1::LineageRequest r;
    *r.mutable_crawl() = selector;
    r.set_repo_id(o.repo);
    *r.mutable_families() = ad_hoc;
    ASSIGN_OR_RETURN(auto resp, census->Lineage(r));
    return Render(resp, format, &LineageToJson, &LineageToCsv, &LineageToTable);
  }
  if (o.kind == "crawls") {
    ASSIGN_OR_RETURN(auto resp, census->ListCrawls());
    return Render(resp, format, &CrawlsToJson, &CrawlsToCsv, &CrawlsToTable);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("query: unknown kind \"", o.kind.substr(0, 200),
                   "\" (families, series, shares, crossover, top, lineage, crawls)"));
}

// An UNIMPLEMENTED answer means the address serves gRPC but not Census: name what it is.
absl::Status ExplainNotAnAggregator(const std::string& target,
                                    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  auto coordinator = v1::Coordinator::NewStub(MakeChannel(target, std::move(credentials)));
  grpc::ClientContext context;
  SetRpcDeadline(&context, absl::Seconds(10));
  v1::ListCrawlsResponse ignored;
  grpc::Status s = coordinator->ListCrawls(&context, v1::ListCrawlsRequest(), &ignored);
  if (s.error_code() != grpc::StatusCode::UNIMPLEMENTED &&
      s.error_code() != grpc::StatusCode::UNAVAILABLE) {
    return absl::UnimplementedError(absl::StrCat(
        "--aggregator=", target,
        " is a hubcensus coordinator (it answered hubcensus.v1.Coordinator), not an aggregator: "
        "give the aggregator's address (it prints \"aggregator listening on HOST:PORT\")"));
  }
  return absl::UnimplementedError(
      absl::StrCat("--aggregator=", target,
                   " answered gRPC but does not serve hubcensus.v1.Census: give the "
                   "aggregator's address (it prints \"aggregator listening on HOST:PORT\")"));
}

}  // namespace

namespace {

// One client for either form of the flags: --aggregator or --data_dir (exactly one).
absl::StatusOr<std::unique_ptr<CensusClient>> OpenCensus(const std::string& aggregator,
                                                         const std::string& data_dir,
                                                         const TlsOptions& tls) {
  if (aggregator.empty() == data_dir.empty()) {
    return absl::InvalidArgumentError(
        "give exactly one of --aggregator=HOST:PORT or --data_dir=DIR");
  }
  if (!aggregator.empty()) return CensusClient::Connect(aggregator, tls);
  return CensusClient::OpenDataDir(data_dir, DefaultFamilyConfig());
}

}  // namespace

absl::StatusOr<std::string> RunCensusQuery(const QueryOptions& o) {
  ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(o.format));
  if (o.aggregator.empty() == o.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "give exactly one of --aggregator=HOST:PORT or --data_dir=DIR");
  }
  ASSIGN_OR_RETURN(std::string date, QueryDate(o.date));
  v1::FamilyConfig ad_hoc;
  if (!o.families_file.empty()) {
    ASSIGN_OR_RETURN(ad_hoc, LoadFamilyConfig(o.families_file));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<CensusClient> census,
                   OpenCensus(o.aggregator, o.data_dir, o.tls));
  absl::StatusOr<std::string> out = RunOn(census.get(), o, format, ad_hoc, date);
  if (out.ok()) return out;
  if (out.status().code() == absl::StatusCode::kUnimplemented && !census->target().empty()) {
    ASSIGN_OR_RETURN(auto credentials, MakeChannelCredentials(o.tls));
    return ExplainNotAnAggregator(census->target(), credentials);
  }
  if (out.status().code() == absl::StatusCode::kNotFound && !date.empty()) {
    auto crawls = census->ListCrawls();
    if (crawls.ok()) {
      std::vector<std::string> dates;
      for (const auto& c : crawls->crawls()) dates.push_back(c.date());
      return absl::Status(out.status().code(), absl::StrCat(out.status().message(), "; ",
                                                            NearestDatesHint(date, dates)));
    }
  }
  return out;
}

absl::StatusOr<int64_t> RunExport(const ExportOptions& o) {
  v1::ExportRequest request;
  if (o.format == "jsonl" || o.format.empty()) {
    request.set_format(v1::EXPORT_FORMAT_JSON_LINES);
  } else if (o.format == "csv") {
    request.set_format(v1::EXPORT_FORMAT_CSV);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--format: \"", o.format.substr(0, 200), "\" is not one of jsonl, csv"));
  }
  ASSIGN_OR_RETURN(std::string date, QueryDate(o.date));
  request.mutable_crawl()->set_date(date);
  request.mutable_crawl()->set_crawl_id(o.crawl_id);
  ASSIGN_OR_RETURN(std::unique_ptr<CensusClient> census,
                   OpenCensus(o.aggregator, o.data_dir, o.tls));
  if (o.out.empty() || o.out == "-") return census->Export(request, std::cout);
  // Written beside the target and renamed into place: a failed export leaves no partial file.
  std::string tmp = o.out + ".tmp";
  std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
  if (!file) return absl::InvalidArgumentError(absl::StrCat("--out: cannot write ", o.out));
  absl::StatusOr<int64_t> n = census->Export(request, file);
  file.close();
  if (!n.ok()) {
    std::remove(tmp.c_str());
    return n.status();
  }
  if (!file || std::rename(tmp.c_str(), o.out.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("--out: writing ", o.out, " failed"));
  }
  return n;
}

}  // namespace hubcensus::aggregator
