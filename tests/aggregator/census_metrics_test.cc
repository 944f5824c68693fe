#include "aggregator/census_metrics.h"

#include <map>

#include "aggregator/census_format.h"
#include "config/family_config.h"
#include "gtest/gtest.h"
#include "tests/aggregator/crawl_builder.h"

namespace hubcensus::aggregator {
namespace {

using testing::kAdapter;
using testing::kFinetune;
using testing::kMerge;
using testing::kQuantized;
using testing::kUnknown;
using testing::MakeSnapshot;
using testing::RepoSpec;

v1::FamilyConfig Families(v1::ParentPolicy policy = v1::FIRST_PARENT,
                          v1::Attribution attribution = v1::NEAREST) {
  auto config = ParseFamilyConfig(R"pb(
                                    family { name: "Qwen" region: "china" namespace: "Qwen" }
                                    family { name: "Llama" region: "us" namespace: "meta-llama" }
                                    family { name: "Mistral" region: "eu" namespace: "mistralai" }
                                  )pb",
                                  "test.textproto");
  EXPECT_TRUE(config.ok()) << config.status();
  config->mutable_lineage()->set_parent_policy(policy);
  config->mutable_lineage()->set_attribution(attribution);
  return *config;
}

// A crawl of 2025-05-15 where every rule of the metric definitions decides something.
store::CrawlSnapshot Crawl() {
  return MakeSnapshot({
      {"Qwen/A", {}, 1000, 100, "2024-12-01T00:00:00.000Z"},
      {"Qwen/B", {}, std::nullopt, 5, "2025-01-01T00:00:00.000Z"},  // downloadsAllTime absent
      {"meta-llama/L", {}, 500, 50, "2024-06-01T00:00:00.000Z"},
      {"u/ft1", {{"Qwen/A", kFinetune}}, 10, 10, "2025-01-10T00:00:00.000Z"},
      // Below the filter's 5 downloads: a derivative, not in the shares.
      {"u/ad1", {{"Qwen/A", kAdapter}}, 3, 10, "2025-03-03T00:00:00.000Z"},
      // downloadsAllTime absent passes the filter.
      {"u/q1", {{"meta-llama/L", kQuantized}}, std::nullopt, 10, "2025-03-20T00:00:00.000Z"},
      {"u/m1",
       {{"u/ft1", kMerge}, {"meta-llama/L", kMerge}},
       7,
       10,
       "2025-03-25T23:59:59.000Z",
       "image-text-to-text"},
      {"u/img", {{"Qwen/A", kFinetune}}, 100, 10, "2025-03-01T00:00:00.000Z", "text-to-image"},
      {"u/none", {}, 50, 10, "2025-03-05T00:00:00.000Z"},
      {"u/missing", {{"Qwen/Gone", kUnknown}}, 20, 10, "2025-05-02T00:00:00.000Z"},
      // First-party for Qwen though built on Llama.
      {"Qwen/C", {{"meta-llama/L", kFinetune}}, 40, 10, "2025-03-10T00:00:00.000Z"},
      // Created after the crawl's month: a derivative, outside every share month.
      {"u/future", {{"Qwen/A", kFinetune}}, 9, 10, "2025-06-01T00:00:00.000Z"},
  });
}

std::map<std::string, v1::Figures> ByFamily(const v1::FamiliesResponse& r) {
  std::map<std::string, v1::Figures> out;
  for (const auto& f : r.families()) out[f.family()] = f.figures();
  return out;
}

TEST(CensusMetricsTest, EveryFigureOfTheDefinitions) {
  auto snap = Crawl();
  auto figures = ComputeCensus(snap, Families(), "crawl-2025-05-15", "2025-05-15", 3);
  ASSERT_TRUE(figures.ok()) << figures.status();
  const auto& fr = figures->families;
  ASSERT_EQ(fr.families_size(), 3);
  EXPECT_EQ(fr.families(0).family(), "Qwen");
  EXPECT_EQ(fr.families(2).family(), "Mistral");
  auto f = ByFamily(fr);
  EXPECT_EQ(f["Qwen"].first_party_repos(), 3);
  EXPECT_EQ(f["Qwen"].first_party_downloads_all_time(), 1040);
  EXPECT_EQ(f["Qwen"].first_party_downloads_30d(), 115);
  EXPECT_EQ(f["Qwen"].ecosystem_downloads_all_time(), 1189);
  EXPECT_EQ(f["Qwen"].derivatives().finetune(), 3);
  EXPECT_EQ(f["Qwen"].derivatives().adapter(), 1);
  EXPECT_EQ(f["Qwen"].derivatives().merge(), 1);
  EXPECT_EQ(f["Qwen"].derivatives().unknown(), 1);
  EXPECT_EQ(f["Qwen"].derivatives().quantized(), 0);
  EXPECT_EQ(f["Llama"].first_party_repos(), 1);
  EXPECT_EQ(f["Llama"].first_party_downloads_all_time(), 500);
  EXPECT_EQ(f["Llama"].first_party_downloads_30d(), 50);
  EXPECT_EQ(f["Llama"].ecosystem_downloads_all_time(), 500);
  EXPECT_EQ(f["Llama"].derivatives().quantized(), 1);
  EXPECT_EQ(f["Mistral"].first_party_repos(), 0);
  EXPECT_EQ(f["Mistral"].ecosystem_downloads_all_time(), 0);

  ASSERT_EQ(fr.regions_size(), 5);
  const char* order[] = {"china", "us", "eu", "other", "unknown"};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fr.regions(i).region(), order[i]);
  EXPECT_EQ(fr.regions(0).figures().first_party_downloads_all_time(), 1040);
  EXPECT_EQ(fr.regions(1).figures().derivatives().quantized(), 1);
  EXPECT_EQ(fr.regions(2).figures().first_party_repos(), 0);

