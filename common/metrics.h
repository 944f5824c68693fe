// Prometheus metrics: one process-wide registry, exposed over HTTP on --metrics_port.
#ifndef HUBCENSUS_COMMON_METRICS_H_
#define HUBCENSUS_COMMON_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace hubcensus {

std::shared_ptr<prometheus::Registry> MetricsRegistry();

// Serves GET /metrics for a registry. Bind "127.0.0.1:0" to pick a free port (see port()).
class MetricsExposer {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsExposer>> Start(
      const std::string& bind_address,
      std::shared_ptr<prometheus::Registry> registry = MetricsRegistry());
  int port() const { return port_; }

 private:
  MetricsExposer() = default;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

// --metrics_port: 0 means off for production roles; tests pass -1 for "pick a free port".
// Returns nullptr when off. Binds 0.0.0.0 (Prometheus scrapes from another pod).
absl::StatusOr<std::unique_ptr<MetricsExposer>> StartMetricsIfRequested(int64_t metrics_port);

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_METRICS_H_
