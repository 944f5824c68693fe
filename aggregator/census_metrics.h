// The family figures of one crawl (shared/design.md, "Metric definitions"), computed in one pass
// over its snapshot: what commit materialises and what ad-hoc queries compute.
#ifndef HUBCENSUS_AGGREGATOR_CENSUS_METRICS_H_
#define HUBCENSUS_AGGREGATOR_CENSUS_METRICS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hubcensus/v1/census.pb.h"
#include "hubcensus/v1/config.pb.h"
#include "store/crawl_snapshot.h"

namespace hubcensus::aggregator {

struct CensusFigures {
  v1::FamiliesResponse families;      // families in config order, then the five regions
  v1::SharesResponse shares;          // every month from the first counted one to the crawl's
  std::vector<v1::FamilyRollup> top;  // per family (config order): four top lists of top_k
  int64_t lineage_over_budget = 0;
};

// `config` must be validated; defaults (new_model_filter, max_steps) are applied here.
// `date` is the crawl's YYYY-MM-DD: shares stop at its month.
absl::StatusOr<CensusFigures> ComputeCensus(const store::CrawlSnapshot& snapshot,
                                            const v1::FamilyConfig& config,
                                            const std::string& crawl_id, const std::string& date,
                                            int top_k);

// Stable across processes: decides whether materialised rollups fit the served config (and the
// current rules of the figures).
uint64_t FamilyConfigFingerprint(const v1::FamilyConfig& config);

}  // namespace hubcensus::aggregator

#endif  // HUBCENSUS_AGGREGATOR_CENSUS_METRICS_H_
