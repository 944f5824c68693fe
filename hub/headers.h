// Parsers for the response headers the Hub client acts on: Link (pagination), RateLimit and
// RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers, as the Hub sends them) and
// Retry-After. Free functions over text, so they are table-tested and fuzzed directly.
#ifndef HUBCENSUS_HUB_HEADERS_H_
#define HUBCENSUS_HUB_HEADERS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "hub/http_transport.h"

namespace hubcensus::hub {

// One link-value of a Link header: the target, resolved to an absolute URL, and its relation
// types (lower-cased; `rel="next prev"` gives two).
struct LinkValue {
  std::string url;
  std::vector<std::string> rels;
};

// Parses `<url>; rel="next", <url2>; rel=prev; title="x"` (RFC 8288). Targets may be absolute or
// relative (resolved against `request_url`); rel may be quoted or not and hold several types;
// other parameters are skipped. Malformed link-values are skipped, the others kept.
std::vector<LinkValue> ParseLinkHeader(absl::string_view header, absl::string_view request_url);

// The absolute URL of the first link with rel "next" over every Link field of a response, or
// nullopt on the last page.
std::optional<std::string> FindNextLink(const HttpHeaders& headers, absl::string_view request_url);

// `RateLimit: "api";r=42;t=120`. Several comma-separated items may appear; the one named "api"
// is preferred, else the first with r=. Missing t= leaves reset_s at -1.
struct RateLimitState {
  std::string name;
  int64_t remaining = -1;  // r=
  int64_t reset_s = -1;    // t=
};
std::optional<RateLimitState> ParseRateLimit(absl::string_view header);

// `RateLimit-Policy: "fixed window";"api";q=1000;w=300`. The quoted strings name the policy
// (the Hub sends the kind and the name); the one holding "api" is preferred, else the first with
// q=. Missing w= leaves window_s at -1.
struct RateLimitPolicy {
  std::vector<std::string> names;
  int64_t quota = -1;     // q=
  int64_t window_s = -1;  // w=
};
std::optional<RateLimitPolicy> ParseRateLimitPolicy(absl::string_view header);

// Retry-After: delay-seconds ("120") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", also the
// obsolete RFC 850 and asctime forms), relative to `now`. A date in the past gives zero.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view header, absl::Time now);

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_HEADERS_H_
