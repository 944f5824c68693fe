// The LeaseTable on its own (no gRPC, no store): leases, fences and expiry on a simulated clock.
// (Everything it does, through the service: coordinator_test.cc.)
#include "coordinator/internal/lease_table.h"

#include <gtest/gtest.h>

#include "hub/listing_query.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::coordinator {
namespace {

TEST(LeaseTable, AnExpiredLeaseComesBackWithTheNextFenceAndTheOldOneIsRefused) {
  SimulatedClock clock(absl::FromUnixSeconds(1761868800 + 3600));  // 2025-10-31T01:00Z
  CoordinatorOptions options;
  options.lease_duration = absl::Seconds(30);
  options.hub_quota.unlimited = true;
  auto ledger = CrawlLedger::Open(hubcensus::testing::MakeTempDir("lease_table"), /*sync=*/false);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  ItemPlanner planner(ItemPlanner::Options{});
  LeaseTable table(options, &clock, ledger->get(), &planner);
  ASSERT_TRUE(table.Load().ok());
  ASSERT_TRUE(table
                  .StartCrawl("2025-10-31", "http://127.0.0.1:9", hub::WithListingDefaults({}),
                              /*retry=*/false)
                  .ok());

  auto first = table.Acquire("w1", "");
  ASSERT_TRUE(first.ok() && first->has_lease());
  EXPECT_EQ(first->lease().fence(), 1u);
  auto none = table.Acquire("w2", "");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_lease());

  clock.Advance(absl::Seconds(31));
  table.ExpireLeases();
  auto second = table.Acquire("w2", "");
  ASSERT_TRUE(second.ok() && second->has_lease());
  EXPECT_EQ(second->lease().item().item_id(), first->lease().item().item_id());
  EXPECT_EQ(second->lease().fence(), 2u);

  v1::CompleteLeaseRequest late;
  late.set_lease_id(first->lease().lease_id());
  late.set_fence(1);
  EXPECT_TRUE(absl::IsAborted(table.Complete(late).status()));
  v1::CompleteLeaseRequest done;
  done.set_lease_id(second->lease().lease_id());
  done.set_fence(2);
  done.set_repos(3);
  auto completed = table.Complete(done);
  ASSERT_TRUE(completed.ok()) << completed.status();
  EXPECT_TRUE(completed->crawl_left_running);  // the last page: COMMITTING
  std::vector<StoreJob> jobs = table.CollectStoreJobs();
  ASSERT_EQ(jobs.size(), 1u);
  ASSERT_EQ(jobs[0].commit_request.manifest_size(), 1);
  EXPECT_EQ(jobs[0].commit_request.manifest(0).fence(), 2u);
}

}  // namespace
}  // namespace hubcensus::coordinator
