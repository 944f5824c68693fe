#include "coordinator/internal/coordinator_metrics.h"

#include "common/metrics.h"

namespace hubcensus::coordinator {

CoordinatorMetrics& CoordinatorMetrics::Get() {
  static CoordinatorMetrics* m = [] {
    auto registry = MetricsRegistry();
    auto& leases = prometheus::BuildCounter()
                       .Name("hubcensus_coordinator_leases_total")
                       .Help("Lease events by kind")
                       .Register(*registry);
    auto& commits = prometheus::BuildCounter()
                        .Name("hubcensus_coordinator_commits_total")
                        .Help("Commit attempts sent to the store, by result")
                        .Register(*registry);
    auto& budget = prometheus::BuildCounter()
                       .Name("hubcensus_coordinator_budget_granted_requests_total")
                       .Help("Hub requests granted to leases")
                       .Register(*registry);
    auto& open = prometheus::BuildGauge()
                     .Name("hubcensus_coordinator_open_crawls")
                     .Help("Crawls RUNNING or COMMITTING")
                     .Register(*registry);
    auto& entries = prometheus::BuildCounter()
                        .Name("hubcensus_coordinator_entries_total")
                        .Help(
                            "Listing entries reported by workers that the census leaves out, "
                            "by kind (rejected: unreadable entries; private_skipped)")
                        .Register(*registry);
    auto& shrinks = prometheus::BuildCounter()
                        .Name("hubcensus_coordinator_limit_shrinks_total")
                        .Help(
                            "Listing requests retried with a smaller limit after a 504 or a "
                            "timeout, as workers reported them")
                        .Register(*registry);
    auto& unreadable = prometheus::BuildCounter()
                           .Name("hubcensus_coordinator_unreadable_total")
                           .Help("Per-repo detail answers that could not be read, by reason")
                           .Register(*registry);
    auto& failures = prometheus::BuildCounter()
                         .Name("hubcensus_coordinator_crawl_failures_total")
                         .Help("Crawls failed, by cause")
                         .Register(*registry);
    // Every series exists from the start (at 0), so that rates and alerts see it.
    for (const char* reason : {"401", "401_gated", "403", "404"}) {
      unreadable.Add({{"reason", reason}});
    }
    for (const char* cause : {"item_failures", "cursor_loop", "empty_pages", "foreign_origin",
                              "rejected_fraction", "unreachable_hub"}) {
      failures.Add({{"cause", cause}});
    }
    return new CoordinatorMetrics{leases,
                                  leases.Add({{"event", "granted"}}),
                                  leases.Add({{"event", "expired"}}),
                                  leases.Add({{"event", "completed"}}),
                                  leases.Add({{"event", "failed"}}),
                                  commits,
                                  commits.Add({{"result", "ok"}}),
                                  commits.Add({{"result", "refused"}}),
                                  budget.Add({}),
                                  open.Add({}),
                                  leases.Add({{"event", "peer_unavailable"}}),
                                  leases.Add({{"event", "connection_failure"}}),
                                  entries,
                                  entries.Add({{"kind", "rejected"}}),
                                  entries.Add({{"kind", "private_skipped"}}),
                                  shrinks.Add({}),
                                  unreadable,
                                  failures};
  }();
  return *m;
}

}  // namespace hubcensus::coordinator
