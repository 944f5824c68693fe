#include "hub/hub_quota.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace hubcensus::hub {

absl::StatusOr<HubQuota> ParseHubQuota(absl::string_view text) {
  HubQuota out;
  if (text == "off" || text == "unlimited") {
    out.unlimited = true;
    return out;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(text, '/');
  int64_t q = 0, w = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &q) || !absl::SimpleAtoi(parts[1], &w) ||
      q <= 0 || w <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("hub quota \"", text.substr(0, 200),
                     "\": expected QUOTA/WINDOW_SECONDS with both positive (e.g. 500/300) or off"));
  }
  out.quota = q;
  out.window_s = w;
  return out;
}

std::string FormatHubQuota(const HubQuota& quota) {
  if (quota.unlimited) return "off";
  return absl::StrCat(quota.quota, "/", quota.window_s);
}

}  // namespace hubcensus::hub
