#include "crawler/crawler_worker.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "common/grpc_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc_deadline.h"
#include "common/shutdown.h"
#include "common/status.h"
#include "crawler/internal/chain_fetcher.h"
#include "hub/hub_metrics.h"
#include "hub/request_budget.h"

namespace hubcensus::crawler {
namespace {

struct CrawlerMetrics {
  prometheus::Counter* pages;
  prometheus::Counter* details;
  prometheus::Counter* repos;
  prometheus::Counter* duplicates;
  prometheus::Counter* bytes;
  prometheus::Family<prometheus::Counter>* rejected;  // {reason}
  prometheus::Family<prometheus::Counter>* leases;    // {outcome}
  prometheus::Gauge* leases_in_flight;
  prometheus::Counter* private_skipped;
  prometheus::Family<prometheus::Counter>* unreadable;  // {reason}

  static CrawlerMetrics& Get() {
    static CrawlerMetrics* metrics = [] {
      auto registry = MetricsRegistry();
      auto* m = new CrawlerMetrics();
      m->pages = &prometheus::BuildCounter()
                      .Name("hubcensus_crawler_pages_total")
                      .Help("Listing pages fetched, written and completed")
                      .Register(*registry)
                      .Add({});
      m->details = &prometheus::BuildCounter()
                        .Name("hubcensus_crawler_details_total")
                        .Help("Per-repo details fetched for REPO_DETAIL leases")
                        .Register(*registry)
                        .Add({});
      m->repos = &prometheus::BuildCounter()
                      .Name("hubcensus_crawler_repos_total")
                      .Help("Repo snapshots written to the store (after de-duplication)")
                      .Register(*registry)
                      .Add({});
      m->duplicates = &prometheus::BuildCounter()
                           .Name("hubcensus_crawler_duplicate_entries_total")
                           .Help("Entries dropped because their id repeated within a batch")
                           .Register(*registry)
                           .Add({});
      m->bytes = &prometheus::BuildCounter()
                      .Name("hubcensus_crawler_bytes_total")
                      .Help("Hub response body bytes received by leases (whatever their outcome)")
                      .Register(*registry)
                      .Add({});
      m->rejected = &prometheus::BuildCounter()
                         .Name("hubcensus_crawler_rejected_entries_total")
                         .Help("Malformed Hub entries rejected, by reason")
                         .Register(*registry);
      m->leases = &prometheus::BuildCounter()
                       .Name("hubcensus_crawler_leases_total")
                       .Help("Leases by outcome: completed, lost, failed, handed_back")
                       .Register(*registry);
      m->private_skipped = &prometheus::BuildCounter()
                                .Name("hubcensus_crawler_private_skipped_total")
                                .Help(
                                    "Private entries dropped before the store (the census "
                                    "counts the public Hub)")
                                .Register(*registry)
                                .Add({});
      m->unreadable = &prometheus::BuildCounter()
                           .Name("hubcensus_crawler_unreadable_details_total")
                           .Help(
                               "Per-repo details the Hub would not show (401, 401_gated, 403, "
                               "404, redirects), by reason; the listing's snapshot stays")
                           .Register(*registry);
      m->leases_in_flight = &prometheus::BuildGauge()
                                 .Name("hubcensus_crawler_leases_in_flight")
                                 .Help("Leases being worked on now")
                                 .Register(*registry)
                                 .Add({});
      // Every series exported from the start (at 0), with the label values known here (a
      // rejection's reason may also name a field: wrong_type:gated, ...).
      for (const char* reason :
           {"not_an_object", "missing_id", "bad_id", "invalid_utf8", "duplicate_in_batch"}) {
        m->rejected->Add({{"reason", reason}});
      }
      for (const char* outcome : {"completed", "lost", "failed", "handed_back"}) {
        m->leases->Add({{"outcome", outcome}});
      }
      for (const char* reason :
           {hub::kUnreadable401, hub::kUnreadable401Gated, hub::kUnreadable403, hub::kUnreadable404,
            hub::kUnreadableRedirectLoop, hub::kUnreadableSecondRedirect}) {
        m->unreadable->Add({{"reason", reason}});
      }
      return m;
    }();
    return *metrics;
  }
};

// Listing pages a slot fetches ahead of the one its lease waits for. One is enough: while a lease
// waits for its page, the next page's request goes out on that page's head; while a page is
// stored, the next one arrives. The fetching is then bounded by the slower of the two stages,
// and a slot holds two pages at most (the one being stored and the one after it).
constexpr int kListingPagesAhead = 1;

bool LeaseLostCode(grpc::StatusCode code) {
  return code == grpc::StatusCode::ABORTED || code == grpc::StatusCode::FAILED_PRECONDITION;
}

bool RetryableRpcCode(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

// Every call to the coordinator and the store waits for a channel that is reconnecting (the
// channels retry within 2 s, common/grpc_server.cc) up to its deadline, instead of failing at
// once while a restarted peer comes back.
void SetDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  SetRpcDeadline(context, timeout, WaitForReady::kYes);
}

// A peer (the store or the coordinator) could not be reached, as opposed to refusing the call.
bool PeerUnavailable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

std::string DefaultWorkerId() {
  static std::atomic<int> counter{0};
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "worker");
  }
  return absl::StrCat(host, "-", getpid(), "-", counter++);
}

