// The census as people look at it: an offline HTML page with SVG charts, and CSV files beside it.
#ifndef HUBCENSUS_EMBEDDED_REPORT_H_
#define HUBCENSUS_EMBEDDED_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hubcensus/v1/census.grpc.pb.h"

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
};

// Reads what the report needs from a Census server (any committed crawls it holds).
absl::StatusOr<ReportData> GatherReportData(v1::Census::StubInterface* census);

// Writes DIR/index.html, DIR/cumulative_downloads.csv, DIR/new_derivative_share.csv,
// DIR/regions.csv and DIR/families.csv. Nothing is loaded from the network.
absl::Status WriteReport(const ReportData& data, const std::string& out_dir);

// The page alone (for tests).
std::string RenderReportHtml(const ReportData& data);

// How many families the charts draw by name (the rest are summed as "Other").
inline constexpr int kReportTopFamilies = 6;

}  // namespace hubcensus

#endif  // HUBCENSUS_EMBEDDED_REPORT_H_
