// Time is injected everywhere so lease expiry, backoff and rate limits are tested in
// milliseconds without sleeping.
#ifndef HUBCENSUS_COMMON_CLOCK_H_
#define HUBCENSUS_COMMON_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace hubcensus {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  // Blocks (real) or advances time (simulated) by `d`.
  virtual void SleepFor(absl::Duration d) = 0;
  // Sleeps until `deadline` or until `*cancelled` is true (checked under `mu`); returns false when
  // cancelled. Real clocks wake on cancellation promptly; simulated ones advance to the deadline.
  virtual bool SleepUntil(absl::Time deadline, absl::Mutex* mu, const bool* cancelled) = 0;

  // The process-wide real clock.
  static Clock* Real();
};

class RealClock : public Clock {
 public:
  absl::Time Now() override;
  void SleepFor(absl::Duration d) override;
  bool SleepUntil(absl::Time deadline, absl::Mutex* mu, const bool* cancelled) override;
};

// A clock that moves only when told: Advance() by tests, or SleepFor(), which advances at once.
// Thread-safe.
class SimulatedClock : public Clock {
 public:
  explicit SimulatedClock(absl::Time start = absl::FromUnixSeconds(1700000000));
  absl::Time Now() override;
  void SleepFor(absl::Duration d) override;
  bool SleepUntil(absl::Time deadline, absl::Mutex* mu, const bool* cancelled) override;
  void Advance(absl::Duration d);
  void Set(absl::Time t);
  // Total time advanced by SleepFor/SleepUntil: what a caller "slept".
  absl::Duration slept();

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  absl::Duration slept_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
};

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_CLOCK_H_
