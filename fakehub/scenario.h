// The scenarios a generated Hub grows under (fakehub/scenario.proto), parsed from the textprotos
// embedded in the binary and checked, so the generator can index every list it picks from.
#ifndef HUBCENSUS_FAKEHUB_SCENARIO_H_
#define HUBCENSUS_FAKEHUB_SCENARIO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fakehub/scenario.pb.h"

namespace hubcensus::fakehub {

// The embedded scenario `name` (parsed once), or INVALID_ARGUMENT listing the known ones.
absl::StatusOr<const Scenario*> FindScenario(absl::string_view name);
std::vector<std::string> ScenarioNames();

// Parses and checks a scenario textproto; errors name `filename` and the line or field.
absl::StatusOr<Scenario> ParseScenario(absl::string_view text, absl::string_view filename);

// The scenario's entry for a family, or null when the scenario does not name it.
const ScenarioFamily* FindScenarioFamily(const Scenario& scenario, absl::string_view name);

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_SCENARIO_H_
