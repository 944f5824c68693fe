// URL handling the Hub client needs: resolving Link and Location references against the
// request URL, building per-repo paths, and keeping credentials out of anything printed.
#ifndef HUBCENSUS_HUB_URL_H_
#define HUBCENSUS_HUB_URL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hubcensus::hub {

// RFC 3986 reference resolution: an absolute reference is returned normalised, a relative one
// ("/api/models?cursor=..", "?cursor=..", "page2") is resolved against `base`. Only http and
// https results are accepted.
absl::StatusOr<std::string> ResolveUrl(absl::string_view base, absl::string_view reference);

// The URL as it may appear in logs and errors: user:password@ removed, and the values of query
// parameters that carry credentials (token, access_token, api_key, key, password) replaced by
// "REDACTED".
std::string RedactUrl(absl::string_view url);

// {hub_url}/api/models/{namespace}/{name}: each path segment percent-encoded, '/' kept.
std::string RepoDetailUrl(absl::string_view hub_url, absl::string_view repo_id);

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_URL_H_
