// The Hub counts requests per token in fixed windows; every worker spends from the same window, so
// the coordinator keeps one HubQuotaAllocator per Hub endpoint and token, which hands requests out
// to leases in small grants (the Lease's request_budget) and never lets the grants of a window
// exceed the quota. (A worker's hub::RequestBudget is the other side: the gate each HTTP request
// passes, fed by these grants.)
#ifndef HUBCENSUS_COORDINATOR_INTERNAL_HUB_QUOTA_ALLOCATOR_H_
#define HUBCENSUS_COORDINATOR_INTERNAL_HUB_QUOTA_ALLOCATOR_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "coordinator_state.pb.h"
#include "hub/hub_quota.h"
#include "hubcensus/v1/crawl.pb.h"

namespace hubcensus::coordinator {

using hub::HubQuota;

// Grants held by leases ("holders"). A holder is topped up to `chunk` outstanding requests; what it
// reports as used is counted; what it leaves unused is returned when it releases cleanly. Grants
// still outstanding when a window rolls over are counted against the new window, since they may
// be spent there. Not thread-safe: the coordinator holds its lock.
class HubQuotaAllocator {
 public:
  HubQuotaAllocator(HubQuota initial, int32_t chunk);
  static HubQuotaAllocator FromRecord(const BudgetRecord& record, HubQuota fallback, int32_t chunk);
  BudgetRecord ToRecord(const std::string& key) const;

  // Further requests for `holder`: enough to bring its outstanding grant up to `chunk`, within
  // what the window has left (0 when the window is spent).
  int32_t TopUp(const std::string& holder, absl::Time now);
  // `holder` spent `used` more Hub requests (over-spending is counted too).
  void ReportUsed(const std::string& holder, int64_t used);
  // A worker saw RateLimit / RateLimit-Policy headers: learn q and w, align the window to the
  // Hub's reset, and adopt the Hub's remaining count when it shows less room than we think.
  void Observe(const v1::RateLimitObservation& observation, absl::Time now);
  // The holder is finished. `return_unused`: it reported its final use (complete/fail), so what it
  // did not spend goes back; false when it vanished (expiry) and may have spent it all.
  void Release(const std::string& holder, bool return_unused);

  // Requests that could still be granted in the current window.
  int64_t Left(absl::Time now);
  // When the current window ends (InfinitePast before the first grant).
  absl::Time window_end() const { return window_end_; }
  int64_t granted_in_window() const { return granted_; }
  int64_t quota() const { return quota_.quota; }
  int64_t window_s() const { return quota_.window_s; }
  bool unlimited() const { return quota_.unlimited; }
  bool learned() const { return learned_; }
  // Kept back from every window for requests reported late or spent outside the budget.
  int64_t safety_margin() const;

  // The grant handed to leases when the budget is unlimited.
  static constexpr int32_t kUnlimitedGrant = 1000000;

 private:
  struct Holder {
    int64_t granted = 0;
    int64_t used = 0;
    int64_t outstanding() const { return granted > used ? granted - used : 0; }
  };
  void Roll(absl::Time now);
  int64_t OutstandingTotal() const;

  HubQuota quota_;
  int32_t chunk_;
  bool learned_ = false;
  absl::Time window_end_ = absl::InfinitePast();
  int64_t granted_ = 0;
  absl::flat_hash_map<std::string, Holder> holders_;
};

}  // namespace hubcensus::coordinator

#endif  // HUBCENSUS_COORDINATOR_INTERNAL_HUB_QUOTA_ALLOCATOR_H_
