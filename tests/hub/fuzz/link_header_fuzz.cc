// Any bytes as a Link header: never a crash; every link is an absolute http(s) URL.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/match.h"
#include "hub/headers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view header(reinterpret_cast<const char*>(data), size);
  for (const auto& link :
       hubcensus::hub::ParseLinkHeader(header, "https://huggingface.co/api/models?limit=1000")) {
    if (!absl::StartsWithIgnoreCase(link.url, "http://") &&
        !absl::StartsWithIgnoreCase(link.url, "https://")) {
      std::abort();
    }
  }
  return 0;
}
