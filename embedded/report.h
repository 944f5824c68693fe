// The census as people look at it: an offline HTML page with SVG charts, and CSV files beside it.
#ifndef HUBCENSUS_EMBEDDED_REPORT_H_
#define HUBCENSUS_EMBEDDED_REPORT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "aggregator/census_client.h"
#include "hubcensus/v1/census.pb.h"

namespace hubcensus {

// Everything the report shows, gathered from the Census API.
struct ReportData {
  std::vector<v1::FamiliesResponse> crawls;  // one per committed crawl, oldest first
  v1::SharesResponse shares;                 // monthly new-derivative shares at the latest crawl
  // The crossover drawn on the cumulative chart (a passes b), if any.
  std::string crossover_a = "Qwen";
  std::string crossover_b = "Llama";
  v1::CrossoverResponse crossover;
  std::string title = "hubcensus: the Hugging Face Hub by model family";
  std::string ground_truth_note;  // e.g. "every figure equals the simulator's ground truth"
  // The top repos (first-party and derivative) of the leading families at the latest crawl;
  // the report lists the derivatives among them.
  struct FamilyTopRepos {
    std::string family;
    v1::TopReposResponse response;
  };
  std::vector<FamilyTopRepos> top_repos;
  std::string version;               // of the hubcensus that wrote the report
  int64_t generated_at_unix_ms = 0;  // when the data was gathered
};

// One family passing another between two consecutive crawls (shared/design.md, "Crossover":
// a <= b at `previous_date`, a > b at `date`), among the families a chart draws.
struct ReportCrossover {
  std::string a, b;
  std::string previous_date, date;
  double previous_a = 0, previous_b = 0, a_value = 0, b_value = 0;
  // Where between the two crawls the lines meet (linear interpolation), 0..1.
  double fraction = 0;
};
// Every crossover among `values` (family -> one value per crawl, in `dates` order), ordered by
// date, then a, then b.
std::vector<ReportCrossover> FindCrossovers(
    const std::vector<std::string>& dates,
    const std::vector<std::pair<std::string, std::vector<double>>>& values);

// Label positions (ascending y wanted) moved apart by at least `gap` within [low, high], each as
// close to where it was wanted as that allows. When they cannot all fit, the gap shrinks to fit.
std::vector<double> SpreadLabels(std::vector<double> wanted, double gap, double low, double high);

// Reads what the report needs from a Census server (any committed crawls it holds).
absl::StatusOr<ReportData> GatherReportData(aggregator::CensusClient& census);

// Writes DIR/index.html, DIR/cumulative_downloads.csv, DIR/new_derivative_share.csv,
// DIR/regions.csv and DIR/families.csv. Nothing is loaded from the network.
absl::Status WriteReport(const ReportData& data, const std::string& out_dir);

// The page alone (for tests).
std::string RenderReportHtml(const ReportData& data);

// How many families the charts draw by name (the rest are summed as "Other").
inline constexpr int kReportTopFamilies = 6;
// How many leading families (by ecosystem downloads) list their top derivative repos, and how many
// each.
inline constexpr int kReportTopRepoFamilies = 3;
inline constexpr size_t kReportTopDerivatives = 5;

}  // namespace hubcensus

#endif  // HUBCENSUS_EMBEDDED_REPORT_H_