std::string Truncated(absl::string_view text, size_t max) {
  return std::string(text.substr(0, std::min(text.size(), max)));
}

}  // namespace

// One lease being worked on: its request budget (fed by RenewLease), its renewals, and whether
// the coordinator still honours it.
class CrawlerWorker::LeaseSession : public hub::RequestBudget {
 public:
  LeaseSession(const v1::Lease& lease, v1::Coordinator::Stub* coordinator,
               const CrawlerWorkerOptions& options)
      : lease_(lease), coordinator_(coordinator), options_(options) {
    absl::Time now = options_.clock->Now();
    absl::Duration duration = absl::Milliseconds(lease.lease_duration_ms());
    if (duration <= absl::ZeroDuration()) {
      duration = absl::FromUnixMillis(lease.expires_at_unix_ms()) - now;
    }
    interval_ = std::max(duration / 3, absl::Milliseconds(10));
    next_renew_ = now + interval_;
    granted_ = std::max(0, lease.request_budget());
  }

  const v1::Lease& lease() const { return lease_; }
  hub::Cancellation& cancellation() { return cancellation_; }

  absl::Status Acquire(absl::Time deadline) override {
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        if (lost_) return absl::AbortedError(absl::StrCat("lease ", lease_.lease_id(), " lost"));
        if (cancellation_.cancelled()) return absl::CancelledError("lease handed back");
        // Its final use is being reported: a request now would be reported by no one.
        if (finished_) {
          return absl::FailedPreconditionError(absl::StrCat(
              "lease ", lease_.lease_id(), " finished: no more Hub requests under it"));
        }
        if (used_ < granted_) {
          ++used_;
          return absl::OkStatus();
        }
      }
      // Spent: ask the coordinator for more (RenewLease reports what was used).
      Renew(options_.clock->Now());
      {
        absl::MutexLock lock(&mu_);
        if (lost_) return absl::AbortedError(absl::StrCat("lease ", lease_.lease_id(), " lost"));
        if (used_ < granted_) continue;
      }
      absl::Time wake = options_.clock->Now() + options_.budget_wait;
      if (wake > deadline) {
        return absl::DeadlineExceededError(
            "the coordinator granted no Hub requests before the request deadline");
      }
      if (!cancellation_.SleepUntil(options_.clock, wake)) {
        return absl::CancelledError("lease handed back");
      }
    }
  }

  void Observe(const v1::RateLimitObservation& observation) override {
    absl::MutexLock lock(&mu_);
    latest_ = observation;
  }

  // From the renewer thread: RenewLease at a third of the lease time.
  void MaybeRenew(absl::Time now) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || lost_ || now < next_renew_) return;
    }
    Renew(now);
  }

  void Renew(absl::Time now) {
    absl::MutexLock rpc_lock(&rpc_mu_);
    v1::RenewLeaseRequest request;
    int32_t delta = 0;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || lost_) return;
      delta = static_cast<int32_t>(used_ - reported_);
      request.set_lease_id(lease_.lease_id());
      request.set_fence(lease_.fence());
      request.set_requests_used(delta);
      if (latest_) *request.mutable_rate_limit() = *latest_;
    }
    grpc::ClientContext context;
    // Short: a renewal that fails is tried again within a second, and Finish() (the slot ending
    // the lease, or a drain) waits for a renewal in flight.
    SetDeadline(&context, std::min(options_.rpc_timeout, absl::Seconds(1)));
    v1::RenewLeaseResponse response;
    grpc::Status status = coordinator_->RenewLease(&context, request, &response);
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      reported_ += delta;
      granted_ += std::max(0, response.request_budget());
      next_renew_ = now + interval_;
      ++renewals_;
    } else if (LeaseLostCode(status.error_code())) {
      lost_ = true;
      lost_reason_ = status.error_message();
      CancelLocked();
    } else {
      // The coordinator is unreachable: try again soon, the lease has time left.
      next_renew_ = now + std::min(interval_, absl::Seconds(1));
    }
  }

  // No renewals after this: the lease is being completed or failed.
  void Finish() {
    absl::MutexLock rpc_lock(&rpc_mu_);
    absl::MutexLock lock(&mu_);
    finished_ = true;
    linked_ = nullptr;
  }

  // Requests spent and not yet reported; they count as reported from now on.
  int32_t TakeUnreported() {
    absl::MutexLock lock(&mu_);
    int32_t delta = static_cast<int32_t>(used_ - reported_);
    reported_ = used_;
    return delta;
  }

  std::optional<v1::RateLimitObservation> latest() {
    absl::MutexLock lock(&mu_);
    return latest_;
  }

  bool lost() {
    absl::MutexLock lock(&mu_);
    return lost_;
  }

  void MarkLost(absl::string_view reason) {
    absl::MutexLock lock(&mu_);
    lost_ = true;
    lost_reason_ = std::string(reason);
  }

  // The listing chain fetched ahead under this lease is cancelled with it (lost or handed back).
  // Null unlinks it (before the chain's fetcher goes away); Finish() does too.
  void LinkCancellation(hub::Cancellation* chain) {
    absl::MutexLock lock(&mu_);
    linked_ = finished_ ? nullptr : chain;
    if (linked_ != nullptr && (lost_ || handed_back_)) linked_->Cancel();
  }

  std::string lost_reason() {
    absl::MutexLock lock(&mu_);
    return lost_reason_;
  }

  // Drain: abandon the fetch so the lease can be handed back.
  void HandBack() {
    absl::MutexLock lock(&mu_);
    handed_back_ = true;
    CancelLocked();
  }

  bool handed_back() {
    absl::MutexLock lock(&mu_);
    return handed_back_;
  }

  int64_t used() {
    absl::MutexLock lock(&mu_);
    return used_;
  }
  int64_t granted() {
    absl::MutexLock lock(&mu_);
    return granted_;
  }

 private:
  void CancelLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    cancellation_.Cancel();
    if (linked_ != nullptr) linked_->Cancel();
  }

  const v1::Lease lease_;
  v1::Coordinator::Stub* coordinator_;
  const CrawlerWorkerOptions& options_;
  hub::Cancellation cancellation_;
  absl::Mutex rpc_mu_;  // one RenewLease at a time, and none after Finish()
  absl::Mutex mu_;
  absl::Duration interval_;
  absl::Time next_renew_ ABSL_GUARDED_BY(mu_);
  int64_t granted_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t used_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t reported_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t renewals_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<v1::RateLimitObservation> latest_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
  bool handed_back_ ABSL_GUARDED_BY(mu_) = false;
  std::string lost_reason_ ABSL_GUARDED_BY(mu_);
  hub::Cancellation* linked_ ABSL_GUARDED_BY(mu_) = nullptr;
};

