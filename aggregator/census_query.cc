#include "aggregator/census_query.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "aggregator/aggregator.h"
#include "aggregator/census_format.h"
#include "common/dates.h"
#include "common/grpc_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/status.h"
#include "config/family_config.h"
#include "hubcensus/v1/census.grpc.pb.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"

namespace hubcensus::aggregator {
namespace {

// The Census calls, answered either by a remote aggregator or by one opened on a data folder.
class CensusBackend {
 public:
  virtual ~CensusBackend() = default;
  virtual absl::StatusOr<v1::FamiliesResponse> Families(const v1::FamiliesRequest& r) = 0;
  virtual absl::StatusOr<v1::SeriesResponse> Series(const v1::SeriesRequest& r) = 0;
  virtual absl::StatusOr<v1::SharesResponse> Shares(const v1::SharesRequest& r) = 0;
  virtual absl::StatusOr<v1::CrossoverResponse> Crossover(const v1::CrossoverRequest& r) = 0;
  virtual absl::StatusOr<v1::TopReposResponse> TopRepos(const v1::TopReposRequest& r) = 0;
  virtual absl::StatusOr<v1::LineageResponse> Lineage(const v1::LineageRequest& r) = 0;
  virtual absl::StatusOr<v1::ListCommittedCrawlsResponse> ListCrawls() = 0;
};

class RemoteCensus : public CensusBackend {
 public:
  RemoteCensus(const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials)
      : stub_(v1::Census::NewStub(MakeChannel(target, std::move(credentials)))), target_(target) {}

  template <typename Req, typename Resp, typename Fn>
  absl::StatusOr<Resp> Call(const Req& request, Fn fn) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
    Resp response;
    grpc::Status s = fn(&context, request, &response);
    if (!s.ok()) {
      absl::Status st = FromGrpcStatus(s);
      if (st.code() == absl::StatusCode::kUnavailable) {
        return Annotate(st, absl::StrCat("aggregator at ", target_));
      }
      return st;
    }
    return response;
  }
  absl::StatusOr<v1::FamiliesResponse> Families(const v1::FamiliesRequest& r) override {
    return Call<v1::FamiliesRequest, v1::FamiliesResponse>(
        r, [&](auto* c, const auto& q, auto* p) { return stub_->Families(c, q, p); });
  }
  absl::StatusOr<v1::SeriesResponse> Series(const v1::SeriesRequest& r) override {
    return Call<v1::SeriesRequest, v1::SeriesResponse>(
        r, [&](auto* c, const auto& q, auto* p) { return stub_->Series(c, q, p); });
  }
  absl::StatusOr<v1::SharesResponse> Shares(const v1::SharesRequest& r) override {
    return Call<v1::SharesRequest, v1::SharesResponse>(
        r, [&](auto* c, const auto& q, auto* p) { return stub_->Shares(c, q, p); });
  }
  absl::StatusOr<v1::CrossoverResponse> Crossover(const v1::CrossoverRequest& r) override {
    return Call<v1::CrossoverRequest, v1::CrossoverResponse>(
        r, [&](auto* c, const auto& q, auto* p) { return stub_->Crossover(c, q, p); });
  }
  absl::StatusOr<v1::TopReposResponse> TopRepos(const v1::TopReposRequest& r) override {
    return Call<v1::TopReposRequest, v1::TopReposResponse>(
        r, [&](auto* c, const auto& q, auto* p) { return stub_->TopRepos(c, q, p); });
  }
  absl::StatusOr<v1::LineageResponse> Lineage(const v1::LineageRequest& r) override {
    return Call<v1::LineageRequest, v1::LineageResponse>(
        r, [&](auto* c, const auto& q, auto* p) { return stub_->Lineage(c, q, p); });
  }
  absl::StatusOr<v1::ListCommittedCrawlsResponse> ListCrawls() override {
    return Call<v1::ListCommittedCrawlsRequest, v1::ListCommittedCrawlsResponse>(
        v1::ListCommittedCrawlsRequest(),
        [&](auto* c, const auto& q, auto* p) { return stub_->ListCrawls(c, q, p); });
  }

