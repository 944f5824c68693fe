// The one place that speaks HTTP to the Hub: endpoint and token resolution, listing pages that
// follow Link, per-repo details that follow redirects, retries with backoff that honour
// Retry-After and RateLimit, a request budget asked before every request, and parsing into
// RepoSnapshots. The token is sent only as `Authorization: Bearer` and appears in no log, URL
// or error.
#ifndef HUBCENSUS_HUB_HUB_CLIENT_H_
#define HUBCENSUS_HUB_HUB_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "hub/cancellation.h"
#include "hub/entry_parser.h"
#include "hub/http_transport.h"
#include "hub/request_budget.h"
#include "hubcensus/v1/crawl.pb.h"

namespace hubcensus::hub {

inline constexpr char kDefaultHubUrl[] = "https://huggingface.co";

// --hub_url if set, else $HF_ENDPOINT (as the official clients read it), else
// https://huggingface.co; without a trailing slash. INVALID_ARGUMENT for a non-http(s) URL.
absl::StatusOr<std::string> ResolveHubEndpoint(absl::string_view hub_url_flag);

// The token from --hf_token_file (whitespace trimmed) if given, else $HF_TOKEN, else ""
// (anonymous). Errors name the file, never its content.
absl::StatusOr<std::string> ResolveHubToken(absl::string_view token_file_flag);

struct RetryPolicy {
  int max_attempts = 8;  // per URL, the first included
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(32);
  // No attempt starts, and no backoff ends, after this much time from the first attempt.
  absl::Duration per_request_deadline = absl::Minutes(10);
  // While every attempt failed to reach the server at all (DNS, refused, TLS), give up once the
  // next attempt would start later than this after the first: an unreachable Hub is reported in
  // seconds, not after the per-request deadline (the coordinator decides when that ends a crawl).
  absl::Duration connection_failure_deadline = absl::Seconds(12);
  // A 2xx answer whose body is not JSON at all (an HTML error page): attempts before the request
  // fails for good, naming the content type and the first bytes. Garbled or cut JSON is retried
  // up to max_attempts like a transport fault.
  int max_not_json_attempts = 3;
};

struct HubClientOptions {
  std::string hub_url = kDefaultHubUrl;  // see ResolveHubEndpoint
  std::string token;                     // "" = anonymous; see ResolveHubToken
  Clock* clock = Clock::Real();
  std::shared_ptr<HttpTransport> transport;  // null: NewCurlTransport()
  RetryPolicy retry;
  HttpTimeouts timeouts;
  // Uniform in [0, 1), for backoff jitter; null: a seeded generator.
  std::function<double()> random;
  int max_redirects = 5;
  Cancellation* cancellation = nullptr;  // optional
  // expand= values of per-repo detail requests; empty: DefaultListingExpand().
  std::vector<std::string> detail_expand;
  // Listing pages that time out or answer 504 are asked again, same cursor, with half the
  // `limit` down to this floor; after grow_after_pages pages in a row succeed, the limit doubles
  // back up to the page's own (the configured page size).
  int min_page_limit = 50;
  int grow_after_pages = 3;
};

// What fetching cost and saw, accumulated across calls (and reported to the coordinator).
struct FetchStats {
  int64_t requests = 0;  // HTTP requests sent: attempts and redirect hops
  int64_t retries = 0;
  std::map<std::string, int64_t> retries_by_cause;  // "429", "503", "timeout", "reset", "bad_body"
  int64_t rate_limited = 0;                         // 429 answers
  int64_t bytes = 0;                                // response body bytes
  std::optional<v1::RateLimitObservation> rate_limit;  // the latest seen
  int64_t limit_shrinks = 0;  // listing requests re-sent with a smaller `limit`
  void Merge(const FetchStats& other);
};

struct ListingPage {
  std::string url;  // the page fetched (after redirects; `limit` as last sent)
  // Absolute rel="next" target; empty on the last page. When the page was fetched with a
  // smaller `limit` than asked, this carries the asked `limit` rather than the Hub's echo of the
  // smaller one, so a chain's URLs keep the configured page size; the cursor is the Hub's.
  std::string next_url;
  ParsedEntries entries;
};

// Errors the caller may try again later (the Hub or the network failing, the deadline, the
// quota) as opposed to answers that will not change (400, 401, 403, 404).
bool IsRetryableHubError(const absl::Status& status);

// True for an error that means every attempt failed to reach the Hub at all (DNS resolution,
// connection refused or timed out, TLS handshake or certificate). Its message is one line naming
// the host and the cause: "cannot reach 127.0.0.1:9: connection refused".
bool IsConnectionFailure(const absl::Status& status);

// Why a per-repo detail could not be read, as CompleteLeaseRequest.unreadable_by_reason counts
// it: "401" (missing, or private to others), "401_gated" (X-Error-Code: GatedRepo), "403"
// (disabled), "404", "redirect_loop" (a second redirect back to a URL already asked) and
// "second_redirect" (a rename is followed once).
inline constexpr char kUnreadable401[] = "401";
inline constexpr char kUnreadable401Gated[] = "401_gated";
inline constexpr char kUnreadable403[] = "403";
inline constexpr char kUnreadable404[] = "404";
inline constexpr char kUnreadableRedirectLoop[] = "redirect_loop";
inline constexpr char kUnreadableSecondRedirect[] = "second_redirect";

// Called with a listing page's next URL as soon as the head of its 2xx answer arrives, before
// the body is read and parsed (see FetchListingPage).
using NextUrlCallback = std::function<void(const std::string& next_url)>;

// FetchListingPage may run on several threads at once (a chain fetched ahead: the next page's
// request goes out while this one's body streams in); the other calls, set_cancellation and
// FetchRepoDetail, are for one thread at a time. Transports may be shared.
class HubClient {
 public:
  explicit HubClient(HubClientOptions options);
  ~HubClient();