struct CrawlerWorker::ChainedLease {
  v1::Lease lease;
};

absl::StatusOr<std::unique_ptr<CrawlerWorker>> CrawlerWorker::Create(CrawlerWorkerOptions options) {
  if (options.parallelism < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("parallelism: must be at least 1, got ", options.parallelism));
  }
  if (options.coordinator_channel == nullptr && options.coordinator_target.empty()) {
    return absl::InvalidArgumentError("coordinator: no address (--coordinator=HOST:PORT)");
  }
  if (options.store_channel == nullptr && options.store_target.empty()) {
    return absl::InvalidArgumentError("store: no address (--store=HOST:PORT)");
  }
  if (options.clock == nullptr) options.clock = Clock::Real();
  if (options.worker_id.empty()) options.worker_id = DefaultWorkerId();
  if (options.rpc_attempts < 1) options.rpc_attempts = 1;
  if (options.hub_token_label.empty() && !options.hub_token.empty()) {
    // 32 bits of a hash name the token without revealing it.
    options.hub_token_label =
        absl::StrCat("token-", absl::Hex(Fnv1a64(options.hub_token) >> 32, absl::kZeroPad8));
  }
  ASSIGN_OR_RETURN(options.default_hub_url, hub::ResolveHubEndpoint(options.default_hub_url));
  if (!options.hub_ca_file.empty()) {
    RETURN_IF_ERROR(Annotate(hub::CheckCaFile(options.hub_ca_file), "hub_ca_file"));
  }
  return std::unique_ptr<CrawlerWorker>(new CrawlerWorker(std::move(options)));
}

CrawlerWorker::CrawlerWorker(CrawlerWorkerOptions options) : options_(std::move(options)) {
  auto coordinator_channel = options_.coordinator_channel != nullptr
                                 ? options_.coordinator_channel
                                 : MakeChannel(options_.coordinator_target);
  auto store_channel = options_.store_channel != nullptr ? options_.store_channel
                                                         : MakeChannel(options_.store_target);
  coordinator_ = v1::Coordinator::NewStub(coordinator_channel);
  store_ = v1::SnapshotStore::NewStub(store_channel);
  if (!options_.transport_factory) {
    hub::CurlTransportOptions transport;
    transport.ca_file = options_.hub_ca_file;
    shared_transport_ = hub::NewCurlTransport(std::move(transport));
  }
  CrawlerMetrics::Get();
  hub::HubMetrics::Get();  // exported from the start, at 0 (limit shrinks, retries, ...)
}

CrawlerWorker::~CrawlerWorker() {
  Stop();
  Wait();
}

absl::Status CrawlerWorker::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("crawler worker: already started");
    started_ = true;
  }
  HC_LOG(kInfo, "crawler_started")
      .Field("worker", options_.worker_id)
      .Field("parallelism", options_.parallelism);
  for (int i = 0; i < options_.parallelism; ++i) {
    slots_.emplace_back([this, i] { RunSlot(i); });
  }
  renewer_ = std::thread([this] { RunRenewer(); });
  if (options_.stop_on_shutdown_signal) {
    shutdown_watcher_ = std::thread([this] { RunShutdownWatcher(); });
  }
  return absl::OkStatus();
}

