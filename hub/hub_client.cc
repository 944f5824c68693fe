#include "hub/hub_client.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/listing.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "hub/headers.h"
#include "hub/hub_metrics.h"
#include "hub/url.h"

namespace hubcensus::hub {
namespace {

bool IsRetryableStatus(int status) {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

absl::Status NonRetryableHttpError(int status, const std::string& url) {
  std::string message = absl::StrCat("GET ", RedactUrl(url), " answered HTTP ", status);
  switch (status) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 401:
      return absl::UnauthenticatedError(message);
    case 403:
      return absl::PermissionDeniedError(message);
    case 404:
    case 410:
      return absl::NotFoundError(message);
    default:
      return absl::FailedPreconditionError(message);
  }
}

std::string CauseOf(const HttpResponse& response) {
  if (response.transport_error.ok()) return absl::StrCat(response.status);
  switch (response.transport_error.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      return "timeout";
    case absl::StatusCode::kUnavailable:
      return absl::StrContains(response.transport_error.message(), "truncated") ? "truncated"
                                                                                : "reset";
    default:
      return "transport";
  }
}

std::string ExpandQuery(const std::vector<std::string>& expand) {
  std::string query;
  for (const std::string& e : expand) {
    absl::StrAppend(&query, query.empty() ? "?" : "&", "expand=", UrlEncode(e));
  }
  return query;
}

}  // namespace

HubMetrics& HubMetrics::Get() {
  static HubMetrics* metrics = [] {
    auto registry = MetricsRegistry();
    auto* m = new HubMetrics();
    m->requests = &prometheus::BuildCounter()
                       .Name("hubcensus_hub_requests_total")
                       .Help("HTTP requests sent to the Hub, by response code")
                       .Register(*registry);
    m->retries =
        &prometheus::BuildCounter()
             .Name("hubcensus_hub_retries_total")
             .Help("Hub requests retried, by cause (HTTP status, timeout, reset, bad_body)")
             .Register(*registry);
    m->responses = &prometheus::BuildCounter()
                        .Name("hubcensus_hub_responses_total")
                        .Help("HTTP answers received from the Hub, by HTTP version (1.1, 2)")
                        .Register(*registry);
    m->rate_limited = &prometheus::BuildCounter()
                           .Name("hubcensus_hub_rate_limited_total")
                           .Help("HTTP 429 answers from the Hub")
                           .Register(*registry)
                           .Add({});
    m->response_bytes = &prometheus::BuildCounter()
                             .Name("hubcensus_hub_response_bytes_total")
                             .Help("Response body bytes received from the Hub")
                             .Register(*registry)
                             .Add({});
    m->request_seconds =
        &prometheus::BuildHistogram()
             .Name("hubcensus_hub_request_duration_seconds")
             .Help("Latency of one HTTP request to the Hub")
             .Register(*registry)
             .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                              2.5, 5, 10, 30, 60});
    return m;
  }();
  return *metrics;
}

absl::StatusOr<std::string> ResolveHubEndpoint(absl::string_view hub_url_flag) {
  std::string url(absl::StripAsciiWhitespace(hub_url_flag));
  const char* source = "--hub_url";
  if (url.empty()) {
    const char* env = std::getenv("HF_ENDPOINT");
    if (env != nullptr) url = std::string(absl::StripAsciiWhitespace(env));
    source = "HF_ENDPOINT";
  }
  if (url.empty()) {
    url = kDefaultHubUrl;
    source = "the default";
  }
  while (absl::EndsWith(url, "/")) url.pop_back();
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat("Hub endpoint from ", source, " (",
                                                   RedactUrl(url), ") is not an http(s) URL"));
  }
  return url;
}

