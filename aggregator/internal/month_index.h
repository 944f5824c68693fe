// The UTC calendar month of a Unix time as year * 12 + (month - 1): what absl::ToCivilMonth gives,
// by integer arithmetic (H. Hinnant's days-to-civil), since the shares pass asks it of every new
// derivative of a crawl and the time zone path costs far more.
#ifndef HUBCENSUS_AGGREGATOR_INTERNAL_MONTH_INDEX_H_
#define HUBCENSUS_AGGREGATOR_INTERNAL_MONTH_INDEX_H_

#include <cstdint>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace hubcensus::aggregator::internal {

inline int MonthIndex(int64_t unix_seconds) {
  constexpr int64_t kFast = int64_t{1} << 40;  // about 35,000 years either side of 1970
  if (unix_seconds <= -kFast || unix_seconds >= kFast) {
    absl::CivilMonth m =
        absl::ToCivilMonth(absl::FromUnixSeconds(unix_seconds), absl::UTCTimeZone());
    return static_cast<int>(m.year() * 12 + (m.month() - 1));
  }
  int64_t days = unix_seconds / 86400;
  if (unix_seconds % 86400 < 0) --days;  // floor, for times before 1970
  days += 719468;                        // from 1970-01-01 to 0000-03-01
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t day_of_era = days - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t march_based = (5 * day_of_year + 2) / 153;  // 0 = March
  const int64_t month = march_based < 10 ? march_based + 3 : march_based - 9;
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  return static_cast<int>(year * 12 + (month - 1));
}

}  // namespace hubcensus::aggregator::internal

#endif  // HUBCENSUS_AGGREGATOR_INTERNAL_MONTH_INDEX_H_