void CrawlerWorker::Stop() {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  stopping_ = true;
  drain_deadline_ = options_.clock->Now() + options_.drain_timeout;
  // An AcquireLease waiting for an unreachable coordinator must not hold up the exit.
  for (grpc::ClientContext* context : acquiring_) context->TryCancel();
}

void CrawlerWorker::Wait() {
  absl::MutexLock join_lock(&join_mu_);
  if (joined_) return;
  bool started;
  {
    absl::MutexLock lock(&mu_);
    started = started_;
  }
  if (!started) {
    joined_ = true;
    return;
  }
  for (auto& slot : slots_) slot.join();
  {
    absl::MutexLock lock(&mu_);
    slots_done_ = true;
  }
  renewer_.join();
  if (shutdown_watcher_.joinable()) shutdown_watcher_.join();
  joined_ = true;
  CrawlerWorkerStats s = stats();
  HC_LOG(kInfo, "crawler_stopped")
      .Field("worker", options_.worker_id)
      .Field("leases", s.leases)
      .Field("completed", s.completed)
      .Field("lost", s.lost)
      .Field("failed", s.failed)
      .Field("handed_back", s.handed_back)
      .Field("repos", s.repos)
      .Field("requests", s.requests);
}

CrawlerWorkerStats CrawlerWorker::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

bool CrawlerWorker::Stopping() {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

bool CrawlerWorker::SleepUnlessStopped(absl::Time deadline) {
  return options_.clock->SleepUntil(deadline, &mu_, &stopping_) && !Stopping();
}

void CrawlerWorker::RunShutdownWatcher() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (slots_done_ || stopping_) return;
    }
    if (WaitForShutdown(absl::Milliseconds(100))) {
      HC_LOG(kInfo, "crawler_draining").Field("worker", options_.worker_id);
      Stop();
      return;
    }
  }
}

void CrawlerWorker::RunRenewer() {
  for (;;) {
    std::vector<std::shared_ptr<LeaseSession>> sessions;
    bool drain = false;
    {
      absl::MutexLock lock(&mu_);
      // Wakes on real time so that a simulated clock is never advanced by this thread.
      mu_.AwaitWithTimeout(absl::Condition(&slots_done_), absl::Milliseconds(50));
      if (slots_done_) return;
      sessions = sessions_;
      drain = stopping_ && options_.clock->Now() >= drain_deadline_;
    }
    absl::Time now = options_.clock->Now();
    if (drain) {
      for (const auto& session : sessions) session->HandBack();
    }
    for (const auto& session : sessions) {
      session->MaybeRenew(now);  // a no-op once the slot called Finish()
    }
  }
}

void CrawlerWorker::RunSlot(int slot) {
  std::shared_ptr<hub::HttpTransport> transport =
      options_.transport_factory ? options_.transport_factory() : shared_transport_;
  std::unique_ptr<hub::HubClient> client;
  // The listing chain this slot follows, fetched ahead of its leases; null between chains.
  std::unique_ptr<ChainFetcher> chain;
  absl::Duration backoff = options_.idle_wait;
  std::optional<ChainedLease> chained;
  while (!Stopping()) {
    if (chained) {
      ChainedLease next = std::move(*chained);
      chained = ProcessLease(next.lease, &client, transport, &chain);
      continue;
    }
    v1::AcquireLeaseRequest request;
    request.set_worker_id(options_.worker_id);
    request.set_hub_token_label(options_.hub_token_label);
    v1::AcquireLeaseResponse response;
    grpc::ClientContext context;
    SetDeadline(&context, options_.rpc_timeout);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      acquiring_.insert(&context);
    }
    grpc::Status status = coordinator_->AcquireLease(&context, request, &response);
    {
      absl::MutexLock lock(&mu_);
      acquiring_.erase(&context);
    }
    if (Stopping()) {
      // Stopped while asking: a lease granted now is handed back at once.
      if (status.ok() && response.has_lease()) HandBackUnstarted(response.lease());
      break;
    }
    if (!status.ok()) {
      HC_LOG(kWarning, "acquire_lease_failed")
          .Field("worker", options_.worker_id)
          .Field("status", FromGrpcStatus(status));
      SleepUnlessStopped(options_.clock->Now() + backoff);
      backoff = std::min(backoff * 2, options_.idle_wait * 16);
      continue;
    }
    backoff = options_.idle_wait;
    if (!response.has_lease()) {
      absl::Duration wait = response.retry_after_ms() > 0
                                ? absl::Milliseconds(response.retry_after_ms())
                                : options_.idle_wait;
      SleepUnlessStopped(options_.clock->Now() + wait);
      continue;
    }
    chained = ProcessLease(response.lease(), &client, transport, &chain);
  }
  // Stopped with the chain's next lease in hand: another worker takes it.
  if (chained) HandBackUnstarted(chained->lease);
  (void)slot;
}

