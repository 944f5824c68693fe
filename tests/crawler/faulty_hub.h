// An in-memory Hub for crawler tests: a createdAt-sorted listing with keyset cursors in the Link
// header, fixed-window rate limits that answer 429 beyond the quota (and count it), and injected
// faults (5xx, 429, resets, timeouts, truncated and garbled bodies, duplicate and malformed
// entries). Time is the test's SimulatedClock. Served through hub::FakeHttpTransport.
#ifndef HUBCENSUS_TESTS_CRAWLER_FAULTY_HUB_H_
#define HUBCENSUS_TESTS_CRAWLER_FAULTY_HUB_H_

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "hub/http_transport.h"

namespace hubcensus::testing {

struct FaultyHubOptions {
  std::string hub_url = "http://hub.test";
  int repos = 1000;
  int max_page_size = 1000;
  double fault_rate = 0.0;
  int64_t quota = 0;  // requests per window; 0: no limit
  int64_t window_s = 300;
  uint64_t seed = 1;
};

class FaultyHub {
 public:
  FaultyHub(FaultyHubOptions options, SimulatedClock* clock);
  hub::HttpResponse Serve(const hub::HttpRequest& request);

  // Every repo id the Hub holds.
  std::set<std::string> ids() const;
  int64_t requests();
  int64_t over_quota();  // requests answered 429 because the window's quota was spent
  int64_t faults();
  // Paths of requests, e.g. to assert what was fetched.
  std::string RepoId(int index) const;

 private:
  std::string Entry(int index) const;
  FaultyHubOptions options_;
  SimulatedClock* clock_;
  absl::Mutex mu_;
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
  int64_t window_index_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t used_in_window_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t requests_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t over_quota_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t faults_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace hubcensus::testing

#endif  // HUBCENSUS_TESTS_CRAWLER_FAULTY_HUB_H_
