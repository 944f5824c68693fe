#include "coordinator/coordinator.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/dates.h"
#include "common/grpc_server.h"
#include "common/listing.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/tls.h"

namespace hubcensus::coordinator {
namespace {

using ItemStatus = ItemRecord::Status;

struct CoordinatorMetrics {
  prometheus::Family<prometheus::Counter>& leases;
  prometheus::Counter& leases_granted;
  prometheus::Counter& lease_expiries;
  prometheus::Counter& items_completed;
  prometheus::Counter& item_failures;
  prometheus::Family<prometheus::Counter>& commits;
  prometheus::Counter& commits_ok;
  prometheus::Counter& commits_refused;
  prometheus::Counter& budget_granted;
  prometheus::Gauge& open_crawls;

  static CoordinatorMetrics& Get() {
    static CoordinatorMetrics* m = [] {
      auto registry = MetricsRegistry();
      auto& leases = prometheus::BuildCounter()
                         .Name("hubcensus_coordinator_leases_total")
                         .Help("Lease events by kind")
                         .Register(*registry);
      auto& commits = prometheus::BuildCounter()
                          .Name("hubcensus_coordinator_commits_total")
                          .Help("Commit attempts sent to the store, by result")
                          .Register(*registry);
      auto& budget = prometheus::BuildCounter()
                         .Name("hubcensus_coordinator_budget_granted_requests_total")
                         .Help("Hub requests granted to leases")
                         .Register(*registry);
      auto& open = prometheus::BuildGauge()
                       .Name("hubcensus_coordinator_open_crawls")
                       .Help("Crawls RUNNING or COMMITTING")
                       .Register(*registry);
      return new CoordinatorMetrics{leases,
                                    leases.Add({{"event", "granted"}}),
                                    leases.Add({{"event", "expired"}}),
                                    leases.Add({{"event", "completed"}}),
                                    leases.Add({{"event", "failed"}}),
                                    commits,
                                    commits.Add({{"result", "ok"}}),
                                    commits.Add({{"result", "refused"}}),
                                    budget.Add({}),
                                    open.Add({})};
    }();
    return *m;
  }
};

int64_t UnixMs(absl::Time t) { return absl::ToUnixMillis(t); }

bool IsOpen(v1::CrawlState s) { return s == v1::CRAWL_RUNNING || s == v1::CRAWL_COMMITTING; }

bool IsHttpUrl(absl::string_view url) {
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) return false;
  for (char c : url) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return false;
  }
  return url.size() > 8;
}

// "<crawl_id>/<item_id>@<fence>": unique because fences only grow; it names the item, so a stale
// lease id can be answered precisely even after a restart.
std::string MakeLeaseId(const std::string& crawl_id, const std::string& item_id, uint64_t fence) {
  return absl::StrCat(crawl_id, "/", item_id, "@", fence);
}

bool ParseLeaseId(const std::string& lease_id, std::string* crawl_id, std::string* item_id,
                  uint64_t* fence) {
  auto at = lease_id.rfind('@');
  auto slash = lease_id.find('/');
  if (at == std::string::npos || slash == std::string::npos || slash >= at) return false;
  *crawl_id = lease_id.substr(0, slash);
  *item_id = lease_id.substr(slash + 1, at - slash - 1);
  return !crawl_id->empty() && !item_id->empty() &&
         absl::SimpleAtoi(absl::string_view(lease_id).substr(at + 1), fence);
}

// Retryable failures (the worker already retried with backoff) tolerated per non-retryable one.
constexpr int kRetryableFailuresPerFailure = 10;

absl::Duration Backoff(int attempt, absl::Duration cap) {
  absl::Duration d = absl::Seconds(1);
  for (int i = 1; i < attempt && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

absl::Status ValidateListing(const v1::ListingOptions& l) {
  static const auto* sorts =
      new std::set<std::string>{"createdAt", "lastModified", "downloads", "likes", "trendingScore"};
  if (!l.sort().empty() && sorts->count(l.sort()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listing.sort: \"", l.sort(),
        "\" is not a Hub sort key (createdAt, lastModified, downloads, likes, trendingScore)"));
  }
  if (l.page_size() < 0 || l.page_size() > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("listing.page_size: ", l.page_size(), " is outside 0..1000 (0: 1000)"));
  }
  const std::vector<std::string>& accepted = HubListingExpandValues();
  for (int i = 0; i < l.expand_size(); ++i) {
    if (std::find(accepted.begin(), accepted.end(), l.expand(i)) == accepted.end()) {
      return absl::InvalidArgumentError(absl::StrCat("listing.expand[", i, "]: \"", l.expand(i),
                                                     "\" is not accepted by the Hub's listing"));
    }
  }
  const std::string main_sort = l.sort().empty() ? "createdAt" : l.sort();
  std::set<std::string> streams = {main_sort};
  for (int i = 0; i < l.extra_streams_size(); ++i) {
    const std::string& stream = l.extra_streams(i);
    if (sorts->count(stream) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("listing.extra_streams[", i, "]: \"", stream, "\" is not a Hub sort key"));
    }
    if (!streams.insert(stream).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("listing.extra_streams[", i, "]: \"", stream, "\" is already a stream"));
    }
  }
  for (int i = 0; i < l.filter_size(); ++i) {
    if (l.filter(i).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("listing.filter[", i, "]: empty"));
    }
  }
  return absl::OkStatus();
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
  return absl::StrCat("crawl-", date);
}

std::string CoordinatorService::CrawlIdForAttempt(const std::string& date, int attempt) {
  if (attempt <= 1) return CrawlIdForDate(date);
  return absl::StrCat(CrawlIdForDate(date), ".", attempt);
}

int CoordinatorService::AttemptOf(const std::string& crawl_id) {
  auto dot = crawl_id.rfind('.');
  int attempt = 1;
  if (dot == std::string::npos || !absl::SimpleAtoi(crawl_id.substr(dot + 1), &attempt)) return 1;
  return attempt;
}

