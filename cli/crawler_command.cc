#include <cstdio>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "common/flags.h"
#include "common/grpc_server.h"
#include "common/tls.h"
#include "common/worker_token.h"
#include "crawler/crawler_worker.h"
#include "hub/hub_client.h"

namespace hubcensus::cli {

int RunCrawler(const Args& args) {
  std::string coordinator, store, worker_id, hf_token_file, hub_url, hub_ca_file;
  std::string worker_token_file;
  int64_t parallelism = 4, metrics_port = 0, drain_seconds = 1;
  FlagSet flags("hubcensus crawler --coordinator=ADDR --store=ADDR [flags]",
                "Runs a crawler worker: leases work from the coordinator, fetches it from the Hub "
                "within the lease's request budget, writes the snapshots to the store and "
                "completes the lease. SIGTERM finishes or hands back the leases in flight, then "
                "exits 0. The Hub token comes from --hf_token_file or $HF_TOKEN.");
  flags.String("coordinator", &coordinator, "the coordinator's gRPC address host:port (required)");
  flags.String("store", &store, "the aggregator's SnapshotStore gRPC address host:port (required)");
  flags.Int("parallelism", &parallelism, "leases in flight at once");
  flags.String("worker_id", &worker_id, "name in leases and logs (default: host-pid-n)");
  flags.String("hf_token_file", &hf_token_file,
               "file holding the Hub token (default: $HF_TOKEN; none: anonymous)");
  flags.String("hub_url", &hub_url,
               "Hub endpoint for work items that name none (default: $HF_ENDPOINT, else "
               "https://huggingface.co)");
  flags.String("hub_ca_file", &hub_ca_file,
               "PEM file of the CA certificates trusted for the Hub's TLS certificate, e.g. a "
               "corporate TLS proxy's CA or a private Hub mirror's (default: the system store; "
               "verification stays on either way)");
  flags.Int("drain_seconds", &drain_seconds,
            "after SIGTERM, how long leases in flight may run before they are handed back");
  flags.Int("metrics_port", &metrics_port, "Prometheus /metrics port (0: off)");
  flags.String("worker_token_file", &worker_token_file,
               "file holding the worker token, sent to the coordinator and the store when they "
               "require one (default: none)");
  TlsOptions tls;  // to the coordinator and the store: --tls_ca, and --tls_cert/--tls_key for mTLS
  RegisterClientTlsFlags(flags, &tls);
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;

  auto usage = [](const std::string& message) {
    std::fprintf(stderr, "hubcensus crawler: %s\n", message.c_str());
    return 2;
  };
  if (coordinator.empty()) return usage("--coordinator: required (host:port)");
  if (store.empty()) return usage("--store: required (host:port)");
  if (parallelism < 1 || parallelism > 256) return usage("--parallelism: must be 1 to 256");
  if (drain_seconds < 0) return usage("--drain_seconds: must not be negative");
  absl::StatusOr<std::string> token = hub::ResolveHubToken(hf_token_file);
  if (!token.ok()) return usage(std::string(token.status().message()));
  absl::StatusOr<std::string> endpoint = hub::ResolveHubEndpoint(hub_url);
  if (!endpoint.ok()) return usage(std::string(endpoint.status().message()));
  if (!hub_ca_file.empty()) {
    absl::Status ca = hub::CheckCaFile(hub_ca_file);
    if (!ca.ok()) return usage(absl::StrCat("--hub_ca_file=", ca.message()));
  }

  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(tls);
  if (!credentials.ok()) return usage(std::string(credentials.status().message()));

  std::string worker_token;
  if (!worker_token_file.empty()) {
    auto read = ReadSecretFile(worker_token_file);
    if (!read.ok()) return usage(absl::StrCat("--worker_token_file: ", read.status().message()));
    worker_token = *read;
  }

  crawler::CrawlerWorkerOptions options;
  options.coordinator_target = coordinator;
  options.store_target = store;
  options.coordinator_channel = MakeWorkerChannel(coordinator, *credentials, worker_token);
  options.store_channel = MakeWorkerChannel(store, *credentials, worker_token);
  options.worker_id = worker_id;
  options.parallelism = static_cast<int>(parallelism);
  options.hub_token = *token;
  options.default_hub_url = *endpoint;
  options.hub_ca_file = hub_ca_file;
  options.drain_timeout = absl::Seconds(drain_seconds);
  return crawler::RunCrawlerUntilShutdown(std::move(options), metrics_port);
}

}  // namespace hubcensus::cli
