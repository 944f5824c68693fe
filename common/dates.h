// UTC calendar dates (YYYY-MM-DD) and months (YYYY-MM), the labels of crawls and shares.
#ifndef HUBCENSUS_COMMON_DATES_H_
#define HUBCENSUS_COMMON_DATES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hubcensus {

// "2025-10-31" -> midnight UTC. Rejects anything else, naming the text.
absl::StatusOr<absl::Time> ParseDate(absl::string_view text);
// "today" (UTC, from `now`) or YYYY-MM-DD, normalised to YYYY-MM-DD.
absl::StatusOr<std::string> ResolveDate(absl::string_view text, absl::Time now);
std::string FormatDate(absl::Time t);
// "2025-10" for a Unix-seconds instant.
std::string MonthOf(int64_t unix_seconds);
absl::StatusOr<absl::Time> ParseMonth(absl::string_view text);  // "2025-10" -> first day
// ISO-8601 as the Hub writes it ("2025-01-23T14:13:54.000Z") -> Unix seconds.
absl::StatusOr<int64_t> ParseHubTimestamp(absl::string_view text);
std::string FormatHubTimestamp(int64_t unix_seconds);

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_DATES_H_
