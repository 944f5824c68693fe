#include <cstdio>

#include "aggregator/census_query.h"
#include "cli/census_source_flags.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/tls.h"

namespace hubcensus::cli {

int RunQuery(const Args& args) {
  aggregator::QueryOptions o;
  FlagSet flags(
      "hubcensus query families|series|shares|crossover|top|lineage|crawls [flags]",
      "Queries the census of committed crawls, from a running aggregator (--aggregator) or\n"
      "straight from its data folder (--data_dir; works while the aggregator runs). Give one\n"
      "of the two. Kinds, and the flags each requires (marked REQUIRED):\n"
      "  families   every family's and region's figures at one crawl (--date, --crawl_id)\n"
      "  series     one metric over every crawl, a line per family (--family, repeatable) or\n"
      "             per region (--region, repeatable), not both; --metric, --from, --to\n"
      "  shares     each month's new derivative models by family, from one crawl (--from and\n"
      "             --to as YYYY-MM); says how many placeholder-dated repos were left out\n"
      "  crossover  the first crawl where family --a (REQUIRED) passes --b (REQUIRED) in\n"
      "             --metric; when none, who leads at the last crawl and by how much\n"
      "  top        a family's (--family REQUIRED) most downloaded repos: --k (1..1000),\n"
      "             --first_party_only, --order_by\n"
      "  lineage    the parent walk of --repo (REQUIRED) to its family\n"
      "  crawls     the committed crawls\n"
      "Tables show rounded figures (385.3M, 37.1%, ISO times); csv and json keep exact values.");
  RegisterCensusSourceFlags(flags, &o.data_dir, &o.aggregator);
  RegisterCrawlChoiceFlags(flags, &o.date, &o.crawl_id);
  flags.String("families", &o.families_file,
               "ad-hoc families textproto: figures computed from the crawl's snapshot");
  flags.String("format", &o.format, "table, csv or json");
  flags.String("metric", &o.metric,
               "series/crossover: first_party_repos, first_party_downloads_all_time, "
               "first_party_downloads_30d, ecosystem_downloads_all_time, derivatives, "
               "derivatives_<relation>, downloads_in_period");
  flags.StringList("family", &o.families,
                   "series: a family (repeatable; default: every family); top: the family "
                   "(REQUIRED). Case does not matter");
  flags.StringList("region", &o.regions, "series: a region (repeatable) instead of --family");
  flags.String("from", &o.from, "series/crossover: first date; shares: first month YYYY-MM");
  flags.String("to", &o.to, "series/crossover: last date; shares: last month YYYY-MM");
  flags.String("a", &o.a, "crossover: the family that overtakes (REQUIRED)");
  flags.String("b", &o.b, "crossover: the family overtaken (REQUIRED)");
  flags.String("top_family", &o.family, "top: the same as --family (an older name)");
  flags.Int("k", &o.k, "top: how many repos (1..1000)");
  flags.Bool("first_party_only", &o.first_party_only, "top: the family's own repos only");
  flags.String("order_by", &o.order_by, "top: downloads_all_time or downloads_30d");
  flags.String("repo", &o.repo, "lineage: the repo id, namespace/name (REQUIRED)");
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
  // `query top --family=Qwen`: one --family names the top family.
  if (o.kind == "top") {
    if (o.families.size() > 1 || (!o.family.empty() && !o.families.empty())) {
      std::fprintf(stderr, "hubcensus query top: give one --family\n");
      return 2;
    }
    if (o.family.empty() && o.families.size() == 1) o.family = o.families[0];
  }
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
