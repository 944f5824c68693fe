#include "embedded/local_census.h"

#include <sys/stat.h>

#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "aggregator/aggregator.h"
#include "common/grpc_server.h"
#include "common/log.h"
#include "common/rpc_deadline.h"
#include "common/shutdown.h"
#include "common/status.h"
#include "common/worker_token.h"
#include "coordinator/coordinator.h"
#include "crawler/crawler_worker.h"
#include "hub/hub_quota.h"

namespace hubcensus {

class LocalCensus::Impl {
 public:
  LocalCensusOptions options;
  std::unique_ptr<aggregator::Aggregator> aggregator;
  std::unique_ptr<GrpcServer> aggregator_server;
  std::unique_ptr<coordinator::CoordinatorService> coordinator;
  std::unique_ptr<GrpcServer> coordinator_server;
  std::vector<std::unique_ptr<crawler::CrawlerWorker>> workers;
  std::unique_ptr<aggregator::CensusClient> census;
  std::unique_ptr<v1::Coordinator::Stub> coordinator_stub;
  std::string worker_token;
  std::unique_ptr<v1::SnapshotStore::Service> store_gate;  // outlives aggregator_server
  bool stopped = false;

  void Stop() {
    if (stopped) return;
    stopped = true;
    // Everything stops within 2 s of SIGTERM: leases in flight get half a second (then go back to
    // the queue, resumed on the next run), servers a quarter of a second each.
    for (auto& w : workers) w->Stop();
    for (auto& w : workers) w->Wait();
    workers.clear();
    if (coordinator) coordinator->StopBackground();
    if (coordinator_server) coordinator_server->Shutdown(absl::Milliseconds(250));
    coordinator_server.reset();
    coordinator.reset();
    if (aggregator_server) aggregator_server->Shutdown(absl::Milliseconds(250));
    aggregator_server.reset();
    store_gate.reset();
    aggregator.reset();
  }
};

namespace {

absl::Status MakeDirs(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!partial.empty() && mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return absl::UnavailableError(absl::StrCat(partial, ": cannot create the folder"));
      }
    }
    if (i < path.size()) partial.push_back(path[i]);
  }
  return absl::OkStatus();
}

// 32 random bytes, hex: the worker token of one run.
std::string RandomToken() {
  std::random_device device;
  std::string token;
  for (int i = 0; i < 8; ++i) absl::StrAppend(&token, absl::Hex(device(), absl::kZeroPad8));
  return token;
}

bool IsOpen(v1::CrawlState state) {
  return state == v1::CRAWL_RUNNING || state == v1::CRAWL_COMMITTING;
}

template <typename Fn>
grpc::Status CallWithDeadline(Fn fn, absl::Duration timeout = absl::Seconds(30)) {
  grpc::ClientContext ctx;
  SetRpcDeadline(&ctx, timeout);
  return fn(&ctx);
}

}  // namespace

