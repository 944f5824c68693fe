// The Hub client over libcurl against fakehub on loopback, with fakehub's faults on: the listing
// iterator sees every repo exactly once, and the learned budget keeps within the quota.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "hub/listing_query.h"
#include "fakehub/fakehub.h"
#include "hub/hub_client.h"
#include "tests/hub/quota_watch_transport.h"

namespace hubcensus::hub {
namespace {

using ::hubcensus::testing::QuotaWatchTransport;

struct IteratorCase {
  const char* name;
  double fault_rate;
  const char* faults;
  const char* rate_limit;
};

class FakehubListingTest : public ::testing::TestWithParam<IteratorCase> {};

TEST_P(FakehubListingTest, EveryRepoExactlyOnce) {
  const IteratorCase& c = GetParam();
  fakehub::FakeHubOptions hub_options;
  hub_options.repos = 4000;
  hub_options.seed = 11;
  hub_options.fault_rate = c.fault_rate;
  hub_options.faults = c.faults;
  hub_options.rate_limit = c.rate_limit;
  hub_options.stall_seconds = 3;
  hub_options.threads = 4;
  auto hub = fakehub::FakeHub::Start(hub_options);
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::vector<std::string> truth = (*hub)->RepoIdsAt("");
  ASSERT_GT(truth.size(), 1000u);

  auto watch = std::make_shared<QuotaWatchTransport>(NewCurlTransport());
  HubClientOptions options;
  options.hub_url = (*hub)->url();
  options.token = "hf_fakehub_iterator";
  options.transport = watch;
  options.retry.initial_backoff = absl::Milliseconds(20);
  options.retry.max_backoff = absl::Milliseconds(500);
  options.timeouts.total = absl::Seconds(1);  // a stall costs a second, not a minute
  HubClient client(options);
  LearnedQuotaBudget budget(LearnedQuotaBudget::Options{500, absl::Minutes(5), Clock::Real()});

  v1::ListingOptions listing;
  listing.set_page_size(100);
  std::multiset<std::string> seen;
  int64_t rejected = 0;
  FetchStats stats;
  int pages = 0;
  absl::Status status = client.ForEachListingPage(FirstListingUrl((*hub)->url(), listing), &budget,
                                                  &stats, [&](ListingPage& page) {
                                                    ++pages;
                                                    std::set<std::string> on_page;
                                                    for (const auto& repo : page.entries.repos) {
                                                      // A repeated entry is dropped within its
                                                      // page, as the crawler does.
                                                      if (on_page.insert(repo.id()).second)
                                                        seen.insert(repo.id());
                                                    }
                                                    rejected += page.entries.rejected();
                                                    return true;
                                                  });
  ASSERT_TRUE(status.ok()) << status;
  std::multiset<std::string> expected(truth.begin(), truth.end());
  // `repeat` puts the previous page's last entry on the next page: the only cross-page repeats.
  std::set<std::string> distinct(seen.begin(), seen.end());
  EXPECT_EQ(distinct, std::set<std::string>(truth.begin(), truth.end()));
  // A timed-out page is asked again with a smaller limit (same cursor), so shrinks mean more,
  // smaller pages; without them, pages of 100.
  const int full_pages = static_cast<int>((truth.size() + 99) / 100);
  if (stats.limit_shrinks == 0) {
    EXPECT_EQ(pages, full_pages);
  } else {
    EXPECT_GT(pages, full_pages);
    EXPECT_LE(pages, 2 * full_pages);  // never below the floor of 50
  }
  EXPECT_EQ(watch->over_quota(), 0) << "a request beyond the quota";
  EXPECT_EQ(stats.requests, watch->requests());
  if (c.fault_rate > 0) {
    EXPECT_GT(stats.retries, 0);
    EXPECT_GT(rejected, 0) << "malformed entries are rejected and counted";
    EXPECT_LE(seen.size() - distinct.size(), static_cast<size_t>(pages));
  } else {
    EXPECT_EQ(seen.size(), distinct.size());
    EXPECT_EQ(rejected, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Faults, FakehubListingTest,
    ::testing::Values(IteratorCase{"clean", 0.0, "", "off"},
                      // Every kind but mutate (which changes the truth mid-listing).
                      IteratorCase{"faults", 0.3, "mutate=0", "off"},
                      IteratorCase{"faults_and_quota", 0.1, "mutate=0,malformed=0.05", "15/1"}),
    [](const ::testing::TestParamInfo<IteratorCase>& info) { return info.param.name; });

TEST(FakehubDetail, FollowsTheRenameRedirect) {
  fakehub::FakeHubOptions hub_options;
  hub_options.repos = 3000;
  hub_options.rate_limit = "off";
  hub_options.threads = 2;
  auto hub = fakehub::FakeHub::Start(hub_options);
  ASSERT_TRUE(hub.ok()) << hub.status();
  HubClientOptions options;
  options.hub_url = (*hub)->url();
  HubClient client(options);
  FixedBudget budget(1000);
  FetchStats stats;
  std::vector<std::string> ids = (*hub)->RepoIdsAt("");
  ASSERT_FALSE(ids.empty());
  ParsedEntries out;
  for (size_t i = 0; i < 20 && i < ids.size(); ++i) {
    ASSERT_TRUE(client.FetchRepoDetail(ids[i], &budget, &stats, &out).ok()) << ids[i];
  }
  EXPECT_EQ(out.repos.size(), 20u);
  EXPECT_EQ(out.rejected(), 0);
  EXPECT_EQ(out.repos[0].id(), ids[0]);
  // A missing repo answers anonymous requests 401, as the Hub does: an unreadable detail, not an
  // error, and no entry.
  ParsedEntries missing;
  std::string unreadable;
  EXPECT_TRUE(
      client.FetchRepoDetail("no-such-org/no-such-model", &budget, &stats, &missing, &unreadable)
          .ok());
  EXPECT_EQ(unreadable, "401");
  EXPECT_TRUE(missing.repos.empty());
}

}  // namespace
}  // namespace hubcensus::hub