std::optional<CrawlerWorker::ChainedLease> CrawlerWorker::ProcessLease(
    const v1::Lease& lease, std::unique_ptr<hub::HubClient>* client_holder,
    const std::shared_ptr<hub::HttpTransport>& transport, std::unique_ptr<ChainFetcher>* chain) {
  CrawlerMetrics& metrics = CrawlerMetrics::Get();
  const v1::WorkItem& item = lease.item();
  metrics.leases_in_flight->Increment();
  {
    absl::MutexLock lock(&mu_);
    ++stats_.leases;
  }
  HC_LOG(kDebug, "lease_acquired")
      .Field("worker", options_.worker_id)
      .Field("crawl", item.crawl_id())
      .Field("item", item.item_id())
      .Field("fence", lease.fence())
      .Field("request_budget", lease.request_budget());

  auto session = std::make_shared<LeaseSession>(lease, coordinator_.get(), options_);
  {
    absl::MutexLock lock(&mu_);
    sessions_.push_back(session);
  }
  auto unregister = [&]() {
    session->Finish();
    absl::MutexLock lock(&mu_);
    sessions_.erase(std::remove(sessions_.begin(), sessions_.end(), session), sessions_.end());
  };

  std::unique_ptr<hub::HubClient>& client = *client_holder;
  const std::string& hub_url = item.hub_url().empty() ? options_.default_hub_url : item.hub_url();
  auto client_options = [&]() {
    hub::HubClientOptions hub_options;
    hub_options.hub_url = hub_url;
    hub_options.token = options_.hub_token;
    hub_options.clock = options_.clock;
    hub_options.transport = transport;
    hub_options.retry = options_.retry;
    hub_options.timeouts = options_.timeouts;
    hub_options.random = options_.random;
    return hub_options;
  };

  hub::FetchStats fetch;
  hub::ParsedEntries entries;
  std::map<std::string, int64_t> unreadable_by_reason;
  std::string next_url;
  absl::Status fetched = absl::OkStatus();
  int64_t detail_count = 0;
  // Ends the chain fetched ahead: every fetch joined, the pages no lease will store dropped.
  // Their traffic still counts in this worker's totals (the coordinator counted their requests
  // with the leases in whose time they went out).
  auto stop_chain = [&]() {
    if (*chain == nullptr) return;
    session->LinkCancellation(nullptr);
    AddFetchStats((*chain)->Stop(), &fetch);
    chain->reset();
  };
  // No request is charged to this lease once its final use is being reported.
  auto end_session = [&]() {
    if (*chain != nullptr) (*chain)->budget().Clear();
    session->Finish();
  };
  if (item.kind() == v1::LIST_PAGE) {
    // The page comes from the slot's chain fetcher, which went on to the next page as soon as
    // this one's head named it (see ChainFetcher). A lease for another chain (or another place
    // in it) starts the fetcher over from its URL.
    if (*chain != nullptr && ((*chain)->hub_url() != hub_url || !(*chain)->Holds(item.url()))) {
      stop_chain();
    }
    if (*chain == nullptr) {
      *chain = std::make_unique<ChainFetcher>(client_options(), kListingPagesAhead);
    }
    (*chain)->budget().Set(session);
    session->LinkCancellation(&(*chain)->cancellation());
    (*chain)->Begin(item.url());
    std::optional<FetchedPage> got = (*chain)->Take(item.url());
    absl::StatusOr<hub::ListingPage> page =
        got ? std::move(got->page) : absl::InternalError("the chain fetcher lost the page");
    if (got) AddFetchStats(got->fetch, &fetch);
    if (page.ok()) {
      entries = std::move(page->entries);
      next_url = std::move(page->next_url);
    } else {
      fetched = page.status();
    }
  } else if (item.kind() == v1::REPO_DETAIL) {
    stop_chain();
    if (client == nullptr || client->hub_url() != hub_url) {
      client = std::make_unique<hub::HubClient>(client_options());
    }
    client->set_cancellation(&session->cancellation());
    for (const std::string& repo_id : item.repo_ids()) {
      std::string unreadable;
      absl::Status status =
          client->FetchRepoDetail(repo_id, session.get(), &fetch, &entries, &unreadable);
      if (!status.ok()) {
        fetched = status;
        break;
      }
      if (!unreadable.empty()) {
        // Deleted, private, gated or disabled since the listing saw it: nothing is written for
        // it, so the listing's snapshot of the repo (written under the page's item) is what the
        // census keeps. Not a failure of the item.
        ++unreadable_by_reason[unreadable];
        continue;
      }
      ++detail_count;
    }
    client->set_cancellation(nullptr);
  } else {
    stop_chain();
    fetched = absl::InvalidArgumentError(
        absl::StrCat("work item ", item.item_id(), " has an unknown kind ", item.kind()));
  }

  auto account_fetch = [&]() {
    absl::MutexLock lock(&mu_);
    stats_.requests += fetch.requests;
    stats_.retries += fetch.retries;
    stats_.bytes += fetch.bytes;
    metrics.bytes->Increment(static_cast<double>(fetch.bytes));
  };
  // Every outcome but a chained lease ends the chain fetched ahead first.
  auto finish = [&](const char* outcome, bool chain_continues = false) {
    if (!chain_continues) stop_chain();
    end_session();
    unregister();
    account_fetch();
    metrics.leases->Add({{"outcome", outcome}}).Increment();
    metrics.leases_in_flight->Decrement();
  };
  auto drop_lost = [&](absl::string_view why) -> std::optional<ChainedLease> {
    stop_chain();
    {
      absl::MutexLock lock(&mu_);
      ++stats_.lost;
    }
    HC_LOG(kWarning, "lease_lost")
        .Field("worker", options_.worker_id)
        .Field("item", item.item_id())
        .Field("fence", lease.fence())
        .Field("why", why);
    finish("lost");
    return std::nullopt;
  };

  if (session->lost()) return drop_lost(session->lost_reason());
  if (!fetched.ok()) {
    bool handed_back = session->handed_back() || absl::IsCancelled(fetched);
    bool retryable = handed_back || hub::IsRetryableHubError(fetched);
    std::string reason = handed_back ? std::string("worker shutting down: lease handed back")
                                     : std::string(fetched.message());
    stop_chain();
    end_session();
    FailLease(*session, reason, retryable,
              LeaseFailFlags::Connection(!handed_back && hub::IsConnectionFailure(fetched)));
    finish(retryable ? "handed_back" : "failed");
    return std::nullopt;
  }

  // Overlap: the chain's next page was requested as soon as this page's head named it (the
  // slot's ChainFetcher), so it arrives while this one is parsed, stored and completed, and
  // neither the store nor CompleteLease holds it up. One lease follows the chain (CompleteLease
  // with follow_chain hands this worker the next page's lease in the write that plans it)
  // rather than the next URL being handed to whichever worker asks: the chain is one cursor, and
  // nothing new enters the protocol (no half-done page state, no second way to plan a page).
  // What is stored stays fenced as before: a page fetched ahead is written only under its own
  // lease's fence, once the coordinator has granted it, and is dropped otherwise. HubClient
  // refuses a next link off the Hub's origin before any request, so nothing is sent elsewhere.

  // The census counts the public Hub: a listing made with a token also lists the private repos
  // it can see, and a detail can answer for a repo made private. Neither reaches the store.
  int64_t private_skipped = 0;
  {
    auto is_private = [](const v1::RepoSnapshot& repo) { return repo.is_private(); };
    auto first_private = std::remove_if(entries.repos.begin(), entries.repos.end(), is_private);
    private_skipped = entries.repos.end() - first_private;
    entries.repos.erase(first_private, entries.repos.end());
  }

  // In id order: the store writes a row per repo keyed by its id, and RocksDB inserts keys that
  // arrive in order into its memtable at a fraction of the cost of keys in the Hub's order (the
  // skiplist search resumes from the previous key; the profile of `local` had random-order
  // inserts as its largest cost). Stable, so the first of repeated entries is the one kept.
  std::stable_sort(
      entries.repos.begin(), entries.repos.end(),
      [](const v1::RepoSnapshot& a, const v1::RepoSnapshot& b) { return a.id() < b.id(); });
  // De-duplicate by id within the batch: a page can repeat an entry when the Hub's order shifts.
  v1::WriteBatch batch;
  batch.set_crawl_id(item.crawl_id());
  batch.set_crawl_date(item.crawl_date());
  batch.set_item_id(item.item_id());
  batch.set_fence(lease.fence());
  batch.set_report_changed(item.kind() == v1::LIST_PAGE && item.fetch_details());
  RepoIdChecksum checksum;
  absl::flat_hash_set<std::string> seen;
  int64_t duplicates = 0;
  for (v1::RepoSnapshot& repo : entries.repos) {
    if (!seen.insert(repo.id()).second) {
      ++duplicates;
      continue;
    }
    checksum.Add(repo.id());
    *batch.add_repos() = std::move(repo);
  }
  if (duplicates > 0) entries.rejected_by_reason["duplicate_in_batch"] += duplicates;

  std::vector<std::string> changed;
  absl::Status written = WriteBatch(batch, checksum.value(), &changed);
  if (!written.ok()) {
    if (absl::IsAborted(written) || absl::IsFailedPrecondition(written)) {
      return drop_lost(written.message());
    }
    stop_chain();
    end_session();
    // The store's outage is not the item's failure: the item goes back to the queue uncounted.
    FailLease(*session, absl::StrCat("snapshot store: ", written.message()), true,
              LeaseFailFlags::Peer(PeerUnavailable(written)));
    finish("handed_back");
    return std::nullopt;
  }

  // Only a chain whose next page is on its way is worth a lease; a worker that is stopping takes
  // none.
  const bool follow_chain = item.kind() == v1::LIST_PAGE && !next_url.empty() &&
                            *chain != nullptr && (*chain)->Holds(next_url) && !Stopping();
  end_session();
  v1::CompleteLeaseRequest complete;
  complete.set_lease_id(lease.lease_id());
  complete.set_fence(lease.fence());
  complete.set_next_url(next_url);
  complete.set_follow_chain(follow_chain);
  complete.set_repos(batch.repos_size());
  complete.set_id_checksum(checksum.value());
  for (std::string& id : changed) complete.add_changed_repo_ids(std::move(id));
  int64_t rejected = 0;
  for (const auto& [reason, n] : entries.rejected_by_reason) {
    (*complete.mutable_rejected_by_reason())[reason] = n;
    rejected += n;
  }
  complete.set_rejected_entries(rejected);
  complete.set_private_skipped(private_skipped);
  complete.set_limit_shrinks(static_cast<int32_t>(fetch.limit_shrinks));
  for (const auto& [reason, n] : unreadable_by_reason) {
    (*complete.mutable_unreadable_by_reason())[reason] = n;
  }
  complete.set_retries(fetch.retries);
  complete.set_requests_used(session->TakeUnreported());
  complete.set_bytes(fetch.bytes);
  if (std::optional<v1::RateLimitObservation> observed = session->latest()) {
    *complete.mutable_rate_limit() = *observed;
  }
  absl::StatusOr<v1::CompleteLeaseResponse> completed = CompleteLease(complete);
  if (!completed.ok()) {
    const absl::Status& status = completed.status();
    if (absl::IsAborted(status) || absl::IsFailedPrecondition(status)) {
      return drop_lost(status.message());
    }
    bool retryable = !absl::IsInvalidArgument(status);
    stop_chain();
    FailLease(*session, absl::StrCat("CompleteLease: ", status.message()), retryable,
              LeaseFailFlags::Peer(PeerUnavailable(status)));
    finish(retryable ? "handed_back" : "failed");
    return std::nullopt;
  }
  std::optional<ChainedLease> chained;
  if (completed->has_next_lease()) {
    {
      absl::MutexLock lock(&mu_);
      ++stats_.chained;
    }
    chained.emplace();
    chained->lease = completed->next_lease();
  }

  {
    absl::MutexLock lock(&mu_);
    ++stats_.completed;
    if (item.kind() == v1::LIST_PAGE) ++stats_.pages;
    stats_.details += detail_count;
    stats_.repos += batch.repos_size();
    stats_.duplicates += duplicates;
    stats_.rejected += rejected - duplicates;
    stats_.private_skipped += private_skipped;
    stats_.limit_shrinks += fetch.limit_shrinks;
    for (const auto& [reason, n] : unreadable_by_reason) stats_.unreadable += n;
  }
  if (item.kind() == v1::LIST_PAGE) metrics.pages->Increment();
  metrics.details->Increment(static_cast<double>(detail_count));
  metrics.repos->Increment(static_cast<double>(batch.repos_size()));
  metrics.duplicates->Increment(static_cast<double>(duplicates));
  metrics.private_skipped->Increment(static_cast<double>(private_skipped));
  for (const auto& [reason, n] : unreadable_by_reason) {
    metrics.unreadable->Add({{"reason", reason}}).Increment(static_cast<double>(n));
  }
  for (const auto& [reason, n] : entries.rejected_by_reason) {
    if (reason != "duplicate_in_batch") {
      metrics.rejected->Add({{"reason", reason}}).Increment(static_cast<double>(n));
    }
  }
  HC_LOG(kDebug, "lease_completed")
      .Field("worker", options_.worker_id)
      .Field("item", item.item_id())
      .Field("fence", lease.fence())
      .Field("repos", batch.repos_size())
      .Field("rejected", rejected)
      .Field("private_skipped", private_skipped)
      .Field("limit_shrinks", fetch.limit_shrinks)
      .Field("requests", fetch.requests)
      .Field("last_page", next_url.empty())
      .Field("chained", chained.has_value());
  // Without a next lease (the crawl closed, or the window is spent) the pages fetched ahead are
  // dropped.
  finish("completed", /*chain_continues=*/chained.has_value());
  return chained;
}