absl::StatusOr<std::string> ResolveHubToken(absl::string_view token_file_flag) {
  std::string token;
  std::string source;
  if (!token_file_flag.empty()) {
    source = absl::StrCat("--hf_token_file ", token_file_flag);
    std::ifstream in{std::string(token_file_flag)};
    if (!in) return absl::NotFoundError(absl::StrCat(source, ": cannot read the file"));
    std::stringstream content;
    content << in.rdbuf();
    token = std::string(absl::StripAsciiWhitespace(content.str()));
    if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": file is empty"));
  } else {
    const char* env = std::getenv("HF_TOKEN");
    if (env == nullptr) return std::string();
    source = "HF_TOKEN";
    token = std::string(absl::StripAsciiWhitespace(env));
  }
  for (unsigned char c : token) {
    // A header value must not carry control characters (that would inject headers).
    if (c < 0x21 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": the token holds whitespace or control characters"));
    }
  }
  return token;
}

bool IsRetryableHubError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

void FetchStats::Merge(const FetchStats& other) {
  requests += other.requests;
  retries += other.retries;
  for (const auto& [cause, n] : other.retries_by_cause) retries_by_cause[cause] += n;
  rate_limited += other.rate_limited;
  bytes += other.bytes;
  if (other.rate_limit) rate_limit = other.rate_limit;
}

HubClient::HubClient(HubClientOptions options) : options_(std::move(options)) {
  while (absl::EndsWith(options_.hub_url, "/")) options_.hub_url.pop_back();
  if (options_.transport == nullptr) options_.transport = NewCurlTransport();
  if (options_.clock == nullptr) options_.clock = Clock::Real();
  if (!options_.random) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    auto mu = std::make_shared<absl::Mutex>();
    options_.random = [engine, mu]() {
      absl::MutexLock lock(mu.get());
      return std::uniform_real_distribution<double>(0.0, 1.0)(*engine);
    };
  }
  if (options_.detail_expand.empty()) options_.detail_expand = DefaultListingExpand();
}

double HubClient::Random() { return std::clamp(options_.random(), 0.0, 1.0); }

void HubClient::ObserveRateLimit(const HttpResponse& response, RequestBudget* budget,
                                 FetchStats* stats) {
  std::optional<std::string> state_header = response.headers.Get("RateLimit");
  std::optional<std::string> policy_header = response.headers.Get("RateLimit-Policy");
  if (!state_header && !policy_header) return;
  v1::RateLimitObservation observation =
      stats->rate_limit ? *stats->rate_limit : v1::RateLimitObservation();
  bool any = false;
  if (state_header) {
    if (std::optional<RateLimitState> state = ParseRateLimit(*state_header)) {
      // Zero means "not said" (proto3), as the coordinator reads it.
      observation.set_remaining(state->remaining);
      observation.set_reset_s(std::max<int64_t>(0, state->reset_s));
      any = true;
    }
  }
  if (policy_header) {
    if (std::optional<RateLimitPolicy> policy = ParseRateLimitPolicy(*policy_header)) {
      observation.set_quota(policy->quota);
      observation.set_window_s(std::max<int64_t>(0, policy->window_s));
      any = true;
    }
  }
  if (!any) return;
  observation.set_observed_at_unix_ms(absl::ToUnixMillis(options_.clock->Now()));
  stats->rate_limit = observation;
  budget->Observe(observation);
}