std::pair<std::string, int> CoordinatorService::LatestAttemptLocked(const std::string& date) const {
  // Attempts are made one after another, so their numbers have no gaps.
  int attempt = 0;
  while (crawls_.count(CrawlIdForAttempt(date, attempt + 1)) > 0) ++attempt;
  return {CrawlIdForAttempt(date, std::max(attempt, 1)), attempt};
}

std::string CoordinatorService::PageItemId(const std::string& stream, int32_t page_index) {
  return absl::StrFormat("%s/p%06d", stream, page_index);
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
  if (!options.hub_url.empty() && !IsHttpUrl(options.hub_url)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hub_url: \"", options.hub_url, "\" is not an http(s) URL"));
  }
  options.hub_url = std::string(absl::StripSuffix(options.hub_url, "/"));
  std::unique_ptr<CoordinatorService> service(new CoordinatorService(std::move(options)));
  if (service->options_.store != nullptr) {
    service->store_ = service->options_.store;
  } else if (!service->options_.store_target.empty()) {
    service->store_ = v1::SnapshotStore::NewStub(
        MakeChannel(service->options_.store_target, service->options_.store_credentials));
  } else {
    return absl::InvalidArgumentError(
        "store: required (the aggregator's SnapshotStore address, or an injected stub)");
  }
  ASSIGN_OR_RETURN(service->ledger_,
                   CrawlLedger::Open(service->options_.state_dir, service->options_.sync_writes));
  {
    absl::MutexLock lock(&service->mu_);
    RETURN_IF_ERROR(service->LoadLocked());
  }
  return service;
}

CoordinatorService::~CoordinatorService() { StopBackground(); }

absl::Status CoordinatorService::LoadLocked() {
  crawls_.clear();
  leases_.clear();
  budgets_.clear();
  absl::Time now = clock_->Now();
  ASSIGN_OR_RETURN(auto budgets, ledger_->LoadBudgets());
  for (const auto& b : budgets) {
    budgets_.emplace(b.key(),
                     RequestBudget::FromRecord(b, options_.hub_quota, options_.budget_chunk));
  }
  ASSIGN_OR_RETURN(auto crawls, ledger_->LoadCrawls());
  CrawlLedger::Batch batch;
  int64_t open = 0;
  for (auto& record : crawls) {
    std::string id = record.crawl().crawl_id();
    CrawlEntry& entry = crawls_[id];
    entry.record = std::move(record);
    if (!IsOpen(entry.record.crawl().state())) continue;
    ++open;
    ASSIGN_OR_RETURN(auto items, ledger_->LoadItems(id));
    int64_t expired = 0;
    for (auto& item : items) {
      if (item.status() == ItemRecord::ITEM_LEASED) {
        // Its worker may still be running, but the lease died with the old process: the next
        // lease of the item gets a higher fence, so that worker's late writes are refused.
        item.set_status(ItemRecord::ITEM_PENDING);
        item.set_worker_id("");
        item.set_lease_expiries(item.lease_expiries() + 1);
        batch.PutItem(id, item);
        ++expired;
      }
      if (item.status() == ItemRecord::ITEM_PENDING) {
        entry.pending.emplace(item.sequence(), item.item().item_id());
      }
      entry.items[item.item().item_id()] = std::move(item);
    }
    if (expired > 0) {
      auto* stats = entry.record.mutable_crawl()->mutable_stats();
      stats->set_lease_expiries(stats->lease_expiries() + expired);
      batch.PutCrawl(entry.record);
    }
    HC_LOG(kInfo, "crawl_resumed")
        .Field("crawl", id)
        .Field("state", CrawlStateName(entry.record.crawl().state()))
        .Field("items_done", entry.record.crawl().stats().items_done())
        .Field("items_total", entry.record.crawl().stats().items_total())
        .Field("leases_expired_by_restart", expired);
    MaybeFinishLocked(entry, now);
    if (entry.record.crawl().state() != v1::CRAWL_RUNNING) batch.PutCrawl(entry.record);
  }
  CoordinatorMetrics::Get().open_crawls.Set(static_cast<double>(open));
  return ledger_->Write(batch);
}

absl::Status CoordinatorService::WriteLocked(CrawlLedger::Batch& batch, bool durable) {
  absl::Status s = ledger_->Write(batch, durable);
  if (!s.ok()) {
    HC_LOG(kError, "state_write_failed").Field("error", s);
    absl::Status reload = LoadLocked();
    if (!reload.ok()) HC_LOG(kError, "state_reload_failed").Field("error", reload);
  }
  return s;
}

absl::Status CoordinatorService::CheckAdmin(grpc::ServerContext* context) const {
  absl::Status s = CheckBearerToken(*context, options_.admin_token);
  if (s.ok()) return s;
  return absl::UnauthenticatedError(
      absl::StrCat(s.message(),
                   " (operator RPCs of this coordinator need its admin token: hubcensus crawl "
                   "--admin_token_file=FILE)"));
}

RequestBudget& CoordinatorService::BudgetLocked(const std::string& key) {
  auto it = budgets_.find(key);
  if (it == budgets_.end()) {
    it = budgets_.emplace(key, RequestBudget(options_.hub_quota, options_.budget_chunk)).first;
  }
  return it->second;
}