absl::Status CrawlerWorker::WriteBatch(const v1::WriteBatch& batch, uint64_t checksum,
                                       std::vector<std::string>* changed) {
  absl::Duration backoff = absl::Milliseconds(200);
  absl::Status last;
  for (int attempt = 1; attempt <= options_.rpc_attempts; ++attempt) {
    grpc::ClientContext context;
    SetDeadline(&context, options_.rpc_timeout);
    v1::WriteResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::WriteBatch>> writer = store_->Write(&context, &response);
    writer->Write(batch);
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (status.ok()) {
      if (response.batches() != 1 || response.repos() != batch.repos_size() ||
          response.id_checksums_size() != 1 || response.id_checksums(0) != checksum) {
        return absl::DataLossError(
            absl::StrCat("the store acknowledged ", response.batches(), " batches and ",
                         response.repos(), " repos for a batch of ", batch.repos_size(),
                         " repos (or another id checksum) for item ", batch.item_id()));
      }
      changed->assign(response.changed_repo_ids().begin(), response.changed_repo_ids().end());
      return absl::OkStatus();
    }
    last = FromGrpcStatus(status);
    if (!RetryableRpcCode(status.error_code())) return last;
    absl::Time wake = options_.clock->Now() + backoff;
    backoff *= 2;
    absl::Mutex mu;
    bool never = false;
    options_.clock->SleepUntil(wake, &mu, &never);
  }
  return last;
}

