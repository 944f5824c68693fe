// Lets a caller abandon a Hub fetch from another thread: backoff sleeps wake up, the transport
// aborts its transfer, and the fetch returns CANCELLED.
#ifndef HUBCENSUS_HUB_CANCELLATION_H_
#define HUBCENSUS_HUB_CANCELLATION_H_

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace hubcensus::hub {

class Cancellation {
 public:
  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    flag_.store(true);
  }
  bool cancelled() const { return flag_.load(); }
  // What HttpRequest::cancelled points at.
  const std::atomic<bool>* flag() const { return &flag_; }
  // Sleeps on `clock` until `deadline`; false when cancelled first (or already).
  bool SleepUntil(Clock* clock, absl::Time deadline) {
    if (cancelled()) return false;
    return clock->SleepUntil(deadline, &mu_, &cancelled_) && !cancelled();
  }

 private:
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> flag_{false};
};

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_CANCELLATION_H_
