#include "coordinator/internal/lease_table.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/dates.h"
#include "common/log.h"
#include "common/status.h"
#include "coordinator/coordinator.h"
#include "coordinator/internal/coordinator_metrics.h"
#include "coordinator/internal/error_text.h"

namespace hubcensus::coordinator {
namespace {

using ItemStatus = ItemRecord::Status;

int64_t UnixMs(absl::Time t) { return absl::ToUnixMillis(t); }

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

}  // namespace

bool IsOpen(v1::CrawlState s) { return s == v1::CRAWL_RUNNING || s == v1::CRAWL_COMMITTING; }

LeaseTable::LeaseTable(const CoordinatorOptions& options, Clock* clock, CrawlLedger* ledger,
                       const ItemPlanner* planner)
    : options_(options), clock_(clock), ledger_(ledger), planner_(planner) {}

absl::Status LeaseTable::Load() {
  absl::MutexLock lock(&mu_);
  return LoadLocked();
}

std::string LeaseTable::CrawlIdForDate(const std::string& date) {
  return absl::StrCat("crawl-", date);
}

std::string LeaseTable::CrawlIdForAttempt(const std::string& date, int attempt) {
  if (attempt <= 1) return CrawlIdForDate(date);
  return absl::StrCat(CrawlIdForDate(date), ".", attempt);
}

int LeaseTable::AttemptOf(const std::string& crawl_id) {
  auto dot = crawl_id.rfind('.');
  int attempt = 1;
  if (dot == std::string::npos || !absl::SimpleAtoi(crawl_id.substr(dot + 1), &attempt)) return 1;
  return attempt;
}

std::pair<std::string, int> LeaseTable::LatestAttemptLocked(const std::string& date) const {
  // Attempts are made one after another, so their numbers have no gaps.
  int attempt = 0;
  while (crawls_.count(CrawlIdForAttempt(date, attempt + 1)) > 0) ++attempt;
  return {CrawlIdForAttempt(date, std::max(attempt, 1)), attempt};
}

absl::Status LeaseTable::LoadLocked() {
  crawls_.clear();
  leases_.clear();
  quotas_.clear();
  absl::Time now = clock_->Now();
  ASSIGN_OR_RETURN(auto budgets, ledger_->LoadBudgets());
  for (const auto& b : budgets) {
    quotas_.emplace(b.key(),
                    HubQuotaAllocator::FromRecord(b, options_.hub_quota, options_.budget_chunk));
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
      if (item.item().kind() == v1::LIST_PAGE) {
        entry.chain_urls[item.item().stream()].insert(ChainUrlKey(item.item().url()));
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

absl::Status LeaseTable::WriteLocked(CrawlLedger::Batch& batch, bool durable) {
  absl::Status s = ledger_->Write(batch, durable);
  if (!s.ok()) {
    HC_LOG(kError, "state_write_failed").Field("error", s);
    absl::Status reload = LoadLocked();
    if (!reload.ok()) HC_LOG(kError, "state_reload_failed").Field("error", reload);
  }
  return s;
}

HubQuotaAllocator& LeaseTable::QuotaLocked(const std::string& key) {
  auto it = quotas_.find(key);
  if (it == quotas_.end()) {
    it = quotas_.emplace(key, HubQuotaAllocator(options_.hub_quota, options_.budget_chunk)).first;
  }
  return it->second;
}

void LeaseTable::PutQuotaLocked(CrawlLedger::Batch& batch, const std::string& key) {
  batch.PutBudget(QuotaLocked(key).ToRecord(key));
}

absl::StatusOr<v1::StartCrawlResponse> LeaseTable::StartCrawl(const std::string& date,
                                                              const std::string& hub_url,
                                                              const v1::ListingOptions& listing,
                                                              bool retry) {
  absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  v1::StartCrawlResponse response;
  auto [latest_id, attempts] = LatestAttemptLocked(date);
  std::string crawl_id = latest_id;
  if (attempts > 0) {
    const CrawlEntry& existing = crawls_.at(latest_id);
    const v1::CrawlState state = existing.record.crawl().state();
    const bool ended_badly = state == v1::CRAWL_FAILED || state == v1::CRAWL_CANCELLED;
    if (!retry || !ended_badly) {
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
  for (ItemRecord& first : planner_->FirstPages(crawl_id, date, hub_url, listing)) {
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

absl::StatusOr<v1::Crawl> LeaseTable::GetCrawl(const std::string& id,
                                               const std::string& date) const {
  absl::ReaderMutexLock lock(&mu_);
  const std::string crawl_id = id.empty() ? LatestAttemptLocked(date).first : id;
  auto it = crawls_.find(crawl_id);
  if (it == crawls_.end()) {
    return absl::NotFoundError(absl::StrCat("crawl_id: no crawl \"", crawl_id, "\""));
  }
  return CrawlViewLocked(it->second, clock_->Now());
}

v1::ListCrawlsResponse LeaseTable::ListCrawls(int64_t limit) const {
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
    if (limit > 0 && response.crawls_size() >= limit) break;
    *response.add_crawls() = CrawlViewLocked(*entry, now);
  }
  return response;
}

absl::StatusOr<v1::Crawl> LeaseTable::CancelCrawl(const std::string& crawl_id,
                                                  const std::string& cancel_reason) {
  absl::Time now = clock_->Now();
  v1::Crawl view;
  {
    absl::MutexLock lock(&mu_);
    auto it = crawls_.find(crawl_id);
    if (it == crawls_.end()) {
      return absl::NotFoundError(absl::StrCat("crawl_id: no crawl \"", crawl_id, "\""));
    }
    CrawlEntry& crawl = it->second;
    v1::CrawlState state = crawl.record.crawl().state();
    if (state == v1::CRAWL_COMMITTED) {
      return absl::FailedPreconditionError(absl::StrCat(
          "crawl ", crawl_id, " is COMMITTED: a published census cannot be cancelled"));
    }
    if (crawl.commit_in_flight) {
      return absl::FailedPreconditionError(absl::StrCat(
          "crawl ", crawl_id, " is being committed by the store right now; ask again"));
    }
    if (IsOpen(state)) {
      std::string reason = cancel_reason.empty() ? "cancelled by an operator" : cancel_reason;
      CloseCrawlLocked(crawl, v1::CRAWL_CANCELLED, reason, now);
      CrawlLedger::Batch batch;
      batch.PutCrawl(crawl.record);
      RETURN_IF_ERROR(WriteLocked(batch));
      HC_LOG(kInfo, "crawl_cancelled").Field("crawl", crawl_id).Field("reason", reason);
    }
    view = CrawlViewLocked(crawl, now);
  }
  return view;
}

absl::StatusOr<v1::AcquireLeaseResponse> LeaseTable::Acquire(const std::string& worker_id,
                                                             const std::string& hub_token_label) {
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
        absl::StrCat(crawl.record.crawl().hub_url(), "|", hub_token_label);
    HubQuotaAllocator& budget = QuotaLocked(budget_key);
    if (budget.Left(now) <= 0) {
      // No lease without requests to spend: nothing of this Hub until the window rolls.
      retry_at = std::min(retry_at, std::max(budget.window_end(), now + absl::Milliseconds(50)));
      continue;
    }
    for (const auto& queued : crawl.pending) {
      // Copies: the queue entry is erased by GrantLocked.
      const int64_t sequence = queued.first;
      const std::string item_id = queued.second;
      const ItemRecord& item = crawl.items[item_id];
      absl::Time not_before = absl::FromUnixMillis(item.not_before_unix_ms());
      if (not_before > now) {
        retry_at = std::min(retry_at, not_before);
        continue;
      }
      CrawlLedger::Batch batch;
      *response.mutable_lease() =
          GrantLocked(crawl, sequence, item_id, worker_id, budget_key, now, batch);
      RETURN_IF_ERROR(WriteLocked(batch));
      return response;
    }
  }
  if (retry_at == absl::InfiniteFuture()) retry_at = now + options_.idle_retry_after;
  response.set_retry_after_ms(std::max<int64_t>(1, absl::ToInt64Milliseconds(retry_at - now)));
  return response;
}

v1::Lease LeaseTable::GrantLocked(CrawlEntry& crawl, int64_t sequence, const std::string& item_id,
                                  const std::string& worker_id, const std::string& budget_key,
                                  absl::Time now, CrawlLedger::Batch& batch) {
  const std::string& crawl_id = crawl.record.crawl().crawl_id();
  ItemRecord& item = crawl.items[item_id];
  const uint64_t fence = item.fence() + 1;
  const std::string lease_id = MakeLeaseId(crawl_id, item_id, fence);
  item.set_status(ItemRecord::ITEM_LEASED);
  item.set_fence(fence);
  item.set_worker_id(worker_id);
  item.set_leased_at_unix_ms(UnixMs(now));
  const int32_t grant = QuotaLocked(budget_key).TopUp(lease_id, now);
  batch.PutItem(crawl_id, item);
  PutQuotaLocked(batch, budget_key);
  crawl.pending.erase({sequence, item_id});
  ++crawl.leased;
  LiveLease& live = leases_[lease_id];
  live.crawl_id = crawl_id;
  live.item_id = item_id;
  live.worker_id = worker_id;
  live.budget_key = budget_key;
  live.fence = fence;
  live.expires_at = now + options_.lease_duration;

  v1::Lease lease;
  lease.set_lease_id(lease_id);
  lease.set_fence(fence);
  lease.set_expires_at_unix_ms(UnixMs(live.expires_at));
  lease.set_lease_duration_ms(absl::ToInt64Milliseconds(options_.lease_duration));
  *lease.mutable_item() = item.item();
  lease.set_request_budget(grant);
  CoordinatorMetrics::Get().leases_granted.Increment();
  CoordinatorMetrics::Get().budget_granted.Increment(grant);
  HC_LOG(kDebug, "lease_granted")
      .Field("crawl", crawl_id)
      .Field("item", item_id)
      .Field("fence", fence)
      .Field("worker", worker_id)
      .Field("request_budget", grant);
  return lease;
}

absl::StatusOr<LeaseTable::LiveLease*> LeaseTable::FindLeaseLocked(const std::string& lease_id,
                                                                   uint64_t fence, absl::Time now) {
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

void LeaseTable::RequeueLocked(CrawlEntry& crawl, ItemRecord& item, const std::string& lease_id,
                               bool return_budget) {
  auto it = leases_.find(lease_id);
  if (it != leases_.end()) {
    QuotaLocked(it->second.budget_key).Release(lease_id, return_budget);
    leases_.erase(it);
  }
  item.set_status(ItemRecord::ITEM_PENDING);
  item.set_worker_id("");
  crawl.pending.emplace(item.sequence(), item.item().item_id());
  --crawl.leased;
}

void LeaseTable::ExpireLeases() {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  ExpireLeasesLocked(now);
}

void LeaseTable::ExpireLeasesLocked(absl::Time now) {
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
    PutQuotaLocked(batch, lease.budget_key);
    CoordinatorMetrics::Get().lease_expiries.Increment();
    HC_LOG(kWarning, "lease_expired")
        .Field("crawl", lease.crawl_id)
        .Field("item", lease.item_id)
        .Field("fence", lease.fence)
        .Field("worker", lease.worker_id);
  }
  WriteLocked(batch).IgnoreError();
}

absl::StatusOr<v1::RenewLeaseResponse> LeaseTable::Renew(const v1::RenewLeaseRequest& request) {
  absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(LiveLease * lease, FindLeaseLocked(request.lease_id(), request.fence(), now));
  CrawlEntry& crawl = crawls_[lease->crawl_id];
  HubQuotaAllocator& budget = QuotaLocked(lease->budget_key);
  budget.ReportUsed(request.lease_id(), request.requests_used());
  if (request.has_rate_limit()) budget.Observe(request.rate_limit(), now);
  auto* stats = crawl.record.mutable_crawl()->mutable_stats();
  stats->set_requests(stats->requests() + request.requests_used());
  lease->expires_at = now + options_.lease_duration;
  int32_t grant = budget.TopUp(request.lease_id(), now);
  CrawlLedger::Batch batch;
  batch.PutCrawl(crawl.record);
  PutQuotaLocked(batch, lease->budget_key);
  RETURN_IF_ERROR(WriteLocked(batch, /*durable=*/false));
  CoordinatorMetrics::Get().budget_granted.Increment(grant);
  v1::RenewLeaseResponse response;
  response.set_expires_at_unix_ms(UnixMs(now + options_.lease_duration));
  response.set_request_budget(grant);
  return response;
}

void LeaseTable::AddItemLocked(CrawlEntry& crawl, ItemRecord item, CrawlLedger::Batch& batch) {
  item.set_sequence(crawl.record.next_item_sequence());
  crawl.record.set_next_item_sequence(crawl.record.next_item_sequence() + 1);
  item.set_status(ItemRecord::ITEM_PENDING);
  auto* stats = crawl.record.mutable_crawl()->mutable_stats();
  stats->set_items_total(stats->items_total() + 1);
  const std::string id = item.item().item_id();
  batch.PutItem(crawl.record.crawl().crawl_id(), item);
  if (item.item().kind() == v1::LIST_PAGE) {
    crawl.chain_urls[item.item().stream()].insert(ChainUrlKey(item.item().url()));
  }
  crawl.pending.emplace(item.sequence(), id);
  crawl.items[id] = std::move(item);
}

LeaseTable::Completion LeaseTable::Completed(bool crawl_left_running) {
  Completion completion;
  completion.crawl_left_running = crawl_left_running;
  return completion;
}

absl::StatusOr<LeaseTable::Completion> LeaseTable::Complete(
    const v1::CompleteLeaseRequest& request) {
  absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(LiveLease * lease, FindLeaseLocked(request.lease_id(), request.fence(), now));
  const std::string crawl_id = lease->crawl_id;
  const std::string budget_key = lease->budget_key;
  const std::string worker_id = lease->worker_id;
  CrawlEntry& crawl = crawls_[crawl_id];
  ItemRecord& item = crawl.items[lease->item_id];
  const v1::WorkItem& work = item.item();
  if (work.kind() == v1::LIST_PAGE && request.next_url() == work.url()) {
    return absl::InvalidArgumentError(
        "next_url: equals the page's own URL (the cursor did not advance)");
  }

  const v1::Crawl& c = crawl.record.crawl();
  CompletionPlan plan =
      planner_->AfterCompletion(PlannedItems{crawl.items, crawl.chain_urls}, c.hub_url(),
                                c.listing().fetch_details(), item, request);
  if (!plan.chain_fault.empty()) {
    // Fetching on would loop forever or send requests elsewhere: the item fails for good, and
    // so the crawl. What the page wrote stays out of the census (the store aborts the crawl).
    CoordinatorMetrics::Get().crawl_failures.Add({{"cause", plan.fault_cause}}).Increment();
    HubQuotaAllocator& budget = QuotaLocked(budget_key);
    budget.ReportUsed(request.lease_id(), request.requests_used());
    auto* stats = crawl.record.mutable_crawl()->mutable_stats();
    stats->set_requests(stats->requests() + request.requests_used());
    item.set_last_error(plan.chain_fault);
    NoteError(crawl, plan.chain_fault, now);
    CloseCrawlLocked(crawl, v1::CRAWL_FAILED, plan.chain_fault, now);
    CrawlLedger::Batch batch;
    batch.PutItem(crawl_id, item);
    batch.PutCrawl(crawl.record);
    PutQuotaLocked(batch, budget_key);
    RETURN_IF_ERROR(WriteLocked(batch));
    return Completed(true);
  }
  ItemRecord updated = item;
  if (work.kind() == v1::LIST_PAGE && !request.next_url().empty()) {
    updated.set_empty_page_run(plan.empty_page_run);
  }
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
  stats->set_private_skipped(stats->private_skipped() + request.private_skipped());
  stats->set_limit_shrinks(stats->limit_shrinks() + request.limit_shrinks());
  for (const auto& [reason, count] : request.unreadable_by_reason()) {
    (*stats->mutable_unreadable_by_reason())[reason] += count;
    stats->set_unreadable(stats->unreadable() + count);
  }
  // A success: the Hub is reachable.
  record.set_hub_unreachable_since_unix_ms(0);

  HubQuotaAllocator& budget = QuotaLocked(budget_key);
  budget.ReportUsed(request.lease_id(), request.requests_used());
  if (request.has_rate_limit()) budget.Observe(request.rate_limit(), now);
  budget.Release(request.lease_id(), /*return_unused=*/true);
  leases_.erase(request.lease_id());

  std::swap(crawl.record, record);
  item = std::move(updated);
  --crawl.leased;
  // What the planner queued (the next page of the chain, detail shards) lands in the same atomic
  // write that records this completion.
  CrawlLedger::Batch batch;
  std::string next_page_id;
  for (auto& n : plan.new_items) {
    if (n.item().kind() == v1::LIST_PAGE) next_page_id = n.item().item_id();
    AddItemLocked(crawl, std::move(n), batch);
  }
  batch.PutItem(crawl_id, item);
  MaybeFinishLocked(crawl, now);
  // Following the chain: the next page goes to the worker that already holds its URL (and has
  // fetched the page ahead while storing this one), in this same write. Fenced as any lease: a
  // fresh fence for the item, renewed, expired and requeued like one from AcquireLease.
  Completion completion;
  if (request.follow_chain() && !next_page_id.empty() &&
      crawl.record.crawl().state() == v1::CRAWL_RUNNING && QuotaLocked(budget_key).Left(now) > 0) {
    const ItemRecord& next = crawl.items[next_page_id];
    completion.next_lease =
        GrantLocked(crawl, next.sequence(), next_page_id, worker_id, budget_key, now, batch);
  }
  batch.PutCrawl(crawl.record);
  PutQuotaLocked(batch, budget_key);
  RETURN_IF_ERROR(WriteLocked(batch));
  CoordinatorMetrics& metrics = CoordinatorMetrics::Get();
  metrics.items_completed.Increment();
  metrics.rejected_entries.Increment(static_cast<double>(request.rejected_entries()));
  metrics.private_skipped.Increment(static_cast<double>(request.private_skipped()));
  metrics.limit_shrinks.Increment(request.limit_shrinks());
  for (const auto& [reason, count] : request.unreadable_by_reason()) {
    metrics.unreadable.Add({{"reason", Truncated(reason, 32)}})
        .Increment(static_cast<double>(count));
  }
  HC_LOG(kDebug, "lease_completed")
      .Field("crawl", crawl_id)
      .Field("item", item.item().item_id())
      .Field("fence", request.fence())
      .Field("repos", request.repos())
      .Field("next_page", !request.next_url().empty());
  const v1::CrawlState state = crawl.record.crawl().state();
  completion.crawl_left_running = state == v1::CRAWL_COMMITTING || state == v1::CRAWL_FAILED;
  return completion;
}

void LeaseTable::NoteError(CrawlEntry& crawl, const std::string& reason, absl::Time now) {
  auto* stats = crawl.record.mutable_crawl()->mutable_stats();
  stats->set_last_error(Truncated(reason, 300));
  stats->set_last_error_at_unix_ms(UnixMs(now));
}

absl::StatusOr<bool> LeaseTable::Fail(const v1::FailLeaseRequest& request) {
  absl::Time now = clock_->Now();
  bool closed = false;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(LiveLease * lease, FindLeaseLocked(request.lease_id(), request.fence(), now));
    const std::string crawl_id = lease->crawl_id;
    const std::string budget_key = lease->budget_key;
    CrawlEntry& crawl = crawls_[crawl_id];
    ItemRecord& item = crawl.items[lease->item_id];
    QuotaLocked(budget_key).ReportUsed(request.lease_id(), request.requests_used());
    auto* stats = crawl.record.mutable_crawl()->mutable_stats();
    stats->set_requests(stats->requests() + request.requests_used());
    RequeueLocked(crawl, item, request.lease_id(), /*return_budget=*/true);
    const std::string reason = Truncated(request.reason());
    item.set_last_error(reason);
    NoteError(crawl, absl::StrCat(item.item().item_id(), ": ", reason), now);
    CoordinatorMetrics& metrics = CoordinatorMetrics::Get();
    if (request.peer_unavailable()) {
      // The worker could not reach the store: not the item's fault. It goes back to the queue,
      // to be tried again once the peer is back, and counts towards nothing.
      item.set_not_before_unix_ms(UnixMs(now + options_.store_unavailable_retry));
      metrics.peer_unavailable.Increment();
      HC_LOG(kWarning, "lease_failed_peer_unavailable")
          .Field("crawl", crawl_id)
          .Field("item", item.item().item_id())
          .Field("fence", request.fence())
          .Field("reason", reason);
    } else {
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
      metrics.item_failures.Increment();
      HC_LOG(kWarning, "lease_failed")
          .Field("crawl", crawl_id)
          .Field("item", item.item().item_id())
          .Field("fence", request.fence())
          .Field("retryable", request.retryable())
          .Field("connection_failure", request.connection_failure())
          .Field("failures", attempt)
          .Field("reason", reason);
      std::string fail_reason, cause = "item_failures";
      if (request.connection_failure()) {
        metrics.connection_failures.Increment();
        const int64_t since_ms = crawl.record.hub_unreachable_since_unix_ms();
        if (since_ms == 0) {
          crawl.record.set_hub_unreachable_since_unix_ms(UnixMs(now));
        } else if (now - absl::FromUnixMillis(since_ms) >= options_.unreachable_hub_timeout) {
          // One short line: what an operator (or `local`) shows as the reason.
          const std::string head = absl::StrCat(
              "Hub ", HostPortOf(crawl.record.crawl().hub_url()), " unreachable for ",
              absl::FormatDuration(
                  absl::Seconds(absl::ToInt64Seconds(now - absl::FromUnixMillis(since_ms)))),
              ": ");
          fail_reason = Truncated(absl::StrCat(head, request.reason()), 200);
          cause = "unreachable_hub";
        }
      }
      if (fail_reason.empty() && !request.retryable() &&
          item.non_retryable_failures() >= options_.max_item_failures) {
        fail_reason =
            absl::StrCat("item ", item.item().item_id(), " failed ", item.non_retryable_failures(),
                         " times (non-retryable): ", reason);
      } else if (fail_reason.empty() && request.retryable() &&
                 item.retryable_failures() >=
                     kRetryableFailuresPerFailure * options_.max_item_failures) {
        // A page that never succeeds would otherwise keep the crawl open forever.
        fail_reason = absl::StrCat("item ", item.item().item_id(), " failed ",
                                   item.retryable_failures(), " times (retryable): ", reason);
      }
      if (!fail_reason.empty()) {
        metrics.crawl_failures.Add({{"cause", cause}}).Increment();
        CloseCrawlLocked(crawl, v1::CRAWL_FAILED, fail_reason, now);
        closed = true;
      }
    }
    CrawlLedger::Batch batch;
    batch.PutItem(crawl_id, item);
    batch.PutCrawl(crawl.record);
    PutQuotaLocked(batch, budget_key);
    RETURN_IF_ERROR(WriteLocked(batch));
  }
  return closed;
}

void LeaseTable::MaybeFinishLocked(CrawlEntry& crawl, absl::Time now) {
  if (crawl.record.crawl().state() != v1::CRAWL_RUNNING) return;
  if (!crawl.pending.empty() || crawl.leased > 0) return;
  const v1::CrawlStats& stats = crawl.record.crawl().stats();
  const int64_t entries = stats.repos() + stats.rejected_entries();
  if (entries > 0 && static_cast<double>(stats.rejected_entries()) >
                         options_.max_rejected_fraction * static_cast<double>(entries)) {
    // A Hub answering garbage must not publish a census of what little could be read.
    const std::string reason = absl::StrFormat(
        "%d of %d entries rejected (%.1f%%, more than --max_rejected_fraction=%g): %s",
        stats.rejected_entries(), entries,
        100.0 * static_cast<double>(stats.rejected_entries()) / static_cast<double>(entries),
        options_.max_rejected_fraction, CountsByReason(stats.rejected_by_reason()));
    NoteError(crawl, reason, now);
    CoordinatorMetrics::Get().crawl_failures.Add({{"cause", "rejected_fraction"}}).Increment();
    CloseCrawlLocked(crawl, v1::CRAWL_FAILED, reason, now);
    return;
  }
  crawl.record.mutable_crawl()->set_state(v1::CRAWL_COMMITTING);
  crawl.record.set_next_commit_attempt_unix_ms(UnixMs(now));
  HC_LOG(kInfo, "crawl_items_done")
      .Field("crawl", crawl.record.crawl().crawl_id())
      .Field("items", crawl.record.crawl().stats().items_done())
      .Field("repos", crawl.record.crawl().stats().repos());
}

void LeaseTable::CloseCrawlLocked(CrawlEntry& crawl, v1::CrawlState state,
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
    QuotaLocked(leases_[id].budget_key).Release(id, /*return_unused=*/false);
    leases_.erase(id);
  }
  crawl.pending.clear();
  crawl.leased = 0;
  CoordinatorMetrics::Get().open_crawls.Decrement();
  if (state == v1::CRAWL_FAILED) {
    HC_LOG(kError, "crawl_failed").Field("crawl", crawl_id).Field("reason", reason);
  }
}

int64_t LeaseTable::EtaSecondsLocked(const CrawlEntry& crawl, absl::Time now) const {
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

v1::Crawl LeaseTable::CrawlViewLocked(const CrawlEntry& crawl, absl::Time now) const {
  v1::Crawl view = crawl.record.crawl();
  view.mutable_stats()->set_eta_seconds(EtaSecondsLocked(crawl, now));
  return view;
}

std::vector<StoreJob> LeaseTable::CollectStoreJobs() {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
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
      // What the census left out, kept with it (the store counts the repos itself).
      v1::CensusCounts* counts = job.commit_request.mutable_counts();
      counts->set_rejected_entries(c.stats().rejected_entries());
      *counts->mutable_rejected_by_reason() = c.stats().rejected_by_reason();
      counts->set_private_skipped(c.stats().private_skipped());
      counts->set_unreadable(c.stats().unreadable());
      *counts->mutable_unreadable_by_reason() = c.stats().unreadable_by_reason();
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

void LeaseTable::RecordStoreResult(const StoreJob& job, const absl::Status& status, int64_t repos,
                                   int64_t families) {
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
      c->mutable_stats()->set_repos(repos);
      c->mutable_stats()->set_eta_seconds(0);
      CoordinatorMetrics::Get().commits_ok.Increment();
      CoordinatorMetrics::Get().open_crawls.Decrement();
      HC_LOG(kInfo, "crawl_committed")
          .Field("crawl", job.crawl_id)
          .Field("repos", repos)
          .Field("families", families)
          .Field("items", static_cast<int64_t>(job.commit_request.manifest_size()));
    } else if (absl::IsUnavailable(status)) {
      // The store is down or restarting: its outage is not the crawl's, ask again soon.
      crawl.record.set_next_commit_attempt_unix_ms(UnixMs(now + options_.store_unavailable_retry));
      c->set_failure_reason(absl::StrCat("the store is unavailable (next commit attempt in ",
                                         absl::FormatDuration(options_.store_unavailable_retry),
                                         "): UNAVAILABLE: ", Truncated(status.message())));
      CoordinatorMetrics::Get().commits_refused.Increment();
      HC_LOG(kWarning, "store_unavailable").Field("crawl", job.crawl_id).Field("error", status);
    } else {
      crawl.record.set_commit_attempts(crawl.record.commit_attempts() + 1);
      absl::Duration wait = Backoff(crawl.record.commit_attempts(), options_.max_commit_backoff);
      crawl.record.set_next_commit_attempt_unix_ms(UnixMs(now + wait));
      c->set_failure_reason(
          absl::StrCat("the store refused the commit (attempt ", crawl.record.commit_attempts(),
                       ", next in ", absl::FormatDuration(wait),
                       "): ", absl::StatusCodeToString(status.code()), ": ", status.message()));
      CoordinatorMetrics::Get().commits_refused.Increment();
      HC_LOG(kWarning, "commit_refused")
          .Field("crawl", job.crawl_id)
          .Field("attempt", crawl.record.commit_attempts())
          .Field("error", status);
    }
  } else {
    crawl.abort_in_flight = false;
    if (status.ok() || absl::IsNotFound(status)) {
      crawl.record.set_store_abort_pending(false);
      HC_LOG(kInfo, "crawl_aborted_in_store").Field("crawl", job.crawl_id);
    } else if (absl::IsFailedPrecondition(status)) {
      // The store will not abort it (e.g. it is committed there): asking again changes nothing.
      crawl.record.set_store_abort_pending(false);
      HC_LOG(kError, "store_refused_abort").Field("crawl", job.crawl_id).Field("error", status);
    } else {
      crawl.record.set_commit_attempts(crawl.record.commit_attempts() + 1);
      const absl::Duration wait =
          absl::IsUnavailable(status)
              ? options_.store_unavailable_retry
              : Backoff(crawl.record.commit_attempts(), options_.max_commit_backoff);
      crawl.record.set_next_commit_attempt_unix_ms(UnixMs(now + wait));
      HC_LOG(kWarning, "store_abort_failed").Field("crawl", job.crawl_id).Field("error", status);
    }
  }
  if (!IsOpen(c->state()) && !crawl.record.store_abort_pending()) {
    crawl.items.clear();  // closed for good: only the record stays in memory
  }
  CrawlLedger::Batch batch;
  batch.PutCrawl(crawl.record);
  WriteLocked(batch).IgnoreError();
}

}  // namespace hubcensus::coordinator
