// hubcensus demo: monthly censuses of a simulated Hub, checked against its ground truth.
#include <cstdio>

#include "cli/commands.h"
#include "common/flags.h"
#include "common/log.h"
#include "embedded/demo.h"

namespace hubcensus::cli {

int RunDemo(const Args& args) {
  DemoOptions options;
  int64_t seed = static_cast<int64_t>(options.seed), workers = options.workers;
  FlagSet flags(
      "hubcensus demo [--repos=N] [--out=DIR]",
      "Starts a simulated Hub (fakehub, scenario 'article') in this process, crawls it at the end\n"
      "of every month from 2024-01 to 2025-11 with the embedded coordinator, workers and\n"
      "aggregator, checks every census against the simulator's ground truth, writes the report\n"
      "(DIR/index.html with SVG charts, CSV files beside it) and prints the headline. Exits 0\n"
      "when every figure equals the ground truth, 1 otherwise.");
  flags.Int("repos", &options.repos, "repos in the simulated Hub (1000 to 10000000)");
  flags.String("out", &options.out_dir, "folder for the report (and its store, in DIR/data)");
  flags.Int("seed", &seed, "the simulated Hub's seed");
  flags.Int("workers", &workers, "crawler workers");
  flags.String("from_month", &options.from_month, "first month crawled, YYYY-MM");
  flags.String("to_month", &options.to_month, "last month crawled, YYYY-MM");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  // The progress lines and the headline are the demo's output; routine events would bury them.
  if (!flags.IsSet("log_level")) SetLogLevel(LogLevel::kWarning);
  options.seed = static_cast<uint64_t>(seed);
  options.workers = static_cast<int>(workers);
  auto result = RunDemo(options, stdout);
  if (!result.ok()) {
    std::fprintf(stderr, "hubcensus demo: %s\n", std::string(result.status().message()).c_str());
    return result.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return result->mismatches.empty() ? 0 : 1;
}

}  // namespace hubcensus::cli
