#include "coordinator/coordinator.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/dates.h"
#include "common/grpc_server.h"
#include "common/listing.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/tls.h"
#include "common/worker_token.h"

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
  prometheus::Counter& peer_unavailable;
  prometheus::Counter& connection_failures;
  prometheus::Family<prometheus::Counter>& entries;
  prometheus::Counter& rejected_entries;
  prometheus::Counter& private_skipped;
  prometheus::Counter& limit_shrinks;
  prometheus::Family<prometheus::Counter>& unreadable;
  prometheus::Family<prometheus::Counter>& crawl_failures;

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
      auto& entries = prometheus::BuildCounter()
                          .Name("hubcensus_coordinator_entries_total")
                          .Help(
                              "Listing entries reported by workers that the census leaves out, "
                              "by kind (rejected: unreadable entries; private_skipped)")
                          .Register(*registry);
      auto& shrinks = prometheus::BuildCounter()
                          .Name("hubcensus_coordinator_limit_shrinks_total")
                          .Help(
                              "Listing requests retried with a smaller limit after a 504 or a "
                              "timeout, as workers reported them")
                          .Register(*registry);
      auto& unreadable = prometheus::BuildCounter()
                             .Name("hubcensus_coordinator_unreadable_total")
                             .Help("Per-repo detail answers that could not be read, by reason")
                             .Register(*registry);
      auto& failures = prometheus::BuildCounter()
                           .Name("hubcensus_coordinator_crawl_failures_total")
                           .Help("Crawls failed, by cause")
                           .Register(*registry);
      // Every series exists from the start (at 0), so that rates and alerts see it.
      for (const char* reason : {"401", "401_gated", "403", "404"}) {
        unreadable.Add({{"reason", reason}});
      }
      for (const char* cause : {"item_failures", "cursor_loop", "empty_pages", "foreign_origin",
                                "rejected_fraction", "unreachable_hub"}) {
        failures.Add({{"cause", cause}});
      }
      return new CoordinatorMetrics{leases,
                                    leases.Add({{"event", "granted"}}),
                                    leases.Add({{"event", "expired"}}),
                                    leases.Add({{"event", "completed"}}),
                                    leases.Add({{"event", "failed"}}),
                                    commits,
                                    commits.Add({{"result", "ok"}}),
                                    commits.Add({{"result", "refused"}}),
                                    budget.Add({}),
                                    open.Add({}),
                                    leases.Add({{"event", "peer_unavailable"}}),
                                    leases.Add({{"event", "connection_failure"}}),
                                    entries,
                                    entries.Add({{"kind", "rejected"}}),
                                    entries.Add({{"kind", "private_skipped"}}),
                                    shrinks.Add({}),
                                    unreadable,
                                    failures};
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

// At most `max` bytes of `text`: error messages quote input, never all of it. The middle goes
// (its start says what was done, its end what happened: "GET <url> ... answered HTTP 403"), cut
// at UTF-8 character boundaries.
std::string Truncated(absl::string_view text, size_t max = 200) {
  if (text.size() <= max) return std::string(text);
  constexpr absl::string_view kElided = " ... ";
  auto is_continuation = [&](size_t i) {
    return i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80;
  };
  const size_t room = max > kElided.size() ? max - kElided.size() : 0;
  size_t head = room * 2 / 3;
  while (head > 0 && is_continuation(head)) --head;
  size_t tail_start = text.size() - (room - room * 2 / 3);
  while (is_continuation(tail_start)) ++tail_start;
  return absl::StrCat(text.substr(0, head), kElided, text.substr(tail_start));
}

// "401: 3, 404: 1" (a map's counts, in key order).
std::string CountsByReason(const google::protobuf::Map<std::string, int64_t>& counts) {
  std::map<std::string, int64_t> sorted(counts.begin(), counts.end());
  std::string out;
  for (const auto& [reason, n] : sorted) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", reason, ": ", n);
  }
  return out.empty() ? "no reason given" : out;
}

struct UrlParts {
  std::string scheme;  // lower case
  std::string host;    // lower case, without userinfo
  std::string port;    // explicit: the scheme's default when the URL names none
  std::string rest;    // path, query and fragment
};

