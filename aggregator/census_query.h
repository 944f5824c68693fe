// What the `hubcensus query` and `export` subcommands do, behind their flags: ask the Census API
// through the one CensusClient (a running aggregator, or its data folder opened in-process) and
// format the answer.
#ifndef HUBCENSUS_AGGREGATOR_CENSUS_QUERY_H_
#define HUBCENSUS_AGGREGATOR_CENSUS_QUERY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "aggregator/census_client.h"
#include "common/tls.h"

namespace hubcensus::aggregator {

struct QueryOptions {
  std::string kind;        // families | series | shares | crossover | top | lineage | crawls
  std::string aggregator;  // host:port of a running aggregator, or
  std::string data_dir;    // its data folder (read through a RocksDB secondary instance)
  std::string date;        // YYYY-MM-DD of a committed crawl; empty: the latest
  std::string crawl_id;
  std::string families_file;     // ad hoc families config (textproto), computed from the snapshot
  std::string format = "table";  // table | csv | json
  // series / crossover
  std::string metric;
  std::vector<std::string> families;
  std::vector<std::string> regions;
  std::string from;  // series, crossover: YYYY-MM-DD; shares: YYYY-MM
  std::string to;
  std::string a;
  std::string b;
  // top
  std::string family;
  int64_t k = 10;
  bool first_party_only = false;
  std::string order_by;
  // lineage
  std::string repo;
  TlsOptions tls;  // to --aggregator: --tls_ca, and --tls_cert/--tls_key for mTLS
};

// Runs one query; returns what to print. Errors keep the server's code and message, with what
// helps next: the nearest committed dates when --date has no crawl, which service answered when
// --aggregator is not an aggregator.
absl::StatusOr<std::string> RunCensusQuery(const QueryOptions& options);

// --date for a query: "latest" or empty -> "" (the latest crawl), "today" -> today's UTC date,
// YYYY-MM-DD as given; anything else is an error naming the flag.
absl::StatusOr<std::string> QueryDate(const std::string& date);
// A family name as the served families spell it: exact, else the one case-insensitive match;
// else an error that suggests the closest name ("did you mean Qwen?"). `flag` names the flag.
absl::StatusOr<std::string> ResolveFamilyName(const std::string& flag, const std::string& name,
                                              const std::vector<std::string>& known);
// "nearest committed crawls: 2025-10-31, 2025-11-30" for a date with none.
std::string NearestDatesHint(const std::string& date, const std::vector<std::string>& dates);

struct ExportOptions {
  std::string aggregator;  // host:port of a running aggregator (Census.Export), or
  std::string data_dir;    // its data folder, read in-process: the same bytes either way
  std::string date;
  std::string crawl_id;
  std::string format = "jsonl";  // jsonl | csv
  std::string out;               // empty or "-": stdout
  TlsOptions tls;                // to --aggregator
};
absl::StatusOr<int64_t> RunExport(const ExportOptions& options);

}  // namespace hubcensus::aggregator

#endif  // HUBCENSUS_AGGREGATOR_CENSUS_QUERY_H_
