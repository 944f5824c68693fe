// The coordinator owns crawls: it plans work items (a cursor chain per listing stream, detail
// shards), leases them to crawler workers with fences, spends one request budget per Hub
// endpoint, checkpoints everything in its own RocksDB, and commits a finished crawl to the store.
#ifndef HUBCENSUS_COORDINATOR_COORDINATOR_H_
#define HUBCENSUS_COORDINATOR_COORDINATOR_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/crawl_ledger.h"
#include "coordinator/request_budget.h"
#include "coordinator_state.pb.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"
#include "hubcensus/v1/store.grpc.pb.h"

namespace hubcensus::coordinator {

struct CoordinatorOptions {
  // Its own RocksDB (required).
  std::string state_dir;
  // The aggregator's SnapshotStore: a gRPC address, or an injected stub (wins when set).
  std::string store_target;
  std::shared_ptr<v1::SnapshotStore::StubInterface> store;
  // Credentials for store_target (TLS/mTLS, common/tls.h); null: insecure.
  std::shared_ptr<grpc::ChannelCredentials> store_credentials;
  // Hub endpoint for StartCrawl requests that name none (e.g. http://127.0.0.1:8080).
  std::string hub_url;
  absl::Duration lease_duration = absl::Seconds(30);
  // Non-retryable failures of one item that fail the whole crawl (retryable ones: ten times as
  // many, since the worker already retried each with backoff).
  int32_t max_item_failures = 5;
  Clock* clock = Clock::Real();
  // When set, operator RPCs must carry `authorization: Bearer <token>`.
  std::string admin_token;
  // When set (--worker_token_file), worker RPCs (AcquireLease, RenewLease, CompleteLease,
  // FailLease) must carry `authorization: Bearer <token>`, and the coordinator sends it with its
  // own calls to the store (Commit, Abort).
  std::string worker_token;
  // A crawl whose rejected entries exceed this fraction of its entries (repos + rejected) fails
  // instead of committing, naming the counts by reason.
  double max_rejected_fraction = 0.01;
  // A listing chain that returns this many pages in a row with no entry but a next link fails
  // the crawl (a Hub that never reaches the end).
  int32_t max_empty_pages = 5;
  // Connection-level failures to reach the Hub (FailLease.connection_failure) that last this long
  // with no successful completion in between fail the crawl.
  absl::Duration unreachable_hub_timeout = absl::Seconds(60);
  // How long a store call waits for the store's channel to connect before the attempt counts as
  // the store being unavailable (then retried after store_unavailable_retry, the crawl open).
  absl::Duration store_connect_timeout = absl::Seconds(5);
  absl::Duration store_unavailable_retry = absl::Seconds(1);
  // The budget of a Hub endpoint before any worker has reported its RateLimit headers.
  HubQuota hub_quota;
  // Requests handed to a lease at a time (topped up on renewal).
  int32_t budget_chunk = 8;
  // REPO_DETAIL shards (listing.fetch_details): repo ids per shard.
  int32_t detail_shard_size = 100;
  // Start the crawl of the UTC date by itself at this minute of the day (HH*60+MM); -1: off.
  int32_t schedule_minute_utc = -1;
  absl::Duration commit_timeout = absl::Minutes(5);
  absl::Duration max_commit_backoff = absl::Minutes(5);
  absl::Duration max_retry_backoff = absl::Seconds(60);
  // AcquireLease without a lease: when to ask again if work is expected soon / if idle.
  absl::Duration busy_retry_after = absl::Milliseconds(250);
  absl::Duration idle_retry_after = absl::Seconds(2);
  // How often the background thread ticks when nothing wakes it.
  absl::Duration tick_interval = absl::Milliseconds(500);
  // fsync every state change (a machine crash, not only a process kill, loses nothing).
  bool sync_writes = true;
};

// The Coordinator gRPC service, usable in-process (register it on a GrpcServer) or behind
// `hubcensus coordinator`. Time-driven work (lease expiry, commits and their retries, aborts,
// the nightly schedule) runs in Tick(): StartBackground() ticks on a thread with the real clock;
// tests on a SimulatedClock call Tick() themselves.
class CoordinatorService final : public v1::Coordinator::Service {
 public:
  // Opens the state, treats every lease outstanding before a restart as expired (fences kept).
  static absl::StatusOr<std::unique_ptr<CoordinatorService>> Open(CoordinatorOptions options);
  ~CoordinatorService() override;

