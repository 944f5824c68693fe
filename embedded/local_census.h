// The embedded default: coordinator, crawler workers and aggregator in one process, talking over
// loopback gRPC with the same code that runs as separate pods, with data in one local folder.
#ifndef HUBCENSUS_EMBEDDED_LOCAL_CENSUS_H_
#define HUBCENSUS_EMBEDDED_LOCAL_CENSUS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "aggregator/census_client.h"
#include "hubcensus/v1/config.pb.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"

namespace hubcensus {

namespace aggregator {
class Aggregator;
}

struct LocalCensusOptions {
  std::string data_dir;  // store in DIR/store, coordinator state in DIR/coordinator
  std::string hub_url;   // the Hub (or fakehub) every crawl reads
  int workers = 2;
  int parallelism = 1;  // leases in flight per worker
  v1::FamilyConfig families;
  // The request budget before the Hub's RateLimit headers are seen: "500/300" (anonymous) or
  // "off" (fakehub with --rate_limit=off).
  std::string hub_quota = "500/300";
  std::string hf_token;  // sent to the Hub only as a bearer token; never logged
  // PEM CA bundle trusted for the Hub's TLS certificate (--hub_ca_file); "": the system store.
  std::string hub_ca_file;
  bool sync_writes = true;  // fsync the stores on every acknowledged write
  absl::Duration lease_duration = absl::Seconds(30);
  // The coordinator's --max_rejected_fraction and --unreachable_hub_timeout.
  double max_rejected_fraction = 0.01;
  absl::Duration unreachable_hub_timeout = absl::Seconds(60);
  // --retry: RunCrawl starts a new attempt of the date even when its latest crawl is still open
  // (that one is cancelled first). Without it an open crawl is resumed, and refused when it
  // crawls another Hub URL than hub_url. (A failed or cancelled date is crawled again either way.)
  bool new_attempt = false;
};

struct LocalCrawlOutcome {
  v1::Crawl crawl;
  // The date's crawl was committed before this run: nothing was crawled.
  bool already_existed = false;
  // The date's crawl was open (an interrupted run): this run went on from its checkpoint, with
  // `at_start` what had been done before.
  bool resumed = false;
  v1::Crawl at_start;
};

class LocalCensus {
 public:
  static absl::StatusOr<std::unique_ptr<LocalCensus>> Start(LocalCensusOptions options);
  ~LocalCensus();

  // Starts the crawl of `date` (YYYY-MM-DD) and waits until it is committed (or fails: ABORTED
  // with the crawl's reason). A date that already has a committed crawl changes nothing; an open
  // one is resumed unless it crawls another Hub URL (FAILED_PRECONDITION, saying what to do) or
  // new_attempt is set. CANCELLED when shutdown was requested (SIGTERM/SIGINT): the crawl stays
  // open. `progress` is called about ten times a second with the crawl's state.
  absl::StatusOr<LocalCrawlOutcome> RunCrawl(const std::string& date,
                                             const std::function<void(const v1::Crawl&)>& progress);

  aggregator::Aggregator* aggregator();
  aggregator::CensusClient* census();
  v1::Coordinator::StubInterface* coordinator();
  std::string aggregator_address() const;
  std::string coordinator_address() const;

  // Stops workers, then the coordinator, then the aggregator.
  void Stop();

 private:
  class Impl;
  explicit LocalCensus(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubcensus

#endif  // HUBCENSUS_EMBEDDED_LOCAL_CENSUS_H_
