// The report page from hand-made census answers: every crossover found and marked where the lines
// meet, values on hover, labels apart, the methodology, and a page for a store of one crawl.
#include "embedded/report.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>

namespace hubcensus {
namespace {

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(FindCrossovers, EveryPairBothWaysPlacedWhereTheLinesMeet) {
  std::vector<std::string> dates = {"2025-09-30", "2025-10-31", "2025-11-30"};
  // Qwen passes Microsoft in 10-31 and Llama in 11-30; Microsoft passes nobody back.
  auto found = FindCrossovers(
      dates,
      {{"Qwen", {100, 300, 500}}, {"Llama", {400, 450, 460}}, {"Microsoft", {200, 250, 300}}});
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].a, "Qwen");
  EXPECT_EQ(found[0].b, "Microsoft");
  EXPECT_EQ(found[0].previous_date, "2025-09-30");
  EXPECT_EQ(found[0].date, "2025-10-31");
  // Qwen - Microsoft goes from -100 to +50: the lines meet two thirds of the way.
  EXPECT_NEAR(found[0].fraction, 2.0 / 3, 1e-12);
  EXPECT_EQ(found[1].a, "Qwen");
  EXPECT_EQ(found[1].b, "Llama");
  EXPECT_EQ(found[1].date, "2025-11-30");
  EXPECT_NEAR(found[1].fraction, 150.0 / 190, 1e-12);
  // A level start counts as "at or below" (the contract's crossover), and passing back counts.
  auto back = FindCrossovers({"a", "b", "c"}, {{"X", {5, 6, 1}}, {"Y", {5, 2, 3}}});
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].a + ">" + back[0].b + "@" + back[0].date, "X>Y@b");
  EXPECT_EQ(back[0].fraction, 0);
  EXPECT_EQ(back[1].a + ">" + back[1].b + "@" + back[1].date, "Y>X@c");
}

TEST(SpreadLabels, NeverCloserThanTheGapAndInsideTheFrame) {
  std::vector<double> placed = SpreadLabels({100, 101, 102, 300}, 15, 20, 310);
  ASSERT_EQ(placed.size(), 4u);
  EXPECT_EQ(placed[0], 100);
  EXPECT_EQ(placed[1], 115);
  EXPECT_EQ(placed[2], 130);
  EXPECT_EQ(placed[3], 300);
  // Crowded at the bottom: pushed up from the frame's edge.
  placed = SpreadLabels({305, 306, 307}, 15, 20, 310);
  EXPECT_EQ(placed, (std::vector<double>{280, 295, 310}));
  // More labels than fit at 15: the gap shrinks to fit.
  std::vector<double> many(30, 100);
  placed = SpreadLabels(many, 15, 0, 290);
  for (size_t i = 1; i < placed.size(); ++i) EXPECT_GE(placed[i] - placed[i - 1], 10 - 1e-9);
  EXPECT_GE(placed.front(), 0);
  EXPECT_LE(placed.back(), 290 + 1e-9);
}

v1::FamiliesResponse Crawl(const std::string& date, std::map<std::string, int64_t> downloads) {
  v1::FamiliesResponse r;
  r.set_crawl_id("crawl-" + date);
  r.set_date(date);
  for (const auto& [family, n] : downloads) {
    auto* f = r.add_families();
    f->set_family(family);
    f->set_region(family == "Qwen" || family == "DeepSeek" ? "china" : "us");
    f->mutable_figures()->set_first_party_repos(3);
    f->mutable_figures()->set_first_party_downloads_all_time(n);
    f->mutable_figures()->set_ecosystem_downloads_all_time(2.0 * n);
  }
  for (const char* region : {"china", "us"}) {
    auto* g = r.add_regions();
    g->set_region(region);
    int64_t sum = 0;
    for (const auto& f : r.families()) {
      if (f.region() == region) sum += f.figures().first_party_downloads_all_time();
    }
    g->mutable_figures()->set_first_party_downloads_all_time(sum);
  }
  r.mutable_counts()->set_repos(4000);
  r.mutable_counts()->set_private_skipped(7);
  return r;
}

ReportData ThreeCrawls() {
  ReportData data;
  data.crawls = {Crawl("2025-09-30", {{"Qwen", 100}, {"Llama", 400}, {"Microsoft", 200}}),
                 Crawl("2025-10-31", {{"Qwen", 300}, {"Llama", 450}, {"Microsoft", 250}}),
                 Crawl("2025-11-30", {{"Qwen", 500}, {"Llama", 460}, {"Microsoft", 300}})};
  data.crossover.set_found(true);
  data.crossover.set_date("2025-11-30");
  data.crossover.set_a_value(500);
  data.crossover.set_b_value(460);
  for (const char* month : {"2025-10", "2025-11"}) {
    auto* m = data.shares.add_months();
    m->set_month(month);
    m->set_total(month[6] == '0' ? 8 : 192);
    (*m->mutable_families())["Qwen"].set_count(4);
    (*m->mutable_families())["Qwen"].set_share(4 / m->total());
  }
  data.shares.set_placeholder_dated_left_out(42);
  ReportData::FamilyTopRepos top;
  top.family = "Qwen";
  auto* own = top.response.add_repos();
  own->set_id("Qwen/Qwen2.5-7B");
  own->set_first_party(true);
  auto* derivative = top.response.add_repos();
  derivative->set_id("someone/qwen-finetune");
  derivative->set_relation("finetune");
  derivative->set_downloads_all_time(1234567);
  data.top_repos.push_back(top);
  data.version = "9.9.9";
  data.generated_at_unix_ms = 1796173498419;
  return data;
}