void CoordinatorService::PutBudgetLocked(CrawlLedger::Batch& batch, const std::string& key) {
  batch.PutBudget(BudgetLocked(key).ToRecord(key));
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
  RETURN_IF_ERROR(ValidateListing(request.listing()));
  v1::ListingOptions listing = WithListingDefaults(request.listing());
  absl::Time now = clock_->Now();
  if (*ParseDate(date) > now + absl::Hours(24)) {
    // A census is a snapshot of the Hub now: a later label is a typo, not a plan.
    return absl::InvalidArgumentError(
        absl::StrCat("date: ", date, " is in the future (today is ", FormatDate(now), " UTC)"));
  }

  absl::MutexLock lock(&mu_);
  v1::StartCrawlResponse response;
  auto [latest_id, attempts] = LatestAttemptLocked(date);
  std::string crawl_id = latest_id;
  if (attempts > 0) {
    const CrawlEntry& existing = crawls_.at(latest_id);
    const v1::CrawlState state = existing.record.crawl().state();
    const bool ended_badly = state == v1::CRAWL_FAILED || state == v1::CRAWL_CANCELLED;
    if (!request.retry() || !ended_badly) {
      *response.mutable_crawl() = CrawlViewLocked(existing, now);
      response.set_already_existed(true);
      return response;
    }
    crawl_id = CrawlIdForAttempt(date, attempts + 1);
    HC_LOG(kInfo, "crawl_retried")
        .Field("crawl", crawl_id)
        .Field("previous", latest_id)
        .Field("previous_state", CrawlStateName(state));
  }
  std::vector<std::string> streams = {listing.sort()};
  streams.insert(streams.end(), listing.extra_streams().begin(), listing.extra_streams().end());
  for (const auto& stream : streams) {
    if (stream != "createdAt") {
      HC_LOG(kWarning, "mutable_sort_key")
          .Field("crawl", crawl_id)
          .Field("sort", stream)
          .Field("why",
                 "paginating by a mutable key skips and repeats repos while the Hub changes");
    }
  }
  CrawlEntry entry;
  v1::Crawl* crawl = entry.record.mutable_crawl();
  crawl->set_crawl_id(crawl_id);
  crawl->set_date(date);
  crawl->set_hub_url(hub_url);
  *crawl->mutable_listing() = listing;
  crawl->set_state(v1::CRAWL_RUNNING);
  crawl->set_started_at_unix_ms(UnixMs(now));
  crawl->mutable_stats()->set_eta_seconds(-1);

  CrawlLedger::Batch batch;
  for (const auto& stream : streams) {
    // The head of each stream's cursor chain.
    v1::ListingOptions stream_listing = listing;
    stream_listing.set_sort(stream);
    ItemRecord first;
    v1::WorkItem* item = first.mutable_item();
    item->set_item_id(PageItemId(stream, 0));
    item->set_crawl_id(crawl_id);
    item->set_crawl_date(date);
    item->set_kind(v1::LIST_PAGE);
    item->set_stream(stream);
    item->set_url(FirstListingUrl(hub_url, stream_listing));
    item->set_page_index(0);
    item->set_hub_url(hub_url);
    item->set_fetch_details(listing.fetch_details());
    AddItemLocked(entry, std::move(first), batch);
  }
  batch.PutCrawl(entry.record);
  RETURN_IF_ERROR(ledger_->Write(batch));
  auto& inserted = crawls_[crawl_id] = std::move(entry);
  HC_LOG(kInfo, "crawl_started")
      .Field("crawl", crawl_id)
      .Field("hub_url", hub_url)
      .Field("sort", listing.sort())
      .Field("fetch_details", listing.fetch_details());
  CoordinatorMetrics::Get().open_crawls.Increment();
  *response.mutable_crawl() = CrawlViewLocked(inserted, now);
  response.set_already_existed(false);
  return response;
}

absl::StatusOr<v1::Crawl> CoordinatorService::HandleGetCrawl(const v1::GetCrawlRequest& request) {
  std::string crawl_id = request.crawl_id();
  if (crawl_id.empty()) {
    if (request.date().empty()) {
      return absl::InvalidArgumentError("crawl_id: required (or date)");
    }
    ASSIGN_OR_RETURN(std::string date, ValidateCrawlDate(request.date(), "date"));
    absl::ReaderMutexLock lock(&mu_);
    crawl_id = LatestAttemptLocked(date).first;
  }
  absl::ReaderMutexLock lock(&mu_);
  auto it = crawls_.find(crawl_id);
  if (it == crawls_.end()) {
    return absl::NotFoundError(absl::StrCat("crawl_id: no crawl \"", crawl_id, "\""));
  }
  return CrawlViewLocked(it->second, clock_->Now());
}

absl::StatusOr<v1::ListCrawlsResponse> CoordinatorService::HandleListCrawls(
    const v1::ListCrawlsRequest& request) {
  RETURN_IF_ERROR(NonNegative(request.limit(), "limit"));
  absl::ReaderMutexLock lock(&mu_);
  absl::Time now = clock_->Now();
  // Newest first: by date, then by attempt (numerically: ".10" after ".9").
  std::vector<const CrawlEntry*> order;
  for (const auto& [id, entry] : crawls_) order.push_back(&entry);
  std::stable_sort(order.begin(), order.end(), [&](const CrawlEntry* a, const CrawlEntry* b) {
    const v1::Crawl& x = a->record.crawl();
    const v1::Crawl& y = b->record.crawl();
    if (x.date() != y.date()) return x.date() > y.date();
    return AttemptOf(x.crawl_id()) > AttemptOf(y.crawl_id());
  });
  v1::ListCrawlsResponse response;
  for (const CrawlEntry* entry : order) {
    if (request.limit() > 0 && response.crawls_size() >= request.limit()) break;
    *response.add_crawls() = CrawlViewLocked(*entry, now);
  }
  return response;
}

