#include "fakehub/rate_limiter.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "hub/hub_quota.h"

namespace hubcensus::fakehub {

absl::StatusOr<std::optional<RequestQuota>> ParseRateLimit(absl::string_view text) {
  // The grammar is the one the coordinator's --hub_quota reads: one parser for both.
  absl::StatusOr<hub::HubQuota> parsed = hub::ParseHubQuota(text);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--rate_limit: ", parsed.status().message()));
  }
  if (parsed->unlimited) return std::optional<RequestQuota>();
  return std::optional<RequestQuota>(RequestQuota{parsed->quota, parsed->window_s});
}

RateLimiter::Decision RateLimiter::Admit(absl::string_view key) {
  int64_t now = absl::ToUnixSeconds(clock_->Now());
  int64_t window = now / policy_.window_seconds;
  Decision d;
  d.reset_seconds = std::max<int64_t>(1, (window + 1) * policy_.window_seconds - now);
  absl::MutexLock lock(&mu_);
  auto& slot = windows_[key];
  if (slot.first != window) slot = {window, 0};
  ++slot.second;
  d.allowed = slot.second <= policy_.quota;
  d.remaining = std::max<int64_t>(0, policy_.quota - slot.second);
  return d;
}

std::string RateLimiter::RateLimitHeader(const Decision& d) const {
  return absl::StrCat("\"api\";r=", d.remaining, ";t=", d.reset_seconds);
}

std::string RateLimiter::PolicyHeader() const {
  return absl::StrCat("\"fixed window\";\"api\";q=", policy_.quota, ";w=", policy_.window_seconds);
}

}  // namespace hubcensus::fakehub
