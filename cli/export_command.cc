#include <cstdio>

#include "aggregator/census_query.h"
#include "cli/census_source_flags.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/tls.h"

namespace hubcensus::cli {

int RunExport(const Args& args) {
  aggregator::ExportOptions o;
  FlagSet flags(
      "hubcensus export (--data_dir=DIR | --aggregator=HOST:PORT) [--date=YYYY-MM-DD] "
      "[--format=jsonl|csv] [--out=FILE]",
      "Writes every repo snapshot of a committed crawl, sorted by id, from the aggregator's data\n"
      "folder (--data_dir; works while the aggregator runs) or from a running aggregator\n"
      "(--aggregator, the Census API's Export stream). Give one of the two: the bytes are the\n"
      "same either way.");
  RegisterCensusSourceFlags(flags, &o.data_dir, &o.aggregator);
  RegisterCrawlChoiceFlags(flags, &o.date, &o.crawl_id);
  flags.String("format", &o.format,
               "jsonl (one JSON object per repo) or csv; both name fields in snake_case");
  flags.String("out", &o.out, "output file (written atomically); default: stdout");
  RegisterClientTlsFlags(flags, &o.tls);
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  auto n = aggregator::RunExport(o);
  if (!n.ok()) {
    std::fprintf(stderr, "hubcensus export: %s\n", n.status().ToString().c_str());
    return n.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  if (!o.out.empty() && o.out != "-") {
    std::fprintf(stderr, "exported %lld repos to %s\n", static_cast<long long>(*n), o.out.c_str());
  }
  return 0;
}

}  // namespace hubcensus::cli