  const auto& months = figures->shares.months();
  ASSERT_EQ(months.size(), 5);  // 2025-01 .. 2025-05: the first counted month to the crawl's
  EXPECT_EQ(months[0].month(), "2025-01");
  EXPECT_EQ(months[0].total(), 1);
  EXPECT_EQ(months[0].families().at("Qwen").share(), 1);
  EXPECT_EQ(months[1].month(), "2025-02");
  EXPECT_EQ(months[1].total(), 0);
  EXPECT_TRUE(months[1].families().empty());
  EXPECT_EQ(months[2].month(), "2025-03");
  EXPECT_EQ(months[2].total(), 2);
  EXPECT_EQ(months[2].families().at("Qwen").count(), 1);
  EXPECT_EQ(months[2].families().at("Llama").share(), 0.5);
  EXPECT_EQ(months[2].families().count("Mistral"), 0u);
  EXPECT_EQ(months[4].month(), "2025-05");
  EXPECT_EQ(months[4].families().at("Qwen").count(), 1);

  // Top lists: the ecosystem by all-time downloads, first-party by 30-day downloads.
  const auto& qwen_top = figures->top[0];
  for (const auto& list : qwen_top.top()) {
    if (!list.first_party_only() && list.order_by() == "downloads_all_time") {
      ASSERT_EQ(list.repos_size(), 3);
      EXPECT_EQ(list.repos(0).id(), "Qwen/A");
      EXPECT_EQ(list.repos(1).id(), "u/img");
      EXPECT_EQ(list.repos(1).relation(), "finetune");
      EXPECT_EQ(list.repos(2).id(), "Qwen/C");
    }
    if (list.first_party_only() && list.order_by() == "downloads_30d") {
      ASSERT_EQ(list.repos_size(), 3);
      EXPECT_EQ(list.repos(0).id(), "Qwen/A");
      EXPECT_EQ(list.repos(1).id(), "Qwen/C");
      EXPECT_EQ(list.repos(2).id(), "Qwen/B");
    }
  }
}

