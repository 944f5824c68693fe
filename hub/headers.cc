#include "hub/headers.h"

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "hub/url.h"

namespace hubcensus::hub {
namespace {

// Splits on `sep` outside double-quoted strings and <...> (Link targets may hold ',' or ';').
std::vector<absl::string_view> SplitOutsideQuotes(absl::string_view text, char sep) {
  std::vector<absl::string_view> parts;
  bool quoted = false;
  bool angle = false;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '\\' && i + 1 < text.size()) {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (angle) {
      if (c == '>') angle = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == '<') {
      angle = true;
    } else if (c == sep) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

// "quoted \"text\"" -> quoted "text"; an unquoted token is returned trimmed.
std::string Unquote(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text.size() < 2 || text.front() != '"' || text.back() != '"') return std::string(text);
  std::string out;
  for (size_t i = 1; i + 1 < text.size(); ++i) {
    if (text[i] == '\\' && i + 2 < text.size()) ++i;
    out.push_back(text[i]);
  }
  return out;
}

bool IsQuoted(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  return text.size() >= 2 && text.front() == '"' && text.back() == '"';
}

// A non-negative integer parameter value; structured-field integers have at most 15 digits.
std::optional<int64_t> ParseCount(absl::string_view text) {
  std::string value = Unquote(text);
  int64_t out = 0;
  if (value.empty() || value.size() > 15 || !absl::SimpleAtoi(value, &out) || out < 0) {
    return std::nullopt;
  }
  return out;
}

struct Item {
  std::vector<std::string> names;  // quoted strings (and bare tokens without '=')
  std::vector<std::pair<std::string, std::string>> params;
};

std::vector<Item> ParseItems(absl::string_view header) {
  std::vector<Item> items;
  for (absl::string_view raw : SplitOutsideQuotes(header, ',')) {
    Item item;
    for (absl::string_view part : SplitOutsideQuotes(raw, ';')) {
      part = absl::StripAsciiWhitespace(part);
      if (part.empty()) continue;
      size_t eq = IsQuoted(part) ? absl::string_view::npos : part.find('=');
      if (eq == absl::string_view::npos) {
        item.names.push_back(Unquote(part));
      } else {
        item.params.emplace_back(
            absl::AsciiStrToLower(absl::StripAsciiWhitespace(part.substr(0, eq))),
            std::string(absl::StripAsciiWhitespace(part.substr(eq + 1))));
      }
    }
    if (!item.names.empty() || !item.params.empty()) items.push_back(std::move(item));
  }
  return items;
}

const std::string* Param(const Item& item, absl::string_view key) {
  for (const auto& [k, v] : item.params) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool Named(const Item& item, absl::string_view name) {
  for (const auto& n : item.names) {
    if (absl::EqualsIgnoreCase(n, name)) return true;
  }
  return false;
}

}  // namespace

std::vector<LinkValue> ParseLinkHeader(absl::string_view header, absl::string_view request_url) {
  std::vector<LinkValue> links;
  for (absl::string_view raw : SplitOutsideQuotes(header, ',')) {
    raw = absl::StripAsciiWhitespace(raw);
    if (raw.empty() || raw.front() != '<') continue;
    size_t close = raw.find('>');
    if (close == absl::string_view::npos) continue;
    absl::string_view target = raw.substr(1, close - 1);
    absl::StatusOr<std::string> url = ResolveUrl(request_url, target);
    if (!url.ok()) continue;
    LinkValue link;
    link.url = *std::move(url);
    for (absl::string_view param : SplitOutsideQuotes(raw.substr(close + 1), ';')) {
      param = absl::StripAsciiWhitespace(param);
      size_t eq = param.find('=');
      if (eq == absl::string_view::npos) continue;
      std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(param.substr(0, eq)));
      if (key != "rel") continue;
      for (absl::string_view rel : absl::StrSplit(Unquote(param.substr(eq + 1)),
                                                  absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
        link.rels.push_back(absl::AsciiStrToLower(rel));
      }
      break;  // RFC 8288: only the first rel parameter counts
    }
    links.push_back(std::move(link));
  }
  return links;
}

std::optional<std::string> FindNextLink(const HttpHeaders& headers, absl::string_view request_url) {
  for (const std::string& field : headers.GetAll("Link")) {
    for (LinkValue& link : ParseLinkHeader(field, request_url)) {
      for (const std::string& rel : link.rels) {
        if (rel == "next") return std::move(link.url);
      }
    }
  }
  return std::nullopt;
}

std::optional<RateLimitState> ParseRateLimit(absl::string_view header) {
  std::optional<RateLimitState> first;
  for (const Item& item : ParseItems(header)) {
    const std::string* r = Param(item, "r");
    if (r == nullptr) r = Param(item, "remaining");
    if (r == nullptr) continue;
    std::optional<int64_t> remaining = ParseCount(*r);
    if (!remaining) continue;
    RateLimitState state;
    state.name = item.names.empty() ? "" : item.names.front();
    state.remaining = *remaining;
    const std::string* t = Param(item, "t");
    if (t == nullptr) t = Param(item, "reset");
    if (t != nullptr) {
      if (std::optional<int64_t> reset = ParseCount(*t)) state.reset_s = *reset;
    }
    if (Named(item, "api")) return state;
    if (!first) first = state;
  }
  return first;
}

std::optional<RateLimitPolicy> ParseRateLimitPolicy(absl::string_view header) {
  std::optional<RateLimitPolicy> first;
  for (const Item& item : ParseItems(header)) {
    const std::string* q = Param(item, "q");
    if (q == nullptr) continue;
    std::optional<int64_t> quota = ParseCount(*q);
    if (!quota) continue;
    RateLimitPolicy policy;
    policy.names = item.names;
    policy.quota = *quota;
    if (const std::string* w = Param(item, "w")) {
      if (std::optional<int64_t> window = ParseCount(*w)) policy.window_s = *window;
    }
    if (Named(item, "api")) return policy;
    if (!first) first = policy;
  }
  return first;
}

std::optional<absl::Duration> ParseRetryAfter(absl::string_view header, absl::Time now) {
  absl::string_view text = absl::StripAsciiWhitespace(header);
  if (text.empty()) return std::nullopt;
  if (absl::ascii_isdigit(static_cast<unsigned char>(text.front()))) {
    int64_t seconds = 0;
    if (text.size() > 12 || !absl::SimpleAtoi(text, &seconds) || seconds < 0) return std::nullopt;
    return absl::Seconds(seconds);
  }
  static const char* const kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // IMF-fixdate
      "%A, %d-%b-%y %H:%M:%S GMT",  // RFC 850
      "%a %b %e %H:%M:%S %Y",       // asctime
  };
  for (const char* format : kFormats) {
    absl::Time when;
    std::string error;
    if (absl::ParseTime(format, std::string(text), absl::UTCTimeZone(), &when, &error)) {
      return when > now ? when - now : absl::ZeroDuration();
    }
  }
  return std::nullopt;
}

}  // namespace hubcensus::hub