absl::StatusOr<HttpResponse> HubClient::Get(
    const std::string& url, RequestBudget* budget, FetchStats* stats,
    const std::function<absl::Status(const HttpResponse&)>& accept) {
  HubMetrics& metrics = HubMetrics::Get();
  Clock* clock = options_.clock;
  const absl::Time deadline = clock->Now() + options_.retry.per_request_deadline;
  std::string last_failure;
  for (int attempt = 1;; ++attempt) {
    if (options_.cancellation != nullptr && options_.cancellation->cancelled()) {
      return absl::CancelledError(absl::StrCat("GET ", RedactUrl(url), ": cancelled"));
    }
    absl::Status budget_status = budget->Acquire(deadline);
    if (!budget_status.ok()) {
      return Annotate(budget_status, absl::StrCat("GET ", RedactUrl(url)));
    }
    HttpRequest request;
    request.url = url;
    request.headers.Add("Accept", "application/json");
    if (!options_.token.empty()) {
      request.headers.Add("Authorization", absl::StrCat("Bearer ", options_.token));
    }
    request.timeouts = options_.timeouts;
    absl::Duration left = deadline - clock->Now();
    if (left < request.timeouts.total) request.timeouts.total = std::max(left, absl::Seconds(1));
    if (options_.cancellation != nullptr) request.cancelled = options_.cancellation->flag();

    absl::Time started = clock->Now();
    HttpResponse response = options_.transport->Send(request);
    ++stats->requests;
    stats->bytes += static_cast<int64_t>(response.body.size());
    metrics.request_seconds->Observe(absl::ToDoubleSeconds(clock->Now() - started));
    metrics.response_bytes->Increment(static_cast<double>(response.body.size()));
    metrics.requests
        ->Add({{"code",
                response.transport_error.ok() ? absl::StrCat(response.status) : "transport_error"}})
        .Increment();
    if (response.transport_error.ok() && response.http_version != HttpVersion::kUnknown) {
      metrics.responses
          ->Add({{"http_version", std::string(HttpVersionName(response.http_version))}})
          .Increment();
    }
    ObserveRateLimit(response, budget, stats);

    if (!response.transport_error.ok()) {
      if (absl::IsCancelled(response.transport_error)) return response.transport_error;
      if (absl::IsInvalidArgument(response.transport_error) ||
          absl::IsFailedPrecondition(response.transport_error)) {
        return response.transport_error;  // a malformed URL or a TLS verification failure
      }
      last_failure = response.transport_error.ToString();
    } else if (response.status == 429) {
      ++stats->rate_limited;
      metrics.rate_limited->Increment();
      last_failure = "HTTP 429";
    } else if (IsRetryableStatus(response.status)) {
      last_failure = absl::StrCat("HTTP ", response.status);
    } else if (response.status >= 200 && response.status < 300) {
      absl::Status accepted = accept(response);
      if (accepted.ok()) return response;
      if (!absl::IsDataLoss(accepted)) return accepted;
      last_failure = accepted.ToString();
    } else if (IsRedirect(response.status)) {
      return response;
    } else {
      return NonRetryableHttpError(response.status, url);
    }

    std::string cause =
        response.transport_error.ok() && response.status >= 200 && response.status < 300
            ? "bad_body"
            : CauseOf(response);
    if (attempt >= options_.retry.max_attempts) {
      std::string message = absl::StrCat("GET ", RedactUrl(url), ": gave up after ", attempt,
                                         " attempts; last: ", last_failure);
      return response.status == 429 ? absl::ResourceExhaustedError(message)
                                    : absl::UnavailableError(message);
    }
    // Exponential backoff with equal jitter, never shorter than what the Hub asked for.
    absl::Duration base = options_.retry.initial_backoff * std::pow(2.0, attempt - 1);
    base = std::min(base, options_.retry.max_backoff);
    absl::Duration wait = base * (0.5 + 0.5 * Random());
    if (std::optional<std::string> retry_after = response.headers.Get("Retry-After")) {
      if (std::optional<absl::Duration> asked = ParseRetryAfter(*retry_after, clock->Now())) {
        wait = std::max(wait, *asked);
      }
    }
    if (std::optional<std::string> state_header = response.headers.Get("RateLimit")) {
      std::optional<RateLimitState> state = ParseRateLimit(*state_header);
      if (state && state->remaining == 0 && state->reset_s >= 0) {
        // The window is spent: nothing succeeds before it resets.
        wait = std::max(wait, absl::Seconds(state->reset_s) + absl::Seconds(Random()));
      }
    }
    absl::Time wake = clock->Now() + wait;
    if (wake > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "GET ", RedactUrl(url), ": the per-request deadline of ",
          absl::FormatDuration(options_.retry.per_request_deadline), " passes before the next ",
          "attempt (", attempt, " made); last: ", last_failure));
    }
    ++stats->retries;
    ++stats->retries_by_cause[cause];
    metrics.retries->Add({{"cause", cause}}).Increment();
    HC_LOG(kDebug, "hub_retry")
        .Field("url", RedactUrl(url))
        .Field("attempt", attempt)
        .Field("cause", cause)
        .Field("wait_ms", absl::ToInt64Milliseconds(wait));
    if (options_.cancellation != nullptr) {
      if (!options_.cancellation->SleepUntil(clock, wake)) {
        return absl::CancelledError(absl::StrCat("GET ", RedactUrl(url), ": cancelled"));
      }
    } else {
      clock->SleepFor(wake - clock->Now());
    }
  }
}