absl::StatusOr<v1::Crawl> CoordinatorService::HandleCancelCrawl(
    const v1::CancelCrawlRequest& request) {
  if (request.crawl_id().empty()) return absl::InvalidArgumentError("crawl_id: required");
  absl::Time now = clock_->Now();
  v1::Crawl view;
  {
    absl::MutexLock lock(&mu_);
    auto it = crawls_.find(request.crawl_id());
    if (it == crawls_.end()) {
      return absl::NotFoundError(absl::StrCat("crawl_id: no crawl \"", request.crawl_id(), "\""));
    }
    CrawlEntry& crawl = it->second;
    v1::CrawlState state = crawl.record.crawl().state();
    if (state == v1::CRAWL_COMMITTED) {
      return absl::FailedPreconditionError(absl::StrCat(
          "crawl ", request.crawl_id(), " is COMMITTED: a published census cannot be cancelled"));
    }
    if (crawl.commit_in_flight) {
      return absl::FailedPreconditionError(absl::StrCat(
          "crawl ", request.crawl_id(), " is being committed by the store right now; ask again"));
    }
    if (IsOpen(state)) {
      std::string reason = request.reason().empty() ? "cancelled by an operator" : request.reason();
      CloseCrawlLocked(crawl, v1::CRAWL_CANCELLED, reason, now);
      CrawlLedger::Batch batch;
      batch.PutCrawl(crawl.record);
      RETURN_IF_ERROR(WriteLocked(batch));
      HC_LOG(kInfo, "crawl_cancelled").Field("crawl", request.crawl_id()).Field("reason", reason);
    }
    view = CrawlViewLocked(crawl, now);
  }
  Wake();  // the background thread sends the store's Abort
  return view;
}

// ---------------------------------------------------------------------------------------------
// Workers.

absl::StatusOr<v1::AcquireLeaseResponse> CoordinatorService::HandleAcquireLease(
    const v1::AcquireLeaseRequest& request) {
  if (request.worker_id().empty()) return absl::InvalidArgumentError("worker_id: required");
  absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  ExpireLeasesLocked(now);
  v1::AcquireLeaseResponse response;
  // When to ask again: the earliest moment something could be leased (a page reporting its Link,
  // a backoff ending, a budget window rolling); idle_retry_after when nothing is open.
  absl::Time retry_at = absl::InfiniteFuture();
  for (auto& [crawl_id, crawl] : crawls_) {
    if (crawl.record.crawl().state() != v1::CRAWL_RUNNING) continue;
    if (crawl.leased > 0) retry_at = std::min(retry_at, now + options_.busy_retry_after);
    if (crawl.pending.empty()) continue;
    const std::string budget_key =
        absl::StrCat(crawl.record.crawl().hub_url(), "|", request.hub_token_label());
    RequestBudget& budget = BudgetLocked(budget_key);
    if (budget.Left(now) <= 0) {
      // No lease without requests to spend: nothing of this Hub until the window rolls.
      retry_at = std::min(retry_at, std::max(budget.window_end(), now + absl::Milliseconds(50)));
      continue;
    }
    for (const auto& queued : crawl.pending) {
      // Copies: the queue entry is erased below.
      const int64_t sequence = queued.first;
      const std::string item_id = queued.second;
      ItemRecord& item = crawl.items[item_id];
      absl::Time not_before = absl::FromUnixMillis(item.not_before_unix_ms());
      if (not_before > now) {
        retry_at = std::min(retry_at, not_before);
        continue;
      }
      const uint64_t fence = item.fence() + 1;
      const std::string lease_id = MakeLeaseId(crawl_id, item_id, fence);
      ItemRecord updated = item;
      updated.set_status(ItemRecord::ITEM_LEASED);
      updated.set_fence(fence);
      updated.set_worker_id(request.worker_id());
      updated.set_leased_at_unix_ms(UnixMs(now));
      int32_t grant = budget.TopUp(lease_id, now);
      CrawlLedger::Batch batch;
      batch.PutItem(crawl_id, updated);
      PutBudgetLocked(batch, budget_key);
      absl::Status written = ledger_->Write(batch);
      if (!written.ok()) {
        budget.Release(lease_id, true);
        HC_LOG(kError, "state_write_failed").Field("error", written);
        return written;
      }
      crawl.pending.erase({sequence, item_id});
      item = std::move(updated);
      ++crawl.leased;
      LiveLease& live = leases_[lease_id];
      live.crawl_id = crawl_id;
      live.item_id = item_id;
      live.worker_id = request.worker_id();
      live.budget_key = budget_key;
      live.fence = fence;
      live.expires_at = now + options_.lease_duration;

      v1::Lease* lease = response.mutable_lease();
      lease->set_lease_id(lease_id);
      lease->set_fence(fence);
      lease->set_expires_at_unix_ms(UnixMs(live.expires_at));
      lease->set_lease_duration_ms(absl::ToInt64Milliseconds(options_.lease_duration));
      *lease->mutable_item() = item.item();
      lease->set_request_budget(grant);
      CoordinatorMetrics::Get().leases_granted.Increment();
      CoordinatorMetrics::Get().budget_granted.Increment(grant);
      HC_LOG(kDebug, "lease_granted")
          .Field("crawl", crawl_id)
          .Field("item", item_id)
          .Field("fence", fence)
          .Field("worker", request.worker_id())
          .Field("request_budget", grant);
      return response;
    }
  }
  if (retry_at == absl::InfiniteFuture()) retry_at = now + options_.idle_retry_after;
  response.set_retry_after_ms(std::max<int64_t>(1, absl::ToInt64Milliseconds(retry_at - now)));
  return response;
}

