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

// Runs one query; returns what to print. Errors keep the server's code and message.
absl::StatusOr<std::string> RunCensusQuery(const QueryOptions& options);

struct ExportOptions {
  std::string data_dir;
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
