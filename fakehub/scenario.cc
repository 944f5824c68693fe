#include "fakehub/scenario.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/civil_time.h"
#include "common/status.h"
#include "config/textproto_error.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace hubcensus::fakehub {

extern const char kEmbeddedArticleScenarioTextproto[];

namespace {

constexpr absl::string_view kArticleFile = "fakehub/scenario_article.textproto";

std::string Quote(absl::string_view s) {
  return absl::StrCat("\"", s.substr(0, 200), s.size() > 200 ? "...\"" : "\"");
}

absl::Status CheckDay(absl::string_view text, const std::string& where) {
  absl::CivilDay day;
  if (!absl::ParseCivilTime(text, &day) || day < absl::CivilDay(2022, 3, 1) ||
      day > absl::CivilDay(2025, 12, 31)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": ", Quote(text), " is not a date YYYY-MM-DD in 2022-03-01..2025-12-31"));
  }
  return absl::OkStatus();
}

absl::Status CheckMonth(absl::string_view text, const std::string& where) {
  absl::CivilMonth month;
  if (!absl::ParseCivilTime(text, &month)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", Quote(text), " is not a month YYYY-MM"));
  }
  return absl::OkStatus();
}

absl::Status CheckFraction(double value, const std::string& where) {
  if (!(value >= 0 && value <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", value, " is not in 0..1"));
  }
  return absl::OkStatus();
}

absl::Status CheckFamily(const ScenarioFamily& f, const std::string& where) {
  if (f.name().empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": no name"));
  if (f.start() != "legacy") RETURN_IF_ERROR(CheckDay(f.start(), absl::StrCat(where, ".start")));
  if (f.stem().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": no stem (names are built from one)"));
  }
  if (!(f.first_party_per_repo() >= 0) || f.min_first_party() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": first_party_per_repo and min_first_party must be >= 0"));
  }
  int previous = -1;
  for (int k = 0; k < f.anchor_size(); ++k) {
    std::string at = absl::StrCat(where, ".anchor[", k, "].date");
    RETURN_IF_ERROR(CheckDay(f.anchor(k).date(), at));
    absl::CivilDay day;
    absl::ParseCivilTime(f.anchor(k).date(), &day);
    int index = static_cast<int>(day - absl::CivilDay(2022, 3, 1));
    if (index <= previous) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": anchors must be in date order"));
    }
    previous = index;
  }
  for (int k = 0; k < f.share_size(); ++k) {
    RETURN_IF_ERROR(CheckMonth(f.share(k).month(), absl::StrCat(where, ".share[", k, "].month")));
    RETURN_IF_ERROR(CheckFraction(f.share(k).share(), absl::StrCat(where, ".share[", k, "]")));
  }
  RETURN_IF_ERROR(CheckFraction(f.primary_namespace_chance(),
                                absl::StrCat(where, ".primary_namespace_chance")));
  if (f.has_distillation()) {
    const Distillation& d = f.distillation();
    RETURN_IF_ERROR(CheckDay(d.since(), absl::StrCat(where, ".distillation.since")));
    RETURN_IF_ERROR(CheckFraction(d.chance(), absl::StrCat(where, ".distillation.chance")));
    RETURN_IF_ERROR(
        CheckFraction(d.base_chance(), absl::StrCat(where, ".distillation.base_chance")));
  }
  return absl::OkStatus();
}

absl::Status CheckScenario(const Scenario& s, absl::string_view filename) {
  if (s.name().empty()) return absl::InvalidArgumentError(absl::StrCat(filename, ": no name"));
  for (int f = 0; f < s.family_size(); ++f) {
    RETURN_IF_ERROR(CheckFamily(
        s.family(f), absl::StrCat(filename, ": family[", f, "] ", Quote(s.family(f).name()))));
    for (int g = 0; g < f; ++g) {
      if (s.family(g).name() == s.family(f).name()) {
        return absl::InvalidArgumentError(
            absl::StrCat(filename, ": family ", Quote(s.family(f).name()), " twice"));
      }
    }
  }
  // The generator picks from every list by hash: none may be empty.
  const NameVocabulary& n = s.names();
  const std::pair<const char*, int> lists[] = {
      {"user_namespace", s.user_namespace_size()},
      {"names.syllable", n.syllable_size()},
      {"names.generic_stem", n.generic_stem_size()},
      {"names.task_word", n.task_word_size()},
      {"names.size", n.size_size()},
      {"names.variant", n.variant_size()},
      {"names.quantized_suffix", n.quantized_suffix_size()},
      {"names.adapter_suffix", n.adapter_suffix_size()},
      {"names.finetune_suffix", n.finetune_suffix_size()},
      {"names.merge_suffix", n.merge_suffix_size()},
      {"names.word", n.word_size()},
      {"names.missing_parent_suffix", n.missing_parent_suffix_size()},
  };
  for (const auto& [field, size] : lists) {
    if (size == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(filename, ": ", field, " is empty (names are picked from it)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Scenario> ParseScenario(absl::string_view text, absl::string_view filename) {
  Scenario scenario;
  google::protobuf::TextFormat::Parser parser;
  config::FirstTextprotoError errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &scenario)) {
    return absl::InvalidArgumentError(absl::StrCat(filename, ":", errors.first().substr(0, 300)));
  }
  RETURN_IF_ERROR(CheckScenario(scenario, filename));
  return scenario;
}

std::vector<std::string> ScenarioNames() { return {"article"}; }

absl::StatusOr<const Scenario*> FindScenario(absl::string_view name) {
  if (name != "article") {
    return absl::InvalidArgumentError(
        absl::StrCat("--scenario: unknown scenario ", Quote(name),
                     " (known: ", absl::StrJoin(ScenarioNames(), ", "), ")"));
  }
  // Parsed once; the embedded text is checked by the tests, so an error here is a build defect.
  static const auto* article =
      new absl::StatusOr<Scenario>(ParseScenario(kEmbeddedArticleScenarioTextproto, kArticleFile));
  if (!article->ok()) return article->status();
  return &**article;
}

const ScenarioFamily* FindScenarioFamily(const Scenario& scenario, absl::string_view name) {
  for (const ScenarioFamily& f : scenario.family()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

}  // namespace hubcensus::fakehub
