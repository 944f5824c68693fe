#include "common/clock.h"

namespace hubcensus {

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

absl::Time RealClock::Now() { return absl::Now(); }

void RealClock::SleepFor(absl::Duration d) { absl::SleepFor(d); }

bool RealClock::SleepUntil(absl::Time deadline, absl::Mutex* mu, const bool* cancelled) {
  absl::MutexLock lock(mu);
  auto done = [cancelled]() { return *cancelled; };
  mu->AwaitWithDeadline(absl::Condition(&done), deadline);
  return !*cancelled;
}

SimulatedClock::SimulatedClock(absl::Time start) : now_(start) {}

absl::Time SimulatedClock::Now() {
  absl::MutexLock lock(&mu_);
  return now_;
}

void SimulatedClock::SleepFor(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  if (d > absl::ZeroDuration()) {
    now_ += d;
    slept_ += d;
  }
}

bool SimulatedClock::SleepUntil(absl::Time deadline, absl::Mutex* mu, const bool* cancelled) {
  {
    absl::MutexLock lock(mu);
    if (*cancelled) return false;
  }
  absl::MutexLock lock(&mu_);
  if (deadline > now_) {
    slept_ += deadline - now_;
    now_ = deadline;
  }
  return true;
}

void SimulatedClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  now_ += d;
}

void SimulatedClock::Set(absl::Time t) {
  absl::MutexLock lock(&mu_);
  now_ = t;
}

absl::Duration SimulatedClock::slept() {
  absl::MutexLock lock(&mu_);
  return slept_;
}

}  // namespace hubcensus
