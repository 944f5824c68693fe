#include <cstdio>

#include "aggregator/census_query.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/tls.h"

namespace hubcensus::cli {

int RunAggregator(const Args& args) {
  aggregator::AggregatorServerOptions o;
  FlagSet flags("hubcensus aggregator --data_dir=DIR [flags]",
                "Serves the snapshot store (SnapshotStore: crawler batches, coordinator commits) "
                "and the Census query API over gRPC. Prints `aggregator listening on HOST:PORT`.");
  flags.String("data_dir", &o.data_dir, "the store's RocksDB folder (created when missing)");
  flags.String("listen", &o.listen, "host:port to serve on; port 0 picks a free port");
  flags.String(
      "families", &o.families_file,
      "families textproto (FamilyConfig); default: the embedded config/families.textproto");
  flags.Int("metrics_port", &o.metrics_port, "Prometheus /metrics port; 0: off");
  RegisterServerTlsFlags(flags, &o.tls);
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  absl::Status s = aggregator::ServeAggregator(o);
  if (!s.ok()) {
    std::fprintf(stderr, "hubcensus aggregator: %s\n", s.ToString().c_str());
    return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

}  // namespace hubcensus::cli
