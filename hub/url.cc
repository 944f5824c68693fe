#include "hub/url.h"

#include <curl/curl.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "hub/listing_query.h"

namespace hubcensus::hub {
namespace {

struct CurlUrl {
  CURLU* handle = curl_url();
  ~CurlUrl() { curl_url_cleanup(handle); }
};

bool IsSensitiveParameter(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  return lower == "token" || lower == "access_token" || lower == "api_key" || lower == "key" ||
         lower == "password" || lower == "hf_token";
}

}  // namespace

absl::StatusOr<std::string> ResolveUrl(absl::string_view base, absl::string_view reference) {
  std::string ref(absl::StripAsciiWhitespace(reference));
  if (ref.empty()) return absl::InvalidArgumentError("empty URL reference");
  if (ref.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
    return absl::InvalidArgumentError("URL reference holds control characters");
  }
  CurlUrl url;
  std::string base_text(base);
  if (url.handle == nullptr) return absl::InternalError("curl_url() failed");
  CURLUcode rc = curl_url_set(url.handle, CURLUPART_URL, base_text.c_str(), 0);
  if (rc != CURLUE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("base URL ", RedactUrl(base), " is not a valid URL: ", curl_url_strerror(rc)));
  }
  // Setting a relative URL on a handle holding one resolves it (RFC 3986 section 5).
  rc = curl_url_set(url.handle, CURLUPART_URL, ref.c_str(), CURLU_NON_SUPPORT_SCHEME);
  if (rc != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("URL reference ", RedactUrl(ref),
                                                   " does not resolve: ", curl_url_strerror(rc)));
  }
  char* scheme = nullptr;
  if (curl_url_get(url.handle, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("URL ", RedactUrl(ref), " has no scheme"));
  }
  std::string scheme_text = absl::AsciiStrToLower(scheme);
  curl_free(scheme);
  if (scheme_text != "http" && scheme_text != "https") {
    return absl::InvalidArgumentError(
        absl::StrCat("URL ", RedactUrl(ref), " is not http(s): scheme ", scheme_text));
  }
  char* full = nullptr;
  if (curl_url_get(url.handle, CURLUPART_URL, &full, 0) != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("URL ", RedactUrl(ref), " cannot be printed"));
  }
  std::string out(full);
  curl_free(full);
  return out;
}

// RedactUrl without the length cap.
static std::string RedactFullUrl(absl::string_view url);

std::string RedactUrl(absl::string_view url) {
  std::string out = RedactFullUrl(url);
  if (out.size() > kMaxQuotedBytes) {
    out.resize(kMaxQuotedBytes);
    out += "...";
  }
  return out;
}

static std::string RedactFullUrl(absl::string_view url) {
  std::string out(url);
  // userinfo: between "://" and the first '@' before the path.
  size_t scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    size_t authority_start = scheme_end + 3;
    size_t authority_end = out.find_first_of("/?#", authority_start);
    if (authority_end == std::string::npos) authority_end = out.size();
    size_t at = out.rfind('@', authority_end);
    if (at != std::string::npos && at >= authority_start) {
      out.erase(authority_start, at + 1 - authority_start);
    }
  }
  size_t query = out.find('?');
  if (query == std::string::npos) return out;
  size_t fragment = out.find('#', query);
  std::string tail = fragment == std::string::npos ? "" : out.substr(fragment);
  std::string query_text =
      out.substr(query + 1, (fragment == std::string::npos ? out.size() : fragment) - query - 1);
  std::vector<std::string> parts = absl::StrSplit(query_text, '&');
  for (auto& part : parts) {
    size_t eq = part.find('=');
    absl::string_view name = absl::string_view(part).substr(0, eq);
    if (eq != std::string::npos && IsSensitiveParameter(name)) {
      part = absl::StrCat(name, "=REDACTED");
    }
  }
  return absl::StrCat(out.substr(0, query), "?", absl::StrJoin(parts, "&"), tail);
}

