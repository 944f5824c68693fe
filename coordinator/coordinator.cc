#include "coordinator/coordinator.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/dates.h"
#include "common/grpc_server.h"
#include "common/log.h"
#include "common/rpc_deadline.h"
#include "common/status.h"
#include "common/tls.h"
#include "common/worker_token.h"
#include "coordinator/internal/coordinator_metrics.h"
#include "coordinator/internal/crawl_ledger.h"
#include "coordinator/internal/error_text.h"
#include "coordinator/internal/item_planner.h"
#include "coordinator/internal/lease_table.h"
#include "hub/listing_query.h"

namespace hubcensus::coordinator {
namespace {

bool IsHttpUrl(absl::string_view url) {
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) return false;
  for (char c : url) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return false;
  }
  return url.size() > 8;
}

absl::Status ValidateLeaseRef(const std::string& lease_id, uint64_t fence) {
  if (lease_id.empty()) return absl::InvalidArgumentError("lease_id: required");
  if (fence == 0) return absl::InvalidArgumentError("fence: required (fences start at 1)");
  return absl::OkStatus();
}

absl::Status NonNegative(int64_t value, absl::string_view field) {
  if (value < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", value, " is negative"));
  }
  return absl::OkStatus();
}

}  // namespace

const char* CrawlStateName(v1::CrawlState state) {
  switch (state) {
    case v1::CRAWL_RUNNING:
      return "RUNNING";
    case v1::CRAWL_COMMITTING:
      return "COMMITTING";
    case v1::CRAWL_COMMITTED:
      return "COMMITTED";
    case v1::CRAWL_FAILED:
      return "FAILED";
    case v1::CRAWL_CANCELLED:
      return "CANCELLED";
    default:
      return "UNSPECIFIED";
  }
}

absl::StatusOr<std::string> ValidateCrawlDate(const std::string& date, const std::string& field) {
  if (date.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  auto parsed = ParseDate(date);
  if (!parsed.ok() || FormatDate(*parsed) != date) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": \"", date, "\" is not a UTC date YYYY-MM-DD"));
  }
  return date;
}

std::string CoordinatorService::CrawlIdForDate(const std::string& date) {
  return LeaseTable::CrawlIdForDate(date);
}

std::string CoordinatorService::CrawlIdForAttempt(const std::string& date, int attempt) {
  return LeaseTable::CrawlIdForAttempt(date, attempt);
}

int CoordinatorService::AttemptOf(const std::string& crawl_id) {
  return LeaseTable::AttemptOf(crawl_id);
}

std::string CoordinatorService::PageItemId(const std::string& stream, int32_t page_index) {
  return ItemPlanner::PageItemId(stream, page_index);
}

CoordinatorService::CoordinatorService(CoordinatorOptions options)
    : options_(std::move(options)), clock_(options_.clock ? options_.clock : Clock::Real()) {}

absl::StatusOr<std::unique_ptr<CoordinatorService>> CoordinatorService::Open(
    CoordinatorOptions options) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("state_dir: required");
  if (options.lease_duration < absl::Milliseconds(300)) {
    return absl::InvalidArgumentError("lease_duration: must be at least 300ms");
  }
  if (options.max_item_failures < 1) {
    return absl::InvalidArgumentError("max_item_failures: must be at least 1");
  }
  if (!(options.max_rejected_fraction >= 0 && options.max_rejected_fraction <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_rejected_fraction: ", options.max_rejected_fraction, " is outside 0..1"));
  }
  if (options.max_empty_pages < 1) {
    return absl::InvalidArgumentError("max_empty_pages: must be at least 1");
  }
  if (options.unreachable_hub_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("unreachable_hub_timeout: must be positive");
  }
  if (!options.hub_url.empty() && !IsHttpUrl(options.hub_url)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hub_url: \"", options.hub_url, "\" is not an http(s) URL"));
  }
  options.hub_url = std::string(absl::StripSuffix(options.hub_url, "/"));
  std::unique_ptr<CoordinatorService> service(new CoordinatorService(std::move(options)));
  if (service->options_.store != nullptr) {
    service->store_ = service->options_.store;
  } else if (!service->options_.store_target.empty()) {
    service->store_channel_ =
        MakeWorkerChannel(service->options_.store_target, service->options_.store_credentials,
                          service->options_.worker_token);
    service->store_ = v1::SnapshotStore::NewStub(service->store_channel_);
  } else {
    return absl::InvalidArgumentError(
        "store: required (the aggregator's SnapshotStore address, or an injected stub)");
  }
  CoordinatorMetrics::Get();  // every series exported from the start
  ASSIGN_OR_RETURN(service->ledger_,
                   CrawlLedger::Open(service->options_.state_dir, service->options_.sync_writes));
  ItemPlanner::Options planning;
  planning.detail_shard_size = service->options_.detail_shard_size;
  planning.max_empty_pages = service->options_.max_empty_pages;
  service->planner_ = std::make_unique<ItemPlanner>(planning);
  service->table_ = std::make_unique<LeaseTable>(service->options_, service->clock_,
                                                 service->ledger_.get(), service->planner_.get());
  RETURN_IF_ERROR(service->table_->Load());
  return service;
}

