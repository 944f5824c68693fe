// `hubcensus demo`: the whole product on one machine. A simulated Hub (scenario "article") is
// crawled at the end of every month, each census is checked against the simulator's ground
// truth, and the report is written.
#ifndef HUBCENSUS_EMBEDDED_DEMO_H_
#define HUBCENSUS_EMBEDDED_DEMO_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hubcensus {

struct DemoOptions {
  int64_t repos = 100000;
  uint64_t seed = 1;
  std::string out_dir = "hubcensus-demo";
  int workers = 2;
  std::string from_month = "2024-01";
  std::string to_month = "2025-11";
};

struct DemoResult {
  int crawls = 0;
  int64_t repos_last_crawl = 0;
  std::vector<std::string> mismatches;  // "2025-10-31 families[Qwen]...: ours vs truth"
  std::string report_path;
  std::string headline;  // what the demo printed
};

// The last day of each month from `from_month` to `to_month` (YYYY-MM), as YYYY-MM-DD.
absl::StatusOr<std::vector<std::string>> MonthEnds(const std::string& from_month,
                                                   const std::string& to_month);

// Runs the demo, printing progress to stderr and the headline to `out`.
absl::StatusOr<DemoResult> RunDemo(const DemoOptions& options, FILE* out);

}  // namespace hubcensus

#endif  // HUBCENSUS_EMBEDDED_DEMO_H_
