#include <cstdio>

#include "aggregator/census_server.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/tls.h"
#include "common/worker_token.h"

namespace hubcensus::cli {

int RunAggregator(const Args& args) {
  aggregator::AggregatorServerOptions o;
  std::string worker_token_file;
  FlagSet flags(
      "hubcensus aggregator --data_dir=DIR [--listen=HOST:PORT] [--ingest_listen=HOST:PORT] "
      "[flags]",
      "Serves the snapshot store (SnapshotStore: crawler batches, coordinator commits) and the\n"
      "Census query API over gRPC, each listener with grpc.health.v1 and the TLS flags below.\n"
      "Without --ingest_listen both services share --listen (one port: one machine, tests);\n"
      "with it, SnapshotStore is served only on --ingest_listen and Census only on --listen, so\n"
      "the network can keep Census clients away from ingest. Prints\n"
      "`aggregator ingest listening on HOST:PORT` (with --ingest_listen), then\n"
      "`aggregator listening on HOST:PORT` once serving, until SIGTERM/SIGINT.");
  flags.String("data_dir", &o.data_dir, "the store's RocksDB folder (created when missing)");
  flags.String("listen", &o.listen,
               "host:port serving Census queries, and also SnapshotStore ingest unless "
               "--ingest_listen is given; port 0 picks a free port. Default: loopback only "
               "(127.0.0.1:7003); give 0.0.0.0:PORT to serve other machines");
  flags.String("ingest_listen", &o.ingest_listen,
               "host:port serving only SnapshotStore ingest (crawlers, coordinator); port 0 picks "
               "a free port. Default: none, ingest is served on --listen");
  flags.String(
      "families", &o.families_file,
      "families textproto (FamilyConfig); default: the embedded config/families.textproto");
  flags.Int("metrics_port", &o.metrics_port, "Prometheus /metrics port; 0: off");
  flags.String("worker_token_file", &worker_token_file,
               "file holding the worker token: SnapshotStore ingest (Write, Commit, Abort) then "
               "needs it from crawlers and the coordinator (default: none, not checked)");
  RegisterServerTlsFlags(flags, &o.tls);
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  if (!worker_token_file.empty()) {
    auto token = ReadSecretFile(worker_token_file);
    if (!token.ok()) {
      std::fprintf(stderr, "hubcensus aggregator: --worker_token_file: %s\n",
                   std::string(token.status().message()).c_str());
      return 2;
    }
    // ServeAggregator builds its servers itself: the token gates every SnapshotStore they serve.
    RequireWorkerTokenForSnapshotStores(*token);
  }
  absl::Status s = aggregator::ServeAggregator(o);
  if (!s.ok()) {
    std::fprintf(stderr, "hubcensus aggregator: %s\n", s.ToString().c_str());
    return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}

}  // namespace hubcensus::cli