absl::StatusOr<v1::CompleteLeaseResponse> CrawlerWorker::CompleteLease(
    const v1::CompleteLeaseRequest& request) {
  absl::Duration backoff = absl::Milliseconds(200);
  absl::Status last;
  for (int attempt = 1; attempt <= options_.rpc_attempts; ++attempt) {
    grpc::ClientContext context;
    SetDeadline(&context, options_.rpc_timeout);
    v1::CompleteLeaseResponse response;
    grpc::Status status = coordinator_->CompleteLease(&context, request, &response);
    if (status.ok()) return response;
    last = FromGrpcStatus(status);
    if (!RetryableRpcCode(status.error_code())) return last;
    absl::Time wake = options_.clock->Now() + backoff;
    backoff *= 2;
    absl::Mutex mu;
    bool never = false;
    options_.clock->SleepUntil(wake, &mu, &never);
  }
  return last;
}

void CrawlerWorker::FailLease(LeaseSession& session, const std::string& reason, bool retryable,
                              LeaseFailFlags flags) {
  const v1::Lease& lease = session.lease();
  v1::FailLeaseRequest request;
  request.set_lease_id(lease.lease_id());
  request.set_fence(lease.fence());
  request.set_reason(Truncated(reason, 2000));
  request.set_retryable(retryable);
  request.set_requests_used(session.TakeUnreported());
  request.set_connection_failure(flags.connection_failure);
  request.set_peer_unavailable(flags.peer_unavailable);
  grpc::ClientContext context;
  // While stopping, a coordinator that cannot be reached must not hold up the exit (the lease
  // expires there by itself).
  SetDeadline(&context, Stopping() ? std::min(options_.rpc_timeout, absl::Milliseconds(500))
                                   : options_.rpc_timeout);
  v1::FailLeaseResponse response;
  grpc::Status status = coordinator_->FailLease(&context, request, &response);
  {
    absl::MutexLock lock(&mu_);
    if (retryable) {
      ++stats_.handed_back;
    } else {
      ++stats_.failed;
    }
  }
  HC_LOG(kWarning, retryable ? "lease_handed_back" : "lease_failed")
      .Field("worker", options_.worker_id)
      .Field("item", lease.item().item_id())
      .Field("fence", lease.fence())
      .Field("reason", request.reason())
      .Field("connection_failure", flags.connection_failure)
      .Field("peer_unavailable", flags.peer_unavailable)
      .Field("fail_lease", FromGrpcStatus(status));
}