bool SplitUrl(absl::string_view url, UrlParts* parts) {
  auto sep = url.find("://");
  if (sep == absl::string_view::npos) return false;
  parts->scheme = absl::AsciiStrToLower(url.substr(0, sep));
  if (parts->scheme != "http" && parts->scheme != "https") return false;
  absl::string_view after = url.substr(sep + 3);
  auto end = after.find_first_of("/?#");
  absl::string_view authority = after.substr(0, end);
  parts->rest = end == absl::string_view::npos ? "" : std::string(after.substr(end));
  auto at = authority.rfind('@');
  if (at != absl::string_view::npos) authority = authority.substr(at + 1);
  // "[::1]:8080", "host:8080", "host".
  auto colon = authority.rfind(':');
  auto bracket = authority.rfind(']');
  if (colon != absl::string_view::npos && (bracket == absl::string_view::npos || colon > bracket)) {
    parts->host = absl::AsciiStrToLower(authority.substr(0, colon));
    parts->port = std::string(authority.substr(colon + 1));
  } else {
    parts->host = absl::AsciiStrToLower(authority);
    parts->port = "";
  }
  if (parts->port.empty()) parts->port = parts->scheme == "https" ? "443" : "80";
  return !parts->host.empty();
}

}  // namespace

std::string ChainUrlKey(const std::string& url) {
  const auto query = url.find('?');
  if (query == std::string::npos) return url;
  const auto fragment = url.find('#', query);
  absl::string_view params = absl::string_view(url).substr(
      query + 1, fragment == std::string::npos ? std::string::npos : fragment - query - 1);
  std::string kept;
  for (absl::string_view param : absl::StrSplit(params, '&')) {
    if (param.empty() || param == "limit" || absl::StartsWith(param, "limit=")) continue;
    absl::StrAppend(&kept, kept.empty() ? "" : "&", param);
  }
  return absl::StrCat(url.substr(0, query), kept.empty() ? "" : "?", kept);
}

std::string HostPortOf(const std::string& url) {
  UrlParts parts;
  if (!SplitUrl(url, &parts)) return "";
  return absl::StrCat(parts.host, ":", parts.port);
}

bool SameOrigin(const std::string& a, const std::string& b) {
  UrlParts x, y;
  if (!SplitUrl(a, &x) || !SplitUrl(b, &y)) return false;
  return x.scheme == y.scheme && x.host == y.host && x.port == y.port;
}

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

absl::Status CoordinatorService::CheckWorker(grpc::ServerContext* context,
                                             absl::string_view method) const {
  return CheckWorkerToken(*context, options_.worker_token,
                          absl::StrCat("/hubcensus.v1.Coordinator/", method));
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
  if (item.item().kind() == v1::LIST_PAGE) {
    crawl.chain_urls[item.item().stream()].insert(ChainUrlKey(item.item().url()));
  }
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
    const std::string chain_fault = ChainFaultLocked(crawl, item, request, updated);
    if (!chain_fault.empty()) {
      // Fetching on would loop forever or send requests elsewhere: the item fails for good, and
      // so the crawl. What the page wrote stays out of the census (the store aborts the crawl).
      RequestBudget& budget = BudgetLocked(budget_key);
      budget.ReportUsed(request.lease_id(), request.requests_used());
      auto* stats = crawl.record.mutable_crawl()->mutable_stats();
      stats->set_requests(stats->requests() + request.requests_used());
      item.set_last_error(chain_fault);
      NoteErrorLocked(crawl, chain_fault, now);
      CloseCrawlLocked(crawl, v1::CRAWL_FAILED, chain_fault, now);
      CrawlLedger::Batch batch;
      batch.PutItem(crawl_id, item);
      batch.PutCrawl(crawl.record);
      PutBudgetLocked(batch, budget_key);
      RETURN_IF_ERROR(WriteLocked(batch));
      Wake();
      return absl::OkStatus();
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
    if (state != v1::CRAWL_COMMITTING && state != v1::CRAWL_FAILED) return absl::OkStatus();
  }
  Wake();
  return absl::OkStatus();
}