absl::StatusOr<CoordinatorService::LiveLease*> CoordinatorService::FindLeaseLocked(
    const std::string& lease_id, uint64_t fence, absl::Time now) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) {
    std::string crawl_id, item_id;
    uint64_t lease_fence = 0;
    if (!ParseLeaseId(lease_id, &crawl_id, &item_id, &lease_fence)) {
      return absl::InvalidArgumentError(
          absl::StrCat("lease_id: \"", lease_id, "\" is not a lease id of this coordinator"));
    }
    auto crawl = crawls_.find(crawl_id);
    if (crawl == crawls_.end()) {
      return absl::NotFoundError(absl::StrCat("lease_id: no crawl \"", crawl_id, "\""));
    }
    std::string why = "it expired, was reassigned or its crawl closed";
    auto item = crawl->second.items.find(item_id);
    if (item != crawl->second.items.end()) {
      why = absl::StrCat(why, "; item ", item_id, " is at fence ", item->second.fence());
    } else if (!IsOpen(crawl->second.record.crawl().state())) {
      why = absl::StrCat("crawl ", crawl_id, " is ",
                         CrawlStateName(crawl->second.record.crawl().state()));
    }
    return absl::AbortedError(absl::StrCat("lease ", lease_id, " is no longer held: ", why));
  }
  LiveLease& lease = it->second;
  if (fence != lease.fence) {
    return absl::AbortedError(absl::StrCat("fence: ", fence, " is not the fence of lease ",
                                           lease_id, " (", lease.fence, ")"));
  }
  if (lease.expires_at <= now) {
    const absl::Time expired_at = lease.expires_at;
    ExpireLeasesLocked(now);  // erases `lease`
    return absl::AbortedError(absl::StrCat("lease ", lease_id, " expired at ",
                                           absl::FormatTime(expired_at, absl::UTCTimeZone()),
                                           "; its item was requeued with a higher fence"));
  }
  return &lease;
}

void CoordinatorService::RequeueLocked(CrawlEntry& crawl, ItemRecord& item,
                                       const std::string& lease_id, bool return_budget) {
  auto it = leases_.find(lease_id);
  if (it != leases_.end()) {
    BudgetLocked(it->second.budget_key).Release(lease_id, return_budget);
    leases_.erase(it);
  }
  item.set_status(ItemRecord::ITEM_PENDING);
  item.set_worker_id("");
  crawl.pending.emplace(item.sequence(), item.item().item_id());
  --crawl.leased;
}

void CoordinatorService::ExpireLeasesLocked(absl::Time now) {
  std::vector<std::string> expired;
  for (const auto& [id, lease] : leases_) {
    if (lease.expires_at <= now) expired.push_back(id);
  }
  if (expired.empty()) return;
  CrawlLedger::Batch batch;
  for (const std::string& lease_id : expired) {
    LiveLease lease = leases_[lease_id];
    CrawlEntry& crawl = crawls_[lease.crawl_id];
    ItemRecord& item = crawl.items[lease.item_id];
    RequeueLocked(crawl, item, lease_id, /*return_budget=*/false);
    item.set_lease_expiries(item.lease_expiries() + 1);
    auto* stats = crawl.record.mutable_crawl()->mutable_stats();
    stats->set_lease_expiries(stats->lease_expiries() + 1);
    batch.PutItem(lease.crawl_id, item);
    batch.PutCrawl(crawl.record);
    PutBudgetLocked(batch, lease.budget_key);
    CoordinatorMetrics::Get().lease_expiries.Increment();
    HC_LOG(kWarning, "lease_expired")
        .Field("crawl", lease.crawl_id)
        .Field("item", lease.item_id)
        .Field("fence", lease.fence)
        .Field("worker", lease.worker_id);
  }
  WriteLocked(batch).IgnoreError();
}

absl::StatusOr<v1::RenewLeaseResponse> CoordinatorService::HandleRenewLease(
    const v1::RenewLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateLeaseRef(request.lease_id(), request.fence()));
  RETURN_IF_ERROR(NonNegative(request.requests_used(), "requests_used"));
  absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(LiveLease * lease, FindLeaseLocked(request.lease_id(), request.fence(), now));
  CrawlEntry& crawl = crawls_[lease->crawl_id];
  RequestBudget& budget = BudgetLocked(lease->budget_key);
  budget.ReportUsed(request.lease_id(), request.requests_used());
  if (request.has_rate_limit()) budget.Observe(request.rate_limit(), now);
  auto* stats = crawl.record.mutable_crawl()->mutable_stats();
  stats->set_requests(stats->requests() + request.requests_used());
  lease->expires_at = now + options_.lease_duration;
  int32_t grant = budget.TopUp(request.lease_id(), now);
  CrawlLedger::Batch batch;
  batch.PutCrawl(crawl.record);
  PutBudgetLocked(batch, lease->budget_key);
  RETURN_IF_ERROR(WriteLocked(batch, /*durable=*/false));
  CoordinatorMetrics::Get().budget_granted.Increment(grant);
  v1::RenewLeaseResponse response;
  response.set_expires_at_unix_ms(UnixMs(now + options_.lease_duration));
  response.set_request_budget(grant);
  return response;
}

void CoordinatorService::AddItemLocked(CrawlEntry& crawl, ItemRecord item,
                                       CrawlLedger::Batch& batch) {
  item.set_sequence(crawl.record.next_item_sequence());
  crawl.record.set_next_item_sequence(crawl.record.next_item_sequence() + 1);
  item.set_status(ItemRecord::ITEM_PENDING);
  auto* stats = crawl.record.mutable_crawl()->mutable_stats();
  stats->set_items_total(stats->items_total() + 1);
  const std::string id = item.item().item_id();
  batch.PutItem(crawl.record.crawl().crawl_id(), item);
  crawl.pending.emplace(item.sequence(), id);
  crawl.items[id] = std::move(item);
}

