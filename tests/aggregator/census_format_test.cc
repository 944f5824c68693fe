// The census as people and programs read it: rounded tables, exact csv and json, sentences.
#include "aggregator/census_format.h"

#include <gtest/gtest.h>

#include "aggregator/census_query.h"
#include "common/dates.h"

namespace hubcensus::aggregator {
namespace {

TEST(FormatCompact, RoundsToOneDecimalWithASuffix) {
  EXPECT_EQ(FormatCompact(385300000), "385.3M");
  EXPECT_EQ(FormatCompact(346249999), "346.2M");
  EXPECT_EQ(FormatCompact(0), "0");
  EXPECT_EQ(FormatCompact(999), "999");
  EXPECT_EQ(FormatCompact(2.5), "2.5");
  EXPECT_EQ(FormatCompact(1000), "1.0k");
  EXPECT_EQ(FormatCompact(12345), "12.3k");
  // The suffix follows the rounded value: never "1000.0k".
  EXPECT_EQ(FormatCompact(999960), "1.0M");
  EXPECT_EQ(FormatCompact(1234567890), "1.2B");
  EXPECT_EQ(FormatCompact(-2500000), "-2.5M");
  EXPECT_EQ(FormatCompact(3.2e15), "3200.0T");
}

TEST(FormatPercent, OneDecimal) {
  EXPECT_EQ(FormatPercent(0.37142857142857144), "37.1%");
  EXPECT_EQ(FormatPercent(1), "100.0%");
  EXPECT_EQ(FormatPercent(0), "0.0%");
}

TEST(FormatIsoTimeMs, Utc) {
  EXPECT_EQ(FormatIsoTimeMs(1796173498419), "2026-12-02T01:04:58Z");
  EXPECT_EQ(FormatIsoTimeMs(0), "1970-01-01T00:00:00Z");
}

TEST(CensusCountsLine, NamesEveryCountAndReason) {
  v1::CensusCounts c;
  c.set_repos(1234);
  c.set_rejected_entries(3);
  (*c.mutable_rejected_by_reason())["no_created_at"] = 1;
  (*c.mutable_rejected_by_reason())["bad_id"] = 2;
  c.set_private_skipped(5);
  c.set_unreadable(2);
  (*c.mutable_unreadable_by_reason())["gated"] = 2;
  EXPECT_EQ(CensusCountsLine(c),
            "repos counted 1234; rejected entries 3 (bad_id 2, no_created_at 1); private "
            "skipped 5; unreadable 2 (gated 2)");
  EXPECT_EQ(CensusCountsLine(v1::CensusCounts()),
            "repos counted 0; rejected entries 0; private skipped 0; unreadable 0");
}

v1::FamiliesResponse SomeFamilies() {
  v1::FamiliesResponse r;
  r.set_crawl_id("crawl-2025-10-31");
  r.set_date("2025-10-31");
  auto* f = r.add_families();
  f->set_family("Qwen");
  f->set_region("china");
  f->mutable_figures()->set_first_party_repos(12);
  f->mutable_figures()->set_first_party_downloads_all_time(385300000);
  f->mutable_figures()->set_first_party_downloads_30d(10612345);
  f->mutable_figures()->set_ecosystem_downloads_all_time(512345678.5);
  f->mutable_figures()->mutable_derivatives()->set_finetune(2.5);
  r.mutable_counts()->set_repos(4000);
  return r;
}

TEST(FamiliesFormats, TableRoundsCsvAndJsonStayExact) {
  v1::FamiliesResponse r = SomeFamilies();
  std::string table = FamiliesToTable(r);
  EXPECT_EQ(table.substr(0, table.find('\n')),
            "crawl crawl-2025-10-31 (2025-10-31): repos counted 4000; rejected entries 0; private "
            "skipped 0; unreadable 0");
  EXPECT_NE(table.find("Qwen    china      12     385.3M          10.6M     512.3M       2.5"),
            std::string::npos)
      << table;
  EXPECT_EQ(table.find("385300000"), std::string::npos) << table;
  std::string csv = FamiliesToCsv(r);
  EXPECT_NE(csv.find("Qwen,china,12,385300000,10612345,512345678.5,2.5,0,0,0,0"), std::string::npos)
      << csv;
  EXPECT_NE(FamiliesToJson(r).find("\"first_party_downloads_all_time\": 385300000"),
            std::string::npos);
}

TEST(SharesFormats, TableShowsPercentagesAndThePlaceholderCount) {
  v1::SharesResponse r;
  r.set_crawl_id("crawl-2025-10-31");
  r.set_date("2025-10-31");
  r.set_placeholder_dated_left_out(17);
  auto* m = r.add_months();
  m->set_month("2025-10");
  m->set_total(35);
  (*m->mutable_families())["Qwen"].set_count(13);
  (*m->mutable_families())["Qwen"].set_share(13.0 / 35);
  std::string table = SharesToTable(r);
  EXPECT_NE(table.find("2025-10     35  Qwen       13  37.1%"), std::string::npos) << table;
  EXPECT_NE(table.find("17 placeholder-dated repos left out"), std::string::npos) << table;
  EXPECT_NE(SharesToCsv(r).find("2025-10,35,Qwen,13,0.37142857142857144"), std::string::npos);
}

TEST(CrawlsFormats, TableShowsIsoTimesCsvKeepsMilliseconds) {
  v1::ListCommittedCrawlsResponse r;
  auto* c = r.add_crawls();
  c->set_crawl_id("crawl-2026-11-30");
  c->set_date("2026-11-30");
  c->set_repos(1900000);
  c->set_committed_at_unix_ms(1796173498419);
  EXPECT_EQ(CrawlsToTable(r),
            "crawl_id          date        repos  committed_at\n"
            "crawl-2026-11-30  2026-11-30   1.9M  2026-12-02T01:04:58Z\n");
  EXPECT_EQ(CrawlsToCsv(r),
            "crawl_id,date,repos,committed_at_unix_ms\n"
            "crawl-2026-11-30,2026-11-30,1900000,1796173498419\n");
}

v1::SeriesResponse TwoLines(double qwen_last, double llama_last) {
  v1::SeriesResponse s;
  s.set_metric("first_party_downloads_all_time");
  for (auto [name, first, last] :
       {std::tuple{"Qwen", 100.0, qwen_last}, std::tuple{"Llama", 300.0, llama_last}}) {
    auto* l = s.add_lines();
    l->set_name(name);
    auto* p = l->add_points();
    p->set_date("2025-09-30");
    p->set_value(first);
    p = l->add_points();
    p->set_date("2025-10-31");
    p->set_value(last);
  }
  return s;
}

TEST(Crossover, AbsentIsASentenceNamingTheLeader) {
  EXPECT_EQ(CrossoverAbsentSentence("Qwen", "Llama", TwoLines(250000000, 346200000)),
            "Qwen does not pass Llama in first_party_downloads_all_time: at the last crawl "
            "(2025-10-31) Llama leads with 346.2M to 250.0M, by 96.2M (38.5%).");
  EXPECT_EQ(CrossoverAbsentSentence("Llama", "Qwen", TwoLines(100, 300)),
            "Llama does not pass Qwen in first_party_downloads_all_time: at the last crawl "
            "(2025-10-31) Llama leads with 300 to 100, by 200 (200.0%); Llama led at every crawl "
            "compared.");
  EXPECT_EQ(CrossoverAbsentSentence("Qwen", "Llama", TwoLines(7, 7)),
            "Qwen does not pass Llama in first_party_downloads_all_time: at the last crawl "
            "(2025-10-31) they are level at 7.");
  EXPECT_EQ(CrossoverAbsentSentence("Qwen", "Llama", v1::SeriesResponse()),
            "Qwen does not pass Llama in : no committed crawl has figures for both.");
}

TEST(Crossover, FoundIsASentenceWithBothCrawls) {
  v1::CrossoverResponse r;
  r.set_found(true);
  r.set_date("2025-11-30");
  r.set_a_value(385300000);
  r.set_b_value(346200000);
  r.set_previous_date("2025-10-31");
  r.set_previous_a_value(300000000);
  r.set_previous_b_value(310000000);
  EXPECT_EQ(CrossoverFoundSentence("Qwen", "Llama", r),
            "Qwen passed Llama in the crawl of 2025-11-30: 385.3M vs 346.2M (2025-10-31: "
            "300.0M vs 310.0M).");
  EXPECT_EQ(CrossoverToCsv(r),
            "found,crawl_id,date,a_value,b_value,previous_date,previous_a_value,"
            "previous_b_value\ntrue,,2025-11-30,385300000,346200000,2025-10-31,300000000,"
            "310000000\n");
}

TEST(Export, JsonAndCsvNameFieldsTheSameSnakeCaseWay) {
  v1::RepoSnapshot r;
  r.set_id("Qwen/Qwen2.5-7B");
  r.set_object_id("abc");
  r.set_author("Qwen");
  r.set_downloads_30d(10);
  r.set_downloads_all_time(100);
  std::string json = RepoSnapshotToJsonLine(r);
  std::string header = RepoSnapshotCsvHeader();
  header.pop_back();
  size_t start = 0;
  while (start < header.size()) {
    size_t comma = header.find(',', start);
    if (comma == std::string::npos) comma = header.size();
    std::string field = header.substr(start, comma - start);
    EXPECT_NE(json.find("\"" + field + "\": "), std::string::npos) << field << " in " << json;
    start = comma + 1;
  }
  for (const char* camel : {"createdAt", "lastModified", "downloadsAllTime", "trendingScore",
                            "\"_id\"", "\"downloads\""}) {
    EXPECT_EQ(json.find(camel), std::string::npos) << camel << " in " << json;
  }
  r.clear_downloads_all_time();
  EXPECT_NE(RepoSnapshotToJsonLine(r).find("\"downloads_all_time\": null"), std::string::npos);
}

// One quoting for every CSV written (query, export, the report's files): a field with a comma, a
// quote, CR or LF is quoted, quotes doubled; anything else is written as it is.
TEST(CsvField, QuotesCommaQuoteCrAndLf) {
  EXPECT_EQ(CsvField("Qwen"), "Qwen");
  EXPECT_EQ(CsvField(""), "");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("line\nbreak"), "\"line\nbreak\"");
  EXPECT_EQ(CsvField("carriage\rreturn"), "\"carriage\rreturn\"");
  EXPECT_EQ(CsvField("tab\tand 'single'"), "tab\tand 'single'");
  // Through a whole export row: the \r in a name cannot end the record early.
  v1::RepoSnapshot r;
  r.set_id("someone/model");
  r.set_author("Some\rOne");
  std::string row = RepoSnapshotToCsvRow(r);
  EXPECT_NE(row.find(",\"Some\rOne\","), std::string::npos) << row;
}

TEST(QueryFlags, FamilyNamesMatchIgnoringCaseOrSuggest) {
  std::vector<std::string> known = {"Qwen", "Llama", "DeepSeek", "Microsoft"};
  EXPECT_EQ(*ResolveFamilyName("--family", "Qwen", known), "Qwen");
  EXPECT_EQ(*ResolveFamilyName("--family", "qwen", known), "Qwen");
  EXPECT_EQ(*ResolveFamilyName("--family", "DEEPSEEK", known), "DeepSeek");
  auto typo = ResolveFamilyName("--family", "Qwn", known);
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.status().message(), "--family: unknown family \"Qwn\"; did you mean Qwen?");
  auto far = ResolveFamilyName("--a", "Nope", known);
  ASSERT_FALSE(far.ok());
  EXPECT_EQ(far.status().message(),
            "--a: unknown family \"Nope\"; `hubcensus query families` lists them");
  auto both = ResolveFamilyName("--family", "qwen", {"Qwen", "QWEN"});
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("matches Qwen and QWEN ignoring case"), std::string::npos);
}

