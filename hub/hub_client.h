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
};

// What fetching cost and saw, accumulated across calls (and reported to the coordinator).
struct FetchStats {
  int64_t requests = 0;  // HTTP requests sent: attempts and redirect hops
  int64_t retries = 0;
  std::map<std::string, int64_t> retries_by_cause;  // "429", "503", "timeout", "reset", "bad_body"
  int64_t rate_limited = 0;                         // 429 answers
  int64_t bytes = 0;                                // response body bytes
  std::optional<v1::RateLimitObservation> rate_limit;  // the latest seen
  void Merge(const FetchStats& other);
};

struct ListingPage {
  std::string url;       // the page fetched (after redirects)
  std::string next_url;  // absolute rel="next" target; empty on the last page
  ParsedEntries entries;
};

// Errors the caller may try again later (the Hub or the network failing, the deadline, the
// quota) as opposed to answers that will not change (400, 401, 403, 404).
bool IsRetryableHubError(const absl::Status& status);

// Not thread-safe (it reuses one parser): one HubClient per thread; transports may be shared.
class HubClient {
 public:
  explicit HubClient(HubClientOptions options);

  // GET a listing page (a URL from FirstListingUrl or a previous page's next_url).
  absl::StatusOr<ListingPage> FetchListingPage(const std::string& url, RequestBudget* budget,
                                               FetchStats* stats);

  // GET /api/models/{repo_id}, following 301/302/307/308 (a renamed repo: its snapshot carries
  // the new id). Appends the entry, or its rejection, to `out`.
  absl::Status FetchRepoDetail(absl::string_view repo_id, RequestBudget* budget, FetchStats* stats,
                               ParsedEntries* out);

  // Walks a whole listing from `first_url`; `on_page` returns false to stop early.
  absl::Status ForEachListingPage(const std::string& first_url, RequestBudget* budget,
                                  FetchStats* stats,
                                  const std::function<bool(ListingPage&)>& on_page);

  const std::string& hub_url() const { return options_.hub_url; }
  // For a client reused across units of work (one per crawler slot): what cancels the next
  // fetches. Not while a fetch runs.
  void set_cancellation(Cancellation* cancellation) { options_.cancellation = cancellation; }

 private:
  // Sends GET `url` with retries; hands each 2xx body to `accept`, whose DATA_LOSS means "retry"
  // (a cut or garbled body). Returns the final response (2xx or a redirect).
  absl::StatusOr<HttpResponse> Get(const std::string& url, RequestBudget* budget, FetchStats* stats,
                                   const std::function<absl::Status(const HttpResponse&)>& accept);
  // Get() plus redirects; `final_url` is where the answer came from.
  absl::StatusOr<HttpResponse> GetFollowingRedirects(
      const std::string& url, RequestBudget* budget, FetchStats* stats,
      const std::function<absl::Status(const HttpResponse&)>& accept, std::string* final_url);
  void ObserveRateLimit(const HttpResponse& response, RequestBudget* budget, FetchStats* stats);
  double Random();

  HubClientOptions options_;
  EntryParser parser_;
};

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_HUB_CLIENT_H_