 private:
  std::unique_ptr<v1::Census::Stub> stub_;
  std::string target_;
};

class LocalCensus : public CensusBackend {
 public:
  explicit LocalCensus(std::unique_ptr<Aggregator> agg) : agg_(std::move(agg)) {}
  absl::StatusOr<v1::FamiliesResponse> Families(const v1::FamiliesRequest& r) override {
    return agg_->Families(r);
  }
  absl::StatusOr<v1::SeriesResponse> Series(const v1::SeriesRequest& r) override {
    return agg_->Series(r);
  }
  absl::StatusOr<v1::SharesResponse> Shares(const v1::SharesRequest& r) override {
    return agg_->Shares(r);
  }
  absl::StatusOr<v1::CrossoverResponse> Crossover(const v1::CrossoverRequest& r) override {
    return agg_->Crossover(r);
  }
  absl::StatusOr<v1::TopReposResponse> TopRepos(const v1::TopReposRequest& r) override {
    return agg_->TopRepos(r);
  }
  absl::StatusOr<v1::LineageResponse> Lineage(const v1::LineageRequest& r) override {
    return agg_->Lineage(r);
  }
  absl::StatusOr<v1::ListCommittedCrawlsResponse> ListCrawls() override {
    return agg_->ListCrawls(v1::ListCommittedCrawlsRequest());
  }

 private:
  std::unique_ptr<Aggregator> agg_;
};

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

std::string ResolveStoreDir(const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (data_dir.empty() || fs::exists(fs::path(data_dir) / "CURRENT", ec)) return data_dir;
  fs::path nested = fs::path(data_dir) / "store";
  if (fs::exists(nested / "CURRENT", ec)) return nested.string();
  return data_dir;
}

absl::StatusOr<std::string> AggregatorTarget(const std::string& address, const TlsOptions& tls) {
  absl::string_view target = address;
  bool https = absl::ConsumePrefix(&target, "https://");
  if (!https) absl::ConsumePrefix(&target, "http://");
  absl::ConsumeSuffix(&target, "/");
  if (target.find('/') != absl::string_view::npos ||
      target.find("://") != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--aggregator: \"", address.substr(0, 200),
                                                   "\" is not HOST:PORT (gRPC, no path)"));
  }
  if (https && tls.ca_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--aggregator: \"", address.substr(0, 200),
                     "\" asks for TLS: give --tls_ca=FILE (the aggregator's CA) and HOST:PORT"));
  }
  return std::string(target);
}

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
std::vector<std::string> KnownFamilies(CensusBackend* backend, const v1::FamilyConfig& ad_hoc) {
  std::vector<std::string> names;
  if (ad_hoc.family_size() > 0) {
    for (const auto& f : ad_hoc.family()) names.push_back(f.name());
    return names;
  }
  auto latest = backend->Families(v1::FamiliesRequest());
  if (!latest.ok()) return names;
  for (const auto& f : latest->families()) names.push_back(f.family());
  return names;
}