  void StartBackground();
  void StopBackground();
  // Expires leases, finishes crawls, sends due commits and aborts to the store (blocking), starts
  // the scheduled crawl.
  void Tick();

  // The RPCs without gRPC (same validation and errors; no admin-token check: the caller is
  // in-process).
  absl::StatusOr<v1::StartCrawlResponse> HandleStartCrawl(const v1::StartCrawlRequest& request);
  absl::StatusOr<v1::Crawl> HandleGetCrawl(const v1::GetCrawlRequest& request);
  absl::StatusOr<v1::ListCrawlsResponse> HandleListCrawls(const v1::ListCrawlsRequest& request);
  absl::StatusOr<v1::Crawl> HandleCancelCrawl(const v1::CancelCrawlRequest& request);
  absl::StatusOr<v1::AcquireLeaseResponse> HandleAcquireLease(
      const v1::AcquireLeaseRequest& request);
  absl::StatusOr<v1::RenewLeaseResponse> HandleRenewLease(const v1::RenewLeaseRequest& request);
  absl::Status HandleCompleteLease(const v1::CompleteLeaseRequest& request);
  absl::Status HandleFailLease(const v1::FailLeaseRequest& request);

  // gRPC.
  grpc::Status StartCrawl(grpc::ServerContext* context, const v1::StartCrawlRequest* request,
                          v1::StartCrawlResponse* response) override;
  grpc::Status GetCrawl(grpc::ServerContext* context, const v1::GetCrawlRequest* request,
                        v1::Crawl* response) override;
  grpc::Status ListCrawls(grpc::ServerContext* context, const v1::ListCrawlsRequest* request,
                          v1::ListCrawlsResponse* response) override;
  grpc::Status CancelCrawl(grpc::ServerContext* context, const v1::CancelCrawlRequest* request,
                           v1::Crawl* response) override;
  grpc::Status AcquireLease(grpc::ServerContext* context, const v1::AcquireLeaseRequest* request,
                            v1::AcquireLeaseResponse* response) override;
  grpc::Status RenewLease(grpc::ServerContext* context, const v1::RenewLeaseRequest* request,
                          v1::RenewLeaseResponse* response) override;
  grpc::Status CompleteLease(grpc::ServerContext* context, const v1::CompleteLeaseRequest* request,
                             v1::CompleteLeaseResponse* response) override;
  grpc::Status FailLease(grpc::ServerContext* context, const v1::FailLeaseRequest* request,
                         v1::FailLeaseResponse* response) override;

  // "crawl-2025-10-31": a date's first crawl.
  static std::string CrawlIdForDate(const std::string& date);
  // A date's later attempts (StartCrawl with retry after a failure): "crawl-2025-10-31.2", ...
  static std::string CrawlIdForAttempt(const std::string& date, int attempt);
  // The attempt number in a crawl id of that form: 1 for "crawl-2025-10-31", 2 for ".2", ...
  static int AttemptOf(const std::string& crawl_id);
  // "createdAt/p000042".
  static std::string PageItemId(const std::string& stream, int32_t page_index);

 private:
  struct LiveLease {
    std::string crawl_id;
    std::string item_id;
    std::string worker_id;
    std::string budget_key;
    uint64_t fence = 0;
    absl::Time expires_at;
  };
  struct CrawlEntry {
    CrawlRecord record;
    std::map<std::string, ItemRecord> items;            // open crawls only
    std::set<std::pair<int64_t, std::string>> pending;  // (sequence, item_id): the queue
    // Per listing stream: the URLs of its pages so far, without their `limit` parameter (see
    // ChainUrlKey). Rebuilt from the items on restart, so it survives one.
    std::map<std::string, std::set<std::string>> chain_urls;
    int64_t leased = 0;
    bool commit_in_flight = false;
    bool abort_in_flight = false;
  };
  struct StoreJob {
    std::string crawl_id;
    bool commit = false;  // else abort
    v1::CommitRequest commit_request;
    v1::AbortRequest abort_request;
  };

