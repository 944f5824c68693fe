#include "coordinator/crawl_cli.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/dates.h"
#include "common/grpc_server.h"
#include "common/rpc_deadline.h"
#include "common/shutdown.h"
#include "common/status.h"
#include "coordinator/coordinator.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"

namespace hubcensus::coordinator {
namespace {

std::string FormatEta(int64_t seconds) {
  if (seconds < 0) return "?";
  if (seconds < 120) return absl::StrCat(seconds, "s");
  if (seconds < 7200) return absl::StrCat(seconds / 60, "m");
  return absl::StrFormat("%dh%02dm", seconds / 3600, (seconds % 3600) / 60);
}

std::string FormatTimeMs(int64_t ms) {
  if (ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

class CoordinatorClient {
 public:
  explicit CoordinatorClient(const CrawlCliOptions& options)
      : options_(options),
        stub_(v1::Coordinator::NewStub(MakeChannel(options.coordinator, options.credentials))) {}

  template <typename Request, typename Response, typename Method>
  grpc::Status Call(Method method, const Request& request, Response* response) {
    grpc::ClientContext context;
    SetRpcDeadline(&context, options_.rpc_timeout);
    if (!options_.admin_token.empty()) {
      context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.admin_token));
    }
    return ((*stub_).*method)(&context, request, response);
  }

  v1::Coordinator::Stub& stub() { return *stub_; }

 private:
  const CrawlCliOptions& options_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

int Report(FILE* err, const grpc::Status& status, const std::string& coordinator) {
  std::fprintf(err, "hubcensus crawl: coordinator %s: %s: %s\n", coordinator.c_str(),
               absl::StatusCodeToString(FromGrpcStatus(status).code()).c_str(),
               status.error_message().c_str());
  return 1;
}

std::map<std::string, int64_t> SortedCounts(
    const google::protobuf::Map<std::string, int64_t>& counts) {
  return std::map<std::string, int64_t>(counts.begin(), counts.end());
}

int ExitCodeFor(const v1::Crawl& crawl) { return crawl.state() == v1::CRAWL_COMMITTED ? 0 : 1; }

void PrintStatus(FILE* out, const v1::Crawl& c) {
  const auto& s = c.stats();
  std::fprintf(out, "crawl:            %s\n", c.crawl_id().c_str());
  std::fprintf(out, "date:             %s\n", c.date().c_str());
  std::fprintf(out, "state:            %s\n", CrawlStateName(c.state()));
  if (!c.failure_reason().empty()) {
    std::fprintf(out, "reason:           %s\n", c.failure_reason().c_str());
  }
  std::fprintf(out, "hub:              %s\n", c.hub_url().c_str());
  std::fprintf(out, "items:            %lld done of %lld\n", static_cast<long long>(s.items_done()),
               static_cast<long long>(s.items_total()));
  std::fprintf(out, "pages:            %lld\n", static_cast<long long>(s.pages()));
  std::fprintf(out, "repos:            %lld\n", static_cast<long long>(s.repos()));
  std::fprintf(out, "rejected entries: %lld\n", static_cast<long long>(s.rejected_entries()));
  for (const auto& [reason, n] : SortedCounts(s.rejected_by_reason())) {
    std::fprintf(out, "  %s: %lld\n", reason.c_str(), static_cast<long long>(n));
  }
  std::fprintf(out, "private skipped:  %lld\n", static_cast<long long>(s.private_skipped()));
  std::fprintf(out, "unreadable:       %lld\n", static_cast<long long>(s.unreadable()));
  for (const auto& [reason, n] : SortedCounts(s.unreadable_by_reason())) {
    std::fprintf(out, "  %s: %lld\n", reason.c_str(), static_cast<long long>(n));
  }
  std::fprintf(out, "limit shrinks:    %lld\n", static_cast<long long>(s.limit_shrinks()));
  std::fprintf(out, "retries:          %lld\n", static_cast<long long>(s.retries()));
  std::fprintf(out, "lease expiries:   %lld\n", static_cast<long long>(s.lease_expiries()));
  std::fprintf(out, "hub requests:     %lld\n", static_cast<long long>(s.requests()));
  std::fprintf(out, "started:          %s\n", FormatTimeMs(c.started_at_unix_ms()).c_str());
  std::fprintf(out, "finished:         %s\n", FormatTimeMs(c.finished_at_unix_ms()).c_str());
  std::fprintf(out, "eta:              %s\n", FormatEta(s.eta_seconds()).c_str());
  if (!s.last_error().empty()) {
    std::fprintf(out, "last error:       %s %s\n", FormatTimeMs(s.last_error_at_unix_ms()).c_str(),
                 s.last_error().c_str());
  }
}

bool StopRequested(const CrawlCliOptions& options) {
  return options.stop_requested ? options.stop_requested() : ShutdownRequested();
}

int Wait(const CrawlCliOptions& options, CoordinatorClient& client, const std::string& crawl_id,
         FILE* out, FILE* err) {
  absl::Time unreachable_since = absl::InfiniteFuture();
  std::string last_line;
  while (true) {
    v1::GetCrawlRequest request;
    request.set_crawl_id(crawl_id);
    v1::Crawl crawl;
    grpc::Status status = client.Call(&v1::Coordinator::Stub::GetCrawl, request, &crawl);
    absl::Time now = options.clock->Now();
    if (!status.ok()) {
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
          status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        return Report(err, status, options.coordinator);
      }
      if (unreachable_since == absl::InfiniteFuture()) unreachable_since = now;
      if (now - unreachable_since > options.unavailable_grace) {
        return Report(err, status, options.coordinator);
      }
    } else {
      unreachable_since = absl::InfiniteFuture();
      bool done = crawl.state() != v1::CRAWL_RUNNING && crawl.state() != v1::CRAWL_COMMITTING;
      if (options.progress_bar) {
        std::fprintf(out, "\r%s\033[K", FormatProgressBar(crawl, 30, now).c_str());
        if (done) std::fprintf(out, "\n");
      } else {
        std::string line = FormatCrawlLine(crawl);
        if (line != last_line) std::fprintf(out, "%s\n", line.c_str());
        last_line = line;
      }
      std::fflush(out);
      if (done) {
        if (!crawl.failure_reason().empty() && crawl.state() != v1::CRAWL_COMMITTED) {
          std::fprintf(err, "hubcensus crawl: %s %s: %s\n", crawl.crawl_id().c_str(),
                       CrawlStateName(crawl.state()), crawl.failure_reason().c_str());
        }
        return ExitCodeFor(crawl);
      }
    }
    if (StopRequested(options)) {
      // The crawl is the coordinator's: it goes on without this client (a CronJob's pod being
      // stopped, an operator's Ctrl-C). Say how to find it again, and exit as signalled.
      const int signal = ShutdownSignalNumber() != 0 ? ShutdownSignalNumber() : SIGTERM;
      std::fprintf(err,
                   "hubcensus crawl: stopped waiting (%s); %s goes on in the coordinator: "
                   "hubcensus crawl status --crawl_id=%s --coordinator=%s\n",
                   signal == SIGINT ? "SIGINT" : "SIGTERM", crawl_id.c_str(), crawl_id.c_str(),
                   options.coordinator.c_str());
      return 128 + signal;
    }
    if (options.clock == Clock::Real()) {
      WaitForShutdown(options.poll_interval);  // a signal ends the wait at once
    } else {
      options.clock->SleepFor(options.poll_interval);
    }
  }
}

}  // namespace

std::string FormatCrawlLine(const v1::Crawl& c) {
  const auto& s = c.stats();
  std::string line =
      absl::StrFormat("%s %s items %d/%d repos %d rejected %d retries %d eta %s", c.crawl_id(),
                      CrawlStateName(c.state()), s.items_done(), s.items_total(), s.repos(),
                      s.rejected_entries(), s.retries(), FormatEta(s.eta_seconds()));
  if (!c.failure_reason().empty()) absl::StrAppend(&line, " (", c.failure_reason(), ")");
  return line;
}

std::string FormatProgressBar(const v1::Crawl& c, int width, absl::Time now) {
  const auto& s = c.stats();
  double fraction = 0;
  if (c.state() == v1::CRAWL_COMMITTED) {
    fraction = 1;
  } else if (s.eta_seconds() >= 0 && s.items_done() > 0 && c.started_at_unix_ms() > 0) {
    // A cursor chain's length is unknown; the ETA (from the last crawl's length) is the best
    // estimate of how far along it is.
    double elapsed = absl::ToDoubleSeconds(now - absl::FromUnixMillis(c.started_at_unix_ms()));
    if (elapsed > 0) fraction = elapsed / (elapsed + static_cast<double>(s.eta_seconds()));
  } else if (s.items_total() > 0) {
    fraction = static_cast<double>(s.items_done()) / static_cast<double>(s.items_total());
  }
  fraction = std::min(1.0, std::max(0.0, fraction));
  int filled = static_cast<int>(fraction * width + 0.5);
  // Only a committed crawl has a full bar (an ETA rounds to 0 s well before the end).
  if (c.state() != v1::CRAWL_COMMITTED) filled = std::min(filled, std::max(0, width - 1));
  std::string bar(filled, '#');
  bar.append(width - filled, '.');
  return absl::StrFormat("%s [%s] %d/%d items, %d repos, %s, eta %s", c.crawl_id(), bar,
                         s.items_done(), s.items_total(), s.repos(), CrawlStateName(c.state()),
                         FormatEta(s.eta_seconds()));
}

int RunCrawlCli(const CrawlCliOptions& options, FILE* out, FILE* err) {
  CoordinatorClient client(options);
  auto resolve_date = [&]() -> absl::StatusOr<std::string> {
    return ResolveDate(options.date, options.clock->Now());
  };
  auto crawl_id_or_date = [&]() -> absl::StatusOr<std::string> {
    if (!options.crawl_id.empty()) return options.crawl_id;
    ASSIGN_OR_RETURN(std::string date, resolve_date());
    // A date may have had several attempts: the coordinator knows the latest.
    v1::GetCrawlRequest request;
    request.set_date(date);
    v1::Crawl crawl;
    if (client.Call(&v1::Coordinator::Stub::GetCrawl, request, &crawl).ok()) {
      return crawl.crawl_id();
    }
    return CoordinatorService::CrawlIdForDate(date);
  };

  if (options.action == "start") {
    auto date = resolve_date();
    if (!date.ok()) {
      std::fprintf(err, "hubcensus crawl start: --date: %s\n",
                   std::string(date.status().message()).c_str());
      return 2;
    }
    v1::StartCrawlRequest request;
    request.set_date(*date);
    request.set_hub_url(options.hub_url);
    request.mutable_listing()->set_fetch_details(options.fetch_details);
    request.set_retry(options.retry);
    for (const auto& stream : options.extra_streams) {
      request.mutable_listing()->add_extra_streams(stream);
    }
    v1::StartCrawlResponse response;
    grpc::Status status = client.Call(&v1::Coordinator::Stub::StartCrawl, request, &response);
    if (!status.ok()) return Report(err, status, options.coordinator);
    std::fprintf(out, "%s %s (%s)\n", response.crawl().crawl_id().c_str(),
                 response.already_existed() ? "already exists" : "started",
                 CrawlStateName(response.crawl().state()));
    const v1::CrawlState state = response.crawl().state();
    if (response.already_existed() && !options.retry &&
        (state == v1::CRAWL_FAILED || state == v1::CRAWL_CANCELLED)) {
      std::fprintf(err, "hubcensus crawl start: %s %s: %s; start it again with --retry\n",
                   response.crawl().crawl_id().c_str(), CrawlStateName(state),
                   response.crawl().failure_reason().c_str());
    }
    std::fflush(out);
    if (!options.wait) {
      v1::CrawlState s = response.crawl().state();
      return (s == v1::CRAWL_FAILED || s == v1::CRAWL_CANCELLED) ? 1 : 0;
    }
    return Wait(options, client, response.crawl().crawl_id(), out, err);
  }
  if (options.action == "status") {
    auto id = crawl_id_or_date();
    if (!id.ok()) {
      std::fprintf(err, "hubcensus crawl status: --date: %s\n",
                   std::string(id.status().message()).c_str());
      return 2;
    }
    if (options.wait) return Wait(options, client, *id, out, err);
    v1::GetCrawlRequest request;
    request.set_crawl_id(*id);
    v1::Crawl crawl;
    grpc::Status status = client.Call(&v1::Coordinator::Stub::GetCrawl, request, &crawl);
    if (!status.ok()) return Report(err, status, options.coordinator);
    PrintStatus(out, crawl);
    return 0;
  }
  if (options.action == "list") {
    v1::ListCrawlsRequest request;
    request.set_limit(static_cast<int32_t>(options.limit));
    v1::ListCrawlsResponse response;
    grpc::Status status = client.Call(&v1::Coordinator::Stub::ListCrawls, request, &response);
    if (!status.ok()) return Report(err, status, options.coordinator);
    std::fprintf(out, "%-18s %-11s %13s %10s %9s  %s\n", "CRAWL", "STATE", "ITEMS", "REPOS",
                 "REJECTED", "STARTED");
    for (const auto& c : response.crawls()) {
      std::string items = absl::StrCat(c.stats().items_done(), "/", c.stats().items_total());
      std::fprintf(out, "%-18s %-11s %13s %10lld %9lld  %s\n", c.crawl_id().c_str(),
                   CrawlStateName(c.state()), items.c_str(),
                   static_cast<long long>(c.stats().repos()),
                   static_cast<long long>(c.stats().rejected_entries()),
                   FormatTimeMs(c.started_at_unix_ms()).c_str());
    }
    return 0;
  }
  if (options.action == "cancel") {
    auto id = crawl_id_or_date();
    if (!id.ok()) {
      std::fprintf(err, "hubcensus crawl cancel: --date: %s\n",
                   std::string(id.status().message()).c_str());
      return 2;
    }
    v1::CancelCrawlRequest request;
    request.set_crawl_id(*id);
    request.set_reason(options.reason);
    v1::Crawl crawl;
    grpc::Status status = client.Call(&v1::Coordinator::Stub::CancelCrawl, request, &crawl);
    if (!status.ok()) return Report(err, status, options.coordinator);
    std::fprintf(out, "%s\n", FormatCrawlLine(crawl).c_str());
    return 0;
  }
  std::fprintf(err,
               "hubcensus crawl: unknown action \"%s\" (expected start, status, list or cancel)\n",
               options.action.c_str());
  return 2;
}

}  // namespace hubcensus::coordinator