TEST(QueryFlags, DatesTodayLatestAndTheNearestCommitted) {
  EXPECT_EQ(*QueryDate(""), "");
  EXPECT_EQ(*QueryDate("latest"), "");
  EXPECT_EQ(*QueryDate("2025-10-31"), "2025-10-31");
  EXPECT_EQ(*QueryDate("today"), FormatDate(absl::Now()));
  EXPECT_FALSE(QueryDate("yesterday").ok());
  EXPECT_EQ(NearestDatesHint("2025-10-30", {"2025-08-31", "2025-09-30", "2025-10-31", "2025-11-30",
                                            "2025-12-31"}),
            "nearest committed crawls: 2025-09-30, 2025-10-31, 2025-11-30");
  EXPECT_EQ(NearestDatesHint("2025-10-30", {}), "no crawl is committed yet");
}

TEST(QueryFlags, AggregatorAddressesWithASchemeAreAccepted) {
  TlsOptions plain;
  EXPECT_EQ(*AggregatorTarget("127.0.0.1:7003", plain), "127.0.0.1:7003");
  EXPECT_EQ(*AggregatorTarget("http://127.0.0.1:7003/", plain), "127.0.0.1:7003");
  auto https = AggregatorTarget("https://agg:7003", plain);
  ASSERT_FALSE(https.ok());
  EXPECT_NE(https.status().message().find("give --tls_ca"), std::string::npos);
  TlsOptions tls;
  tls.ca_file = "ca.pem";
  EXPECT_EQ(*AggregatorTarget("https://agg:7003", tls), "agg:7003");
  EXPECT_FALSE(AggregatorTarget("http://agg:7003/census", plain).ok());
}

}  // namespace
}  // namespace hubcensus::aggregator
