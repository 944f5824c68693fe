// The Hub's rate limit is a fixed quota of requests per window per token; a RequestBudget is
// asked before every HTTP request the Hub client sends (retries and redirects included), so
// whoever owns the budget decides how many requests may go and none goes beyond it.
#ifndef HUBCENSUS_HUB_REQUEST_BUDGET_H_
#define HUBCENSUS_HUB_REQUEST_BUDGET_H_

#include <cstdint>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "hub/cancellation.h"
#include "hubcensus/v1/crawl.pb.h"

namespace hubcensus::hub {

class RequestBudget {
 public:
  virtual ~RequestBudget() = default;
  // Takes one request, waiting until one is available. DEADLINE_EXCEEDED when none is before
  // `deadline`; other errors (ABORTED: the lease behind the budget is lost; CANCELLED) pass
  // through to the fetch's caller.
  virtual absl::Status Acquire(absl::Time deadline) = 0;
  // The latest RateLimit/RateLimit-Policy headers, after each response that carried them.
  virtual void Observe(const v1::RateLimitObservation& observation) {}
};

// A budget for a client with no coordinator: it learns the quota and window from the Hub's
// headers (starting from `initial_quota` per `initial_window`, the anonymous quota) and waits for
// the next window rather than send a request past the quota. Thread-safe.
class LearnedQuotaBudget : public RequestBudget {
 public:
  struct Options {
    int64_t initial_quota = 500;
    absl::Duration initial_window = absl::Minutes(5);
    Clock* clock = Clock::Real();
    Cancellation* cancellation = nullptr;
  };
  explicit LearnedQuotaBudget(Options options);

  absl::Status Acquire(absl::Time deadline) override;
  void Observe(const v1::RateLimitObservation& observation) override;

  int64_t quota();
  int64_t remaining();
  int64_t granted();  // requests handed out so far

 private:
  Options options_;
  absl::Mutex mu_;
  int64_t quota_ ABSL_GUARDED_BY(mu_);
  absl::Duration window_ ABSL_GUARDED_BY(mu_);
  absl::Time window_end_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t remaining_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t granted_ ABSL_GUARDED_BY(mu_) = 0;
  bool learned_ ABSL_GUARDED_BY(mu_) = false;
};

// A fixed number of requests, never refilled (tests, one-off tools).
class FixedBudget : public RequestBudget {
 public:
  explicit FixedBudget(int64_t requests) : left_(requests) {}
  absl::Status Acquire(absl::Time deadline) override;
  int64_t left();

 private:
  absl::Mutex mu_;
  int64_t left_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_REQUEST_BUDGET_H_
