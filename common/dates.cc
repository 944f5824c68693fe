#include "common/dates.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace hubcensus {

absl::StatusOr<absl::Time> ParseDate(absl::string_view text) {
  absl::Time t;
  std::string err;
  if (text.size() != 10 ||
      !absl::ParseTime("%Y-%m-%d", std::string(text), absl::UTCTimeZone(), &t, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a date of the form YYYY-MM-DD"));
  }
  // ParseTime normalises 2025-02-30 to March: refuse what does not round-trip.
  if (FormatDate(t) != text) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a calendar date"));
  }
  return t;
}

absl::StatusOr<std::string> ResolveDate(absl::string_view text, absl::Time now) {
  if (text == "today") return FormatDate(now);
  auto t = ParseDate(text);
  if (!t.ok()) return t.status();
  return FormatDate(*t);
}

std::string FormatDate(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone());
}

std::string MonthOf(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m", absl::FromUnixSeconds(unix_seconds), absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseMonth(absl::string_view text) {
  if (text.size() != 7) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a month of the form YYYY-MM"));
  }
  auto t = ParseDate(absl::StrCat(text, "-01"));
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a month of the form YYYY-MM"));
  }
  return t;
}

absl::StatusOr<int64_t> ParseHubTimestamp(absl::string_view text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(text), &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not an ISO-8601 time"));
  }
  return absl::ToUnixSeconds(t);
}

std::string FormatHubTimestamp(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%S.000Z", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

}  // namespace hubcensus
