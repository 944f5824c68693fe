// The embedded census in one process: a crawl with per-repo details for new or changed repos.
#include "embedded/local_census.h"

#include <gtest/gtest.h>

#include "aggregator/aggregator.h"
#include "aggregator/census_format.h"
#include "config/family_config.h"
#include "embedded/truth_check.h"
#include "fakehub/fakehub.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

v1::Crawl RunWithDetails(LocalCensus& census, const std::string& date, const std::string& hub) {
  v1::StartCrawlRequest start;
  start.set_date(date);
  start.set_hub_url(hub);
  start.mutable_listing()->set_fetch_details(true);
  v1::StartCrawlResponse started;
  grpc::ClientContext ctx;
  grpc::Status s = census.coordinator()->StartCrawl(&ctx, start, &started);
  EXPECT_TRUE(s.ok()) << s.error_message();
  // RunCrawl finds the crawl just started (same date) and waits for its commit.
  auto outcome = census.RunCrawl(date, nullptr);
  EXPECT_TRUE(outcome.ok()) << outcome.status();
  return outcome.ok() ? outcome->crawl : v1::Crawl();
}

TEST(LocalCensus, DetailShardsCoverOnlyNewOrChangedReposAndTheCensusStaysExact) {
  fakehub::FakeHubOptions hub_options;
  hub_options.repos = 3000;
  hub_options.seed = 3;
  hub_options.rate_limit = "off";
  hub_options.date = "2025-09-30";
  auto hub = fakehub::FakeHub::Start(hub_options);
  ASSERT_TRUE(hub.ok()) << hub.status();

  LocalCensusOptions options;
  options.data_dir = testing::MakeTempDir("local-census") + "/data";
  options.hub_url = (*hub)->url();
  options.workers = 2;
  options.families = DefaultFamilyConfig();
  options.hub_quota = "off";
  options.sync_writes = false;
  auto census = LocalCensus::Start(options);
  ASSERT_TRUE(census.ok()) << census.status();

  v1::Crawl first = RunWithDetails(**census, "2025-09-30", (*hub)->url());
  ASSERT_EQ(first.state(), v1::CRAWL_COMMITTED) << first.failure_reason();
  int64_t first_details = first.stats().items_total() - first.stats().pages();
  // No earlier crawl: every repo is new, so every page planned detail shards.
  EXPECT_GE(first_details, first.stats().pages());

  ASSERT_TRUE((*hub)->SetDate("2025-10-31").ok());
  v1::Crawl second = RunWithDetails(**census, "2025-10-31", (*hub)->url());
  ASSERT_EQ(second.state(), v1::CRAWL_COMMITTED) << second.failure_reason();
  int64_t second_details = second.stats().items_total() - second.stats().pages();
  // Repos created in October are new, so some shards were planned; most repos did not change.
  EXPECT_GT(second_details, 0);
  EXPECT_LT(second_details, first_details);

  // Details replace listing entries with the same figures: the census still equals the truth.
  v1::FamiliesRequest req;
  req.mutable_crawl()->set_date("2025-10-31");
  auto families = (*census)->aggregator()->Families(req);
  ASSERT_TRUE(families.ok()) << families.status();
  auto truth = (*hub)->TruthJson("2025-10-31");
  ASSERT_TRUE(truth.ok());
  std::string ours = absl::StrCat("{\"families\":", aggregator::FamiliesToJson(*families), "}");
  auto diffs = JsonDifferences(ours, *truth, {"crawl_id", "shares"});
  ASSERT_TRUE(diffs.ok()) << diffs.status();
  EXPECT_TRUE(diffs->empty()) << (*diffs)[0];
  (*census)->Stop();
}

// `local` run again on a date whose crawl was cancelled (or failed) crawls the date again, and the
// new attempt's census is the one queries see.
TEST(LocalCensus, ACancelledDateIsCrawledAgainOnTheNextRun) {
  fakehub::FakeHubOptions hub_options;
  hub_options.repos = 2000;
  hub_options.seed = 5;
  hub_options.rate_limit = "off";
  hub_options.date = "2025-10-31";
  auto hub = fakehub::FakeHub::Start(hub_options);
  ASSERT_TRUE(hub.ok()) << hub.status();
  LocalCensusOptions options;
  options.data_dir = testing::MakeTempDir("local-census-retry") + "/data";
  options.hub_url = (*hub)->url();
  options.workers = 2;  // one is stuck on the cancelled attempt's dead Hub until its renew
  options.lease_duration = absl::Seconds(3);  // which comes at a third of the lease
  options.families = DefaultFamilyConfig();
  options.hub_quota = "off";
  options.sync_writes = false;
  auto census = LocalCensus::Start(options);
  ASSERT_TRUE(census.ok()) << census.status();

  // The first attempt points at a port nothing serves, so it cannot finish before it is
  // cancelled.
  v1::StartCrawlRequest start;
  start.set_date("2025-10-31");
  start.set_hub_url("http://127.0.0.1:9");
  v1::StartCrawlResponse started;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE((*census)->coordinator()->StartCrawl(&ctx, start, &started).ok());
  }
  v1::CancelCrawlRequest cancel;
  cancel.set_crawl_id(started.crawl().crawl_id());
  cancel.set_reason("operator stopped it");
  v1::Crawl cancelled;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE((*census)->coordinator()->CancelCrawl(&ctx, cancel, &cancelled).ok());
  }
  ASSERT_EQ(cancelled.state(), v1::CRAWL_CANCELLED);

  auto outcome = (*census)->RunCrawl("2025-10-31", nullptr);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_FALSE(outcome->already_existed);
  EXPECT_EQ(outcome->crawl.crawl_id(), "crawl-2025-10-31.2");
  EXPECT_EQ(outcome->crawl.state(), v1::CRAWL_COMMITTED);

  v1::FamiliesRequest req;
  req.mutable_crawl()->set_date("2025-10-31");
  auto families = (*census)->aggregator()->Families(req);
  ASSERT_TRUE(families.ok()) << families.status();
  EXPECT_EQ(families->crawl_id(), "crawl-2025-10-31.2");
  auto truth = (*hub)->TruthJson("2025-10-31");
  ASSERT_TRUE(truth.ok());
  std::string ours = absl::StrCat("{\"families\":", aggregator::FamiliesToJson(*families), "}");
  auto diffs = JsonDifferences(ours, *truth, {"crawl_id", "shares"});
  ASSERT_TRUE(diffs.ok()) << diffs.status();
  EXPECT_TRUE(diffs->empty()) << (*diffs)[0];

  // A third run finds the committed attempt and changes nothing.
  auto again = (*census)->RunCrawl("2025-10-31", nullptr);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->already_existed);
  EXPECT_EQ(again->crawl.crawl_id(), "crawl-2025-10-31.2");
  (*census)->Stop();
}

}  // namespace
}  // namespace hubcensus