CoordinatorService::~CoordinatorService() { StopBackground(); }

absl::Status CoordinatorService::CheckAdmin(grpc::ServerContext* context) const {
  absl::Status s = CheckBearerToken(*context, options_.admin_token);
  if (s.ok()) return s;
  return absl::UnauthenticatedError(
      absl::StrCat(s.message(),
                   " (operator RPCs of this coordinator need its admin token: hubcensus crawl "
                   "--admin_token_file=FILE)"));
}

absl::Status CoordinatorService::CheckWorker(grpc::ServerContext* context,
                                             absl::string_view method) const {
  return CheckWorkerToken(*context, options_.worker_token,
                          absl::StrCat("/hubcensus.v1.Coordinator/", method));
}

// ---------------------------------------------------------------------------------------------
// Operators.

absl::StatusOr<v1::StartCrawlResponse> CoordinatorService::HandleStartCrawl(
    const v1::StartCrawlRequest& request) {
  ASSIGN_OR_RETURN(std::string date, ValidateCrawlDate(request.date(), "date"));
  std::string hub_url = request.hub_url().empty()
                            ? options_.hub_url
                            : std::string(absl::StripSuffix(request.hub_url(), "/"));
  if (!request.hub_url().empty() && !IsHttpUrl(request.hub_url())) {
    return absl::InvalidArgumentError(
        absl::StrCat("hub_url: \"", request.hub_url(), "\" is not an absolute http(s) URL"));
  }
  if (hub_url.empty()) {
    return absl::InvalidArgumentError(
        "hub_url: required (this coordinator was started without --hub_url)");
  }
  RETURN_IF_ERROR(hub::ValidateListingOptions(request.listing()));
  v1::ListingOptions listing = hub::WithListingDefaults(request.listing());
  const absl::Time now = clock_->Now();
  if (*ParseDate(date) > now + absl::Hours(24)) {
    // A census is a snapshot of the Hub now: a later label is a typo, not a plan.
    return absl::InvalidArgumentError(
        absl::StrCat("date: ", date, " is in the future (today is ", FormatDate(now), " UTC)"));
  }
  return table_->StartCrawl(date, hub_url, listing, request.retry());
}

absl::StatusOr<v1::Crawl> CoordinatorService::HandleGetCrawl(const v1::GetCrawlRequest& request) {
  if (request.crawl_id().empty()) {
    if (request.date().empty()) {
      return absl::InvalidArgumentError("crawl_id: required (or date)");
    }
    ASSIGN_OR_RETURN(std::string date, ValidateCrawlDate(request.date(), "date"));
    return table_->GetCrawl("", date);
  }
  return table_->GetCrawl(request.crawl_id(), "");
}

absl::StatusOr<v1::ListCrawlsResponse> CoordinatorService::HandleListCrawls(
    const v1::ListCrawlsRequest& request) {
  RETURN_IF_ERROR(NonNegative(request.limit(), "limit"));
  return table_->ListCrawls(request.limit());
}

absl::StatusOr<v1::Crawl> CoordinatorService::HandleCancelCrawl(
    const v1::CancelCrawlRequest& request) {
  if (request.crawl_id().empty()) return absl::InvalidArgumentError("crawl_id: required");
  ASSIGN_OR_RETURN(v1::Crawl view, table_->CancelCrawl(request.crawl_id(), request.reason()));
  Wake();  // the background thread sends the store's Abort
  return view;
}

// ---------------------------------------------------------------------------------------------
// Workers.

absl::StatusOr<v1::AcquireLeaseResponse> CoordinatorService::HandleAcquireLease(
    const v1::AcquireLeaseRequest& request) {
  if (request.worker_id().empty()) return absl::InvalidArgumentError("worker_id: required");
  return table_->Acquire(request.worker_id(), request.hub_token_label());
}

absl::StatusOr<v1::RenewLeaseResponse> CoordinatorService::HandleRenewLease(
    const v1::RenewLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateLeaseRef(request.lease_id(), request.fence()));
  RETURN_IF_ERROR(NonNegative(request.requests_used(), "requests_used"));
  return table_->Renew(request);
}

