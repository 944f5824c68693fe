// hubcensus report: the HTML/SVG/CSV report from any store.
#include <cstdio>

#include "aggregator/census_client.h"
#include "cli/census_source_flags.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/tls.h"
#include "config/family_config.h"
#include "embedded/report.h"

namespace hubcensus::cli {

int RunReport(const Args& args) {
  std::string data_dir, aggregator_address, out, families;
  FlagSet flags(
      "hubcensus report (--data_dir=DIR | --aggregator=ADDR) --out=DIR2",
      "Writes DIR2/index.html (a methodology; SVG charts with values on hover: cumulative\n"
      "first-party downloads with every crossover among the plotted families, the same\n"
      "on a log scale, monthly new-derivative shares, regions over time; the top\n"
      "derivative repos of the leading families; a sortable family table) and CSV files\n"
      "beside it, from every committed crawl of a store. Works offline.");
  RegisterCensusSourceFlags(flags, &data_dir, &aggregator_address);
  flags.String("out", &out, "the report folder (created)");
  flags.String("families", &families, "families file (default: the embedded one)");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  if (out.empty() || data_dir.empty() == aggregator_address.empty()) {
    std::fprintf(stderr, "hubcensus report: give --out and one of --data_dir or --aggregator\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<aggregator::CensusClient>> census;
  if (!aggregator_address.empty()) {
    census = aggregator::CensusClient::Connect(aggregator_address, TlsOptions());
  } else {
    auto config = LoadFamilyConfigOrDefault(families);
    if (!config.ok()) {
      std::fprintf(stderr, "hubcensus report: %s\n",
                   std::string(config.status().message()).c_str());
      return 2;
    }
    census = aggregator::CensusClient::OpenDataDir(data_dir, *config);
  }
  if (!census.ok()) {
    std::fprintf(stderr, "hubcensus report: %s\n", std::string(census.status().message()).c_str());
    return census.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  auto data = GatherReportData(**census);
  if (!data.ok()) {
    std::fprintf(stderr, "hubcensus report: %s\n", std::string(data.status().message()).c_str());
    return 1;
  }
  if (auto s = WriteReport(*data, out); !s.ok()) {
    std::fprintf(stderr, "hubcensus report: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("report: %s/index.html (%zu crawls)\n", out.c_str(), data->crawls.size());
  return 0;
}

}  // namespace hubcensus::cli
