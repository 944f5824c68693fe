// The quota allocator of one Hub endpoint: grants never exceed the window's quota.
#include "coordinator/internal/hub_quota_allocator.h"

#include <gtest/gtest.h>

namespace hubcensus::coordinator {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

HubQuota Quota(int64_t q, int64_t w) {
  HubQuota quota;
  quota.quota = q;
  quota.window_s = w;
  return quota;
}

TEST(HubQuotaAllocator, GrantsChunksUntilTheWindowIsSpentThenRolls) {
  HubQuotaAllocator budget(Quota(50, 60), 8);
  EXPECT_EQ(budget.safety_margin(), 1);
  int64_t total = 0;
  for (int i = 0; i < 20; ++i) {
    std::string holder = "lease-" + std::to_string(i);
    int32_t g = budget.TopUp(holder, kT0);
    EXPECT_LE(g, 8);
    budget.ReportUsed(holder, g);
    budget.Release(holder, true);
    total += g;
  }
  EXPECT_EQ(total, 49);  // 50 minus the margin
  EXPECT_EQ(budget.TopUp("late", kT0 + absl::Seconds(59)), 0);
  EXPECT_EQ(budget.window_end(), kT0 + absl::Seconds(60));
  EXPECT_EQ(budget.TopUp("late", kT0 + absl::Seconds(60)), 8);
  EXPECT_EQ(budget.window_end(), kT0 + absl::Seconds(120));
}

TEST(HubQuotaAllocator, TopUpKeepsAHolderAtOneChunk) {
  HubQuotaAllocator budget(Quota(500, 300), 8);
  EXPECT_EQ(budget.TopUp("a", kT0), 8);
  EXPECT_EQ(budget.TopUp("a", kT0), 0);  // still holds 8 unused
  budget.ReportUsed("a", 3);
  EXPECT_EQ(budget.TopUp("a", kT0), 3);
  EXPECT_EQ(budget.granted_in_window(), 11);
}

TEST(HubQuotaAllocator, CleanReleaseReturnsUnusedButAVanishedHolderDoesNot) {
  HubQuotaAllocator budget(Quota(500, 300), 8);
  budget.TopUp("done", kT0);
  budget.ReportUsed("done", 2);
  budget.Release("done", /*return_unused=*/true);
  EXPECT_EQ(budget.granted_in_window(), 2);
  budget.TopUp("dead", kT0);
  budget.Release("dead", /*return_unused=*/false);
  EXPECT_EQ(budget.granted_in_window(), 10);
}

TEST(HubQuotaAllocator, OverspendingIsCounted) {
  HubQuotaAllocator budget(Quota(500, 300), 8);
  budget.TopUp("a", kT0);
  budget.ReportUsed("a", 20);
  EXPECT_EQ(budget.granted_in_window(), 20);
}

TEST(HubQuotaAllocator, OutstandingGrantsCountAgainstTheNextWindow) {
  HubQuotaAllocator budget(Quota(100, 60), 8);
  budget.TopUp("a", kT0);
  budget.TopUp("b", kT0);
  budget.ReportUsed("b", 8);
  // "a" may still spend its 8 in the new window.
  EXPECT_EQ(budget.Left(kT0 + absl::Seconds(61)), 100 - 2 - 8);
}

TEST(HubQuotaAllocator, AdoptsTheHubsPolicyAndLowerRemaining) {
  HubQuotaAllocator budget(Quota(500, 300), 8);
  budget.TopUp("a", kT0);
  budget.ReportUsed("a", 8);
  v1::RateLimitObservation o;
  o.set_quota(1000);
  o.set_window_s(300);
  o.set_remaining(100);  // someone else spends from the same token
  o.set_reset_s(40);
  o.set_observed_at_unix_ms(absl::ToUnixMillis(kT0));
  budget.Observe(o, kT0);
  EXPECT_TRUE(budget.learned());
  EXPECT_EQ(budget.quota(), 1000);
  EXPECT_EQ(budget.window_end(), kT0 + absl::Seconds(40));
  EXPECT_EQ(budget.Left(kT0), 100 - 20);  // margin 1000/50
  // More room than we think is not adopted.
  o.set_remaining(999);
  budget.Observe(o, kT0);
  EXPECT_EQ(budget.Left(kT0), 80);
  // The window ends where the Hub said: a fresh quota.
  EXPECT_EQ(budget.Left(kT0 + absl::Seconds(40)), 1000 - 20);
}

TEST(HubQuotaAllocator, A429WithoutPolicyStopsGrantsUntilReset) {
  HubQuotaAllocator budget(Quota(500, 300), 8);
  budget.TopUp("a", kT0);
  v1::RateLimitObservation o;
  o.set_remaining(0);
  o.set_reset_s(30);
  budget.Observe(o, kT0);
  EXPECT_EQ(budget.Left(kT0 + absl::Seconds(29)), 0);
  EXPECT_GT(budget.Left(kT0 + absl::Seconds(30)), 0);
}

TEST(HubQuotaAllocator, OffIsUnlimitedAndIgnoresObservations) {
  HubQuota off;
  off.unlimited = true;
  HubQuotaAllocator budget(off, 8);
  EXPECT_EQ(budget.TopUp("a", kT0), HubQuotaAllocator::kUnlimitedGrant);
  v1::RateLimitObservation o;
  o.set_quota(10);
  o.set_window_s(10);
  o.set_remaining(0);
  o.set_reset_s(10);
  budget.Observe(o, kT0);
  EXPECT_EQ(budget.TopUp("b", kT0), HubQuotaAllocator::kUnlimitedGrant);
}

TEST(HubQuotaAllocator, SurvivesARecordRoundTrip) {
  HubQuotaAllocator budget(Quota(500, 300), 8);
  budget.TopUp("a", kT0);
  v1::RateLimitObservation o;
  o.set_quota(1000);
  o.set_window_s(300);
  budget.Observe(o, kT0);
  BudgetRecord record = budget.ToRecord("http://hub|");
  HubQuotaAllocator restored = HubQuotaAllocator::FromRecord(record, Quota(500, 300), 8);
  EXPECT_EQ(restored.quota(), 1000);
  EXPECT_EQ(restored.granted_in_window(), 8);
  EXPECT_EQ(restored.window_end(), budget.window_end());
}

}  // namespace
}  // namespace hubcensus::coordinator
