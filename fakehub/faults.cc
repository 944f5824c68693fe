#include "fakehub/faults.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace hubcensus::fakehub {
namespace {

struct KindInfo {
  FaultKind kind;
  const char* name;
  const char* help;
  bool listing_only;
};

constexpr KindInfo kKinds[kFaultKinds] = {
    {FaultKind::kHttp500, "http500", "HTTP 500 with a JSON error", false},
    {FaultKind::kHttp502, "http502", "HTTP 502 with a JSON error", false},
    {FaultKind::kHttp503, "http503", "HTTP 503 with a JSON error", false},
    {FaultKind::kHttp429, "http429", "HTTP 429 with Retry-After: 1 (RateLimit r=0;t=1)", false},
    {FaultKind::kReset, "reset", "the headers and half the body, then a TCP reset", false},
    {FaultKind::kTruncate, "truncate", "a complete response whose JSON body is cut in half", false},
    {FaultKind::kStall, "stall",
     "no response for --stall_seconds (longer than any client timeout), then close", false},
    {FaultKind::kMalformed, "malformed",
     "listing: one extra entry with wrong types, no id, a huge string or invalid UTF-8", true},
    {FaultKind::kRepeat, "repeat", "listing: the previous page's last entry again at the top",
     true},
    {FaultKind::kMutate, "mutate",
     "listing: before the page, repos are created, deleted, renamed and downloads change", true},
};

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

const char* FaultKindName(FaultKind kind) { return kKinds[static_cast<int>(kind)].name; }

std::string FaultKindsHelp() {
  std::string out;
  for (const auto& k : kKinds) absl::StrAppend(&out, "  ", k.name, ": ", k.help, "\n");
  return out;
}

absl::StatusOr<FaultPlan> FaultPlan::Parse(double fault_rate, absl::string_view faults) {
  FaultPlan plan;
  if (fault_rate < 0 || fault_rate > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--fault_rate: ", fault_rate, " is not a probability in [0, 1]"));
  }
  for (double& r : plan.rates_) r = fault_rate / kFaultKinds;
  for (absl::string_view item : absl::StrSplit(faults, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    auto eq = item.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("--faults: \"", item, "\" is not KIND=RATE"));
    }
    absl::string_view name = item.substr(0, eq);
    double rate = 0;
    if (!absl::SimpleAtod(item.substr(eq + 1), &rate) || rate < 0 || rate > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--faults: rate of \"", name, "\" is not a probability in [0, 1]"));
    }
    bool found = false;
    for (const auto& k : kKinds) {
      if (name == k.name) {
        plan.rates_[static_cast<int>(k.kind)] = rate;
        found = true;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(absl::StrCat("--faults: unknown fault kind \"", name,
                                                     "\" (see hubcensus fakehub --help)"));
    }
  }
  double total = 0;
  for (double r : plan.rates_) total += r;
  if (total > 1 + 1e-9) {
    return absl::InvalidArgumentError(
        absl::StrCat("--faults: the rates sum to ", total, ", more than 1"));
  }
  return plan;
}

bool FaultPlan::any() const {
  for (double r : rates_) {
    if (r > 0) return true;
  }
  return false;
}

std::optional<FaultKind> FaultPlan::Draw(uint64_t seed, uint64_t sequence, bool listing) const {
  if (!any()) return std::nullopt;
  double u =
      static_cast<double>(Mix(Mix(seed ^ 0xfa017) + sequence) >> 11) * (1.0 / 9007199254740992.0);
  double cumulative = 0;
  for (const auto& k : kKinds) {
    cumulative += rates_[static_cast<int>(k.kind)];
    if (u < cumulative) {
      if (k.listing_only && !listing) return std::nullopt;
      return k.kind;
    }
  }
  return std::nullopt;
}

}  // namespace hubcensus::fakehub
