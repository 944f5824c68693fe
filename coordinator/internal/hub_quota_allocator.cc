#include "coordinator/internal/hub_quota_allocator.h"

#include <algorithm>

namespace hubcensus::coordinator {

HubQuotaAllocator::HubQuotaAllocator(HubQuota initial, int32_t chunk)
    : quota_(initial), chunk_(std::max<int32_t>(1, chunk)) {}

HubQuotaAllocator HubQuotaAllocator::FromRecord(const BudgetRecord& record, HubQuota fallback,
                                                int32_t chunk) {
  // An operator's "off" wins over anything remembered; so does a changed --hub_quota until the
  // Hub itself has told us its policy.
  HubQuota quota = fallback;
  if (!fallback.unlimited && record.learned() && record.quota() > 0 && record.window_s() > 0) {
    quota.quota = record.quota();
    quota.window_s = record.window_s();
  }
  HubQuotaAllocator allocator(quota, chunk);
  allocator.learned_ = !fallback.unlimited && record.learned();
  if (record.window_end_unix_ms() != 0) {
    allocator.window_end_ = absl::FromUnixMillis(record.window_end_unix_ms());
  }
  // Grants made before a restart may still be spent by workers that outlived the coordinator.
  allocator.granted_ = record.granted();
  return allocator;
}

BudgetRecord HubQuotaAllocator::ToRecord(const std::string& key) const {
  BudgetRecord r;
  r.set_key(key);
  r.set_unlimited(quota_.unlimited);
  r.set_quota(quota_.quota);
  r.set_window_s(quota_.window_s);
  if (window_end_ != absl::InfinitePast())
    r.set_window_end_unix_ms(absl::ToUnixMillis(window_end_));
  r.set_granted(granted_);
  r.set_learned(learned_);
  return r;
}

int64_t HubQuotaAllocator::safety_margin() const {
  if (quota_.unlimited) return 0;
  return std::max<int64_t>(1, quota_.quota / 50);
}

int64_t HubQuotaAllocator::OutstandingTotal() const {
  int64_t total = 0;
  for (const auto& [id, h] : holders_) total += h.outstanding();
  return total;
}

void HubQuotaAllocator::Roll(absl::Time now) {
  absl::Duration w = absl::Seconds(quota_.window_s);
  if (window_end_ == absl::InfinitePast()) {
    window_end_ = now + w;
    granted_ = OutstandingTotal();
    return;
  }
  if (now < window_end_) return;
  // Keep the windows on the Hub's cadence: skip whole windows that passed unseen.
  absl::Duration remainder;
  int64_t missed = absl::IDivDuration(now - window_end_, w, &remainder);
  window_end_ += w * (missed + 1);
  granted_ = OutstandingTotal();
}

int64_t HubQuotaAllocator::Left(absl::Time now) {
  if (quota_.unlimited) return kUnlimitedGrant;
  Roll(now);
  return std::max<int64_t>(0, quota_.quota - safety_margin() - granted_);
}

int32_t HubQuotaAllocator::TopUp(const std::string& holder, absl::Time now) {
  Holder& h = holders_[holder];
  if (quota_.unlimited) {
    int64_t want = kUnlimitedGrant - h.outstanding();
    if (want <= 0) return 0;
    h.granted += want;
    return static_cast<int32_t>(want);
  }
  int64_t want = chunk_ - h.outstanding();
  if (want <= 0) return 0;
  int64_t grant = std::min(want, Left(now));
  if (grant <= 0) return 0;
  h.granted += grant;
  granted_ += grant;
  return static_cast<int32_t>(grant);
}

void HubQuotaAllocator::ReportUsed(const std::string& holder, int64_t used) {
  if (used <= 0) return;
  Holder& h = holders_[holder];
  h.used += used;
  if (h.used > h.granted) {
    // Spent beyond its grant (retries the worker could not hold back): still counts.
    if (!quota_.unlimited) granted_ += h.used - h.granted;
    h.granted = h.used;
  }
}

void HubQuotaAllocator::Observe(const v1::RateLimitObservation& o, absl::Time now) {
  if (quota_.unlimited) return;
  if (o.quota() > 0 && o.window_s() > 0) {
    quota_.quota = o.quota();
    quota_.window_s = o.window_s();
    learned_ = true;
  }
  // r=0 with t=0 is indistinguishable from an absent RateLimit header; t>0 or r>0 means present.
  if (o.reset_s() <= 0 && o.remaining() <= 0) return;
  absl::Time observed_at =
      o.observed_at_unix_ms() > 0 ? absl::FromUnixMillis(o.observed_at_unix_ms()) : now;
  absl::Time hub_end = observed_at + absl::Seconds(o.reset_s());
  if (hub_end <= now) return;  // about a window that is over
  Roll(now);
  if (absl::AbsDuration(hub_end - window_end_) > absl::Seconds(1) &&
      hub_end <= now + absl::Seconds(quota_.window_s)) {
    // Align with the Hub's window; grants counted so far stay counted (conservative).
    window_end_ = hub_end;
  }
  int64_t outstanding = OutstandingTotal();
  int64_t hub_room = o.remaining() - outstanding;
  int64_t our_room = quota_.quota - granted_;
  if (hub_room < our_room) granted_ = quota_.quota - hub_room;
}

void HubQuotaAllocator::Release(const std::string& holder, bool return_unused) {
  auto it = holders_.find(holder);
  if (it == holders_.end()) return;
  if (return_unused && !quota_.unlimited) {
    granted_ = std::max<int64_t>(0, granted_ - it->second.outstanding());
  }
  holders_.erase(it);
}

}  // namespace hubcensus::coordinator