std::string CoordinatorService::ChainFaultLocked(const CrawlEntry& crawl, const ItemRecord& item,
                                                 const v1::CompleteLeaseRequest& request,
                                                 ItemRecord& updated) const {
  const v1::WorkItem& work = item.item();
  if (work.kind() != v1::LIST_PAGE || request.next_url().empty()) return "";
  const std::string& next = request.next_url();
  const std::string& hub_url = crawl.record.crawl().hub_url();
  if (!SameOrigin(next, hub_url)) {
    CoordinatorMetrics::Get().crawl_failures.Add({{"cause", "foreign_origin"}}).Increment();
    return Truncated(
        absl::StrCat("item ", work.item_id(), ": the next link leads to another host (",
                     HostPortOf(next), ", not the Hub's ", HostPortOf(hub_url),
                     "); nothing was sent there"),
        300);
  }
  auto chain = crawl.chain_urls.find(work.stream());
  if (chain != crawl.chain_urls.end() && chain->second.count(ChainUrlKey(next)) > 0) {
    CoordinatorMetrics::Get().crawl_failures.Add({{"cause", "cursor_loop"}}).Increment();
    return absl::StrCat("item ", work.item_id(), ": the next link repeats a page of the ",
                        work.stream(), " chain (a cursor loop): ", Truncated(next));
  }
  const int64_t entries = request.repos() + request.rejected_entries() + request.private_skipped();
  int32_t run = 0;
  if (entries == 0) {
    run = 1;
    auto previous = crawl.items.find(PageItemId(work.stream(), work.page_index() - 1));
    if (work.page_index() > 0 && previous != crawl.items.end()) {
      run += previous->second.empty_page_run();
    }
  }
  updated.set_empty_page_run(run);
  if (run >= options_.max_empty_pages) {
    CoordinatorMetrics::Get().crawl_failures.Add({{"cause", "empty_pages"}}).Increment();
    return absl::StrCat("item ", work.item_id(), ": ", run, " pages in a row of the ",
                        work.stream(),
                        " chain had no entry but a next link (the listing does not end)");
  }
  return "";
}

void CoordinatorService::NoteErrorLocked(CrawlEntry& crawl, const std::string& reason,
                                         absl::Time now) {
  auto* stats = crawl.record.mutable_crawl()->mutable_stats();
  stats->set_last_error(Truncated(reason, 300));
  stats->set_last_error_at_unix_ms(UnixMs(now));
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
    const std::string reason = Truncated(request.reason());
    item.set_last_error(reason);
    NoteErrorLocked(crawl, absl::StrCat(item.item().item_id(), ": ", reason), now);
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
    NoteErrorLocked(crawl, reason, now);
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
    context.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(absl::ToInt64Milliseconds(options_.commit_timeout)));
    // A store that drops the connection mid-way (a restart) is waited for, not failed at once.
    context.set_wait_for_ready(true);
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
    } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      // The store is down or restarting: its outage is not the crawl's, ask again soon.
      crawl.record.set_next_commit_attempt_unix_ms(UnixMs(now + options_.store_unavailable_retry));
      c->set_failure_reason(absl::StrCat("the store is unavailable (next commit attempt in ",
                                         absl::FormatDuration(options_.store_unavailable_retry),
                                         "): UNAVAILABLE: ", Truncated(status.error_message())));
      CoordinatorMetrics::Get().commits_refused.Increment();
      HC_LOG(kWarning, "store_unavailable")
          .Field("crawl", job.crawl_id)
          .Field("error", FromGrpcStatus(status));
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
      const absl::Duration wait =
          status.error_code() == grpc::StatusCode::UNAVAILABLE
              ? options_.store_unavailable_retry
              : Backoff(crawl.record.commit_attempts(), options_.max_commit_backoff);
      crawl.record.set_next_commit_attempt_unix_ms(UnixMs(now + wait));
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
  return ToGrpcStatus(HandleCompleteLease(*request));
}

grpc::Status CoordinatorService::FailLease(grpc::ServerContext* context,
                                           const v1::FailLeaseRequest* request,
                                           v1::FailLeaseResponse* response) {
  if (auto s = CheckWorker(context, "FailLease"); !s.ok()) return ToGrpcStatus(s);
  return ToGrpcStatus(HandleFailLease(*request));
}

}  // namespace hubcensus::coordinator
