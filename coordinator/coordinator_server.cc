#include "coordinator/coordinator_server.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/grpc_server.h"
#include "common/log.h"
#include "common/metrics.h"

namespace hubcensus::coordinator {

absl::StatusOr<int32_t> ParseScheduleTime(absl::string_view text, absl::string_view flag) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  int hh = -1, mm = -1;
  if (parts.size() != 2 || parts[0].size() != 2 || parts[1].size() != 2 ||
      !absl::SimpleAtoi(parts[0], &hh) || !absl::SimpleAtoi(parts[1], &mm) || hh < 0 || hh > 23 ||
      mm < 0 || mm > 59) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": \"", text, "\" is not a UTC time HH:MM (00:00..23:59)"));
  }
  return hh * 60 + mm;
}

int RunCoordinatorServer(CoordinatorServerOptions options) {
  auto metrics = StartMetricsIfRequested(options.metrics_port);
  if (!metrics.ok()) {
    std::fprintf(stderr, "hubcensus coordinator: --metrics_port: %s\n",
                 std::string(metrics.status().message()).c_str());
    return 1;
  }
  auto server_credentials = MakeServerCredentials(options.tls);
  if (!server_credentials.ok()) {
    std::fprintf(stderr, "hubcensus coordinator: %s\n",
                 std::string(server_credentials.status().message()).c_str());
    return 1;
  }
  if (options.coordinator.store_credentials == nullptr) {
    auto store_credentials = MakeChannelCredentials(options.tls);
    if (!store_credentials.ok()) {
      std::fprintf(stderr, "hubcensus coordinator: %s\n",
                   std::string(store_credentials.status().message()).c_str());
      return 1;
    }
    options.coordinator.store_credentials = *store_credentials;
  }
  auto health = StartHealthProbeIfRequested(options.tls.health_port);
  if (!health.ok()) {
    std::fprintf(stderr, "hubcensus coordinator: --health_port: %s\n",
                 std::string(health.status().message()).c_str());
    return 1;
  }
  auto service = CoordinatorService::Open(options.coordinator);
  if (!service.ok()) {
    std::fprintf(stderr, "hubcensus coordinator: %s\n",
                 std::string(service.status().message()).c_str());
    return 1;
  }
  GrpcServerOptions server_options;
  server_options.listen_address = options.listen_address;
  server_options.credentials = *server_credentials;
  auto server = GrpcServer::Start(server_options, {service->get()});
  if (!server.ok()) {
    std::fprintf(stderr, "hubcensus coordinator: --listen: %s\n",
                 std::string(server.status().message()).c_str());
    return 1;
  }
  (*service)->StartBackground();
  std::string host = options.listen_address.substr(0, options.listen_address.rfind(':'));
  if (host.empty()) host = "0.0.0.0";
  std::printf("coordinator listening on %s:%d\n", host.c_str(), (*server)->port());
  std::fflush(stdout);
  HC_LOG(kInfo, "coordinator_serving")
      .Field("listen", absl::StrCat(host, ":", (*server)->port()))
      .Field("state_dir", options.coordinator.state_dir)
      .Field("store", options.coordinator.store_target)
      .Field("hub_url", options.coordinator.hub_url)
      .Field("hub_quota", hub::FormatHubQuota(options.coordinator.hub_quota))
      .Field("lease_ms", absl::ToInt64Milliseconds(options.coordinator.lease_duration))
      .Field("admin_token", !options.coordinator.admin_token.empty())
      .Field("worker_token", !options.coordinator.worker_token.empty())
      .Field("tls", !options.tls.cert_file.empty())
      .Field("mtls", options.tls.require_client_cert)
      .Field("health_port", *health ? (*health)->port() : 0)
      .Field("metrics_port", *metrics ? (*metrics)->port() : 0);
  // Coordinator RPCs are short: a second of grace keeps the whole stop within 2 s of SIGTERM.
  (*server)->ServeUntilShutdownRequested(absl::Seconds(1));
  if (*health) (*health)->Shutdown();
  (*service)->StopBackground();
  HC_LOG(kInfo, "coordinator_stopped");
  return 0;
}

}  // namespace hubcensus::coordinator
