#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/tls.h"
#include "coordinator/coordinator_server.h"
#include "hub/hub_quota.h"

namespace hubcensus::cli {

int RunCoordinator(const Args& args) {
  using coordinator::CoordinatorServerOptions;
  std::string state_dir, store, hub_url, hub_quota = "500/300", admin_token_file, schedule;
  std::string worker_token_file, unreachable_hub_timeout = "60s";
  double max_rejected_fraction = 0.01;
  // Loopback unless told otherwise (the deploy manifests pass --listen=0.0.0.0:7001).
  std::string listen = "127.0.0.1:7001";
  int64_t lease_seconds = 30, max_item_failures = 5, metrics_port = 0;
  FlagSet flags("hubcensus coordinator --state_dir=DIR --store=ADDR [flags]",
                "Serves the Coordinator: plans crawls, leases work items to crawler workers with "
                "fences, spends one request budget per Hub endpoint, keeps its state in RocksDB "
                "and commits finished crawls to the store.");
  flags.String("state_dir", &state_dir, "the coordinator's RocksDB folder (required)");
  flags.String("store", &store, "the aggregator's SnapshotStore gRPC address host:port (required)");
  flags.String("listen", &listen,
               "gRPC listen address host:port (port 0: a free port, printed). Default: loopback "
               "only (127.0.0.1:7001); give 0.0.0.0:PORT to serve other machines");
  flags.String("hub_url", &hub_url, "Hub endpoint for crawls that name none");
  flags.Int("lease_seconds", &lease_seconds, "lease duration; workers renew at a third");
  flags.Int("max_item_failures", &max_item_failures,
            "non-retryable failures of one item that fail the crawl");
  flags.String("hub_quota", &hub_quota,
               "requests/window_seconds before the Hub reports its policy (500/300: anonymous), "
               "or off (unlimited)");
  flags.String("admin_token_file", &admin_token_file,
               "file holding the token operator RPCs must send (authorization: Bearer)");
  flags.String("worker_token_file", &worker_token_file,
               "file holding the worker token: worker RPCs (leases) must send it, and the "
               "coordinator sends it with its commits to the store (default: none, not checked)");
  flags.Double("max_rejected_fraction", &max_rejected_fraction,
               "a crawl whose rejected entries exceed this fraction of its entries (repos + "
               "rejected) fails instead of committing, naming the counts by reason");
  flags.String("unreachable_hub_timeout", &unreachable_hub_timeout,
               "connection-level failures to reach the Hub (DNS, refused, TLS) lasting this long "
               "with no success in between fail the crawl (a duration: 60s, 5m)");
  flags.String("schedule", &schedule, "HH:MM (UTC): start each day's crawl at this time itself");
  flags.Int("metrics_port", &metrics_port, "Prometheus /metrics port (0: off)");
  TlsOptions tls;
  RegisterServerTlsFlags(flags, &tls);  // also the store channel's client certificate
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;

  auto usage = [](const std::string& message) {
    std::fprintf(stderr, "hubcensus coordinator: %s\n", message.c_str());
    return 2;
  };
  if (state_dir.empty()) return usage("--state_dir: required");
  if (store.empty()) return usage("--store: required (the aggregator's address)");
  if (lease_seconds < 1) return usage("--lease_seconds: must be at least 1");
  CoordinatorServerOptions options;
  options.listen_address = listen;
  options.metrics_port = metrics_port;
  options.tls = tls;
  auto& c = options.coordinator;
  c.state_dir = state_dir;
  c.store_target = store;
  c.hub_url = hub_url;
  c.lease_duration = absl::Seconds(lease_seconds);
  c.max_item_failures = static_cast<int32_t>(max_item_failures);
  auto quota = hub::ParseHubQuota(hub_quota);
  if (!quota.ok()) return usage(absl::StrCat("--hub_quota: ", quota.status().message()));
  c.hub_quota = *quota;
  if (!admin_token_file.empty()) {
    auto token = ReadSecretFile(admin_token_file);
    if (!token.ok()) return usage(absl::StrCat("--admin_token_file: ", token.status().message()));
    c.admin_token = *token;
  }
  if (!worker_token_file.empty()) {
    auto token = ReadSecretFile(worker_token_file);
    if (!token.ok()) return usage(absl::StrCat("--worker_token_file: ", token.status().message()));
    c.worker_token = *token;
  }
  if (!(max_rejected_fraction >= 0 && max_rejected_fraction <= 1)) {
    return usage(
        absl::StrCat("--max_rejected_fraction: ", max_rejected_fraction, " is outside 0..1"));
  }
  c.max_rejected_fraction = max_rejected_fraction;
  if (!absl::ParseDuration(unreachable_hub_timeout, &c.unreachable_hub_timeout) ||
      c.unreachable_hub_timeout <= absl::ZeroDuration()) {
    return usage(absl::StrCat("--unreachable_hub_timeout: \"", unreachable_hub_timeout,
                              "\" is not a positive duration (e.g. 60s, 5m)"));
  }
  if (!schedule.empty()) {
    auto minute = coordinator::ParseScheduleTime(schedule, "schedule");
    if (!minute.ok()) return usage(std::string(minute.status().message()));
    c.schedule_minute_utc = *minute;
  }
  return coordinator::RunCoordinatorServer(std::move(options));
}

}  // namespace hubcensus::cli
