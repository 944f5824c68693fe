#include "aggregator/census_query.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "aggregator/aggregator.h"
#include "aggregator/census_format.h"
#include "common/grpc_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/status.h"
#include "config/family_config.h"
#include "hubcensus/v1/census.grpc.pb.h"

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

absl::StatusOr<std::string> RunCensusQuery(const QueryOptions& o) {
  ASSIGN_OR_RETURN(OutputFormat format, ParseOutputFormat(o.format));
  if (o.aggregator.empty() == o.data_dir.empty()) {
    return absl::InvalidArgumentError(
        "give exactly one of --aggregator=HOST:PORT or --data_dir=DIR");
  }
  v1::FamilyConfig ad_hoc;
  if (!o.families_file.empty()) {
    ASSIGN_OR_RETURN(ad_hoc, LoadFamilyConfig(o.families_file));
  }
  std::unique_ptr<CensusBackend> backend;
  if (!o.aggregator.empty()) {
    ASSIGN_OR_RETURN(auto credentials, MakeChannelCredentials(o.tls));
    backend = std::make_unique<RemoteCensus>(o.aggregator, std::move(credentials));
  } else {
    AggregatorOptions ao;
    ao.data_dir = o.data_dir;
    ao.read_only = true;
    ASSIGN_OR_RETURN(auto agg, Aggregator::Open(ao));
    backend = std::make_unique<LocalCensus>(std::move(agg));
  }
  v1::CrawlSelector selector;
  selector.set_date(o.date);
  selector.set_crawl_id(o.crawl_id);

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
    v1::SeriesRequest r;
    r.set_metric(o.metric.empty() ? "first_party_downloads_all_time" : o.metric);
    for (const auto& f : o.families) r.add_families(f);
    for (const auto& g : o.regions) r.add_regions(g);
    r.set_from_date(o.from);
    r.set_to_date(o.to);
    ASSIGN_OR_RETURN(auto resp, backend->Series(r));
    return Render(resp, format, &SeriesToJson, &SeriesToCsv, &SeriesToTable);
  }
  if (o.kind == "crossover") {
    v1::CrossoverRequest r;
    r.set_a(o.a);
    r.set_b(o.b);
    r.set_metric(o.metric);
    r.set_from_date(o.from);
    r.set_to_date(o.to);
    ASSIGN_OR_RETURN(auto resp, backend->Crossover(r));
    return Render(resp, format, &CrossoverToJson, &CrossoverToCsv, &CrossoverToTable);
  }
  if (o.kind == "top") {
    v1::TopReposRequest r;
    *r.mutable_crawl() = selector;
    r.set_family(o.family);
    r.set_k(static_cast<int32_t>(o.k));
    r.set_first_party_only(o.first_party_only);
    r.set_order_by(o.order_by);
    ASSIGN_OR_RETURN(auto resp, backend->TopRepos(r));
    return Render(resp, format, &TopReposToJson, &TopReposToCsv, &TopReposToTable);
  }
  if (o.kind == "lineage") {
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
      absl::StrCat("query: unknown kind \"", o.kind,
                   "\" (families, series, shares, crossover, top, lineage, crawls)"));
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
  if (o.data_dir.empty()) return absl::InvalidArgumentError("--data_dir: required");
  AggregatorOptions ao;
  ao.data_dir = o.data_dir;
  ao.read_only = true;
  ASSIGN_OR_RETURN(auto agg, Aggregator::Open(ao));
  v1::CrawlSelector selector;
  selector.set_date(o.date);
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