absl::Status CoordinatorService::HandleCompleteLease(const v1::CompleteLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateLeaseRef(request.lease_id(), request.fence()));
  RETURN_IF_ERROR(NonNegative(request.repos(), "repos"));
  RETURN_IF_ERROR(NonNegative(request.rejected_entries(), "rejected_entries"));
  RETURN_IF_ERROR(NonNegative(request.retries(), "retries"));
  RETURN_IF_ERROR(NonNegative(request.requests_used(), "requests_used"));
  RETURN_IF_ERROR(NonNegative(request.bytes(), "bytes"));
  for (const auto& [reason, count] : request.rejected_by_reason()) {
    RETURN_IF_ERROR(NonNegative(count, absl::StrCat("rejected_by_reason[", reason, "]")));
  }
  if (!request.next_url().empty() && !IsHttpUrl(request.next_url())) {
    return absl::InvalidArgumentError(
        absl::StrCat("next_url: \"", request.next_url(), "\" is not an absolute http(s) URL"));
  }
  absl::Time now = clock_->Now();
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(LiveLease * lease, FindLeaseLocked(request.lease_id(), request.fence(), now));
    const std::string crawl_id = lease->crawl_id;
    const std::string budget_key = lease->budget_key;
    CrawlEntry& crawl = crawls_[crawl_id];
    ItemRecord& item = crawl.items[lease->item_id];
    const v1::WorkItem& work = item.item();
    if (work.kind() == v1::LIST_PAGE && request.next_url() == work.url()) {
      return absl::InvalidArgumentError(
          "next_url: equals the page's own URL (the cursor did not advance)");
    }

    ItemRecord updated = item;
    updated.set_status(ItemRecord::ITEM_DONE);
    updated.set_worker_id("");
    updated.set_done_fence(request.fence());
    updated.set_repos(request.repos());
    updated.set_id_checksum(request.id_checksum());
    updated.set_next_url(request.next_url());
    updated.set_completed_at_unix_ms(UnixMs(now));
    CrawlRecord record = crawl.record;
    auto* stats = record.mutable_crawl()->mutable_stats();
    stats->set_items_done(stats->items_done() + 1);
    if (work.kind() == v1::LIST_PAGE) stats->set_pages(stats->pages() + 1);
    stats->set_repos(stats->repos() + request.repos());
    stats->set_rejected_entries(stats->rejected_entries() + request.rejected_entries());
    for (const auto& [reason, count] : request.rejected_by_reason()) {
      (*stats->mutable_rejected_by_reason())[reason] += count;
    }
    stats->set_retries(stats->retries() + request.retries());
    stats->set_requests(stats->requests() + request.requests_used());
    stats->set_bytes(stats->bytes() + request.bytes());

    // The next page of the chain (the checkpointed cursor) and any detail shards are queued in
    // the same atomic write that records this completion.
    std::vector<ItemRecord> new_items;
    if (work.kind() == v1::LIST_PAGE && !request.next_url().empty()) {
      ItemRecord next;
      v1::WorkItem* w = next.mutable_item();
      *w = work;
      w->set_item_id(PageItemId(work.stream(), work.page_index() + 1));
      w->set_url(request.next_url());
      w->set_page_index(work.page_index() + 1);
      if (crawl.items.count(w->item_id()) == 0) new_items.push_back(std::move(next));
    }
    if (record.crawl().listing().fetch_details() && work.kind() == v1::LIST_PAGE &&
        request.changed_repo_ids_size() > 0) {
      const int shard = std::max(1, options_.detail_shard_size);
      for (int start = 0, n = 0; start < request.changed_repo_ids_size(); start += shard, ++n) {
        ItemRecord detail;
        v1::WorkItem* w = detail.mutable_item();
        w->set_item_id(absl::StrFormat("detail/%s/s%03d", work.item_id(), n));
        w->set_crawl_id(work.crawl_id());
        w->set_crawl_date(work.crawl_date());
        w->set_kind(v1::REPO_DETAIL);
        w->set_stream(work.stream());
        w->set_page_index(work.page_index());
        w->set_hub_url(work.hub_url());
        for (int i = start; i < std::min(start + shard, request.changed_repo_ids_size()); ++i) {
          w->add_repo_ids(request.changed_repo_ids(i));
        }
        if (crawl.items.count(w->item_id()) == 0) new_items.push_back(std::move(detail));
      }
    }

    RequestBudget& budget = BudgetLocked(budget_key);
    budget.ReportUsed(request.lease_id(), request.requests_used());
    if (request.has_rate_limit()) budget.Observe(request.rate_limit(), now);
    budget.Release(request.lease_id(), /*return_unused=*/true);
    leases_.erase(request.lease_id());

    std::swap(crawl.record, record);
    item = std::move(updated);
    --crawl.leased;
    CrawlLedger::Batch batch;
    for (auto& n : new_items) AddItemLocked(crawl, std::move(n), batch);
    batch.PutItem(crawl_id, item);
    MaybeFinishLocked(crawl, now);
    batch.PutCrawl(crawl.record);
    PutBudgetLocked(batch, budget_key);
    RETURN_IF_ERROR(WriteLocked(batch));
    CoordinatorMetrics::Get().items_completed.Increment();
    HC_LOG(kDebug, "lease_completed")
        .Field("crawl", crawl_id)
        .Field("item", item.item().item_id())
        .Field("fence", request.fence())
        .Field("repos", request.repos())
        .Field("next_page", !request.next_url().empty());
    if (crawl.record.crawl().state() != v1::CRAWL_COMMITTING) return absl::OkStatus();
  }
  Wake();
  return absl::OkStatus();
}

