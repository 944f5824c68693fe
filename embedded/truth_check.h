// Compares what hubcensus computed with what the simulator knows: the demo's and the tests'
// proof that a crawl plus aggregation reproduces the Hub exactly.
#ifndef HUBCENSUS_EMBEDDED_TRUTH_CHECK_H_
#define HUBCENSUS_EMBEDDED_TRUTH_CHECK_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hubcensus {

// Walks two JSON documents together. Numbers compare with a relative tolerance of 1e-9 (shares
// are fractions); objects compare by key, arrays by position. Keys listed in `ignored_keys` are
// skipped (e.g. "crawl_id", which the simulator does not know). Returns the differences, each a
// path and both values ("families[3].first_party_downloads_all_time: 120 vs 121"); at most
// `max_differences`.
absl::StatusOr<std::vector<std::string>> JsonDifferences(
    absl::string_view ours, absl::string_view truth,
    const std::vector<std::string>& ignored_keys = {"crawl_id"}, int max_differences = 20);

}  // namespace hubcensus

#endif  // HUBCENSUS_EMBEDDED_TRUTH_CHECK_H_
