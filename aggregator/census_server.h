// The aggregator as a process, beside coordinator/coordinator_server.h: SnapshotStore and Census
// on gRPC listeners until SIGTERM. Also the Census service's streaming Export, and the
// in-process server that answers `--data_dir` queries through the same service.
#ifndef HUBCENSUS_AGGREGATOR_CENSUS_SERVER_H_
#define HUBCENSUS_AGGREGATOR_CENSUS_SERVER_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/sync_stream.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "aggregator/aggregator.h"
#include "common/tls.h"
#include "hubcensus/v1/census.pb.h"

namespace hubcensus::aggregator {

struct AggregatorServerOptions {
  std::string data_dir;
  // Loopback unless told otherwise: the deploy manifests pass --listen=0.0.0.0:7003.
  std::string listen = "127.0.0.1:7003";
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

// Census.Export on the server: Aggregator::Export's bytes, cut into ExportChunks of at most
// 1 MiB, the last one marked and carrying the repo count. A client that goes away stops it.
grpc::Status StreamExport(Aggregator* aggregator, const v1::ExportRequest& request,
                          grpc::ServerWriterInterface<v1::ExportChunk>* writer);

// The Census service of an aggregator opened in this process, reachable only through
// channel(): no port, no socket, the same service code and stub as over the network.
class InProcessCensusServer {
 public:
  static absl::StatusOr<std::unique_ptr<InProcessCensusServer>> Start(
      std::unique_ptr<Aggregator> aggregator);
  ~InProcessCensusServer();
  std::shared_ptr<grpc::Channel> channel();

 private:
  InProcessCensusServer() = default;
  std::unique_ptr<Aggregator> aggregator_;  // outlives server_
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace hubcensus::aggregator

#endif  // HUBCENSUS_AGGREGATOR_CENSUS_SERVER_H_
