// The coordinator owns crawls: it plans work items (a cursor chain per listing stream, detail
// shards), leases them to crawler workers with fences, allots each Hub endpoint's quota to the
// leases, checkpoints everything in its own RocksDB, and commits a finished crawl to the store.
//
// CoordinatorService is the edge: it checks tokens, validates requests, converts between gRPC and
// absl::Status, and runs the clock (Tick) and the store's calls. Behind it, in internal/:
// LeaseTable (crawls, leases, fences, expiry, quotas: the state), ItemPlanner (what to fetch
// after an item completes), CrawlLedger (the RocksDB that state lives in), HubQuotaAllocator.
#ifndef HUBCENSUS_COORDINATOR_COORDINATOR_H_
#define HUBCENSUS_COORDINATOR_COORDINATOR_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordinator/coordinator_options.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"
#include "hubcensus/v1/store.grpc.pb.h"

namespace hubcensus::coordinator {

class CrawlLedger;
class ItemPlanner;
class LeaseTable;
struct StoreJob;

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
  absl::StatusOr<v1::CompleteLeaseResponse> HandleCompleteLease(
      const v1::CompleteLeaseRequest& request);
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
  explicit CoordinatorService(CoordinatorOptions options);
  absl::Status CheckAdmin(grpc::ServerContext* context) const;
  absl::Status CheckWorker(grpc::ServerContext* context, absl::string_view method) const;
  // Waits (in short slices, so StopBackground() is prompt) for the store's channel to connect;
  // false when it did not within store_connect_timeout. True with an injected stub.
  bool WaitForStore();
  void RunStoreJob(const StoreJob& job);
  void RunSchedule(absl::Time now);
  void Wake();
  void BackgroundLoop();

  const CoordinatorOptions options_;
  Clock* const clock_;
  std::shared_ptr<v1::SnapshotStore::StubInterface> store_;
  std::shared_ptr<grpc::Channel> store_channel_;  // null with an injected stub
  std::unique_ptr<CrawlLedger> ledger_;
  std::unique_ptr<ItemPlanner> planner_;
  std::unique_ptr<LeaseTable> table_;

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

// Shared with the CLI.
// "2025-10-31" style date check naming `field`.
absl::StatusOr<std::string> ValidateCrawlDate(const std::string& date, const std::string& field);
const char* CrawlStateName(v1::CrawlState state);

}  // namespace hubcensus::coordinator

#endif  // HUBCENSUS_COORDINATOR_COORDINATOR_H_
