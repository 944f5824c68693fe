// The families file: which Hub namespaces make up each model family, its region, and the
// lineage and new-model options of the metrics (shared/design.md).
#ifndef HUBCENSUS_CONFIG_FAMILY_CONFIG_H_
#define HUBCENSUS_CONFIG_FAMILY_CONFIG_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "hubcensus/v1/config.pb.h"

namespace re2 {
class RE2;
}

namespace hubcensus {

inline constexpr const char* kRegions[] = {"china", "us", "eu", "other", "unknown"};
inline constexpr int kDefaultMaxLineageSteps = 64;

// Parses and validates textproto. `filename` prefixes every error with "file:line: ".
absl::StatusOr<v1::FamilyConfig> ParseFamilyConfig(absl::string_view text,
                                                   absl::string_view filename);
absl::StatusOr<v1::FamilyConfig> LoadFamilyConfig(const std::string& path);
// Checks a config that did not come from a file (a gRPC request): errors name the field path,
// e.g. "families.family[3].region: unknown region \"eu-west\"".
absl::Status ValidateFamilyConfig(const v1::FamilyConfig& config, absl::string_view field_prefix);

// The embedded default (config/families.textproto, built from the ATOM organisation list).
absl::string_view DefaultFamiliesText();
const v1::FamilyConfig& DefaultFamilyConfig();
// --families=FILE if given, else the embedded default.
absl::StatusOr<v1::FamilyConfig> LoadFamilyConfigOrDefault(const std::string& path);

// Fills the defaults the design names: new_model_filter when absent, max_steps 64.
v1::FamilyConfig WithDefaults(v1::FamilyConfig config);

// Answers "which family is this repo first-party for?" from the families file. Namespaces are
// exact and case-sensitive; the first family in file order that claims a repo wins.
class FamilyMatcher {
 public:
  explicit FamilyMatcher(const v1::FamilyConfig& config);
  ~FamilyMatcher();
  FamilyMatcher(const FamilyMatcher&) = delete;
  FamilyMatcher& operator=(const FamilyMatcher&) = delete;

  // Family index in config order, or -1. `repo_id` is "namespace/name" (or a bare legacy name).
  int FirstPartyFamily(absl::string_view repo_id) const;
  // Whether some family names this namespace (the part of a repo id before '/'). Repos of other
  // namespaces are first-party for none, which lets a pass over ids sorted by namespace skip them.
  bool TracksNamespace(absl::string_view ns) const { return rules_by_namespace_.contains(ns); }
  int size() const { return static_cast<int>(names_.size()); }
  const std::string& name(int family) const { return names_[family]; }
  const std::string& region(int family) const { return regions_[family]; }
  int IndexOf(absl::string_view family_name) const;

 private:
  struct Rule {
    int family;
    std::unique_ptr<re2::RE2> name_regex;  // null: every repo of the namespace
  };
  absl::flat_hash_map<std::string, std::vector<Rule>> rules_by_namespace_;
  std::vector<std::string> names_;
  std::vector<std::string> regions_;
};

}  // namespace hubcensus

#endif  // HUBCENSUS_CONFIG_FAMILY_CONFIG_H_
