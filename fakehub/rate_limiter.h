// The Hub's API quota: fixed windows per bearer token (per client address without one), with
// the IETF RateLimit headers the Hub sends, so clients learn and respect the budget.
#ifndef HUBCENSUS_FAKEHUB_RATE_LIMITER_H_
#define HUBCENSUS_FAKEHUB_RATE_LIMITER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace hubcensus::fakehub {

// The quota the simulator enforces (--rate_limit=QUOTA/WINDOW_S); hub::RateLimitPolicy is the
// RateLimit-Policy header a client parses.
struct RequestQuota {
  int64_t quota = 1000;
  int64_t window_seconds = 300;
};
// "QUOTA/WINDOW_S" (e.g. "1000/300"), or "off" (nullopt).
absl::StatusOr<std::optional<RequestQuota>> ParseRateLimit(absl::string_view text);

class RateLimiter {
 public:
  RateLimiter(RequestQuota policy, Clock* clock) : policy_(policy), clock_(clock) {}

  struct Decision {
    bool allowed = true;
    int64_t remaining = 0;
    int64_t reset_seconds = 0;  // until the window ends, at least 1
  };
  // Counts one request for `key` (a token's hash or a client address).
  Decision Admit(absl::string_view key);

  // `RateLimit: "api";r=R;t=T` and `RateLimit-Policy: "fixed window";"api";q=Q;w=W`.
  std::string RateLimitHeader(const Decision& d) const;
  std::string PolicyHeader() const;
  const RequestQuota& policy() const { return policy_; }

 private:
  RequestQuota policy_;
  Clock* clock_;
  absl::Mutex mu_;
  // key -> (window number, requests in it)
  absl::flat_hash_map<std::string, std::pair<int64_t, int64_t>> windows_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_RATE_LIMITER_H_
