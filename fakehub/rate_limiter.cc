#include "fakehub/rate_limiter.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace hubcensus::fakehub {

absl::StatusOr<std::optional<RequestQuota>> ParseRateLimit(absl::string_view text) {
  if (text == "off") return std::optional<RequestQuota>();
  auto slash = text.find('/');
  RequestQuota policy;
  if (slash == absl::string_view::npos || !absl::SimpleAtoi(text.substr(0, slash), &policy.quota) ||
      !absl::SimpleAtoi(text.substr(slash + 1), &policy.window_seconds) || policy.quota < 1 ||
      policy.window_seconds < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--rate_limit: \"", text, "\" is not QUOTA/WINDOW_SECONDS (e.g. 1000/300) or off"));
  }
  return std::optional<RequestQuota>(policy);
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