LocalCensus::LocalCensus(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LocalCensus::~LocalCensus() { Stop(); }

absl::StatusOr<std::unique_ptr<LocalCensus>> LocalCensus::Start(LocalCensusOptions options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data_dir is required");
  if (options.hub_url.empty()) return absl::InvalidArgumentError("no Hub URL");
  if (options.workers < 1 || options.workers > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("--workers=", options.workers, ": must be between 1 and 64"));
  }
  RETURN_IF_ERROR(MakeDirs(options.data_dir));
  auto impl = std::make_unique<Impl>();
  impl->options = options;

  aggregator::AggregatorOptions agg;
  agg.data_dir = options.data_dir + "/store";
  agg.families = options.families;
  agg.sync_writes = options.sync_writes;
  ASSIGN_OR_RETURN(impl->aggregator, aggregator::Aggregator::Open(agg));
  // The roles talk over loopback, where any local process could call them: worker RPCs and
  // store ingest need a token made for this run alone.
  impl->worker_token = RandomToken();
  impl->store_gate = GateSnapshotStore(
      dynamic_cast<v1::SnapshotStore::Service*>(impl->aggregator->snapshot_store_service()),
      impl->worker_token);
  ASSIGN_OR_RETURN(impl->aggregator_server,
                   GrpcServer::Start(GrpcServerOptions{},
                                     {impl->store_gate.get(), impl->aggregator->census_service()}));
  const std::string store_address = impl->aggregator_server->dial_address();

  coordinator::CoordinatorOptions coord;
  coord.state_dir = options.data_dir + "/coordinator";
  coord.store_target = store_address;
  coord.hub_url = options.hub_url;
  coord.lease_duration = options.lease_duration;
  coord.sync_writes = options.sync_writes;
  coord.worker_token = impl->worker_token;
  coord.max_rejected_fraction = options.max_rejected_fraction;
  coord.unreachable_hub_timeout = options.unreachable_hub_timeout;
  ASSIGN_OR_RETURN(coord.hub_quota, hub::ParseHubQuota(options.hub_quota));
  // In one process the workers ask again quickly: the next page is ready as soon as one completes.
  coord.busy_retry_after = absl::Milliseconds(5);
  coord.idle_retry_after = absl::Milliseconds(50);
  coord.tick_interval = absl::Milliseconds(50);
  ASSIGN_OR_RETURN(impl->coordinator, coordinator::CoordinatorService::Open(coord));
  impl->coordinator->StartBackground();
  ASSIGN_OR_RETURN(impl->coordinator_server,
                   GrpcServer::Start(GrpcServerOptions{}, {impl->coordinator.get()}));
  const std::string coordinator_address = impl->coordinator_server->dial_address();

  for (int i = 0; i < options.workers; ++i) {
    crawler::CrawlerWorkerOptions w;
    w.coordinator_target = coordinator_address;
    w.store_target = store_address;
    w.coordinator_channel = MakeWorkerChannel(coordinator_address, nullptr, impl->worker_token);
    w.store_channel = MakeWorkerChannel(store_address, nullptr, impl->worker_token);
    w.drain_timeout = absl::Milliseconds(500);
    w.worker_id = absl::StrCat("local-", i);
    w.parallelism = options.parallelism;
    w.hub_token = options.hf_token;
    w.hub_ca_file = options.hub_ca_file;
    w.idle_wait = absl::Milliseconds(50);
    w.budget_wait = absl::Milliseconds(200);
    // The command that runs this census owns shutdown: it stops the workers itself.
    w.stop_on_shutdown_signal = false;
    ASSIGN_OR_RETURN(auto worker, crawler::CrawlerWorker::Create(std::move(w)));
    RETURN_IF_ERROR(worker->Start());
    impl->workers.push_back(std::move(worker));
  }
  impl->census =
      std::make_unique<aggregator::CensusClient>(MakeChannel(store_address), store_address);
  impl->coordinator_stub = v1::Coordinator::NewStub(MakeChannel(coordinator_address));
  HC_LOG(kInfo, "local_census_started")
      .Field("data_dir", options.data_dir)
      .Field("aggregator", store_address)
      .Field("coordinator", coordinator_address)
      .Field("workers", options.workers);
  return std::unique_ptr<LocalCensus>(new LocalCensus(std::move(impl)));
}

