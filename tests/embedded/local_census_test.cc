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

std::unique_ptr<fakehub::FakeHub> StartHub(int64_t repos, uint64_t seed, const std::string& date) {
  fakehub::FakeHubOptions options;
  options.repos = repos;
  options.seed = seed;
  options.rate_limit = "off";
  options.date = date;
  auto hub = fakehub::FakeHub::Start(options);
  EXPECT_TRUE(hub.ok()) << hub.status();
  return hub.ok() ? std::move(*hub) : nullptr;
}

LocalCensusOptions LocalOptions(const fakehub::FakeHub& hub, const std::string& name) {
  LocalCensusOptions options;
  options.data_dir = testing::MakeTempDir(name) + "/data";
  options.hub_url = hub.url();
  options.workers = 2;
  options.families = DefaultFamilyConfig();
  options.hub_quota = "off";
  options.sync_writes = false;
  return options;
}

// The families figures of the date's committed crawl equal fakehub's ground truth; returns the
// crawl id they came from.
std::string ExpectFamiliesEqualTruth(LocalCensus& census, fakehub::FakeHub& hub,
                                     const std::string& date) {
  v1::FamiliesRequest req;
  req.mutable_crawl()->set_date(date);
  auto families = census.aggregator()->Families(req);
  EXPECT_TRUE(families.ok()) << families.status();
  auto truth = hub.TruthJson(date);
  EXPECT_TRUE(truth.ok());
  if (!families.ok() || !truth.ok()) return "";
  std::string ours = absl::StrCat("{\"families\":", aggregator::FamiliesToJson(*families), "}");
  auto diffs = JsonDifferences(ours, *truth, {"crawl_id", "shares"});
  EXPECT_TRUE(diffs.ok()) << diffs.status();
  if (diffs.ok()) {
    EXPECT_TRUE(diffs->empty()) << (*diffs)[0];
  }
  return families->crawl_id();
}

TEST(LocalCensus, DetailShardsCoverOnlyNewOrChangedReposAndTheCensusStaysExact) {
  auto hub = StartHub(3000, 3, "2025-09-30");
  ASSERT_NE(hub, nullptr);
  auto census = LocalCensus::Start(LocalOptions(*hub, "local-census"));
  ASSERT_TRUE(census.ok()) << census.status();

  v1::Crawl first = RunWithDetails(**census, "2025-09-30", hub->url());
  ASSERT_EQ(first.state(), v1::CRAWL_COMMITTED) << first.failure_reason();
  int64_t first_details = first.stats().items_total() - first.stats().pages();
  // No earlier crawl: every repo is new, so every page planned detail shards.
  EXPECT_GE(first_details, first.stats().pages());

  ASSERT_TRUE(hub->SetDate("2025-10-31").ok());
  v1::Crawl second = RunWithDetails(**census, "2025-10-31", hub->url());
  ASSERT_EQ(second.state(), v1::CRAWL_COMMITTED) << second.failure_reason();
  int64_t second_details = second.stats().items_total() - second.stats().pages();
  // Repos created in October are new, so some shards were planned; most repos did not change.
  EXPECT_GT(second_details, 0);
  EXPECT_LT(second_details, first_details);

  // Details replace listing entries with the same figures: the census still equals the truth.
  ExpectFamiliesEqualTruth(**census, *hub, "2025-10-31");
  (*census)->Stop();
}

// `local` run again on a date whose crawl was cancelled (or failed) crawls the date again, and the
// new attempt's census is the one queries see.
TEST(LocalCensus, ACancelledDateIsCrawledAgainOnTheNextRun) {
  auto hub = StartHub(2000, 5, "2025-10-31");
  ASSERT_NE(hub, nullptr);
  // Two workers: one is stuck on the cancelled attempt's dead Hub until its renew, which comes
  // at a third of the lease.
  LocalCensusOptions options = LocalOptions(*hub, "local-census-retry");
  options.lease_duration = absl::Seconds(3);
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

  EXPECT_EQ(ExpectFamiliesEqualTruth(**census, *hub, "2025-10-31"), "crawl-2025-10-31.2");

  // A third run finds the committed attempt and changes nothing.
  auto again = (*census)->RunCrawl("2025-10-31", nullptr);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->already_existed);
  EXPECT_EQ(again->crawl.crawl_id(), "crawl-2025-10-31.2");
  (*census)->Stop();
}

}  // namespace
}  // namespace hubcensus