TEST(RenderReportHtml, MarksEveryCrossoverWithItsValueOnHover) {
  std::string html = RenderReportHtml(ThreeCrawls());
  EXPECT_EQ(Count(html, "<g class=\"crossover\""), 2) << html;
  EXPECT_NE(html.find("<g class=\"crossover\" data-a=\"Qwen\" data-b=\"Microsoft\" "
                      "data-previous-date=\"2025-09-30\" data-date=\"2025-10-31\">"),
            std::string::npos);
  EXPECT_NE(html.find("<g class=\"crossover\" id=\"crossover-marker\" data-a=\"Qwen\" "
                      "data-b=\"Llama\" data-previous-date=\"2025-10-31\" "
                      "data-date=\"2025-11-30\">"),
            std::string::npos);
  EXPECT_NE(html.find("<li data-a=\"Qwen\" data-b=\"Microsoft\" data-date=\"2025-10-31\">Qwen "
                      "passed Microsoft between 2025-09-30 and 2025-10-31: 100 vs 200, then 300 "
                      "vs 250</li>"),
            std::string::npos);
  // Three series on two line charts over three crawls, plus a line per region: a point each,
  // every one with its value on hover.
  int points = Count(html, "<circle class=\"point\"");
  EXPECT_EQ(points, 3 * 3 * 2 + 2 * 3);
  std::regex point_with_title("<circle class=\"point\"[^>]*><title>[^<]+</title></circle>");
  EXPECT_EQ(std::distance(std::sregex_iterator(html.begin(), html.end(), point_with_title),
                          std::sregex_iterator()),
            points);
  EXPECT_NE(html.find("<title>Qwen, 2025-11-30: 500</title>"), std::string::npos);
  int bars = Count(html, "<rect class=\"share\"");
  EXPECT_EQ(bars, 4);  // Qwen and Other, two months
  EXPECT_NE(html.find("<title>Qwen, 2025-10: 50.0% (4 of 8 new derivative models)</title>"),
            std::string::npos);
  // n over each month's bar.
  EXPECT_NE(html.find("data-month=\"2025-10\" "), std::string::npos);
  EXPECT_NE(html.find("<title>2025-11: 192 new derivative models</title>192</text>"),
            std::string::npos);
  EXPECT_EQ(Count(html, "class=\"axis-label\""), 5);  // every chart's y axis
  EXPECT_NE(html.find("id=\"chart-cumulative-log\""), std::string::npos);
  EXPECT_NE(html.find("id=\"chart-regions-time\""), std::string::npos);
}

TEST(RenderReportHtml, HasTheMethodologyTopDerivativesAndASortableTable) {
  std::string html = RenderReportHtml(ThreeCrawls());
  EXPECT_NE(html.find("<section id=\"methodology\">"), std::string::npos);
  EXPECT_NE(html.find("ATOM Project's organisation list"), std::string::npos);
  EXPECT_NE(html.find("Apache-2.0"), std::string::npos);
  EXPECT_NE(html.find("Repos deleted before that crawl are absent"), std::string::npos);
  EXPECT_NE(html.find("<span id=\"placeholder-left-out\">42</span>"), std::string::npos);
  EXPECT_NE(html.find("repos counted 4000; rejected entries 0; private skipped 7; unreadable 0"),
            std::string::npos);
  EXPECT_NE(html.find("Written by hubcensus 9.9.9 at 2026-12-02T01:04:58Z, from 3 committed "
                      "crawls"),
            std::string::npos);
  // The derivative is listed, the family's own repo is not.
  EXPECT_NE(html.find("<td>someone/qwen-finetune</td><td>finetune</td><td data-value=\"1234567\""),
            std::string::npos);
  EXPECT_EQ(html.find("<td>Qwen/Qwen2.5-7B</td>"), std::string::npos);
  EXPECT_NE(html.find("id=\"family-table-sort\">Sorted by ecosystem downloads (all time), "
                      "largest first."),
            std::string::npos);
  EXPECT_NE(html.find("aria-sort=\"descending\"><button type=\"button\">ecosystem downloads"),
            std::string::npos);
  // Without JavaScript the rows are in the stated order: Qwen (1000), Llama (920), Microsoft.
  size_t qwen = html.find("<tr data-family=\"Qwen\">"),
         llama = html.find("<tr data-family=\"Llama\">"),
         microsoft = html.find("<tr data-family=\"Microsoft\">");
  EXPECT_LT(qwen, llama);
  EXPECT_LT(llama, microsoft);
  EXPECT_NE(html.find("<meta name=\"viewport\""), std::string::npos);
  EXPECT_NE(html.find("@media (max-width:600px)"), std::string::npos);
}

TEST(RenderReportHtml, OneCrawlShowsThatCensusAndSaysWhy) {
  ReportData data = ThreeCrawls();
  data.crawls.erase(data.crawls.begin(), data.crawls.begin() + 2);
  data.crossover.Clear();
  std::string html = RenderReportHtml(data);
  EXPECT_NE(html.find("id=\"one-crawl\">The store holds one census, of 2025-11-30"),
            std::string::npos);
  EXPECT_NE(html.find("<svg id=\"chart-cumulative\""), std::string::npos);
  EXPECT_EQ(Count(html, "<rect class=\"bar\""), 3);
  EXPECT_NE(html.find("<title>Qwen, 2025-11-30: 500</title>"), std::string::npos);
  EXPECT_EQ(html.find("<polyline"), std::string::npos);
  EXPECT_EQ(html.find("chart-cumulative-log"), std::string::npos);
  EXPECT_NE(html.find("1 committed crawl, 2025-11-30."), std::string::npos);
}

}  // namespace
}  // namespace hubcensus
