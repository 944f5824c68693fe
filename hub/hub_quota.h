// The Hub's rate limit as operators and fakehub write it: "Q/W" (Q requests per window of W
// seconds, per token) or "off". The one parser of that grammar.
#ifndef HUBCENSUS_HUB_HUB_QUOTA_H_
#define HUBCENSUS_HUB_HUB_QUOTA_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hubcensus::hub {

// q requests per window of w seconds, or unlimited.
struct HubQuota {
  bool unlimited = false;
  int64_t quota = 500;
  int64_t window_s = 300;
};

// "500/300" (q requests per w seconds, both positive) or "off" ("unlimited" too). Errors quote
// the text.
absl::StatusOr<HubQuota> ParseHubQuota(absl::string_view text);
// The inverse: "500/300" or "off".
std::string FormatHubQuota(const HubQuota& quota);

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_HUB_QUOTA_H_
