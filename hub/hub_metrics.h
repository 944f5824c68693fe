// Prometheus metrics of the Hub client, in the process-wide registry (common/metrics.h), shared
// by every client in the process.
#ifndef HUBCENSUS_HUB_HUB_METRICS_H_
#define HUBCENSUS_HUB_HUB_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>

#include <string>

namespace hubcensus::hub {

struct HubMetrics {
  prometheus::Family<prometheus::Counter>* requests;  // {code}: "200", "429", "transport_error"
  prometheus::Family<prometheus::Counter>* retries;   // {cause}
  prometheus::Counter* rate_limited;                  // 429 answers
  prometheus::Counter* response_bytes;
  prometheus::Histogram* request_seconds;
  // Answers received (any status), by the protocol they came in: {http_version} "1.1", "2".
  prometheus::Family<prometheus::Counter>* responses;
  // Listing requests re-sent with a smaller `limit` after a 504 or a timeout.
  prometheus::Counter* limit_shrinks;
  static HubMetrics& Get();
};

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_HUB_METRICS_H_
