// The one parser of the "Q/W|off" quota grammar (operators' --hub_quota; fakehub's --rate_limit).
#include "hub/hub_quota.h"

#include <gtest/gtest.h>

namespace hubcensus::hub {
namespace {

// Moved from tests/coordinator (request_budget_test.cc).
TEST(HubQuota, ParsesQuotaOverWindowAndOff) {
  auto q = ParseHubQuota("500/300");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->quota, 500);
  EXPECT_EQ(q->window_s, 300);
  EXPECT_FALSE(q->unlimited);
  auto off = ParseHubQuota("off");
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(off->unlimited);
  for (const char* bad : {"", "500", "500/", "0/300", "500/-1", "a/b", "500/300/1"}) {
    auto r = ParseHubQuota(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find(std::string("\"") + bad + "\""), std::string::npos)
        << r.status();
  }
  EXPECT_EQ(FormatHubQuota(*q), "500/300");
}

}  // namespace
}  // namespace hubcensus::hub
