// What the `hubcensus aggregator`, `query` and `export` subcommands do, behind their flags:
// serve the aggregator, or ask it (over gRPC, or straight on its data folder) and format.
#ifndef HUBCENSUS_AGGREGATOR_CENSUS_QUERY_H_
#define HUBCENSUS_AGGREGATOR_CENSUS_QUERY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

// The store folder for --data_dir: DIR itself when it holds a store, else DIR/store when that
// does (the folder `hubcensus local --data_dir=DIR` was given).
std::string ResolveStoreDir(const std::string& data_dir);
// --aggregator: HOST:PORT, with an http:// or https:// scheme and a trailing '/' accepted and
// dropped (https:// needs --tls_ca, said in the error).
absl::StatusOr<std::string> AggregatorTarget(const std::string& address, const TlsOptions& tls);
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
  std::string data_dir;
  std::string aggregator;  // refused with an explanation: the Census API has no export call
  std::string date;
  std::string crawl_id;
  std::string format = "jsonl";  // jsonl | csv
  std::string out;               // empty or "-": stdout
};
absl::StatusOr<int64_t> RunExport(const ExportOptions& options);

struct AggregatorServerOptions {
  std::string data_dir;
  std::string listen = "0.0.0.0:7003";
  // host:port serving SnapshotStore only, so that ingest and queries can be told apart by port
  // (NetworkPolicies); `listen` then serves Census only. Empty: both services on `listen`.
  std::string ingest_listen;
  std::string families_file;
  int64_t metrics_port = 0;
  // --tls_cert/--tls_key/--tls_ca/--tls_require_client_cert/--health_port; TLS applies to both
  // listeners.
  TlsOptions tls;
};
// Serves SnapshotStore and Census until SIGTERM/SIGINT, then shuts every listener down
// gracefully. Once it accepts calls it prints "aggregator ingest listening on HOST:PORT" (only
// with ingest_listen) and then "aggregator listening on HOST:PORT" (the real ports when 0 was
// asked). Each listener also serves grpc.health.v1 and reflection.
absl::Status ServeAggregator(const AggregatorServerOptions& options);

}  // namespace hubcensus::aggregator

#endif  // HUBCENSUS_AGGREGATOR_CENSUS_QUERY_H_
