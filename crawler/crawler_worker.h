// A stateless crawler worker: it leases work items from the coordinator, fetches them from the
// Hub within the lease's request budget, streams the parsed snapshots to the SnapshotStore under
// (crawl, item, fence) and completes the lease. Several leases run at once (`parallelism`); a
// lost lease is dropped, a non-retryable Hub error fails it, and Stop() (or SIGTERM) finishes or
// hands back the leases in flight. Runs behind `hubcensus crawler` or in-process.
#ifndef HUBCENSUS_CRAWLER_CRAWLER_WORKER_H_
#define HUBCENSUS_CRAWLER_CRAWLER_WORKER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "hub/http_transport.h"
#include "hub/hub_client.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"
#include "hubcensus/v1/store.grpc.pb.h"

namespace hubcensus::crawler {

class ChainFetcher;  // crawler/internal/chain_fetcher.h

struct CrawlerWorkerOptions {
  // host:port of the coordinator and of the SnapshotStore (the aggregator). An injected channel
  // wins over its target (in-process use).
  std::string coordinator_target;
  std::string store_target;
  std::shared_ptr<grpc::Channel> coordinator_channel;
  std::shared_ptr<grpc::Channel> store_channel;
  // Names this worker in leases and logs; "" picks "<hostname>-<pid>-<n>".
  std::string worker_id;
  // Leases in flight at once (each slot holds at most two listing pages: the one being stored
  // and the next, fetched ahead of it).
  int parallelism = 1;
  // Hub token ("" = anonymous); see hub::ResolveHubToken. Never logged.
  std::string hub_token;
  // The non-secret name of the token in AcquireLease (workers sharing a token share a budget);
  // "": derived from a hash of the token ("" when anonymous).
  std::string hub_token_label;
  Clock* clock = Clock::Real();
  // One transport per slot; null: one libcurl transport shared by the slots.
  std::function<std::shared_ptr<hub::HttpTransport>()> transport_factory;
  // PEM CA bundle the libcurl transport trusts for the Hub (--hub_ca_file); "": the system
  // store. Unused with a transport_factory.
  std::string hub_ca_file;
  hub::RetryPolicy retry;
  hub::HttpTimeouts timeouts;
  std::function<double()> random;  // backoff jitter in [0, 1); null: seeded
  // Deadline of each coordinator and store RPC.
  absl::Duration rpc_timeout = absl::Seconds(10);
  // After Stop(): how long leases in flight may run before they are handed back (FailLease
  // retryable=true). Short, so SIGTERM ends the process within 2 s; a handed-back page is simply
  // fetched again by another worker.
  absl::Duration drain_timeout = absl::Seconds(1);
  // RenewLease granted no requests: ask again after this.
  absl::Duration budget_wait = absl::Seconds(1);
  // AcquireLease gave no lease and no retry_after_ms, or failed: wait this long (doubling on
  // failures up to 16x).
  absl::Duration idle_wait = absl::Seconds(1);
  // Store Write / CompleteLease attempts on UNAVAILABLE or DEADLINE_EXCEEDED.
  int rpc_attempts = 4;
  // Stop() by itself when the process is asked to shut down (common/shutdown.h).
  bool stop_on_shutdown_signal = true;
  // For work items that carry no hub_url; "" resolves $HF_ENDPOINT, else https://huggingface.co.
  std::string default_hub_url;
};

// Totals since Start(), for tests and the exit log line.
struct CrawlerWorkerStats {
  int64_t leases = 0;       // acquired (or handed over by the chain)
  int64_t chained = 0;      // of those, the chain's next page handed over by CompleteLease
  int64_t completed = 0;    // CompleteLease accepted
  int64_t lost = 0;         // dropped: the coordinator or the store no longer honoured the fence
  int64_t failed = 0;       // FailLease retryable=false (a non-retryable Hub answer)
  int64_t handed_back = 0;  // FailLease retryable=true (retries exhausted, store trouble, drain)
  int64_t pages = 0;
  int64_t details = 0;  // repos fetched by REPO_DETAIL
  int64_t repos = 0;    // snapshots written (after de-duplication)
  int64_t duplicates = 0;
  int64_t rejected = 0;
  int64_t requests = 0;
  int64_t retries = 0;
  int64_t bytes = 0;
  int64_t private_skipped = 0;  // private entries dropped before the store
  int64_t limit_shrinks = 0;    // listing requests re-sent with a smaller limit
  int64_t unreadable = 0;       // details the Hub would not show (the listing snapshot stays)
};

// What a FailLease says beyond its reason (FailLeaseRequest fields of the same names).
struct LeaseFailFlags {
  bool connection_failure = false;  // every attempt failed to reach the Hub
  bool peer_unavailable = false;    // the store (or coordinator) could not be reached
  static LeaseFailFlags Connection(bool value) {
    LeaseFailFlags flags;
    flags.connection_failure = value;
    return flags;
  }
  static LeaseFailFlags Peer(bool value) {
    LeaseFailFlags flags;
    flags.peer_unavailable = value;
    return flags;
  }
};

class CrawlerWorker {
 public:
  static absl::StatusOr<std::unique_ptr<CrawlerWorker>> Create(CrawlerWorkerOptions options);
  ~CrawlerWorker();  // Stop() and Wait()
  CrawlerWorker(const CrawlerWorker&) = delete;
  CrawlerWorker& operator=(const CrawlerWorker&) = delete;