TEST(CensusMetricsTest, SplitGivesFractionsAndRootMovesFirstPartyEcosystems) {
  auto snap = Crawl();
  auto split = ComputeCensus(snap, Families(v1::SPLIT), "c", "2025-05-15", 0);
  ASSERT_TRUE(split.ok());
  auto f = ByFamily(split->families);
  EXPECT_EQ(f["Qwen"].derivatives().merge(), 0.5);
  EXPECT_EQ(f["Llama"].derivatives().merge(), 0.5);
  EXPECT_EQ(f["Qwen"].ecosystem_downloads_all_time(), 1185.5);
  EXPECT_EQ(f["Llama"].ecosystem_downloads_all_time(), 503.5);
  const auto& march = split->shares.months(2);
  EXPECT_EQ(march.total(), 2);
  EXPECT_EQ(march.families().at("Llama").count(), 1.5);
  EXPECT_EQ(march.families().at("Qwen").share(), 0.25);

  auto root = ComputeCensus(snap, Families(v1::FIRST_PARENT, v1::ROOT), "c", "2025-05-15", 0);
  ASSERT_TRUE(root.ok());
  auto r = ByFamily(root->families);
  EXPECT_EQ(r["Qwen"].ecosystem_downloads_all_time(), 1149);  // Qwen/C goes to Llama
  EXPECT_EQ(r["Llama"].ecosystem_downloads_all_time(), 540);
  EXPECT_EQ(r["Qwen"].first_party_repos(), 3);  // first-party figures do not move
}

// Issue 11: both placeholder createdAt values mean "older than the Hub's dates". Such repos
// count in every sum but are new in no month; the shares say how many were left out.
TEST(CensusMetricsTest, PlaceholderDatedReposCountInSumsAndInNoMonth) {
  auto snap = MakeSnapshot({
      {"Qwen/A", {}, 1000, 100, "2024-12-01T00:00:00.000Z"},
      {"old/ft04", {{"Qwen/A", kFinetune}}, 10, 10, "2022-03-02T23:29:04.000Z"},
      {"old/ft05", {{"Qwen/A", kFinetune}}, 20, 10, "2022-03-02T23:29:05.000Z"},
      // Would not count in shares anyway (below the filter): not "left out".
      {"old/small", {{"Qwen/A", kFinetune}}, 1, 10, "2022-03-02T23:29:05.000Z"},
      // First-party: never in shares, so not "left out" either.
      {"Qwen/legacy", {}, 30, 10, "2022-03-02T23:29:04.000Z"},
      // A real date in the same month is new in March 2022.
      {"u/real", {{"Qwen/A", kFinetune}}, 10, 10, "2022-03-10T00:00:00.000Z"},
      {"u/new", {{"Qwen/A", kFinetune}}, 10, 10, "2025-01-10T00:00:00.000Z"},
  });
  auto figures = ComputeCensus(snap, Families(), "c", "2025-02-01", 0);
  ASSERT_TRUE(figures.ok()) << figures.status();
  auto f = ByFamily(figures->families);
  EXPECT_EQ(f["Qwen"].first_party_repos(), 2);
  EXPECT_EQ(f["Qwen"].derivatives().finetune(), 5);  // placeholders count in the sums
  EXPECT_EQ(f["Qwen"].ecosystem_downloads_all_time(), 1000 + 10 + 20 + 1 + 30 + 10 + 10);
  const auto& shares = figures->shares;
  EXPECT_EQ(shares.placeholder_dated_left_out(), 2);
  ASSERT_GT(shares.months_size(), 0);
  EXPECT_EQ(shares.months(0).month(), "2022-03");
  EXPECT_EQ(shares.months(0).total(), 1);  // u/real only
  double total = 0;
  for (const auto& m : shares.months()) total += m.total();
  EXPECT_EQ(total, 2);
}

TEST(CensusMetricsTest, FilterFromTheConfig) {
  auto config = Families();
  config.mutable_new_model_filter()->add_pipeline_tag("text-to-image");
  config.mutable_new_model_filter()->set_min_downloads_all_time(0);
  auto snap = Crawl();
  auto figures = ComputeCensus(snap, config, "c", "2025-05-15", 0);
  ASSERT_TRUE(figures.ok());
  // Only text-to-image repos pass now: u/img in March.
  const auto& months = figures->shares.months();
  ASSERT_EQ(months.size(), 3);
  EXPECT_EQ(months[0].month(), "2025-03");
  EXPECT_EQ(months[0].total(), 1);
  EXPECT_EQ(months[0].families().at("Qwen").count(), 1);
}

