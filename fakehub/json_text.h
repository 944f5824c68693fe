// Writing JSON text by hand on the hot path (a page of 1,000 entries per request), with the
// escaping and number formats the Hub uses.
#ifndef HUBCENSUS_FAKEHUB_JSON_TEXT_H_
#define HUBCENSUS_FAKEHUB_JSON_TEXT_H_

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/json_text.h"

namespace hubcensus::fakehub {

// Shortest text that reads back as the same double; integral values print without a fraction.
inline void AppendJsonNumber(std::string* out, double v) {
  if (!std::isfinite(v)) {
    out->append("0");
    return;
  }
  if (v == std::floor(v) && std::fabs(v) < 9e15) {
    absl::StrAppend(out, static_cast<int64_t>(v));
    return;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, res.ptr);
}

// "2025-01-23T14:13:54.000Z" for Unix seconds, as the Hub writes times (absl::FormatTime is
// too slow for 2,000 timestamps a page). Days to civil date: H. Hinnant's algorithm.
inline void AppendHubTimestamp(std::string* out, int64_t unix_seconds) {
  int64_t days = unix_seconds >= 0 ? unix_seconds / 86400 : (unix_seconds - 86399) / 86400;
  int64_t secs = unix_seconds - days * 86400;
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  int64_t doe = days - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  char buf[32];
  auto two = [](char* p, int64_t v) {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
  };
  two(buf, y / 100);
  two(buf + 2, y % 100);
  buf[4] = '-';
  two(buf + 5, m);
  buf[7] = '-';
  two(buf + 8, d);
  buf[10] = 'T';
  two(buf + 11, secs / 3600);
  buf[13] = ':';
  two(buf + 14, secs / 60 % 60);
  buf[16] = ':';
  two(buf + 17, secs % 60);
  std::memcpy(buf + 19, ".000Z", 5);
  out->append(buf, 24);
}

inline std::string JsonNumber(double v) {
  std::string out;
  AppendJsonNumber(&out, v);
  return out;
}

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_JSON_TEXT_H_