void CrawlerWorker::HandBackUnstarted(const v1::Lease& lease) {
  v1::FailLeaseRequest request;
  request.set_lease_id(lease.lease_id());
  request.set_fence(lease.fence());
  request.set_reason("worker shutting down: lease handed back");
  request.set_retryable(true);
  grpc::ClientContext context;
  SetDeadline(&context, std::min(options_.rpc_timeout, absl::Milliseconds(500)));
  v1::FailLeaseResponse response;
  grpc::Status status = coordinator_->FailLease(&context, request, &response);
  HC_LOG(kInfo, "lease_handed_back")
      .Field("worker", options_.worker_id)
      .Field("item", lease.item().item_id())
      .Field("fence", lease.fence())
      .Field("reason", request.reason())
      .Field("fail_lease", FromGrpcStatus(status));
  absl::MutexLock lock(&mu_);
  ++stats_.leases;
  ++stats_.handed_back;
}

int RunCrawlerUntilShutdown(CrawlerWorkerOptions options, int64_t metrics_port) {
  absl::StatusOr<std::unique_ptr<MetricsExposer>> exposer = StartMetricsIfRequested(metrics_port);
  if (!exposer.ok()) {
    HC_LOG(kError, "crawler_metrics_failed").Field("status", exposer.status());
    return 1;
  }
  options.stop_on_shutdown_signal = true;
  absl::StatusOr<std::unique_ptr<CrawlerWorker>> worker = CrawlerWorker::Create(std::move(options));
  if (!worker.ok()) {
    HC_LOG(kError, "crawler_invalid_options").Field("status", worker.status());
    return 2;
  }
  absl::Status started = (*worker)->Start();
  if (!started.ok()) {
    HC_LOG(kError, "crawler_start_failed").Field("status", started);
    return 1;
  }
  WaitForShutdown();
  (*worker)->Stop();
  (*worker)->Wait();
  return 0;
}

}  // namespace hubcensus::crawler
