// The census in the forms people and programs read: JSON (a stable contract: the demo and
// fakehub's /_sim/truth compare it), CSV and aligned tables.
#ifndef HUBCENSUS_AGGREGATOR_CENSUS_FORMAT_H_
#define HUBCENSUS_AGGREGATOR_CENSUS_FORMAT_H_

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