absl::StatusOr<LocalCrawlOutcome> LocalCensus::RunCrawl(
    const std::string& date, const std::function<void(const v1::Crawl&)>& progress) {
  const std::string hub_url(absl::StripSuffix(impl_->options.hub_url, "/"));
  // The date's latest attempt, if any: an open one of another Hub is not silently resumed.
  v1::GetCrawlRequest latest_request;
  latest_request.set_date(date);
  v1::Crawl latest;
  grpc::Status got = CallWithDeadline([&](grpc::ClientContext* ctx) {
    return impl_->coordinator_stub->GetCrawl(ctx, latest_request, &latest);
  });
  if (!got.ok() && got.error_code() != grpc::StatusCode::NOT_FOUND) return FromGrpcStatus(got);
  if (got.ok() && IsOpen(latest.state())) {
    if (impl_->options.new_attempt) {
      v1::CancelCrawlRequest cancel;
      cancel.set_crawl_id(latest.crawl_id());
      cancel.set_reason(absl::StrCat("replaced by a new attempt (local --retry) of ", hub_url));
      v1::Crawl cancelled;
      RETURN_IF_ERROR(FromGrpcStatus(CallWithDeadline([&](grpc::ClientContext* ctx) {
        return impl_->coordinator_stub->CancelCrawl(ctx, cancel, &cancelled);
      })));
      HC_LOG(kInfo, "local_crawl_replaced").Field("crawl", latest.crawl_id());
    } else if (latest.hub_url() != hub_url) {
      return absl::FailedPreconditionError(
          absl::StrCat(latest.crawl_id(), " is open and crawls ", latest.hub_url(), ", not ",
                       hub_url, ": run again with --hub_url=", latest.hub_url(),
                       " to resume it, or with --retry to cancel it and start a new attempt of ",
                       date, " for ", hub_url));
    }
  }
  v1::StartCrawlRequest start;
  start.set_date(date);
  start.set_hub_url(hub_url);
  // Running `local` again for a date whose crawl failed or was cancelled crawls it again.
  start.set_retry(true);
  v1::StartCrawlResponse started;
  RETURN_IF_ERROR(FromGrpcStatus(CallWithDeadline([&](grpc::ClientContext* ctx) {
    return impl_->coordinator_stub->StartCrawl(ctx, start, &started);
  })));
  LocalCrawlOutcome outcome;
  // StartCrawl returns the date's crawl when it has one: committed (nothing to do) or open
  // (resumed from its checkpoint by this run's workers).
  outcome.already_existed =
      started.already_existed() && started.crawl().state() == v1::CRAWL_COMMITTED;
  outcome.resumed = started.already_existed() && !outcome.already_existed;
  outcome.at_start = started.crawl();
  outcome.crawl = started.crawl();
  for (;;) {
    if (progress) progress(outcome.crawl);
    switch (outcome.crawl.state()) {
      case v1::CRAWL_COMMITTED:
        return outcome;
      case v1::CRAWL_FAILED:
        return absl::AbortedError(
            absl::StrCat(outcome.crawl.crawl_id(), " failed: ", outcome.crawl.failure_reason()));
      case v1::CRAWL_CANCELLED:
        return absl::CancelledError(absl::StrCat(outcome.crawl.crawl_id(), " was cancelled"));
      default:
        break;
    }
    if (ShutdownRequested()) {
      return absl::CancelledError(
          absl::StrCat("interrupted: ", outcome.crawl.crawl_id(),
                       " stays open and resumes from its checkpoint on the next run"));
    }
    WaitForShutdown(absl::Milliseconds(100));
    v1::GetCrawlRequest get;
    get.set_crawl_id(outcome.crawl.crawl_id());
    RETURN_IF_ERROR(FromGrpcStatus(CallWithDeadline([&](grpc::ClientContext* ctx) {
      return impl_->coordinator_stub->GetCrawl(ctx, get, &outcome.crawl);
    })));
  }
}

aggregator::Aggregator* LocalCensus::aggregator() { return impl_->aggregator.get(); }
aggregator::CensusClient* LocalCensus::census() { return impl_->census.get(); }
v1::Coordinator::StubInterface* LocalCensus::coordinator() { return impl_->coordinator_stub.get(); }
std::string LocalCensus::aggregator_address() const {
  return impl_->aggregator_server ? impl_->aggregator_server->dial_address() : "";
}
std::string LocalCensus::coordinator_address() const {
  return impl_->coordinator_server ? impl_->coordinator_server->dial_address() : "";
}
void LocalCensus::Stop() { impl_->Stop(); }

}  // namespace hubcensus