absl::StatusOr<v1::CompleteLeaseResponse> CoordinatorService::HandleCompleteLease(
    const v1::CompleteLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateLeaseRef(request.lease_id(), request.fence()));
  RETURN_IF_ERROR(NonNegative(request.repos(), "repos"));
  RETURN_IF_ERROR(NonNegative(request.rejected_entries(), "rejected_entries"));
  RETURN_IF_ERROR(NonNegative(request.retries(), "retries"));
  RETURN_IF_ERROR(NonNegative(request.requests_used(), "requests_used"));
  RETURN_IF_ERROR(NonNegative(request.bytes(), "bytes"));
  RETURN_IF_ERROR(NonNegative(request.private_skipped(), "private_skipped"));
  RETURN_IF_ERROR(NonNegative(request.limit_shrinks(), "limit_shrinks"));
  for (const auto& [reason, count] : request.rejected_by_reason()) {
    RETURN_IF_ERROR(
        NonNegative(count, absl::StrCat("rejected_by_reason[", Truncated(reason, 64), "]")));
  }
  for (const auto& [reason, count] : request.unreadable_by_reason()) {
    RETURN_IF_ERROR(
        NonNegative(count, absl::StrCat("unreadable_by_reason[", Truncated(reason, 64), "]")));
  }
  if (!request.next_url().empty() && !IsHttpUrl(request.next_url())) {
    return absl::InvalidArgumentError(absl::StrCat("next_url: \"", Truncated(request.next_url()),
                                                   "\" is not an absolute http(s) URL"));
  }
  ASSIGN_OR_RETURN(LeaseTable::Completion completion, table_->Complete(request));
  if (completion.crawl_left_running) Wake();  // a commit or an abort is due
  v1::CompleteLeaseResponse response;
  if (completion.next_lease) *response.mutable_next_lease() = std::move(*completion.next_lease);
  return response;
}

absl::Status CoordinatorService::HandleFailLease(const v1::FailLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateLeaseRef(request.lease_id(), request.fence()));
  RETURN_IF_ERROR(NonNegative(request.requests_used(), "requests_used"));
  if (request.reason().empty()) return absl::InvalidArgumentError("reason: required");
  ASSIGN_OR_RETURN(bool crawl_closed, table_->Fail(request));
  if (crawl_closed) Wake();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Time and the store.

bool CoordinatorService::WaitForStore() {
  if (store_channel_ == nullptr) return true;
  const absl::Time deadline =
      absl::Now() + std::min(options_.store_connect_timeout, options_.commit_timeout);
  while (true) {
    {
      absl::MutexLock lock(&store_call_mu_);
      if (stopping_) return false;
    }
    // Real time: this is about a socket, not about the crawl's (possibly simulated) clock.
    const absl::Time slice = std::min(deadline, absl::Now() + absl::Milliseconds(200));
    if (store_channel_->WaitForConnected(absl::ToChronoTime(slice))) return true;
    if (absl::Now() >= deadline) return false;
  }
}

void CoordinatorService::RunStoreJob(const StoreJob& job) {
  grpc::Status status;
  v1::CommitResponse commit_response;
  if (!WaitForStore()) {
    status = grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        absl::StrCat("the store at ", options_.store_target, " was not reached within ",
                     absl::FormatDuration(
                         std::min(options_.store_connect_timeout, options_.commit_timeout))));
  } else {
    grpc::ClientContext context;
    // A store that drops the connection mid-way (a restart) is waited for, not failed at once.
    SetRpcDeadline(&context, options_.commit_timeout, WaitForReady::kYes);
    {
      absl::MutexLock lock(&store_call_mu_);
      if (stopping_) context.TryCancel();
      store_call_ = &context;
    }
    if (job.commit) {
      status = store_->Commit(&context, job.commit_request, &commit_response);
    } else {
      v1::AbortResponse abort_response;
      status = store_->Abort(&context, job.abort_request, &abort_response);
    }
    {
      absl::MutexLock lock(&store_call_mu_);
      store_call_ = nullptr;
    }
  }
  table_->RecordStoreResult(job, FromGrpcStatus(status), commit_response.repos(),
                            commit_response.families());
}

void CoordinatorService::RunSchedule(absl::Time now) {
  if (options_.schedule_minute_utc < 0) return;
  const std::string today = FormatDate(now);
  const int64_t minute = (absl::ToUnixSeconds(now) % 86400) / 60;
  {
    absl::MutexLock lock(&tick_mu_);
    if (minute < options_.schedule_minute_utc || last_scheduled_date_ == today) return;
    last_scheduled_date_ = today;
  }
  v1::StartCrawlRequest request;
  request.set_date(today);
  auto started = HandleStartCrawl(request);
  if (!started.ok()) {
    HC_LOG(kError, "scheduled_crawl_not_started")
        .Field("date", today)
        .Field("error", started.status());
  } else if (!started->already_existed()) {
    HC_LOG(kInfo, "scheduled_crawl_started").Field("crawl", started->crawl().crawl_id());
  }
}

