#include <cstdio>

#include "aggregator/census_query.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/tls.h"

namespace hubcensus::cli {

int RunQuery(const Args& args) {
  aggregator::QueryOptions o;
  FlagSet flags(
      "hubcensus query families|series|shares|crossover|top|lineage|crawls [flags]",
      "Queries the census of committed crawls, from a running aggregator (--aggregator) or "
      "straight from its data folder (--data_dir; works while the aggregator runs).");
  flags.String("aggregator", &o.aggregator, "host:port of a running aggregator");
  flags.String("data_dir", &o.data_dir, "the aggregator's data folder, read directly");
  flags.String("date", &o.date, "YYYY-MM-DD of a committed crawl; default: the latest");
  flags.String("crawl_id", &o.crawl_id, "a committed crawl id instead of --date");
  flags.String("families", &o.families_file,
               "ad-hoc families textproto: figures computed from the crawl's snapshot");
  flags.String("format", &o.format, "table, csv or json");
  flags.String("metric", &o.metric,
               "series/crossover: first_party_repos, first_party_downloads_all_time, "
               "first_party_downloads_30d, ecosystem_downloads_all_time, derivatives, "
               "derivatives_<relation>, downloads_in_period");
  flags.StringList("family", &o.families, "series: a family (repeatable); default: every family");
  flags.StringList("region", &o.regions, "series: a region (repeatable) instead of families");
  flags.String("from", &o.from, "series/crossover: first date; shares: first month YYYY-MM");
  flags.String("to", &o.to, "series/crossover: last date; shares: last month YYYY-MM");
  flags.String("a", &o.a, "crossover: the family that overtakes");
  flags.String("b", &o.b, "crossover: the family overtaken");
  flags.String("top_family", &o.family, "top: the family");
  flags.Int("k", &o.k, "top: how many repos (1..1000)");
  flags.Bool("first_party_only", &o.first_party_only, "top: the family's own repos only");
  flags.String("order_by", &o.order_by, "top: downloads_all_time or downloads_30d");
  flags.String("repo", &o.repo, "lineage: the repo id (namespace/name)");
  RegisterClientTlsFlags(flags, &o.tls);
  std::vector<std::string> positional;
  if (auto code = ParseFlagsOrExit(flags, args, &positional)) return *code;
  if (positional.size() != 1) {
    std::fprintf(stderr,
                 "hubcensus query: give one of families, series, shares, crossover, top, "
                 "lineage, crawls (see --help)\n");
    return 2;
  }
  o.kind = positional[0];
  // `query top --family=Qwen` reads naturally: one --family names the top family.
  if (o.kind == "top" && o.family.empty() && o.families.size() == 1) o.family = o.families[0];
  auto out = aggregator::RunCensusQuery(o);
  if (!out.ok()) {
    std::fprintf(stderr, "hubcensus query %s: %s\n", o.kind.c_str(),
                 out.status().ToString().c_str());
    return out.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::fwrite(out->data(), 1, out->size(), stdout);
  return 0;
}

}  // namespace hubcensus::cli
