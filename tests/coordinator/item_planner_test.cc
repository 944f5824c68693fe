// The ItemPlanner on its own: what follows a completed item, and when a chain must end the crawl.
// (The same behaviour through the service, persisted and leased: coordinator_test.cc.)
#include "coordinator/internal/item_planner.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "hub/listing_query.h"

namespace hubcensus::coordinator {
namespace {

const char kHub[] = "http://127.0.0.1:9/hub";

std::string PageUrl(int n) { return absl::StrCat(kHub, "/api/models?sort=createdAt&cursor=", n); }

class ItemPlannerTest : public ::testing::Test {
 protected:
  ItemPlannerTest() : planner_(Options()) {}
  static ItemPlanner::Options Options() {
    ItemPlanner::Options options;
    options.detail_shard_size = 2;
    options.max_empty_pages = 3;
    return options;
  }

  // Page `index` of the createdAt chain, already in the crawl, with its URL in the chain.
  ItemRecord& AddPage(int index, std::string url) {
    ItemRecord& page = items_[ItemPlanner::PageItemId("createdAt", index)];
    v1::WorkItem* w = page.mutable_item();
    w->set_item_id(ItemPlanner::PageItemId("createdAt", index));
    w->set_crawl_id("crawl-2025-10-31");
    w->set_crawl_date("2025-10-31");
    w->set_kind(v1::LIST_PAGE);
    w->set_stream("createdAt");
    w->set_url(url);
    w->set_page_index(index);
    w->set_hub_url(kHub);
    chain_urls_["createdAt"].insert(ChainUrlKey(url));
    return page;
  }

  CompletionPlan After(const ItemRecord& page, const v1::CompleteLeaseRequest& report,
                       bool fetch_details = false) {
    return planner_.AfterCompletion(PlannedItems{items_, chain_urls_}, kHub, fetch_details, page,
                                    report);
  }

  static v1::CompleteLeaseRequest Report(const std::string& next_url, int64_t repos) {
    v1::CompleteLeaseRequest report;
    report.set_next_url(next_url);
    report.set_repos(repos);
    return report;
  }

