#include "common/metrics.h"

#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace hubcensus {

std::shared_ptr<prometheus::Registry> MetricsRegistry() {
  static auto* registry =
      new std::shared_ptr<prometheus::Registry>(std::make_shared<prometheus::Registry>());
  return *registry;
}

absl::StatusOr<std::unique_ptr<MetricsExposer>> MetricsExposer::Start(
    const std::string& bind_address, std::shared_ptr<prometheus::Registry> registry) {
  std::unique_ptr<MetricsExposer> out(new MetricsExposer());
  try {
    out->exposer_ = std::make_unique<prometheus::Exposer>(bind_address, 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics endpoint: cannot listen on ", bind_address, ": ", e.what()));
  }
  out->exposer_->RegisterCollectable(registry);
  auto ports = out->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("metrics endpoint: no listening port for ", bind_address));
  }
  out->port_ = ports.front();
  return out;
}

absl::StatusOr<std::unique_ptr<MetricsExposer>> StartMetricsIfRequested(int64_t metrics_port) {
  if (metrics_port == 0) return std::unique_ptr<MetricsExposer>();
  std::string bind = metrics_port < 0 ? "127.0.0.1:0" : absl::StrCat("0.0.0.0:", metrics_port);
  auto exposer = MetricsExposer::Start(bind);
  if (exposer.ok()) {
    HC_LOG(kInfo, "metrics_listening").Field("port", (*exposer)->port());
  }
  return exposer;
}

}  // namespace hubcensus