TEST(CensusFormatTest, FamiliesAndSharesJsonAreTheContract) {
  auto config = ParseFamilyConfig(R"pb(family { name: "Qwen" region: "china" namespace: "Qwen" }
                                       lineage { parent_policy: SPLIT })pb",
                                  "t");
  ASSERT_TRUE(config.ok());
  auto snap = MakeSnapshot(
      {{"Qwen/A", {}, 7, 2, "2025-10-01T00:00:00.000Z"},
       {"u/x", {{"Qwen/A", kFinetune}, {"v/y", kFinetune}}, 6, 1, "2025-10-02T00:00:00.000Z"}});
  auto figures = ComputeCensus(snap, *config, "crawl-2025-10-31", "2025-10-31", 0);
  ASSERT_TRUE(figures.ok());
  EXPECT_EQ(FamiliesToJson(figures->families),
            "{\"crawl_id\": \"crawl-2025-10-31\", \"date\": \"2025-10-31\", \"families\": "
            "[{\"family\": \"Qwen\", \"region\": \"china\", \"first_party_repos\": 1, "
            "\"first_party_downloads_all_time\": 7, \"first_party_downloads_30d\": 2, "
            "\"ecosystem_downloads_all_time\": 10, \"derivatives\": {\"finetune\": 0.5, "
            "\"adapter\": 0, \"quantized\": 0, \"merge\": 0, \"unknown\": 0}}], \"regions\": "
            "[{\"region\": \"china\", \"first_party_repos\": 1, "
            "\"first_party_downloads_all_time\": 7, \"first_party_downloads_30d\": 2, "
            "\"ecosystem_downloads_all_time\": 10, \"derivatives\": {\"finetune\": 0.5, "
            "\"adapter\": 0, \"quantized\": 0, \"merge\": 0, \"unknown\": 0}}, {\"region\": "
            "\"us\", \"first_party_repos\": 0, \"first_party_downloads_all_time\": 0, "
            "\"first_party_downloads_30d\": 0, \"ecosystem_downloads_all_time\": 0, "
            "\"derivatives\": {\"finetune\": 0, \"adapter\": 0, \"quantized\": 0, \"merge\": 0, "
            "\"unknown\": 0}}, {\"region\": \"eu\", \"first_party_repos\": 0, "
            "\"first_party_downloads_all_time\": 0, \"first_party_downloads_30d\": 0, "
            "\"ecosystem_downloads_all_time\": 0, \"derivatives\": {\"finetune\": 0, "
            "\"adapter\": 0, \"quantized\": 0, \"merge\": 0, \"unknown\": 0}}, {\"region\": "
            "\"other\", \"first_party_repos\": 0, \"first_party_downloads_all_time\": 0, "
            "\"first_party_downloads_30d\": 0, \"ecosystem_downloads_all_time\": 0, "
            "\"derivatives\": {\"finetune\": 0, \"adapter\": 0, \"quantized\": 0, \"merge\": 0, "
            "\"unknown\": 0}}, {\"region\": \"unknown\", \"first_party_repos\": 0, "
            "\"first_party_downloads_all_time\": 0, \"first_party_downloads_30d\": 0, "
            "\"ecosystem_downloads_all_time\": 0, \"derivatives\": {\"finetune\": 0, "
            "\"adapter\": 0, \"quantized\": 0, \"merge\": 0, \"unknown\": 0}}]}");
  EXPECT_EQ(SharesToJson(figures->shares),
            "{\"date\": \"2025-10-31\", \"months\": [{\"month\": \"2025-10\", \"total\": 0.5, "
            "\"families\": {\"Qwen\": {\"count\": 0.5, \"share\": 1}}}], "
            "\"placeholder_dated_left_out\": 0}");
  EXPECT_EQ(FormatNumber(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(FormatNumber(385300000), "385300000");
}

}  // namespace
}  // namespace hubcensus::aggregator
