// The coordinator's state and its clock: the crawls (their records, items and queues), the live
// leases with their fences, lease expiry, the Hub quota allocators the leases spend from, and the
// crawl lifecycle (RUNNING -> COMMITTING -> COMMITTED, or FAILED/CANCELLED with the store's Abort
// due). Every change is written to the CrawlLedger before it is answered. Inputs arrive validated
// (CoordinatorService checks them at the edge); what follows a completed item comes from the
// ItemPlanner. Thread-safe (one lock); the store calls themselves run outside it.
#ifndef HUBCENSUS_COORDINATOR_INTERNAL_LEASE_TABLE_H_
#define HUBCENSUS_COORDINATOR_INTERNAL_LEASE_TABLE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/coordinator_options.h"
#include "coordinator/internal/crawl_ledger.h"
#include "coordinator/internal/hub_quota_allocator.h"
#include "coordinator/internal/item_planner.h"
#include "coordinator_state.pb.h"
#include "hubcensus/v1/coordinator.pb.h"
#include "hubcensus/v1/store.pb.h"

namespace hubcensus::coordinator {

// A commit or abort the store is due, collected under the lock and sent outside it.
struct StoreJob {
  std::string crawl_id;
  bool commit = false;  // else abort
  v1::CommitRequest commit_request;
  v1::AbortRequest abort_request;
};

class LeaseTable {
 public:
  // `ledger` and `planner` outlive the table.
  LeaseTable(const CoordinatorOptions& options, Clock* clock, CrawlLedger* ledger,
             const ItemPlanner* planner);

  // Loads the ledger, treating every lease outstanding before a restart as expired (fences
  // kept).
  absl::Status Load();

  // Operators. `date` and `hub_url` are valid, `listing` has its defaults.
  absl::StatusOr<v1::StartCrawlResponse> StartCrawl(const std::string& date,
                                                    const std::string& hub_url,
                                                    const v1::ListingOptions& listing, bool retry);
  // By id, or the date's latest attempt when `crawl_id` is empty.
  absl::StatusOr<v1::Crawl> GetCrawl(const std::string& crawl_id, const std::string& date) const;
  v1::ListCrawlsResponse ListCrawls(int64_t limit) const;
  absl::StatusOr<v1::Crawl> CancelCrawl(const std::string& crawl_id, const std::string& reason);

  // Workers.
  absl::StatusOr<v1::AcquireLeaseResponse> Acquire(const std::string& worker_id,
                                                   const std::string& hub_token_label);
  absl::StatusOr<v1::RenewLeaseResponse> Renew(const v1::RenewLeaseRequest& request);
  struct Completion {
    // The crawl left RUNNING (the background has a commit or an abort to send).
    bool crawl_left_running = false;
    // request.follow_chain: the next page's lease, for the same worker; unset when none.
    std::optional<v1::Lease> next_lease;
  };
  absl::StatusOr<Completion> Complete(const v1::CompleteLeaseRequest& request);
  absl::StatusOr<bool> Fail(const v1::FailLeaseRequest& request);

  // Time.
  void ExpireLeases();
  // The commits and aborts due now, marked in flight.
  std::vector<StoreJob> CollectStoreJobs();
  // What the store answered to `job` (`repos`/`families`: the CommitResponse's).
  void RecordStoreResult(const StoreJob& job, const absl::Status& status, int64_t repos,
                         int64_t families);

  // "crawl-2025-10-31": a date's first crawl.
  static std::string CrawlIdForDate(const std::string& date);
  // A date's later attempts (StartCrawl with retry after a failure): "crawl-2025-10-31.2", ...
  static std::string CrawlIdForAttempt(const std::string& date, int attempt);
  // The attempt number in a crawl id of that form: 1 for "crawl-2025-10-31", 2 for ".2", ...
  static int AttemptOf(const std::string& crawl_id);

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

  absl::Status LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Persists `batch`; on failure reloads from disk (as a restart would) and returns the error.
  absl::Status WriteLocked(CrawlLedger::Batch& batch, bool durable = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  HubQuotaAllocator& QuotaLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PutQuotaLocked(CrawlLedger::Batch& batch, const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The live lease named by (lease_id, fence), or ABORTED when it is no longer held.
  absl::StatusOr<LiveLease*> FindLeaseLocked(const std::string& lease_id, uint64_t fence,
                                             absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLeasesLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Leases the pending item (`sequence`, `item_id`) of `crawl` to `worker_id` with the next
  // fence and a quota grant from `budget_key`: in memory, and into `batch` (the caller writes it).
  v1::Lease GrantLocked(CrawlEntry& crawl, int64_t sequence, const std::string& item_id,
                        const std::string& worker_id, const std::string& budget_key, absl::Time now,
                        CrawlLedger::Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static Completion Completed(bool crawl_left_running);
  // Puts a leased item back on the queue (the lease is gone); does not persist.
  void RequeueLocked(CrawlEntry& crawl, ItemRecord& item, const std::string& lease_id,
                     bool return_budget) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddItemLocked(CrawlEntry& crawl, ItemRecord item, CrawlLedger::Batch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // All items done: COMMITTING, or FAILED when too many entries were rejected.
  void MaybeFinishLocked(CrawlEntry& crawl, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records `reason` as the crawl's last error (with the time).
  static void NoteError(CrawlEntry& crawl, const std::string& reason, absl::Time now);
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

  const CoordinatorOptions& options_;
  Clock* const clock_;
  CrawlLedger* const ledger_;
  const ItemPlanner* const planner_;

  mutable absl::Mutex mu_;
  std::map<std::string, CrawlEntry> crawls_ ABSL_GUARDED_BY(mu_);  // by crawl id: oldest first
  absl::flat_hash_map<std::string, LiveLease> leases_ ABSL_GUARDED_BY(mu_);
  // By "<hub_url>|<token label>": one per Hub endpoint and token.
  std::map<std::string, HubQuotaAllocator> quotas_ ABSL_GUARDED_BY(mu_);
};

// Whether a crawl is RUNNING or COMMITTING.
bool IsOpen(v1::CrawlState state);

}  // namespace hubcensus::coordinator

#endif  // HUBCENSUS_COORDINATOR_INTERNAL_LEASE_TABLE_H_
