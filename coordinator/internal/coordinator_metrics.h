// The coordinator's Prometheus series, registered once (every series exists from the start).
#ifndef HUBCENSUS_COORDINATOR_INTERNAL_COORDINATOR_METRICS_H_
#define HUBCENSUS_COORDINATOR_INTERNAL_COORDINATOR_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

namespace hubcensus::coordinator {

struct CoordinatorMetrics {
  prometheus::Family<prometheus::Counter>& leases;
  prometheus::Counter& leases_granted;
  prometheus::Counter& lease_expiries;
  prometheus::Counter& items_completed;
  prometheus::Counter& item_failures;
  prometheus::Family<prometheus::Counter>& commits;
  prometheus::Counter& commits_ok;
  prometheus::Counter& commits_refused;
  prometheus::Counter& budget_granted;
  prometheus::Gauge& open_crawls;
  prometheus::Counter& peer_unavailable;
  prometheus::Counter& connection_failures;
  prometheus::Family<prometheus::Counter>& entries;
  prometheus::Counter& rejected_entries;
  prometheus::Counter& private_skipped;
  prometheus::Counter& limit_shrinks;
  prometheus::Family<prometheus::Counter>& unreadable;
  prometheus::Family<prometheus::Counter>& crawl_failures;

  static CoordinatorMetrics& Get();
};

}  // namespace hubcensus::coordinator

#endif  // HUBCENSUS_COORDINATOR_INTERNAL_COORDINATOR_METRICS_H_