void CoordinatorService::Tick() {
  absl::Time now = clock_->Now();
  RunSchedule(now);
  table_->ExpireLeases();
  for (const auto& job : table_->CollectStoreJobs()) RunStoreJob(job);
}

void CoordinatorService::Wake() {
  absl::MutexLock lock(&wake_mu_);
  wake_ = true;
}

void CoordinatorService::StartBackground() {
  if (background_.joinable()) return;
  {
    absl::MutexLock lock(&wake_mu_);
    stop_ = false;
  }
  {
    absl::MutexLock lock(&store_call_mu_);
    stopping_ = false;
  }
  background_ = std::thread([this] { BackgroundLoop(); });
}

void CoordinatorService::StopBackground() {
  {
    absl::MutexLock lock(&wake_mu_);
    stop_ = true;
    wake_ = true;
  }
  if (background_.joinable()) {
    // A commit the store is still working on is retried after the restart (the store accepts
    // the same manifest twice); do not hold the shutdown for it.
    absl::MutexLock lock(&store_call_mu_);
    stopping_ = true;
    if (store_call_ != nullptr) store_call_->TryCancel();
  }
  if (background_.joinable()) background_.join();
}

void CoordinatorService::BackgroundLoop() {
  while (true) {
    Tick();
    absl::MutexLock lock(&wake_mu_);
    wake_mu_.AwaitWithTimeout(absl::Condition(&wake_), options_.tick_interval);
    wake_ = false;
    if (stop_) return;
  }
}

// ---------------------------------------------------------------------------------------------
// gRPC edge.

grpc::Status CoordinatorService::StartCrawl(grpc::ServerContext* context,
                                            const v1::StartCrawlRequest* request,
                                            v1::StartCrawlResponse* response) {
  if (auto s = CheckAdmin(context); !s.ok()) return ToGrpcStatus(s);
  return ToGrpcReply(HandleStartCrawl(*request), response);
}

grpc::Status CoordinatorService::GetCrawl(grpc::ServerContext* context,
                                          const v1::GetCrawlRequest* request, v1::Crawl* response) {
  if (auto s = CheckAdmin(context); !s.ok()) return ToGrpcStatus(s);
  return ToGrpcReply(HandleGetCrawl(*request), response);
}

grpc::Status CoordinatorService::ListCrawls(grpc::ServerContext* context,
                                            const v1::ListCrawlsRequest* request,
                                            v1::ListCrawlsResponse* response) {
  if (auto s = CheckAdmin(context); !s.ok()) return ToGrpcStatus(s);
  return ToGrpcReply(HandleListCrawls(*request), response);
}

grpc::Status CoordinatorService::CancelCrawl(grpc::ServerContext* context,
                                             const v1::CancelCrawlRequest* request,
                                             v1::Crawl* response) {
  if (auto s = CheckAdmin(context); !s.ok()) return ToGrpcStatus(s);
  return ToGrpcReply(HandleCancelCrawl(*request), response);
}

grpc::Status CoordinatorService::AcquireLease(grpc::ServerContext* context,
                                              const v1::AcquireLeaseRequest* request,
                                              v1::AcquireLeaseResponse* response) {
  if (auto s = CheckWorker(context, "AcquireLease"); !s.ok()) return ToGrpcStatus(s);
  return ToGrpcReply(HandleAcquireLease(*request), response);
}

grpc::Status CoordinatorService::RenewLease(grpc::ServerContext* context,
                                            const v1::RenewLeaseRequest* request,
                                            v1::RenewLeaseResponse* response) {
  if (auto s = CheckWorker(context, "RenewLease"); !s.ok()) return ToGrpcStatus(s);
  return ToGrpcReply(HandleRenewLease(*request), response);
}

grpc::Status CoordinatorService::CompleteLease(grpc::ServerContext* context,
                                               const v1::CompleteLeaseRequest* request,
                                               v1::CompleteLeaseResponse* response) {
  if (auto s = CheckWorker(context, "CompleteLease"); !s.ok()) return ToGrpcStatus(s);
  return ToGrpcReply(HandleCompleteLease(*request), response);
}

grpc::Status CoordinatorService::FailLease(grpc::ServerContext* context,
                                           const v1::FailLeaseRequest* request,
                                           v1::FailLeaseResponse* response) {
  if (auto s = CheckWorker(context, "FailLease"); !s.ok()) return ToGrpcStatus(s);
  return ToGrpcStatus(HandleFailLease(*request));
}

}  // namespace hubcensus::coordinator
