#include "hub/hub_client.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "hub/headers.h"
#include "hub/hub_metrics.h"
#include "hub/listing_query.h"
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

constexpr char kConnectionFailurePayload[] = "type.hubcensus.dev/hub.ConnectionFailure";

absl::Status ConnectionFailureError(absl::StatusCode code, std::string message,
                                    absl::string_view host) {
  absl::Status status(code, message);
  status.SetPayload(kConnectionFailurePayload, absl::Cord(host));
  return status;
}

// Whether a 2xx body cannot be JSON at all (an HTML page from a proxy or an error handler), as
// opposed to JSON that is cut or garbled.
bool LooksLikeNotJson(const HttpResponse& response) {
  std::optional<std::string> type = response.headers.Get("Content-Type");
  if (type && !absl::StrContains(absl::AsciiStrToLower(*type), "json")) return true;
  absl::string_view body = absl::StripLeadingAsciiWhitespace(response.body);
  return body.empty() || (body.front() != '[' && body.front() != '{');
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
    // Every series exported from the start (at 0), with the label values the client knows.
    for (const char* cause : {"408", "429", "500", "502", "503", "504", "timeout", "reset",
                              "truncated", "transport", "bad_body"}) {
      m->retries->Add({{"cause", cause}});
    }
    for (const char* code : {"200", "429", "transport_error"}) m->requests->Add({{"code", code}});
    for (const char* version : {"1.1", "2"}) m->responses->Add({{"http_version", version}});
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
    m->limit_shrinks = &prometheus::BuildCounter()
                            .Name("hubcensus_hub_limit_shrinks_total")
                            .Help(
                                "Listing requests re-sent with a smaller limit after a 504 or a "
                                "timeout")
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

bool IsConnectionFailure(const absl::Status& status) {
  return !status.ok() && status.GetPayload(kConnectionFailurePayload).has_value();
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
  options_.min_page_limit = std::max(1, options_.min_page_limit);
  options_.grow_after_pages = std::max(1, options_.grow_after_pages);
  if (absl::StatusOr<std::string> origin = OriginOf(options_.hub_url); origin.ok()) {
    hub_origin_ = *std::move(origin);
  }
}

absl::Status HubClient::CheckHubOrigin(const std::string& url, absl::string_view what) const {
  absl::StatusOr<std::string> origin = OriginOf(url);
  if (origin.ok() && !hub_origin_.empty() && *origin == hub_origin_) return absl::OkStatus();
  // The token goes to the Hub's origin only (scheme, host and port): nothing is sent elsewhere.
  return absl::FailedPreconditionError(absl::StrCat(
      what, " points to ", HostForMessage(url).empty() ? "an unparsable URL" : HostForMessage(url),
      ", not the Hub (", HostForMessage(options_.hub_url),
      "); nothing was sent there (the Hub token goes only to the Hub's origin)"));
}

HubClient::~HubClient() = default;

double HubClient::Random() { return std::clamp(options_.random(), 0.0, 1.0); }

std::unique_ptr<EntryParser> HubClient::TakeParser() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_parsers_.empty()) {
      std::unique_ptr<EntryParser> parser = std::move(idle_parsers_.back());
      idle_parsers_.pop_back();
      return parser;
    }
  }
  return std::make_unique<EntryParser>();
}

