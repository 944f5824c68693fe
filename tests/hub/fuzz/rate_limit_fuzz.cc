// Any bytes as RateLimit and RateLimit-Policy: never a crash, never a negative count.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "hub/headers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view header(reinterpret_cast<const char*>(data), size);
  if (auto state = hubcensus::hub::ParseRateLimit(header)) {
    if (state->remaining < 0 || state->reset_s < -1) std::abort();
  }
  if (auto policy = hubcensus::hub::ParseRateLimitPolicy(header)) {
    if (policy->quota < 0 || policy->window_s < -1) std::abort();
  }
  return 0;
}
