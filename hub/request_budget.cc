#include "hub/request_budget.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace hubcensus::hub {

LearnedQuotaBudget::LearnedQuotaBudget(Options options)
    : options_(options), quota_(options.initial_quota), window_(options.initial_window) {}

absl::Status LearnedQuotaBudget::Acquire(absl::Time deadline) {
  for (;;) {
    absl::Time wake;
    {
      absl::MutexLock lock(&mu_);
      absl::Time now = options_.clock->Now();
      if (now >= window_end_) {
        window_end_ = now + window_;
        remaining_ = quota_;
      }
      if (remaining_ > 0) {
        --remaining_;
        ++granted_;
        return absl::OkStatus();
      }
      wake = window_end_;
    }
    if (wake > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "request budget: the quota of this rate-limit window is spent and the next window "
          "opens after the request deadline (",
          absl::FormatDuration(wake - options_.clock->Now()), " away)"));
    }
    if (options_.cancellation != nullptr) {
      if (!options_.cancellation->SleepUntil(options_.clock, wake)) {
        return absl::CancelledError("request budget: cancelled while waiting for the window");
      }
    } else {
      options_.clock->SleepFor(wake - options_.clock->Now());
    }
  }
}

void LearnedQuotaBudget::Observe(const v1::RateLimitObservation& observation) {
  absl::MutexLock lock(&mu_);
  absl::Time now = options_.clock->Now();
  if (observation.quota() > 0) quota_ = observation.quota();
  if (observation.window_s() > 0) window_ = absl::Seconds(observation.window_s());
  // r=0 with t=0 reads as "no RateLimit header" (proto3 zeros), as the coordinator reads it.
  if (observation.remaining() <= 0 && observation.reset_s() <= 0) return;
  if (observation.reset_s() <= 0) {
    remaining_ = std::min(remaining_, observation.remaining());
    return;
  }
  // t= is whole seconds, so the Hub's window end is known to within a second. A later end than
  // ours means the Hub has opened a window we have not: adopt it and its count. Otherwise trust
  // whichever count is lower (ours includes requests still in flight).
  absl::Time hub_end = now + absl::Seconds(observation.reset_s());
  if (!learned_ || hub_end > window_end_ + absl::Seconds(1)) {
    window_end_ = hub_end;
    remaining_ = observation.remaining();
    learned_ = true;
  } else {
    if (hub_end < window_end_ - absl::Seconds(1)) window_end_ = hub_end;
    remaining_ = std::min(remaining_, observation.remaining());
  }
}

int64_t LearnedQuotaBudget::quota() {
  absl::MutexLock lock(&mu_);
  return quota_;
}

int64_t LearnedQuotaBudget::remaining() {
  absl::MutexLock lock(&mu_);
  return remaining_;
}

int64_t LearnedQuotaBudget::granted() {
  absl::MutexLock lock(&mu_);
  return granted_;
}

absl::Status FixedBudget::Acquire(absl::Time) {
  absl::MutexLock lock(&mu_);
  if (left_ <= 0) return absl::ResourceExhaustedError("request budget spent");
  --left_;
  return absl::OkStatus();
}

int64_t FixedBudget::left() {
  absl::MutexLock lock(&mu_);
  return left_;
}

}  // namespace hubcensus::hub