void HubClient::ReturnParser(std::unique_ptr<EntryParser> parser) {
  absl::MutexLock lock(&mu_);
  idle_parsers_.push_back(std::move(parser));
}

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
    const std::string& first_url, RequestBudget* budget, FetchStats* stats,
    const std::function<absl::Status(const HttpResponse&)>& accept, const BeforeRetry& before_retry,
    std::string* sent_url, bool return_client_errors, const OnHead& on_head) {
  HubMetrics& metrics = HubMetrics::Get();
  Clock* clock = options_.clock;
  const absl::Time first_attempt = clock->Now();
  const absl::Time deadline = first_attempt + options_.retry.per_request_deadline;
  std::string url = first_url;
  RETURN_IF_ERROR(CheckHubOrigin(url, absl::StrCat("GET ", RedactUrl(url))));
  std::string last_failure;
  bool only_connection_failures = true;
  int not_json_attempts = 0;
  for (int attempt = 1;; ++attempt) {
    if (sent_url != nullptr) *sent_url = url;
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
    if (on_head) {
      request.on_head = [&on_head, &url](int status, const HttpHeaders& headers) {
        on_head(url, status, headers);
      };
    }

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
    if (response.transport_error.ok() || !response.connection_failure) {
      only_connection_failures = false;
    }

    if (!response.transport_error.ok()) {
      if (absl::IsCancelled(response.transport_error)) return response.transport_error;
      if (absl::IsInvalidArgument(response.transport_error) ||
          absl::IsFailedPrecondition(response.transport_error)) {
        // A malformed URL or a TLS verification failure: retrying cannot help.
        if (response.connection_failure) {
          return ConnectionFailureError(response.transport_error.code(),
                                        std::string(response.transport_error.message()),
                                        HostForMessage(url));
        }
        return response.transport_error;
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
      if (LooksLikeNotJson(response) &&
          ++not_json_attempts >= options_.retry.max_not_json_attempts) {
        std::optional<std::string> type = response.headers.Get("Content-Type");
        return absl::FailedPreconditionError(
            absl::StrCat("GET ", RedactUrl(url), ": the Hub answered HTTP ", response.status, " ",
                         not_json_attempts, " times with a body that is not JSON (Content-Type: ",
                         type ? QuoteInput(*type) : std::string("none"), ", ", response.body.size(),
                         " bytes): ", QuoteInput(response.body)));
      }
    } else if (IsRedirect(response.status)) {
      return response;
    } else if (return_client_errors &&
               (response.status == 401 || response.status == 403 || response.status == 404)) {
      return response;
    } else {
      return NonRetryableHttpError(response.status, url);
    }

    std::string cause =
        response.transport_error.ok() && response.status >= 200 && response.status < 300
            ? "bad_body"
            : CauseOf(response);
    auto connection_failure = [&]() {
      // One short line: where, and why (the transport's message is kept out: it repeats the URL).
      return ConnectionFailureError(
          absl::StatusCode::kUnavailable,
          absl::StrCat("cannot reach ", HostForMessage(url), ": ",
                       response.connection_failure_cause, " (", attempt, " attempts in ",
                       absl::FormatDuration(
                           absl::Trunc(clock->Now() - first_attempt, absl::Milliseconds(100))),
                       ")"),
          HostForMessage(url));
    };
    if (attempt >= options_.retry.max_attempts) {
      if (only_connection_failures) return connection_failure();
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
    if (only_connection_failures &&
        wake - first_attempt > options_.retry.connection_failure_deadline) {
      return connection_failure();
    }
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
    if (before_retry) before_retry(cause, &url);
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
    const std::function<absl::Status(const HttpResponse&)>& accept, const BeforeRetry& before_retry,
    int max_redirects, std::string* final_url, const OnHead& on_head) {
  std::string current = url;
  for (int hop = 0;; ++hop) {
    std::string sent;
    ASSIGN_OR_RETURN(HttpResponse response, Get(current, budget, stats, accept, before_retry, &sent,
                                                /*return_client_errors=*/false, on_head));
    current = std::move(sent);
    if (!IsRedirect(response.status)) {
      *final_url = current;
      return response;
    }
    std::optional<std::string> location = response.headers.Get("Location");
    if (!location) {
      return absl::FailedPreconditionError(absl::StrCat(
          "GET ", RedactUrl(current), " answered HTTP ", response.status, " without a Location"));
    }
    if (hop >= max_redirects) {
      return absl::FailedPreconditionError(
          absl::StrCat("GET ", RedactUrl(url), ": more than ", max_redirects, " redirects"));
    }
    ASSIGN_OR_RETURN(std::string next, ResolveUrl(current, *location));
    // A relative Location such as /api/models/<new id> drops the query; keep asking for the
    // same properties.
    size_t query = current.find('?');
    if (next.find('?') == std::string::npos && query != std::string::npos) {
      next += current.substr(query);
    }
    RETURN_IF_ERROR(CheckHubOrigin(
        next, absl::StrCat("the HTTP ", response.status, " redirect of GET ", RedactUrl(current))));
    current = std::move(next);
  }
}

absl::StatusOr<ListingPage> HubClient::FetchListingPage(const std::string& url,
                                                        RequestBudget* budget, FetchStats* stats,
                                                        const NextUrlCallback& on_next_url) {
  // The page's own limit is the most asked (the configured page size); a 504 or a timeout,
  // which the Hub answers to heavy pages, halves it for the same cursor.
  int64_t asked_limit = 0;
  if (std::optional<std::string> text = QueryParameter(url, "limit")) {
    if (!absl::SimpleAtoi(*text, &asked_limit) || asked_limit <= 0) asked_limit = 0;
  }
  int64_t limit = asked_limit;
  {
    absl::MutexLock lock(&mu_);
    if (asked_limit > 0 && shrunk_limit_ > 0 && shrunk_limit_ < asked_limit) limit = shrunk_limit_;
  }
  std::string first =
      limit == asked_limit ? url : WithQueryParameter(url, "limit", absl::StrCat(limit));
  BeforeRetry shrink = [&](absl::string_view cause, std::string* next_url) {
    if (asked_limit <= 0 || (cause != "504" && cause != "timeout")) return;
    int64_t smaller = std::max<int64_t>(options_.min_page_limit, limit / 2);
    if (smaller >= limit) return;
    limit = smaller;
    // Only `limit` changes: the cursor stays the Hub's, byte for byte.
    *next_url = WithQueryParameter(*next_url, "limit", absl::StrCat(limit));
    ++stats->limit_shrinks;
    HubMetrics::Get().limit_shrinks->Increment();
    HC_LOG(kInfo, "hub_page_limit_shrunk")
        .Field("url", RedactUrl(url))
        .Field("cause", cause)
        .Field("limit", limit);
  };

  // The next URL as the chain reports it: the Hub's Link, with the page's own `limit` (see
  // below).
  auto chain_url = [&](std::string next) {
    if (limit != asked_limit && QueryParameter(next, "limit")) {
      next = WithQueryParameter(next, "limit", absl::StrCat(asked_limit));
    }
    return next;
  };
  // Hand-off on the head: the next page's URL is known before this page's body is read.
  bool handed_on = false;
  OnHead hand_on;
  if (on_next_url) {
    hand_on = [&](const std::string& sent, int status, const HttpHeaders& headers) {
      if (handed_on || status < 200 || status >= 300) return;
      std::optional<std::string> next = FindNextLink(headers, sent);
      // Only a link the page itself would return: on the Hub's origin (nothing is sent
      // elsewhere) and not the page again. Anything else is reported by the page's result.
      if (!next || !CheckHubOrigin(*next, "").ok() || *next == sent || *next == url) return;
      handed_on = true;
      if (asked_limit > 0 && limit < asked_limit) {
        // The next page is asked for now, so at the size this one was answered at (its success
        // is counted towards growing back when the page is complete).
        absl::MutexLock lock(&mu_);
        if (limit != shrunk_limit_) {
          shrunk_limit_ = limit;
          pages_at_shrunk_limit_ = 0;
        }
      }
      on_next_url(chain_url(*std::move(next)));
    };
  }

  ListingPage page;
  std::unique_ptr<EntryParser> parser = TakeParser();
  auto accept = [&](const HttpResponse& response) {
    page.entries = ParsedEntries();
    return parser->ParseListing(response.body, &page.entries);
  };
  absl::StatusOr<HttpResponse> answered = GetFollowingRedirects(
      first, budget, stats, accept, shrink, options_.max_redirects, &page.url, hand_on);
  ReturnParser(std::move(parser));
  if (!answered.ok()) return answered.status();
  HttpResponse& response = *answered;
  if (asked_limit > 0) {
    absl::MutexLock lock(&mu_);
    if (limit < asked_limit) {
      if (limit != shrunk_limit_) {
        shrunk_limit_ = limit;
        pages_at_shrunk_limit_ = 0;
      }
      // Grow back after a run of successes at this size.
      if (++pages_at_shrunk_limit_ >= options_.grow_after_pages) {
        shrunk_limit_ = std::min(asked_limit, shrunk_limit_ * 2);
        pages_at_shrunk_limit_ = 0;
        if (shrunk_limit_ >= asked_limit) shrunk_limit_ = 0;
      }
    }
  }
  if (std::optional<std::string> next = FindNextLink(response.headers, page.url)) {
    RETURN_IF_ERROR(CheckHubOrigin(
        *next, absl::StrCat("the rel=\"next\" link of listing page ", RedactUrl(page.url))));
    // The Hub's Link echoes the smaller limit sent; the chain keeps the page's own, so the next
    // URL reported may differ from the Link in `limit` only (the coordinator compares chain URLs
    // with `limit` removed). The next fetch starts from the shrunk size anyway (shrunk_limit_).
    page.next_url = chain_url(*std::move(next));
  }
  return page;
}

absl::Status HubClient::FetchRepoDetail(absl::string_view repo_id, RequestBudget* budget,
                                        FetchStats* stats, ParsedEntries* out,
                                        std::string* unreadable) {
  std::string url =
      absl::StrCat(RepoDetailUrl(options_.hub_url, repo_id), ExpandQuery(options_.detail_expand));
  ParsedEntries entry;
  std::unique_ptr<EntryParser> parser = TakeParser();
  auto accept = [&](const HttpResponse& response) {
    entry = ParsedEntries();
    return parser->ParseDetail(response.body, &entry);
  };
  // Back to the idle ones however this ends.
  struct ParserReturn {
    HubClient* client;
    std::unique_ptr<EntryParser>* parser;
    ~ParserReturn() { client->ReturnParser(std::move(*parser)); }
  } parser_return{this, &parser};
  // A renamed repo answers one redirect to its new id; a redirect from there is not a rename.
  std::string current = url;
  HttpResponse response;
  for (int hop = 0;; ++hop) {
    std::string sent;
    ASSIGN_OR_RETURN(response, Get(current, budget, stats, accept, nullptr, &sent,
                                   /*return_client_errors=*/true));
    if (response.status >= 200 && response.status < 300) break;
    if (!IsRedirect(response.status)) {
      // 401 (missing, private, or gated with X-Error-Code: GatedRepo), 403 (disabled), 404.
      if (unreadable == nullptr) return NonRetryableHttpError(response.status, sent);
      std::optional<std::string> code = response.headers.Get("X-Error-Code");
      *unreadable = response.status == 401
                        ? (code && *code == "GatedRepo" ? kUnreadable401Gated : kUnreadable401)
                    : response.status == 403 ? kUnreadable403
                                             : kUnreadable404;
      return absl::OkStatus();
    }
    std::optional<std::string> location = response.headers.Get("Location");
    if (!location) {
      return absl::FailedPreconditionError(absl::StrCat("GET ", RedactUrl(sent), " answered HTTP ",
                                                        response.status, " without a Location"));
    }
    ASSIGN_OR_RETURN(std::string next, ResolveUrl(sent, *location));
    size_t query = sent.find('?');
    if (next.find('?') == std::string::npos && query != std::string::npos) {
      next += sent.substr(query);
    }
    RETURN_IF_ERROR(CheckHubOrigin(
        next, absl::StrCat("the HTTP ", response.status, " redirect of GET ", RedactUrl(sent))));
    if (hop >= 1) {
      const char* reason =
          next == url || next == sent ? kUnreadableRedirectLoop : kUnreadableSecondRedirect;
      if (unreadable != nullptr) {
        *unreadable = reason;
        return absl::OkStatus();
      }
      return absl::FailedPreconditionError(
          absl::StrCat("GET ", RedactUrl(url), ": redirected more than once (", reason, ")"));
    }
    current = std::move(next);
  }
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
