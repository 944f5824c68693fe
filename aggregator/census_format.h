// The census in the forms people and programs read: JSON (a stable contract: the demo and
// fakehub's /_sim/truth compare it), CSV and aligned tables.
#ifndef HUBCENSUS_AGGREGATOR_CENSUS_FORMAT_H_
#define HUBCENSUS_AGGREGATOR_CENSUS_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/json_text.h"
#include "hubcensus/v1/census.pb.h"
#include "hubcensus/v1/repo.pb.h"

namespace hubcensus::aggregator {

enum class OutputFormat { kTable, kCsv, kJson };
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text);  // table|csv|json

// Integers (SPLIT-free counts, downloads) print as integers, fractions as the shortest decimal
// that reads back to the same double.
std::string FormatNumber(double value);
// Tables only (csv and json keep exact values): "385.3M", "12.0k", "999", "2.5"; one decimal
// with a k/M/B/T suffix from 1,000 up.
std::string FormatCompact(double value);
// A fraction as a percentage with one decimal: 0.37142857 -> "37.1%".
std::string FormatPercent(double fraction);
// Unix milliseconds as ISO-8601 UTC: "2026-12-01T07:44:58Z".
std::string FormatIsoTimeMs(int64_t unix_ms);
// "repos counted 1,234; rejected 3 (bad_id 2, no_created_at 1); private skipped 5; unreadable 0"
std::string CensusCountsLine(const v1::CensusCounts& counts);
// A crossover that did not happen, in a sentence: who leads at the last crawl and by how much.
// `series` holds the two lines of a and b (the metric over the same dates).
std::string CrossoverAbsentSentence(const std::string& a, const std::string& b,
                                    const v1::SeriesResponse& series);
// "Qwen passed Llama in the crawl of 2025-11-30: 385.3M vs 346.2M (2025-10-31: 300.0M vs
// 310.0M)."
std::string CrossoverFoundSentence(const std::string& a, const std::string& b,
                                   const v1::CrossoverResponse& response);
// One CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or LF, quotes doubled.
// Every CSV this program writes (query, export, the report's files) quotes with it.
std::string CsvField(absl::string_view field);
// JSON string quoting (common/json_text.h), as the output formats write it.
using ::hubcensus::JsonString;

// {"crawl_id", "date", "families": [{"family", "region", "first_party_repos",
//  "first_party_downloads_all_time", "first_party_downloads_30d", "ecosystem_downloads_all_time",
//  "derivatives": {"finetune", "adapter", "quantized", "merge", "unknown"}}], "regions": [...]}
std::string FamiliesToJson(const v1::FamiliesResponse& response);
// {"date", "months": [{"month", "total", "families": {"Qwen": {"count", "share"}}}]}
std::string SharesToJson(const v1::SharesResponse& response);
std::string SeriesToJson(const v1::SeriesResponse& response);
std::string CrossoverToJson(const v1::CrossoverResponse& response);
std::string TopReposToJson(const v1::TopReposResponse& response);
std::string LineageToJson(const v1::LineageResponse& response);
std::string CrawlsToJson(const v1::ListCommittedCrawlsResponse& response);

std::string FamiliesToCsv(const v1::FamiliesResponse& response);
std::string SharesToCsv(const v1::SharesResponse& response);
std::string SeriesToCsv(const v1::SeriesResponse& response);
std::string CrossoverToCsv(const v1::CrossoverResponse& response);
std::string TopReposToCsv(const v1::TopReposResponse& response);
std::string LineageToCsv(const v1::LineageResponse& response);
std::string CrawlsToCsv(const v1::ListCommittedCrawlsResponse& response);

std::string FamiliesToTable(const v1::FamiliesResponse& response);
std::string SharesToTable(const v1::SharesResponse& response);
std::string SeriesToTable(const v1::SeriesResponse& response);
std::string CrossoverToTable(const v1::CrossoverResponse& response);
std::string TopReposToTable(const v1::TopReposResponse& response);
std::string LineageToTable(const v1::LineageResponse& response);
std::string CrawlsToTable(const v1::ListCommittedCrawlsResponse& response);

// Export: one JSON object per repo, and CSV with a header line.
std::string RepoSnapshotToJsonLine(const v1::RepoSnapshot& repo);
std::string RepoSnapshotCsvHeader();
std::string RepoSnapshotToCsvRow(const v1::RepoSnapshot& repo);

}  // namespace hubcensus::aggregator

#endif  // HUBCENSUS_AGGREGATOR_CENSUS_FORMAT_H_