absl::StatusOr<HttpResponse> HubClient::GetFollowingRedirects(
    const std::string& url, RequestBudget* budget, FetchStats* stats,
    const std::function<absl::Status(const HttpResponse&)>& accept, std::string* final_url) {
  std::string current = url;
  for (int hop = 0;; ++hop) {
    ASSIGN_OR_RETURN(HttpResponse response, Get(current, budget, stats, accept));
    if (!IsRedirect(response.status)) {
      *final_url = current;
      return response;
    }
    std::optional<std::string> location = response.headers.Get("Location");
    if (!location) {
      return absl::FailedPreconditionError(absl::StrCat(
          "GET ", RedactUrl(current), " answered HTTP ", response.status, " without a Location"));
    }
    if (hop >= options_.max_redirects) {
      return absl::FailedPreconditionError(absl::StrCat("GET ", RedactUrl(url), ": more than ",
                                                        options_.max_redirects, " redirects"));
    }
    ASSIGN_OR_RETURN(std::string next, ResolveUrl(current, *location));
    // A relative Location such as /api/models/<new id> drops the query; keep asking for the
    // same properties.
    size_t query = current.find('?');
    if (next.find('?') == std::string::npos && query != std::string::npos) {
      next += current.substr(query);
    }
    current = std::move(next);
  }
}

absl::StatusOr<ListingPage> HubClient::FetchListingPage(const std::string& url,
                                                        RequestBudget* budget, FetchStats* stats) {
  ListingPage page;
  auto accept = [&](const HttpResponse& response) {
    page.entries = ParsedEntries();
    return parser_.ParseListing(response.body, &page.entries);
  };
  ASSIGN_OR_RETURN(HttpResponse response,
                   GetFollowingRedirects(url, budget, stats, accept, &page.url));
  if (std::optional<std::string> next = FindNextLink(response.headers, page.url)) {
    page.next_url = *std::move(next);
  }
  return page;
}

absl::Status HubClient::FetchRepoDetail(absl::string_view repo_id, RequestBudget* budget,
                                        FetchStats* stats, ParsedEntries* out) {
  std::string url =
      absl::StrCat(RepoDetailUrl(options_.hub_url, repo_id), ExpandQuery(options_.detail_expand));
  ParsedEntries entry;
  auto accept = [&](const HttpResponse& response) {
    entry = ParsedEntries();
    return parser_.ParseDetail(response.body, &entry);
  };
  std::string final_url;
  ASSIGN_OR_RETURN(HttpResponse response,
                   GetFollowingRedirects(url, budget, stats, accept, &final_url));
  (void)response;
  for (auto& repo : entry.repos) out->repos.push_back(std::move(repo));
  for (const auto& [reason, n] : entry.rejected_by_reason) out->rejected_by_reason[reason] += n;
  return absl::OkStatus();
}

absl::Status HubClient::ForEachListingPage(const std::string& first_url, RequestBudget* budget,
                                           FetchStats* stats,
                                           const std::function<bool(ListingPage&)>& on_page) {
  std::string url = first_url;
  while (!url.empty()) {
    ASSIGN_OR_RETURN(ListingPage page, FetchListingPage(url, budget, stats));
    if (page.next_url == url || page.next_url == page.url) {
      return absl::FailedPreconditionError(
          absl::StrCat("listing page ", RedactUrl(url), " links to itself as rel=\"next\""));
    }
    url = page.next_url;
    if (!on_page(page)) break;
  }
  return absl::OkStatus();
}

}  // namespace hubcensus::hub
