// URL handling the Hub client needs: resolving Link and Location references against the
// request URL, building per-repo paths, and keeping credentials out of anything printed.
#ifndef HUBCENSUS_HUB_URL_H_
#define HUBCENSUS_HUB_URL_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hubcensus::hub {

// RFC 3986 reference resolution: an absolute reference is returned normalised, a relative one
// ("/api/models?cursor=..", "?cursor=..", "page2") is resolved against `base`. Only http and
// https results are accepted.
absl::StatusOr<std::string> ResolveUrl(absl::string_view base, absl::string_view reference);

// The URL as it may appear in logs and errors: user:password@ removed, the values of query
// parameters that carry credentials (token, access_token, api_key, key, password) replaced by
// "REDACTED", and cut to kMaxQuotedBytes (a URL is input: a Hub's Link or Location).
std::string RedactUrl(absl::string_view url);

// The most bytes of any input (a body, a URL, a header value) an error message quotes.
inline constexpr size_t kMaxQuotedBytes = 200;

// At most `max_bytes` of `text` for an error message: control and non-ASCII bytes escaped as
// \xNN, and "..." when cut.
std::string QuoteInput(absl::string_view text, size_t max_bytes = kMaxQuotedBytes);

// The origin of an absolute http(s) URL as RFC 6454 compares it: "scheme://host:port", scheme
// and host lower-cased, the port explicit (80, 443 by default). INVALID_ARGUMENT otherwise.
absl::StatusOr<std::string> OriginOf(absl::string_view url);
// The host (and port when explicit) of a URL, for messages naming where something pointed; ""
// when it does not parse. Never the userinfo, path or query.
std::string HostForMessage(absl::string_view url);

// The first value of query parameter `name` (not decoded), or nullopt.
std::optional<std::string> QueryParameter(absl::string_view url, absl::string_view name);
// `url` with every value of query parameter `name` replaced by `value` (the first kept in place,
// the others removed), or the parameter appended when missing. Everything else is left byte for
// byte: a cursor is never touched.
std::string WithQueryParameter(absl::string_view url, absl::string_view name,
                               absl::string_view value);

// {hub_url}/api/models/{namespace}/{name}: each path segment percent-encoded, '/' kept.
std::string RepoDetailUrl(absl::string_view hub_url, absl::string_view repo_id);

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_URL_H_
