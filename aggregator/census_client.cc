#include "aggregator/census_client.h"

#include <chrono>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "aggregator/aggregator.h"
#include "aggregator/census_server.h"
#include "common/grpc_server.h"
#include "common/rpc_deadline.h"
#include "common/status.h"

namespace hubcensus::aggregator {

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

absl::StatusOr<std::unique_ptr<CensusClient>> CensusClient::Connect(const std::string& address,
                                                                    const TlsOptions& tls) {
  ASSIGN_OR_RETURN(std::string target, AggregatorTarget(address, tls));
  ASSIGN_OR_RETURN(auto credentials, MakeChannelCredentials(tls));
  return std::make_unique<CensusClient>(MakeChannel(target, std::move(credentials)), target);
}

absl::StatusOr<std::unique_ptr<CensusClient>> CensusClient::OpenDataDir(
    const std::string& data_dir, const v1::FamilyConfig& families) {
  if (data_dir.empty()) return absl::InvalidArgumentError("--data_dir: required");
  AggregatorOptions options;
  options.data_dir = ResolveStoreDir(data_dir);
  options.families = families;
  options.read_only = true;
  ASSIGN_OR_RETURN(std::unique_ptr<Aggregator> aggregator, Aggregator::Open(std::move(options)));
  std::unique_ptr<CensusClient> client(new CensusClient());
  ASSIGN_OR_RETURN(client->in_process_, InProcessCensusServer::Start(std::move(aggregator)));
  client->stub_ = v1::Census::NewStub(client->in_process_->channel());
  return client;
}

CensusClient::CensusClient(std::shared_ptr<grpc::Channel> channel, std::string target)
    : stub_(v1::Census::NewStub(std::move(channel))), target_(std::move(target)) {}

CensusClient::~CensusClient() = default;

template <typename Request, typename Response, typename Method>
absl::StatusOr<Response> CensusClient::Unary(const Request& request, Method method) {
  grpc::ClientContext context;
  SetRpcDeadline(&context, call_timeout_);
  Response response;
  grpc::Status status = ((*stub_).*method)(&context, request, &response);
  if (status.ok()) return response;
  absl::Status error = FromGrpcStatus(status);
  if (error.code() == absl::StatusCode::kUnavailable && !target_.empty()) {
    return Annotate(error, absl::StrCat("aggregator at ", target_));
  }
  return error;
}

absl::StatusOr<v1::ListCommittedCrawlsResponse> CensusClient::ListCrawls() {
  return Unary<v1::ListCommittedCrawlsRequest, v1::ListCommittedCrawlsResponse>(
      v1::ListCommittedCrawlsRequest(), &v1::Census::Stub::ListCrawls);
}
absl::StatusOr<v1::FamiliesResponse> CensusClient::Families(const v1::FamiliesRequest& request) {
  return Unary<v1::FamiliesRequest, v1::FamiliesResponse>(request, &v1::Census::Stub::Families);
}
absl::StatusOr<v1::SeriesResponse> CensusClient::Series(const v1::SeriesRequest& request) {
  return Unary<v1::SeriesRequest, v1::SeriesResponse>(request, &v1::Census::Stub::Series);
}
absl::StatusOr<v1::SharesResponse> CensusClient::Shares(const v1::SharesRequest& request) {
  return Unary<v1::SharesRequest, v1::SharesResponse>(request, &v1::Census::Stub::Shares);
}
absl::StatusOr<v1::CrossoverResponse> CensusClient::Crossover(const v1::CrossoverRequest& request) {
  return Unary<v1::CrossoverRequest, v1::CrossoverResponse>(request, &v1::Census::Stub::Crossover);
}
absl::StatusOr<v1::TopReposResponse> CensusClient::TopRepos(const v1::TopReposRequest& request) {
  return Unary<v1::TopReposRequest, v1::TopReposResponse>(request, &v1::Census::Stub::TopRepos);
}
absl::StatusOr<v1::LineageResponse> CensusClient::Lineage(const v1::LineageRequest& request) {
  return Unary<v1::LineageRequest, v1::LineageResponse>(request, &v1::Census::Stub::Lineage);
}

absl::StatusOr<int64_t> CensusClient::Export(const v1::ExportRequest& request, std::ostream& out) {
  grpc::ClientContext context;
  SetRpcDeadline(&context, export_timeout_);
  std::unique_ptr<grpc::ClientReader<v1::ExportChunk>> reader = stub_->Export(&context, request);
  v1::ExportChunk chunk;
  bool last = false;
  int64_t repos = 0;
  while (reader->Read(&chunk)) {
    out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    if (!out) {
      context.TryCancel();
      reader->Finish();
      return absl::DataLossError("export: writing the output failed");
    }
    if (chunk.last()) {
      last = true;
      repos = chunk.repos();
    }
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    absl::Status error = FromGrpcStatus(status);
    if (error.code() == absl::StatusCode::kUnavailable && !target_.empty()) {
      return Annotate(error, absl::StrCat("aggregator at ", target_));
    }
    return error;
  }
  if (!last) return absl::DataLossError("export: the stream ended before its last chunk");
  return repos;
}

}  // namespace hubcensus::aggregator
