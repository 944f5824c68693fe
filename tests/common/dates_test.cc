#include "common/dates.h"

#include <gtest/gtest.h>

namespace hubcensus {
namespace {

TEST(Dates, ParseAndFormat) {
  auto t = ParseDate("2025-10-31");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatDate(*t), "2025-10-31");
  EXPECT_EQ(absl::ToUnixSeconds(*t), 1761868800);
  EXPECT_FALSE(ParseDate("2025-02-30").ok());
  EXPECT_FALSE(ParseDate("2025-1-3").ok());
  EXPECT_EQ(ParseDate("yesterday").status().message(),
            "\"yesterday\" is not a date of the form YYYY-MM-DD");
  EXPECT_EQ(*ResolveDate("today", absl::FromUnixSeconds(1761868800 + 3600)), "2025-10-31");
  EXPECT_EQ(MonthOf(1761868800), "2025-10");
  EXPECT_FALSE(ParseMonth("2025-13").ok());
}

TEST(Dates, HubTimestamps) {
  // The Hub's placeholder for repos created before creation dates were stored.
  auto placeholder = ParseHubTimestamp("2022-03-02T23:29:04.000Z");
  ASSERT_TRUE(placeholder.ok());
  EXPECT_EQ(*placeholder, 1646263744);
  EXPECT_EQ(FormatHubTimestamp(*placeholder), "2022-03-02T23:29:04.000Z");
  EXPECT_FALSE(ParseHubTimestamp("2022-03-02").ok());
}

}  // namespace
}  // namespace hubcensus