  ItemPlanner planner_;
  std::map<std::string, ItemRecord> items_;
  std::map<std::string, std::set<std::string>> chain_urls_;
};

TEST_F(ItemPlannerTest, FirstPagesAreEachStreamsHead) {
  v1::ListingOptions listing = hub::WithListingDefaults({});
  listing.add_extra_streams("likes");
  std::vector<ItemRecord> pages = planner_.FirstPages("crawl-x", "2025-10-31", kHub, listing);
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_EQ(pages[0].item().item_id(), "createdAt/p000000");
  EXPECT_EQ(pages[0].item().url(), hub::FirstListingUrl(kHub, listing));
  EXPECT_EQ(pages[1].item().item_id(), "likes/p000000");
  EXPECT_NE(pages[1].item().url().find("sort=likes"), std::string::npos);
  EXPECT_EQ(pages[1].item().kind(), v1::LIST_PAGE);
}

TEST_F(ItemPlannerTest, APageWithANextLinkPlansTheNextPageOnce) {
  const ItemRecord& page = AddPage(0, PageUrl(0));
  CompletionPlan plan = After(page, Report(PageUrl(1), 10));
  EXPECT_EQ(plan.chain_fault, "");
  ASSERT_EQ(plan.new_items.size(), 1u);
  EXPECT_EQ(plan.new_items[0].item().item_id(), "createdAt/p000001");
  EXPECT_EQ(plan.new_items[0].item().url(), PageUrl(1));
  EXPECT_EQ(plan.new_items[0].item().page_index(), 1);
  // Already planned (a completion replayed after a restart): nothing new.
  AddPage(1, PageUrl(1));
  chain_urls_["createdAt"].erase(ChainUrlKey(PageUrl(1)));
  EXPECT_TRUE(After(page, Report(PageUrl(1), 10)).new_items.empty());
  // The last page plans nothing.
  EXPECT_TRUE(After(AddPage(2, PageUrl(2)), Report("", 10)).new_items.empty());
}

TEST_F(ItemPlannerTest, DetailShardsOnlyWhenTheCrawlFetchesDetails) {
  const ItemRecord& page = AddPage(0, PageUrl(0));
  v1::CompleteLeaseRequest report = Report("", 3);
  for (const char* id : {"a/1", "a/2", "a/3"}) report.add_changed_repo_ids(id);
  EXPECT_TRUE(After(page, report, /*fetch_details=*/false).new_items.empty());
  CompletionPlan plan = After(page, report, /*fetch_details=*/true);
  ASSERT_EQ(plan.new_items.size(), 2u);  // shards of 2
  EXPECT_EQ(plan.new_items[0].item().item_id(), "detail/createdAt/p000000/s000");
  EXPECT_EQ(plan.new_items[0].item().kind(), v1::REPO_DETAIL);
  EXPECT_EQ(plan.new_items[0].item().repo_ids_size(), 2);
  EXPECT_EQ(plan.new_items[1].item().repo_ids(0), "a/3");
}

TEST_F(ItemPlannerTest, ACursorLoopEndsTheChain) {
  AddPage(0, PageUrl(0));
  const ItemRecord& page = AddPage(1, PageUrl(1));
  CompletionPlan plan = After(page, Report(PageUrl(0) + "&limit=50", 10));
  EXPECT_EQ(plan.fault_cause, "cursor_loop");
  EXPECT_NE(plan.chain_fault.find("repeats a page"), std::string::npos) << plan.chain_fault;
  EXPECT_TRUE(plan.new_items.empty());
}

TEST_F(ItemPlannerTest, ARunOfEmptyPagesEndsTheChain) {
  AddPage(0, PageUrl(0)).set_empty_page_run(1);
  AddPage(1, PageUrl(1)).set_empty_page_run(2);
  CompletionPlan plan = After(AddPage(2, PageUrl(2)), Report(PageUrl(3), 0));
  EXPECT_EQ(plan.empty_page_run, 3);
  EXPECT_EQ(plan.fault_cause, "empty_pages");
  // An entry resets the run.
  EXPECT_EQ(After(items_["createdAt/p000002"], Report(PageUrl(3), 1)).empty_page_run, 0);
}

TEST_F(ItemPlannerTest, ANextLinkToAnotherOriginEndsTheChainNamingTheHost) {
  CompletionPlan plan = After(AddPage(0, PageUrl(0)), Report("http://evil.test:8443/x", 1));
  EXPECT_EQ(plan.fault_cause, "foreign_origin");
  EXPECT_NE(plan.chain_fault.find("evil.test:8443"), std::string::npos) << plan.chain_fault;
}

// Moved from coordinator_test.cc.
TEST(ChainUrlKey, LimitChangesAloneDoNotLookLikeALoop) {
  EXPECT_EQ(ChainUrlKey("http://h/api/models?sort=createdAt&limit=50&cursor=x"),
            ChainUrlKey("http://h/api/models?sort=createdAt&cursor=x&limit=1000"));
  EXPECT_EQ(ChainUrlKey("http://h/api/models?limit=50"), "http://h/api/models");
  EXPECT_NE(ChainUrlKey("http://h/api/models?cursor=x"),
            ChainUrlKey("http://h/api/models?cursor=y"));
  EXPECT_EQ(ChainUrlKey("http://h/api/models?climit=5&limit=5"), "http://h/api/models?climit=5");
}

// Moved from coordinator_test.cc (NextLinkToAnotherOriginFailsTheCrawlNamingTheHost).
TEST(SameOrigin, SchemeHostAndPortWithDefaultsAndWithoutUserinfo) {
  EXPECT_TRUE(SameOrigin("http://127.0.0.1:9/hub", "http://127.0.0.1:9/api/models?cursor=1"));
  EXPECT_TRUE(SameOrigin("https://HuggingFace.co/api", "https://huggingface.co:443/x"));
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:9", "http://127.0.0.1:10"));
  EXPECT_FALSE(SameOrigin("http://127.0.0.1:9", "https://127.0.0.1:9"));
  EXPECT_FALSE(SameOrigin("http://hub.test", "http://hub.test@evil.test/"));
}

}  // namespace
}  // namespace hubcensus::coordinator