absl::StatusOr<std::string> RunOn(CensusBackend* backend, const QueryOptions& o,
                                  OutputFormat format, const v1::FamilyConfig& ad_hoc,
                                  const std::string& date) {
  v1::CrawlSelector selector;
  selector.set_date(date);
  selector.set_crawl_id(o.crawl_id);
  std::vector<std::string> known;
  auto family = [&](const std::string& flag, const std::string& name) {
    if (known.empty()) known = KnownFamilies(backend, ad_hoc);
    return ResolveFamilyName(flag, name, known);
  };

  if (o.kind == "families") {
    v1::FamiliesRequest r;
    *r.mutable_crawl() = selector;
    *r.mutable_families() = ad_hoc;
    ASSIGN_OR_RETURN(auto resp, backend->Families(r));
    return Render(resp, format, &FamiliesToJson, &FamiliesToCsv, &FamiliesToTable);
  }
  if (o.kind == "shares") {
    v1::SharesRequest r;
    *r.mutable_crawl() = selector;
    r.set_from_month(o.from);
    r.set_to_month(o.to);
    *r.mutable_families() = ad_hoc;
    ASSIGN_OR_RETURN(auto resp, backend->Shares(r));
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
    ASSIGN_OR_RETURN(auto resp, backend->Series(r));
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
    ASSIGN_OR_RETURN(auto resp, backend->Crossover(r));
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
    ASSIGN_OR_RETURN(auto lines, backend->Series(series));
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
    ASSIGN_OR_RETURN(auto resp, backend->TopRepos(r));
    return Render(resp, format, &TopReposToJson, &TopReposToCsv, &TopReposToTable);
  }
  if (o.kind == "lineage") {
    if (o.repo.empty()) return absl::InvalidArgumentError("lineage: --repo is required");
    v1::LineageRequest r;
    *r.mutable_crawl() = selector;
    r.set_repo_id(o.repo);
    *r.mutable_families() = ad_hoc;
    ASSIGN_OR_RETURN(auto resp, backend->Lineage(r));
    return Render(resp, format, &LineageToJson, &LineageToCsv, &LineageToTable);
  }
  if (o.kind == "crawls") {
    ASSIGN_OR_RETURN(auto resp, backend->ListCrawls());
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
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
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
  std::unique_ptr<CensusBackend> backend;
  std::string target;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!o.aggregator.empty()) {
    ASSIGN_OR_RETURN(target, AggregatorTarget(o.aggregator, o.tls));
    ASSIGN_OR_RETURN(credentials, MakeChannelCredentials(o.tls));
    backend = std::make_unique<RemoteCensus>(target, credentials);
  } else {
    AggregatorOptions ao;
    ao.data_dir = ResolveStoreDir(o.data_dir);
    ao.read_only = true;
    ASSIGN_OR_RETURN(auto agg, Aggregator::Open(ao));
    backend = std::make_unique<LocalCensus>(std::move(agg));
  }
  absl::StatusOr<std::string> out = RunOn(backend.get(), o, format, ad_hoc, date);
  if (out.ok()) return out;
  if (out.status().code() == absl::StatusCode::kUnimplemented && !target.empty()) {
    return ExplainNotAnAggregator(target, credentials);
  }
  if (out.status().code() == absl::StatusCode::kNotFound && !date.empty()) {
    auto crawls = backend->ListCrawls();
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
  ExportFormat format;
  if (o.format == "jsonl" || o.format.empty()) {
    format = ExportFormat::kJsonLines;
  } else if (o.format == "csv") {
    format = ExportFormat::kCsv;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--format: \"", o.format, "\" is not one of jsonl, csv"));
  }
  if (!o.aggregator.empty()) {
    // Export streams every snapshot of a crawl; the Census API answers figures only, so export
    // reads the store itself (safe while the aggregator runs: a RocksDB secondary instance).
    return absl::InvalidArgumentError(
        "--aggregator: export reads the aggregator's data folder, not its gRPC API (which has no "
        "export call): give --data_dir=DIR on a machine that sees the folder (it works while "
        "the aggregator runs)");
  }
  if (o.data_dir.empty()) return absl::InvalidArgumentError("--data_dir: required");
  ASSIGN_OR_RETURN(std::string date, QueryDate(o.date));
  AggregatorOptions ao;
  ao.data_dir = ResolveStoreDir(o.data_dir);
  ao.read_only = true;
  ASSIGN_OR_RETURN(auto agg, Aggregator::Open(ao));
  v1::CrawlSelector selector;
  selector.set_date(date);
  selector.set_crawl_id(o.crawl_id);
  if (o.out.empty() || o.out == "-") return agg->Export(selector, format, std::cout);
  std::string tmp = o.out + ".tmp";
  std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
  if (!file) return absl::InvalidArgumentError(absl::StrCat("--out: cannot write ", o.out));
  ASSIGN_OR_RETURN(int64_t n, agg->Export(selector, format, file));
  file.close();
  if (!file || std::rename(tmp.c_str(), o.out.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("--out: writing ", o.out, " failed"));
  }
  return n;
}

