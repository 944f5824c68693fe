// The aggregator: owns the snapshot store, materialises family metrics at commit and answers the
// Census API. Served over gRPC (snapshot_store_service(), census_service()): by the aggregator
// process and `local` on loopback, and for `query --data_dir` over an in-process channel
// (census_server.h), so every reader goes through the one CensusClient.
#ifndef HUBCENSUS_AGGREGATOR_AGGREGATOR_H_
#define HUBCENSUS_AGGREGATOR_AGGREGATOR_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "config/family_config.h"
#include "hubcensus/v1/census.pb.h"
#include "hubcensus/v1/config.pb.h"
#include "hubcensus/v1/store.pb.h"
#include "store/snapshot_store.h"

namespace hubcensus::aggregator {

struct AggregatorOptions {
  std::string data_dir;
  v1::FamilyConfig families = DefaultFamilyConfig();  // the served families
  Clock* clock = Clock::Real();
  // Queries only, beside a running aggregator or not (a RocksDB secondary instance): what
  // `hubcensus query --data_dir` and `export` use. Ingest calls then fail FAILED_PRECONDITION.
  bool read_only = false;
  bool sync_writes = true;            // fsync every acknowledged batch
  int top_k = 100;                    // top-repo lists materialised per family at commit
  rocksdb::Env* store_env = nullptr;  // the store's RocksDB Env (tests: a faulty disk); not owned
};

enum class ExportFormat { kJsonLines, kCsv };

class Aggregator {
 public:
  static absl::StatusOr<std::unique_ptr<Aggregator>> Open(AggregatorOptions options);
  ~Aggregator();
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;

  // Register both on a common/grpc_server.h GrpcServer. Owned by the Aggregator.
  grpc::Service* snapshot_store_service();
  grpc::Service* census_service();

  // Ingest, as the SnapshotStore service runs it.
  absl::StatusOr<store::BatchResult> Write(const v1::WriteBatch& batch);
  absl::StatusOr<v1::CommitResponse> Commit(const v1::CommitRequest& request);
  absl::Status Abort(const v1::AbortRequest& request);
  // The repos of `batch` that are new, or whose sha differs, since the latest committed crawl
  // dated before the batch's crawl (all of them when there is none): what per-repo detail
  // fetches (listing.fetch_details) are planned for.
  absl::StatusOr<std::vector<std::string>> ChangedSinceLastCrawl(const v1::WriteBatch& batch);

  // The Census API. Bad requests: INVALID_ARGUMENT naming the field; unknown crawl or date:
  // NOT_FOUND. Each call reads one store snapshot. Over census_service(), Families, Series and
  // Shares of the served families config are answered from a cache of their serialized answers
  // that every Commit ends (a read_only instance caches none: the commits are another process's).
  absl::StatusOr<v1::ListCommittedCrawlsResponse> ListCrawls(
      const v1::ListCommittedCrawlsRequest& request);
  absl::StatusOr<v1::FamiliesResponse> Families(const v1::FamiliesRequest& request);
  absl::StatusOr<v1::SeriesResponse> Series(const v1::SeriesRequest& request);
  absl::StatusOr<v1::SharesResponse> Shares(const v1::SharesRequest& request);
  absl::StatusOr<v1::CrossoverResponse> Crossover(const v1::CrossoverRequest& request);
  absl::StatusOr<v1::TopReposResponse> TopRepos(const v1::TopReposRequest& request);
  absl::StatusOr<v1::LineageResponse> Lineage(const v1::LineageRequest& request);

  // Every snapshot of a committed crawl, sorted by repo id. Returns the number of repos.
  absl::StatusOr<int64_t> Export(const v1::CrawlSelector& crawl, ExportFormat format,
                                 std::ostream& out);

  const v1::FamilyConfig& families() const { return families_; }
  store::SnapshotStore* store() { return store_.get(); }

 private:
  class Impl;
  Aggregator() = default;
  v1::FamilyConfig families_;
  std::unique_ptr<store::SnapshotStore> store_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubcensus::aggregator

#endif  // HUBCENSUS_AGGREGATOR_AGGREGATOR_H_
