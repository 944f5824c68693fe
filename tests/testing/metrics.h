// Reading this process's Prometheus counters in tests.
#ifndef HUBCENSUS_TESTS_TESTING_METRICS_H_
#define HUBCENSUS_TESTS_TESTING_METRICS_H_

#include <map>
#include <string>

#include "common/metrics.h"

namespace hubcensus::testing {

// The value of the counter of `family` whose labels include every one of `labels`; 0 when no such
// counter was ever incremented.
inline double CounterValue(const std::string& family,
                           const std::map<std::string, std::string>& labels = {}) {
  for (const auto& f : MetricsRegistry()->Collect()) {
    if (f.name != family) continue;
    for (const auto& metric : f.metric) {
      size_t matched = 0;
      for (const auto& label : metric.label) {
        auto it = labels.find(label.name);
        if (it != labels.end() && it->second == label.value) ++matched;
      }
      if (matched == labels.size()) return metric.counter.value;
    }
  }
  return 0;
}

}  // namespace hubcensus::testing

#endif  // HUBCENSUS_TESTS_TESTING_METRICS_H_