namespace {

// The port of a host:port address, or nullopt when it has none.
std::optional<int> PortOf(const std::string& address) {
  auto colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return std::nullopt;
  }
  return port;
}

std::string HostOf(const std::string& address) { return address.substr(0, address.rfind(':')); }

}  // namespace

absl::Status ServeAggregator(const AggregatorServerOptions& o) {
  if (o.data_dir.empty()) return absl::InvalidArgumentError("--data_dir: required");
  const bool split = !o.ingest_listen.empty();
  if (split) {
    std::optional<int> ingest_port = PortOf(o.ingest_listen);
    if (!ingest_port) {
      return absl::InvalidArgumentError(
          absl::StrCat("--ingest_listen: \"", o.ingest_listen, "\" is not HOST:PORT"));
    }
    // Caught here with a message that names both flags (the second bind would fail anyway:
    // common/grpc_server.cc turns SO_REUSEPORT off).
    if (*ingest_port != 0 && PortOf(o.listen) == ingest_port) {
      return absl::InvalidArgumentError(absl::StrCat("--ingest_listen: port ", *ingest_port,
                                                     " is the --listen port; give another"));
    }
  }
  ASSIGN_OR_RETURN(v1::FamilyConfig families, LoadFamilyConfigOrDefault(o.families_file));
  AggregatorOptions ao;
  ao.data_dir = o.data_dir;
  ao.families = families;
  ASSIGN_OR_RETURN(auto agg, Aggregator::Open(ao));
  ASSIGN_OR_RETURN(auto metrics, StartMetricsIfRequested(o.metrics_port));
  ASSIGN_OR_RETURN(auto credentials, MakeServerCredentials(o.tls));
  ASSIGN_OR_RETURN(auto health, StartHealthProbeIfRequested(o.tls.health_port));

  std::unique_ptr<GrpcServer> ingest;
  std::vector<grpc::Service*> query_services = {agg->census_service()};
  if (split) {
    GrpcServerOptions io;
    io.listen_address = o.ingest_listen;
    io.credentials = credentials;
    ASSIGN_OR_RETURN(ingest, GrpcServer::Start(io, {agg->snapshot_store_service()}));
  } else {
    query_services.insert(query_services.begin(), agg->snapshot_store_service());
  }
  GrpcServerOptions so;
  so.listen_address = o.listen;
  so.credentials = credentials;
  ASSIGN_OR_RETURN(auto server, GrpcServer::Start(so, query_services));
  if (ingest) {
    std::printf("aggregator ingest listening on %s:%d\n", HostOf(o.ingest_listen).c_str(),
                ingest->port());
  }
  std::printf("aggregator listening on %s:%d\n", HostOf(o.listen).c_str(), server->port());
  std::fflush(stdout);
  HC_LOG(kInfo, "aggregator_started")
      .Field("data_dir", o.data_dir)
      .Field("port", server->port())
      .Field("ingest_port", ingest ? ingest->port() : server->port())
      .Field("families", families.family_size())
      .Field("metrics_port", metrics ? metrics->port() : 0)
      .Field("tls", !o.tls.cert_file.empty())
      .Field("mtls", o.tls.require_client_cert)
      .Field("health_port", health ? health->port() : 0);
  server->SetServing(true);
  if (ingest) ingest->SetServing(true);
  WaitForShutdown();
  HC_LOG(kInfo, "grpc_server_stopping")
      .Field("port", server->port())
      .Field("ingest_port", ingest ? ingest->port() : server->port());
  // Both listeners drain in the same grace period: a crawler's batch in flight and a query in
  // flight each get to finish.
  std::thread ingest_shutdown([&ingest] {
    if (ingest) ingest->Shutdown();
  });
  server->Shutdown();
  ingest_shutdown.join();
  if (health) health->Shutdown();
  HC_LOG(kInfo, "aggregator_stopped");
  return absl::OkStatus();
}

}  // namespace hubcensus::aggregator