std::string QuoteInput(absl::string_view text, size_t max_bytes) {
  std::string out;
  absl::string_view shown = text.substr(0, std::min(text.size(), max_bytes));
  for (unsigned char c : shown) {
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      absl::StrAppendFormat(&out, "\\x%02X", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (shown.size() < text.size()) out += "...";
  return out;
}

absl::StatusOr<std::string> OriginOf(absl::string_view url) {
  CurlUrl parsed;
  if (parsed.handle == nullptr) return absl::InternalError("curl_url() failed");
  std::string text(url);
  if (curl_url_set(parsed.handle, CURLUPART_URL, text.c_str(), CURLU_NON_SUPPORT_SCHEME) !=
      CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("URL ", RedactUrl(url), " is not a valid URL"));
  }
  auto part = [&](CURLUPart which, unsigned int flags) -> std::optional<std::string> {
    char* value = nullptr;
    if (curl_url_get(parsed.handle, which, &value, flags) != CURLUE_OK) return std::nullopt;
    std::string out(value);
    curl_free(value);
    return out;
  };
  std::optional<std::string> scheme = part(CURLUPART_SCHEME, 0);
  std::optional<std::string> host = part(CURLUPART_HOST, 0);
  // CURLU_DEFAULT_PORT: the scheme's port when the URL names none.
  std::optional<std::string> port = part(CURLUPART_PORT, CURLU_DEFAULT_PORT);
  if (!scheme || !host || !port || host->empty()) {
    return absl::InvalidArgumentError(absl::StrCat("URL ", RedactUrl(url), " names no host"));
  }
  std::string scheme_text = absl::AsciiStrToLower(*scheme);
  if (scheme_text != "http" && scheme_text != "https") {
    return absl::InvalidArgumentError(absl::StrCat("URL ", RedactUrl(url), " is not http(s)"));
  }
  return absl::StrCat(scheme_text, "://", absl::AsciiStrToLower(*host), ":", *port);
}

std::string HostForMessage(absl::string_view url) {
  CurlUrl parsed;
  std::string text(url);
  if (parsed.handle == nullptr || curl_url_set(parsed.handle, CURLUPART_URL, text.c_str(),
                                               CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    return "";
  }
  std::string out;
  char* value = nullptr;
  if (curl_url_get(parsed.handle, CURLUPART_HOST, &value, 0) == CURLUE_OK) {
    out = value;
    curl_free(value);
  }
  if (curl_url_get(parsed.handle, CURLUPART_PORT, &value, 0) == CURLUE_OK) {
    absl::StrAppend(&out, ":", value);
    curl_free(value);
  }
  return QuoteInput(out);
}

namespace {
// The [begin, end) of the query (after '?', before '#'), or nullopt.
std::optional<std::pair<size_t, size_t>> QuerySpan(absl::string_view url) {
  size_t query = url.find('?');
  if (query == absl::string_view::npos) return std::nullopt;
  size_t end = url.find('#', query);
  if (end == absl::string_view::npos) end = url.size();
  return std::make_pair(query + 1, end);
}
}  // namespace

std::optional<std::string> QueryParameter(absl::string_view url, absl::string_view name) {
  std::optional<std::pair<size_t, size_t>> span = QuerySpan(url);
  if (!span) return std::nullopt;
  for (absl::string_view part :
       absl::StrSplit(url.substr(span->first, span->second - span->first), '&')) {
    size_t eq = part.find('=');
    if (part.substr(0, eq) == name) {
      return std::string(eq == absl::string_view::npos ? absl::string_view() : part.substr(eq + 1));
    }
  }
  return std::nullopt;
}

std::string WithQueryParameter(absl::string_view url, absl::string_view name,
                               absl::string_view value) {
  std::optional<std::pair<size_t, size_t>> span = QuerySpan(url);
  if (!span) {
    size_t fragment = url.find('#');
    absl::string_view base = url.substr(0, fragment);
    absl::string_view tail =
        fragment == absl::string_view::npos ? absl::string_view() : url.substr(fragment);
    return absl::StrCat(base, "?", name, "=", value, tail);
  }
  std::vector<std::string> parts;
  bool replaced = false;
  for (absl::string_view part :
       absl::StrSplit(url.substr(span->first, span->second - span->first), '&')) {
    size_t eq = part.find('=');
    if (part.substr(0, eq) == name) {
      if (!replaced) parts.push_back(absl::StrCat(name, "=", value));
      replaced = true;
      continue;
    }
    parts.emplace_back(part);
  }
  if (!replaced) parts.push_back(absl::StrCat(name, "=", value));
  return absl::StrCat(url.substr(0, span->first), absl::StrJoin(parts, "&"),
                      url.substr(span->second));
}

std::string RepoDetailUrl(absl::string_view hub_url, absl::string_view repo_id) {
  std::vector<std::string> segments;
  for (absl::string_view segment : absl::StrSplit(repo_id, '/')) {
    segments.push_back(UrlEncode(segment));
  }
  return absl::StrCat(absl::StripSuffix(hub_url, "/"), "/api/models/",
                      absl::StrJoin(segments, "/"));
}

}  // namespace hubcensus::hub
