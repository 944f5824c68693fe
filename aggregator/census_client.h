// The one client of the Census API: the generated stub behind typed calls. `query`, `report`,
// `export`, `local` and the tests all ask through it, whether the aggregator runs elsewhere
// (Connect) or its data folder is opened in this process (OpenDataDir: served to the same stub
// over an in-process gRPC channel, so both paths run the same service code).
#ifndef HUBCENSUS_AGGREGATOR_CENSUS_CLIENT_H_
#define HUBCENSUS_AGGREGATOR_CENSUS_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "hubcensus/v1/census.grpc.pb.h"
#include "hubcensus/v1/config.pb.h"

namespace hubcensus::aggregator {

class InProcessCensusServer;

// --aggregator: HOST:PORT, with an http:// or https:// scheme and a trailing '/' accepted and
// dropped (https:// needs --tls_ca, said in the error).
absl::StatusOr<std::string> AggregatorTarget(const std::string& address, const TlsOptions& tls);
// The store folder for --data_dir: DIR itself when it holds a store, else DIR/store when that
// does (the folder `hubcensus local --data_dir=DIR` was given).
std::string ResolveStoreDir(const std::string& data_dir);

class CensusClient {
 public:
  // A running aggregator: `address` is HOST:PORT (an http:// or https:// scheme and a trailing
  // '/' are accepted, see AggregatorTarget); TLS and mTLS as `tls` says.
  static absl::StatusOr<std::unique_ptr<CensusClient>> Connect(const std::string& address,
                                                               const TlsOptions& tls);
  // The store in `data_dir` (or in DIR/store, the folder given to `hubcensus local`), opened
  // read-only (a RocksDB secondary: safe beside a running aggregator) and served in this process
  // with `families` as the served families.
  static absl::StatusOr<std::unique_ptr<CensusClient>> OpenDataDir(
      const std::string& data_dir, const v1::FamilyConfig& families);
  // A channel to a Census server someone else runs (the embedded `local` roles, tests).
  // `target` names it in errors.
  CensusClient(std::shared_ptr<grpc::Channel> channel, std::string target);
  ~CensusClient();
  CensusClient(const CensusClient&) = delete;
  CensusClient& operator=(const CensusClient&) = delete;

  // The Census calls. Errors carry the server's code and message; UNAVAILABLE also names the
  // aggregator's address.
  absl::StatusOr<v1::ListCommittedCrawlsResponse> ListCrawls();
  absl::StatusOr<v1::FamiliesResponse> Families(const v1::FamiliesRequest& request);
  absl::StatusOr<v1::SeriesResponse> Series(const v1::SeriesRequest& request);
  absl::StatusOr<v1::SharesResponse> Shares(const v1::SharesRequest& request);
  absl::StatusOr<v1::CrossoverResponse> Crossover(const v1::CrossoverRequest& request);
  absl::StatusOr<v1::TopReposResponse> TopRepos(const v1::TopReposRequest& request);
  absl::StatusOr<v1::LineageResponse> Lineage(const v1::LineageRequest& request);
  // Writes the export's bytes to `out` as they arrive; returns the number of repos. DATA_LOSS
  // when the stream ends before its last chunk or `out` fails.
  absl::StatusOr<int64_t> Export(const v1::ExportRequest& request, std::ostream& out);

  // "" for OpenDataDir (nothing remote), else the address dialled.
  const std::string& target() const { return target_; }

 private:
  CensusClient() = default;
  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Unary(const Request& request, Method method);

  // Declared first so that it is destroyed last, after the stub that calls it.
  std::unique_ptr<InProcessCensusServer> in_process_;
  std::unique_ptr<v1::Census::Stub> stub_;
  std::string target_;
  absl::Duration call_timeout_ = absl::Minutes(5);
  absl::Duration export_timeout_ = absl::Hours(2);
};

}  // namespace hubcensus::aggregator

#endif  // HUBCENSUS_AGGREGATOR_CENSUS_CLIENT_H_
