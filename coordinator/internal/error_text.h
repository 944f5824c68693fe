// How the coordinator quotes input and counts in the error texts it keeps and returns.
#ifndef HUBCENSUS_COORDINATOR_INTERNAL_ERROR_TEXT_H_
#define HUBCENSUS_COORDINATOR_INTERNAL_ERROR_TEXT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/map.h"

namespace hubcensus::coordinator {

// At most `max` bytes of `text`: error messages quote input, never all of it. The middle goes
// (its start says what was done, its end what happened: "GET <url> ... answered HTTP 403"), cut
// at UTF-8 character boundaries.
std::string Truncated(absl::string_view text, size_t max = 200);

// "401: 3, 404: 1" (a map's counts, in key order).
std::string CountsByReason(const google::protobuf::Map<std::string, int64_t>& counts);

}  // namespace hubcensus::coordinator

#endif  // HUBCENSUS_COORDINATOR_INTERNAL_ERROR_TEXT_H_