  absl::Status Start();
  // Stops acquiring leases; leases in flight finish, or are handed back after drain_timeout.
  // Returns at once; Wait() blocks until the slots are done. Idempotent.
  void Stop();
  // Blocks until every slot has ended (after Stop()).
  void Wait();
  CrawlerWorkerStats stats() const;
  const std::string& worker_id() const { return options_.worker_id; }

 private:
  class LeaseSession;
  // The next page's lease, handed over by CompleteLease (follow_chain).
  struct ChainedLease;
  explicit CrawlerWorker(CrawlerWorkerOptions options);
  void RunSlot(int slot);
  // Works one lease; returns the chain's next lease when the coordinator handed one over.
  // `chain`: the slot's listing chain fetched ahead (created for a LIST_PAGE, kept while the
  // chain goes on, stopped and reset otherwise).
  std::optional<ChainedLease> ProcessLease(const v1::Lease& lease,
                                           std::unique_ptr<hub::HubClient>* client_holder,
                                           const std::shared_ptr<hub::HttpTransport>& transport,
                                           std::unique_ptr<ChainFetcher>* chain);
  void RunRenewer();
  void RunShutdownWatcher();
  bool Stopping();
  // Sleeps on the clock until `deadline` or Stop(); false when stopped.
  bool SleepUnlessStopped(absl::Time deadline);
  // `changed`: the repos the store reports new or changed since the last committed crawl.
  absl::Status WriteBatch(const v1::WriteBatch& batch, uint64_t checksum,
                          std::vector<std::string>* changed);
  absl::StatusOr<v1::CompleteLeaseResponse> CompleteLease(const v1::CompleteLeaseRequest& request);
  void FailLease(LeaseSession& session, const std::string& reason, bool retryable,
                 LeaseFailFlags flags = LeaseFailFlags());
  // A lease granted as Stop() began: handed back without being worked on.
  void HandBackUnstarted(const v1::Lease& lease);

  CrawlerWorkerOptions options_;
  std::unique_ptr<v1::Coordinator::Stub> coordinator_;
  std::unique_ptr<v1::SnapshotStore::Stub> store_;
  std::shared_ptr<hub::HttpTransport> shared_transport_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool slots_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::vector<std::shared_ptr<LeaseSession>> sessions_ ABSL_GUARDED_BY(mu_);
  // AcquireLease calls in flight, cancelled by Stop().
  absl::flat_hash_set<grpc::ClientContext*> acquiring_ ABSL_GUARDED_BY(mu_);
  CrawlerWorkerStats stats_ ABSL_GUARDED_BY(mu_);

  std::vector<std::thread> slots_;
  std::thread renewer_;
  std::thread shutdown_watcher_;
  absl::Mutex join_mu_;
  bool joined_ ABSL_GUARDED_BY(join_mu_) = false;
};

// `hubcensus crawler`: serves --metrics_port (0: off), runs the worker until SIGTERM/SIGINT,
// drains, and returns the exit code (0 after a clean drain).
int RunCrawlerUntilShutdown(CrawlerWorkerOptions options, int64_t metrics_port);

}  // namespace hubcensus::crawler

#endif  // HUBCENSUS_CRAWLER_CRAWLER_WORKER_H_