absl::Status CoordinatorService::HandleFailLease(const v1::FailLeaseRequest& request) {
  RETURN_IF_ERROR(ValidateLeaseRef(request.lease_id(), request.fence()));
  RETURN_IF_ERROR(NonNegative(request.requests_used(), "requests_used"));
  if (request.reason().empty()) return absl::InvalidArgumentError("reason: required");
  absl::Time now = clock_->Now();
  bool closed = false;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(LiveLease * lease, FindLeaseLocked(request.lease_id(), request.fence(), now));
    const std::string crawl_id = lease->crawl_id;
    const std::string budget_key = lease->budget_key;
    CrawlEntry& crawl = crawls_[crawl_id];
    ItemRecord& item = crawl.items[lease->item_id];
    BudgetLocked(budget_key).ReportUsed(request.lease_id(), request.requests_used());
    auto* stats = crawl.record.mutable_crawl()->mutable_stats();
    stats->set_requests(stats->requests() + request.requests_used());
    RequeueLocked(crawl, item, request.lease_id(), /*return_budget=*/true);
    item.set_last_error(request.reason());
    int attempt;
    if (request.retryable()) {
      item.set_retryable_failures(item.retryable_failures() + 1);
      stats->set_retries(stats->retries() + 1);
      attempt = item.retryable_failures();
    } else {
      item.set_non_retryable_failures(item.non_retryable_failures() + 1);
      attempt = item.non_retryable_failures();
    }
    item.set_not_before_unix_ms(UnixMs(now + Backoff(attempt, options_.max_retry_backoff)));
    CoordinatorMetrics::Get().item_failures.Increment();
    HC_LOG(kWarning, "lease_failed")
        .Field("crawl", crawl_id)
        .Field("item", item.item().item_id())
        .Field("fence", request.fence())
        .Field("retryable", request.retryable())
        .Field("failures", attempt)
        .Field("reason", request.reason());
    if (!request.retryable() && item.non_retryable_failures() >= options_.max_item_failures) {
      CloseCrawlLocked(
          crawl, v1::CRAWL_FAILED,
          absl::StrCat("item ", item.item().item_id(), " failed ", item.non_retryable_failures(),
                       " times (non-retryable): ", request.reason()),
          now);
      closed = true;
    } else if (request.retryable() && item.retryable_failures() >= kRetryableFailuresPerFailure *
                                                                       options_.max_item_failures) {
      // A page that never succeeds would otherwise keep the crawl open forever.
      CloseCrawlLocked(
          crawl, v1::CRAWL_FAILED,
          absl::StrCat("item ", item.item().item_id(), " failed ", item.retryable_failures(),
                       " times (retryable): ", request.reason()),
          now);
      closed = true;
    }
    CrawlLedger::Batch batch;
    batch.PutItem(crawl_id, item);
    batch.PutCrawl(crawl.record);
    PutBudgetLocked(batch, budget_key);
    RETURN_IF_ERROR(WriteLocked(batch));
  }
  if (closed) Wake();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Crawl lifecycle.

void CoordinatorService::MaybeFinishLocked(CrawlEntry& crawl, absl::Time now) {
  if (crawl.record.crawl().state() != v1::CRAWL_RUNNING) return;
  if (!crawl.pending.empty() || crawl.leased > 0) return;
  crawl.record.mutable_crawl()->set_state(v1::CRAWL_COMMITTING);
  crawl.record.set_next_commit_attempt_unix_ms(UnixMs(now));
  HC_LOG(kInfo, "crawl_items_done")
      .Field("crawl", crawl.record.crawl().crawl_id())
      .Field("items", crawl.record.crawl().stats().items_done())
      .Field("repos", crawl.record.crawl().stats().repos());
}

void CoordinatorService::CloseCrawlLocked(CrawlEntry& crawl, v1::CrawlState state,
                                          const std::string& reason, absl::Time now) {
  v1::Crawl* c = crawl.record.mutable_crawl();
  const std::string crawl_id = c->crawl_id();
  c->set_state(state);
  c->set_failure_reason(reason);
  c->set_finished_at_unix_ms(UnixMs(now));
  crawl.record.set_store_abort_pending(true);
  crawl.record.set_next_commit_attempt_unix_ms(UnixMs(now));
  std::vector<std::string> stale;
  for (const auto& [id, lease] : leases_) {
    if (lease.crawl_id == crawl_id) stale.push_back(id);
  }
  for (const auto& id : stale) {
    // Those workers learn on their next call (ABORTED); what they spent is not known yet.
    BudgetLocked(leases_[id].budget_key).Release(id, /*return_unused=*/false);
    leases_.erase(id);
  }
  crawl.pending.clear();
  crawl.leased = 0;
  CoordinatorMetrics::Get().open_crawls.Decrement();
  if (state == v1::CRAWL_FAILED) {
    HC_LOG(kError, "crawl_failed").Field("crawl", crawl_id).Field("reason", reason);
  }
}

int64_t CoordinatorService::EtaSecondsLocked(const CrawlEntry& crawl, absl::Time now) const {
  const v1::Crawl& c = crawl.record.crawl();
  if (!IsOpen(c.state())) return 0;
  if (c.state() == v1::CRAWL_COMMITTING) return 0;
  const int64_t done = c.stats().items_done();
  if (done == 0) return -1;
  // A cursor chain does not know its length: expect at least as many items as the last
  // committed crawl of the same Hub had.
  int64_t expected = c.stats().items_total();
  for (auto it = crawls_.rbegin(); it != crawls_.rend(); ++it) {
    const v1::Crawl& prev = it->second.record.crawl();
    if (prev.state() == v1::CRAWL_COMMITTED && prev.hub_url() == c.hub_url() &&
        prev.crawl_id() < c.crawl_id()) {
      expected = std::max(expected, prev.stats().items_total());
      break;
    }
  }
  const int64_t remaining = expected - done;
  if (remaining <= 0) return -1;
  const double elapsed_s =
      absl::ToDoubleSeconds(now - absl::FromUnixMillis(c.started_at_unix_ms()));
  if (elapsed_s <= 0) return -1;
  return static_cast<int64_t>(remaining * (elapsed_s / static_cast<double>(done)) + 0.5);
}

v1::Crawl CoordinatorService::CrawlViewLocked(const CrawlEntry& crawl, absl::Time now) const {
  v1::Crawl view = crawl.record.crawl();
  view.mutable_stats()->set_eta_seconds(EtaSecondsLocked(crawl, now));
  return view;
}