  // GET a listing page (a URL from FirstListingUrl or a previous page's next_url).
  // `on_next_url` (optional) is called at most once, on the fetching thread, with the page's
  // rel="next" URL as soon as a 2xx head names one on the Hub's origin (the same URL the page
  // returns in next_url unless a retry's answer names another): the caller may request it
  // while this page's body is still arriving. A head whose Link is missing, malformed, foreign
  // or points back at the page itself is not handed on; the page's own result then says what
  // was wrong, as before.
  absl::StatusOr<ListingPage> FetchListingPage(const std::string& url, RequestBudget* budget,
                                               FetchStats* stats,
                                               const NextUrlCallback& on_next_url = nullptr);

  // GET /api/models/{repo_id}, following one 301/302/307/308 (a renamed repo: its snapshot
  // carries the new id). Appends the entry, or its rejection, to `out`. With `unreadable`, an
  // answer that says the repo cannot be read (401, 401 GatedRepo, 403, 404, a second redirect)
  // is OK with the reason set there (the kUnreadable* values) and nothing appended; without it,
  // such answers are errors.
  absl::Status FetchRepoDetail(absl::string_view repo_id, RequestBudget* budget, FetchStats* stats,
                               ParsedEntries* out, std::string* unreadable = nullptr);

  // Walks a whole listing from `first_url`; `on_page` returns false to stop early.
  absl::Status ForEachListingPage(const std::string& first_url, RequestBudget* budget,
                                  FetchStats* stats,
                                  const std::function<bool(ListingPage&)>& on_page);

  const std::string& hub_url() const { return options_.hub_url; }
  // For a client reused across units of work (one per crawler slot): what cancels the next
  // fetches. Not while a fetch runs.
  void set_cancellation(Cancellation* cancellation) { options_.cancellation = cancellation; }

 private:
  // Called before a retry with its cause ("504", "timeout", ...); may rewrite the URL to send.
  using BeforeRetry = std::function<void(absl::string_view cause, std::string* url)>;
  // Called with an attempt's URL and its answer's head, before its body is read.
  using OnHead =
      std::function<void(const std::string& url, int status, const HttpHeaders& headers)>;
  // Sends GET `url` with retries; hands each 2xx body to `accept`, whose DATA_LOSS means "retry"
  // (a cut or garbled body). Returns the final response (2xx or a redirect, and 401, 403 or 404
  // with `return_client_errors`); `sent_url` (when set) receives the URL of the last attempt.
  // Refuses any URL outside the Hub's origin.
  absl::StatusOr<HttpResponse> Get(const std::string& url, RequestBudget* budget, FetchStats* stats,
                                   const std::function<absl::Status(const HttpResponse&)>& accept,
                                   const BeforeRetry& before_retry, std::string* sent_url,
                                   bool return_client_errors = false,
                                   const OnHead& on_head = nullptr);
  // Get() plus at most `max_redirects` redirects within the Hub's origin; `final_url` is where
  // the answer came from.
  absl::StatusOr<HttpResponse> GetFollowingRedirects(
      const std::string& url, RequestBudget* budget, FetchStats* stats,
      const std::function<absl::Status(const HttpResponse&)>& accept,
      const BeforeRetry& before_retry, int max_redirects, std::string* final_url,
      const OnHead& on_head = nullptr);
  // OK when `url` is on the Hub's origin; otherwise FAILED_PRECONDITION naming the host and
  // `what` pointed there.
  absl::Status CheckHubOrigin(const std::string& url, absl::string_view what) const;
  void ObserveRateLimit(const HttpResponse& response, RequestBudget* budget, FetchStats* stats);
  double Random();

  // A parser for one fetch: taken from the idle ones (a parser keeps its buffers, so reusing it
  // saves an allocation per page), returned when the fetch ends.
  std::unique_ptr<EntryParser> TakeParser();
  void ReturnParser(std::unique_ptr<EntryParser> parser);

  HubClientOptions options_;
  std::string hub_origin_;  // OriginOf(hub_url); "" when that does not parse
  absl::Mutex mu_;
  std::vector<std::unique_ptr<EntryParser>> idle_parsers_ ABSL_GUARDED_BY(mu_);
  // The listing `limit` in use after shrinks (0: the page's own), and the pages fetched at it
  // in a row since the last change.
  int64_t shrunk_limit_ ABSL_GUARDED_BY(mu_) = 0;
  int pages_at_shrunk_limit_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_HUB_CLIENT_H_