  explicit CoordinatorService(CoordinatorOptions options);
  absl::Status LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Persists `batch`; on failure reloads from disk (as a restart would) and returns the error.
  absl::Status WriteLocked(CrawlLedger::Batch& batch, bool durable = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckAdmin(grpc::ServerContext* context) const;
  absl::Status CheckWorker(grpc::ServerContext* context, absl::string_view method) const;
  // Waits (in short slices, so StopBackground() is prompt) for the store's channel to connect;
  // false when it did not within store_connect_timeout. True with an injected stub.
  bool WaitForStore();

  RequestBudget& BudgetLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PutBudgetLocked(CrawlLedger::Batch& batch, const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The live lease named by (lease_id, fence), or ABORTED when it is no longer held.
  absl::StatusOr<LiveLease*> FindLeaseLocked(const std::string& lease_id, uint64_t fence,
                                             absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLeasesLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts a leased item back on the queue (the lease is gone); does not persist.
  void RequeueLocked(CrawlEntry& crawl, ItemRecord& item, const std::string& lease_id,
                     bool return_budget) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddItemLocked(CrawlEntry& crawl, ItemRecord item, CrawlLedger::Batch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // All items done: COMMITTING, or FAILED when too many entries were rejected.
  void MaybeFinishLocked(CrawlEntry& crawl, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why the chain of a completed LIST_PAGE must end the crawl (a next link to another origin, to
  // a URL the chain already had, or after too many empty pages); "" when it may go on. Sets
  // `empty_page_run` on `updated`.
  std::string ChainFaultLocked(const CrawlEntry& crawl, const ItemRecord& item,
                               const v1::CompleteLeaseRequest& request, ItemRecord& updated) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Records `reason` as the crawl's last error (with the time).
  static void NoteErrorLocked(CrawlEntry& crawl, const std::string& reason, absl::Time now);
  // FAILED or CANCELLED: drops its leases and queue, schedules the store's Abort.
  void CloseCrawlLocked(CrawlEntry& crawl, v1::CrawlState state, const std::string& reason,
                        absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Crawl CrawlViewLocked(const CrawlEntry& crawl, absl::Time now) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The id of the date's latest attempt (see CrawlIdForAttempt) and its number; attempt 0 and
  // the first attempt's id when the date has no crawl.
  std::pair<std::string, int> LatestAttemptLocked(const std::string& date) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  int64_t EtaSecondsLocked(const CrawlEntry& crawl, absl::Time now) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::vector<StoreJob> CollectStoreJobsLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunStoreJob(const StoreJob& job);
  void RunSchedule(absl::Time now);
  void Wake();
  void BackgroundLoop();

  const CoordinatorOptions options_;
  Clock* const clock_;
  std::shared_ptr<v1::SnapshotStore::StubInterface> store_;
  std::shared_ptr<grpc::Channel> store_channel_;  // null with an injected stub
  std::unique_ptr<CrawlLedger> ledger_;

  mutable absl::Mutex mu_;
  std::map<std::string, CrawlEntry> crawls_ ABSL_GUARDED_BY(mu_);  // by crawl id: oldest first
  absl::flat_hash_map<std::string, LiveLease> leases_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, RequestBudget> budgets_ ABSL_GUARDED_BY(mu_);

  absl::Mutex tick_mu_;  // one Tick at a time
  std::string last_scheduled_date_ ABSL_GUARDED_BY(tick_mu_);

  absl::Mutex store_call_mu_;  // the store RPC in flight, cancelled by StopBackground()
  grpc::ClientContext* store_call_ ABSL_GUARDED_BY(store_call_mu_) = nullptr;
  bool stopping_ ABSL_GUARDED_BY(store_call_mu_) = false;

  absl::Mutex wake_mu_;
  bool wake_ ABSL_GUARDED_BY(wake_mu_) = false;
  bool stop_ ABSL_GUARDED_BY(wake_mu_) = false;
  std::thread background_;
};

// The key under which a listing chain remembers a page URL: the URL without its `limit` query
// parameter (workers shrink and grow `limit` on 504s; the cursor is what must not repeat).
std::string ChainUrlKey(const std::string& url);
// "host:port" of an http(s) URL, with the scheme's default port made explicit, lower case;
// "" when it is not an absolute http(s) URL. Two URLs share an origin when their schemes and
// these are equal (see SameOrigin).
std::string HostPortOf(const std::string& url);
bool SameOrigin(const std::string& a, const std::string& b);

// The RocksDB write batch and lease id helpers are internal; these are shared with the CLI.
// "2025-10-31" style date check naming `field`.
absl::StatusOr<std::string> ValidateCrawlDate(const std::string& date, const std::string& field);
const char* CrawlStateName(v1::CrawlState state);

}  // namespace hubcensus::coordinator

#endif  // HUBCENSUS_COORDINATOR_COORDINATOR_H_