std::vector<CoordinatorService::StoreJob> CoordinatorService::CollectStoreJobsLocked(
    absl::Time now) {
  std::vector<StoreJob> jobs;
  for (auto& [id, crawl] : crawls_) {
    const v1::Crawl& c = crawl.record.crawl();
    bool due = absl::FromUnixMillis(crawl.record.next_commit_attempt_unix_ms()) <= now;
    if (!due) continue;
    if (c.state() == v1::CRAWL_COMMITTING && !crawl.commit_in_flight) {
      StoreJob job;
      job.crawl_id = id;
      job.commit = true;
      job.commit_request.set_crawl_id(id);
      job.commit_request.set_crawl_date(c.date());
      for (const auto& [item_id, item] : crawl.items) {
        if (item.status() != ItemRecord::ITEM_DONE) continue;
        v1::ManifestEntry* e = job.commit_request.add_manifest();
        e->set_item_id(item_id);
        e->set_fence(item.done_fence());
        e->set_repos(item.repos());
        e->set_id_checksum(item.id_checksum());
      }
      crawl.commit_in_flight = true;
      jobs.push_back(std::move(job));
    } else if (crawl.record.store_abort_pending() && !crawl.abort_in_flight) {
      StoreJob job;
      job.crawl_id = id;
      job.abort_request.set_crawl_id(id);
      job.abort_request.set_reason(c.failure_reason());
      crawl.abort_in_flight = true;
      jobs.push_back(std::move(job));
    }
  }
  return jobs;
}

void CoordinatorService::RunStoreJob(const StoreJob& job) {
  grpc::ClientContext context;
  context.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.commit_timeout)));
  {
    absl::MutexLock lock(&store_call_mu_);
    if (stopping_) context.TryCancel();
    store_call_ = &context;
  }
  grpc::Status status;
  v1::CommitResponse commit_response;
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
  absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  auto it = crawls_.find(job.crawl_id);
  if (it == crawls_.end()) return;
  CrawlEntry& crawl = it->second;
  v1::Crawl* c = crawl.record.mutable_crawl();
  if (job.commit) {
    crawl.commit_in_flight = false;
    if (c->state() != v1::CRAWL_COMMITTING) return;  // cancelled while the store worked
    if (status.ok()) {
      c->set_state(v1::CRAWL_COMMITTED);
      c->set_failure_reason("");
      c->set_finished_at_unix_ms(UnixMs(now));
      // The store de-duplicated by repo id: its count is the census size.
      c->mutable_stats()->set_repos(commit_response.repos());
      c->mutable_stats()->set_eta_seconds(0);
      CoordinatorMetrics::Get().commits_ok.Increment();
      CoordinatorMetrics::Get().open_crawls.Decrement();
      HC_LOG(kInfo, "crawl_committed")
          .Field("crawl", job.crawl_id)
          .Field("repos", commit_response.repos())
          .Field("families", commit_response.families())
          .Field("items", static_cast<int64_t>(job.commit_request.manifest_size()));
    } else {
      crawl.record.set_commit_attempts(crawl.record.commit_attempts() + 1);
      absl::Duration wait = Backoff(crawl.record.commit_attempts(), options_.max_commit_backoff);
      crawl.record.set_next_commit_attempt_unix_ms(UnixMs(now + wait));
      c->set_failure_reason(absl::StrCat(
          "the store refused the commit (attempt ", crawl.record.commit_attempts(), ", next in ",
          absl::FormatDuration(wait), "): ",
          absl::StatusCodeToString(FromGrpcStatus(status).code()), ": ", status.error_message()));
      CoordinatorMetrics::Get().commits_refused.Increment();
      HC_LOG(kWarning, "commit_refused")
          .Field("crawl", job.crawl_id)
          .Field("attempt", crawl.record.commit_attempts())
          .Field("error", FromGrpcStatus(status));
    }
  } else {
    crawl.abort_in_flight = false;
    if (status.ok() || status.error_code() == grpc::StatusCode::NOT_FOUND) {
      crawl.record.set_store_abort_pending(false);
      HC_LOG(kInfo, "crawl_aborted_in_store").Field("crawl", job.crawl_id);
    } else if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      // The store will not abort it (e.g. it is committed there): asking again changes nothing.
      crawl.record.set_store_abort_pending(false);
      HC_LOG(kError, "store_refused_abort")
          .Field("crawl", job.crawl_id)
          .Field("error", FromGrpcStatus(status));
    } else {
      crawl.record.set_commit_attempts(crawl.record.commit_attempts() + 1);
      crawl.record.set_next_commit_attempt_unix_ms(
          UnixMs(now + Backoff(crawl.record.commit_attempts(), options_.max_commit_backoff)));
      HC_LOG(kWarning, "store_abort_failed")
          .Field("crawl", job.crawl_id)
          .Field("error", FromGrpcStatus(status));
    }
  }
  if (!IsOpen(c->state()) && !crawl.record.store_abort_pending()) {
    crawl.items.clear();  // closed for good: only the record stays in memory
  }
  CrawlLedger::Batch batch;
  batch.PutCrawl(crawl.record);
  WriteLocked(batch).IgnoreError();
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
  std::vector<StoreJob> jobs;
  {
    absl::MutexLock lock(&mu_);
    ExpireLeasesLocked(now);
    jobs = CollectStoreJobsLocked(now);
  }
  for (const auto& job : jobs) RunStoreJob(job);
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
  return ToGrpcReply(HandleAcquireLease(*request), response);
}

grpc::Status CoordinatorService::RenewLease(grpc::ServerContext* context,
                                            const v1::RenewLeaseRequest* request,
                                            v1::RenewLeaseResponse* response) {
  return ToGrpcReply(HandleRenewLease(*request), response);
}

grpc::Status CoordinatorService::CompleteLease(grpc::ServerContext* context,
                                               const v1::CompleteLeaseRequest* request,
                                               v1::CompleteLeaseResponse* response) {
  return ToGrpcStatus(HandleCompleteLease(*request));
}

grpc::Status CoordinatorService::FailLease(grpc::ServerContext* context,
                                           const v1::FailLeaseRequest* request,
                                           v1::FailLeaseResponse* response) {
  return ToGrpcStatus(HandleFailLease(*request));
}

}  // namespace hubcensus::coordinator
