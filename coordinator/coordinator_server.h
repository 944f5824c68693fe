// `hubcensus coordinator` as a process: the CoordinatorService on a GrpcServer, its background
// ticks, metrics, and a graceful stop on SIGTERM.
#ifndef HUBCENSUS_COORDINATOR_COORDINATOR_SERVER_H_
#define HUBCENSUS_COORDINATOR_COORDINATOR_SERVER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tls.h"
#include "coordinator/coordinator.h"

namespace hubcensus::coordinator {

struct CoordinatorServerOptions {
  CoordinatorOptions coordinator;
  std::string listen_address = "127.0.0.1:7001";  // the CLI default; manifests pass --listen
  int64_t metrics_port = 0;
  // The gRPC port's TLS/mTLS (and, as a client, the store channel's unless
  // coordinator.store_credentials is set), plus the plaintext health-probe port.
  TlsOptions tls;
};

// Serves until SIGTERM/SIGINT. Prints `coordinator listening on HOST:PORT` on stdout once
// serving. Returns the process exit code (0 after a graceful stop, 1 when it cannot start).
int RunCoordinatorServer(CoordinatorServerOptions options);

// "HH:MM" (UTC) -> minute of the day. Errors name `flag`.
absl::StatusOr<int32_t> ParseScheduleTime(absl::string_view text, absl::string_view flag);

}  // namespace hubcensus::coordinator

#endif  // HUBCENSUS_COORDINATOR_COORDINATOR_SERVER_H_
