// Seeded faults of every kind a crawler must survive against the real Hub (5xx, 429, resets,
// truncated bodies, stalls, malformed and repeated entries, a Hub that changes mid-crawl), so
// the crawl's guarantees are tested on purpose rather than by luck.
#ifndef HUBCENSUS_FAKEHUB_FAULTS_H_
#define HUBCENSUS_FAKEHUB_FAULTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hubcensus::fakehub {

enum class FaultKind {
  kHttp500,
  kHttp502,
  kHttp503,
  kHttp429,    // 429 with Retry-After, whatever the quota says
  kReset,      // headers and half the body, then a TCP reset
  kTruncate,   // a complete HTTP response whose JSON body is cut short
  kStall,      // no response until the client gives up (longer than its timeout)
  kMalformed,  // listing: an extra entry with wrong types, no id, a huge string or bad UTF-8
  kRepeat,     // listing: the previous page's last entry again at the top
  kMutate,     // listing: repos created, deleted, renamed and downloads changed before the page
};
inline constexpr int kFaultKinds = 10;

const char* FaultKindName(FaultKind kind);
// One line per kind, for --help.
std::string FaultKindsHelp();

// The probability of each kind per request, drawn from a seeded sequence.
class FaultPlan {
 public:
  // `fault_rate` spreads evenly over every kind; `faults` ("KIND=R,KIND=R") then sets kinds one
  // by one. The rates must sum to at most 1.
  static absl::StatusOr<FaultPlan> Parse(double fault_rate, absl::string_view faults);

  // The fault for request number `sequence` (nullopt: serve normally). Listing-only kinds are
  // not drawn for other requests.
  std::optional<FaultKind> Draw(uint64_t seed, uint64_t sequence, bool listing) const;
  double rate(FaultKind kind) const { return rates_[static_cast<int>(kind)]; }
  bool any() const;

 private:
  double rates_[kFaultKinds] = {0};
};

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_FAULTS_H_
