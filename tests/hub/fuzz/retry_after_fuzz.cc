// Any bytes as Retry-After: never a crash, never a negative wait.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "hub/headers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view header(reinterpret_cast<const char*>(data), size);
  auto wait = hubcensus::hub::ParseRetryAfter(header, absl::FromUnixSeconds(1700000000));
  if (wait && *wait < absl::ZeroDuration()) std::abort();
  return 0;
}
