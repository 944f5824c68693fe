#include "config/family_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <re2/re2.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "config/input_quote.h"
#include "config/textproto_error.h"

namespace hubcensus {

extern const char kEmbeddedFamiliesTextproto[];  // generated from config/families.textproto

namespace {

bool IsRegion(absl::string_view r) {
  for (const char* known : kRegions) {
    if (r == known) return true;
  }
  return false;
}

// Where each problem sits: "file:LINE" when parsed from a file, "prefix.field[i]" otherwise.
class Locator {
 public:
  Locator(absl::string_view filename, const google::protobuf::TextFormat::ParseInfoTree* tree,
          absl::string_view prefix)
      : filename_(filename), tree_(tree), prefix_(prefix) {}

  std::string Family(int index, const char* field, int sub = -1) const {
    if (tree_ != nullptr) {
      const auto* desc = v1::FamilyConfig::descriptor();
      const auto* fam_field = desc->FindFieldByName("family");
      int line = tree_->GetLocation(fam_field, index).line;
      if (field != nullptr) {
        const auto* nested = tree_->GetTreeForNested(fam_field, index);
        const auto* f = v1::Family::descriptor()->FindFieldByName(field);
        if (nested != nullptr && f != nullptr) {
          auto loc = nested->GetLocation(f, f->is_repeated() ? std::max(sub, 0) : -1);
          if (loc.line >= 0) line = loc.line;
        }
      }
      return absl::StrCat(filename_, ":", line + 1);
    }
    std::string out = absl::StrCat(prefix_, ".family[", index, "]");
    if (field != nullptr) {
      absl::StrAppend(&out, ".", field);
      if (sub >= 0) absl::StrAppend(&out, "[", sub, "]");
    }
    return out;
  }
  // A top-level field's line; the file alone when the field is absent (an empty file has no
  // `family` to point at). ParseInfoTree wants index -1 exactly for singular fields and an
  // existing index for repeated ones: anything else is a libprotobuf FATAL (exit 134).
  std::string Top(const char* field, int present_count = 1) const {
    if (tree_ != nullptr) {
      const auto* f = v1::FamilyConfig::descriptor()->FindFieldByName(field);
      if (f->is_repeated() && present_count <= 0) return filename_;
      int line = tree_->GetLocation(f, f->is_repeated() ? 0 : -1).line;
      if (line < 0) return filename_;
      return absl::StrCat(filename_, ":", line + 1);
    }
    return absl::StrCat(prefix_, ".", field);
  }

 private:
  std::string filename_;
  const google::protobuf::TextFormat::ParseInfoTree* tree_;
  std::string prefix_;
};

absl::Status CheckRegex(const std::string& pattern, const std::string& where) {
  RE2 re(pattern, RE2::Quiet);
  if (!re.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": bad name_regex ", QuoteInput(pattern),
                                                   ": ", InputExcerpt(re.error())));
  }
  return absl::OkStatus();
}

// One family's claim on a namespace: all of its repos, or those whose name matches a pattern.
struct NamespaceClaim {
  int family;
  bool whole;  // no name_regex narrows it
  int namespace_index;
  bool from_pattern;
};

// A repo counts for the first family, in file order, whose claim matches it. So a claim that
// comes after another family's whole claim on the same namespace can never match anything: two
// families claiming a namespace whole, or a narrowed claim after a whole one, is a mistake that
// would otherwise pass in silence. A narrowed claim before a whole one is a carve-out (the
// default file gives facebook's llama repos to Llama, the rest to Meta) and stays allowed.
absl::Status CheckNamespaceClaims(const v1::FamilyConfig& config, const Locator& at) {
  absl::flat_hash_map<std::string, std::vector<NamespaceClaim>> claims;
  for (int i = 0; i < config.family_size(); ++i) {
    const v1::Family& f = config.family(i);
    for (int j = 0; j < f.namespace__size(); ++j) {
      claims[f.namespace_(j)].push_back({i, f.name_regex().empty(), j, false});
    }
    for (int j = 0; j < f.namespace_pattern_size(); ++j) {
      claims[f.namespace_pattern(j).namespace_()].push_back({i, false, j, true});
    }
  }
  // Report the claim earliest in the file, whatever the map's order.
  std::optional<std::pair<NamespaceClaim, NamespaceClaim>> worst;
  std::string worst_namespace;
  for (const auto& [ns, list] : claims) {
    const NamespaceClaim* whole = nullptr;
    for (const NamespaceClaim& c : list) {  // in family order
      if (whole != nullptr && c.family != whole->family) {
        if (!worst || c.family < worst->second.family ||
            (c.family == worst->second.family && ns < worst_namespace)) {
          worst = std::make_pair(*whole, c);
          worst_namespace = ns;
        }
        break;
      }
      if (c.whole && whole == nullptr) whole = &c;
    }
  }
  if (!worst) return absl::OkStatus();
  const auto& [first, second] = *worst;
  const std::string& first_name = config.family(first.family).name();
  const std::string& second_name = config.family(second.family).name();
  std::string where =
      at.Family(second.family, second.from_pattern ? "namespace_pattern" : "namespace",
                second.namespace_index);
  return absl::InvalidArgumentError(absl::StrCat(
      where, ": namespace ", QuoteInput(worst_namespace), " is claimed by family ",
      QuoteInput(first_name), " and by family ", QuoteInput(second_name), "; ",
      QuoteInput(first_name),
      " claims all of it first, so the second claim would count nothing (narrow the first "
      "with a namespace_pattern, or remove one)"));
}

absl::Status Validate(const v1::FamilyConfig& config, const Locator& at) {
  if (config.family_size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(at.Top("family", 0),
                     ": no family defined (a census needs at least one family { name: "
                     "... region: ... namespace: ... })"));
  }
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < config.family_size(); ++i) {
    const v1::Family& f = config.family(i);
    if (f.name().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(at.Family(i, nullptr), ": family has no name"));
    }
    if (!names.insert(f.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat(at.Family(i, "name"), ": family ",
                                                     QuoteInput(f.name()), " is defined twice"));
    }
    if (!IsRegion(f.region())) {
      return absl::InvalidArgumentError(absl::StrCat(
          at.Family(i, "region"), ": unknown region ", QuoteInput(f.region()), " for family ",
          QuoteInput(f.name()), " (one of china, us, eu, other, unknown)"));
    }
    if (f.namespace__size() == 0 && f.namespace_pattern_size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(at.Family(i, nullptr), ": family ",
                                                     QuoteInput(f.name()), " has no namespace"));
    }
    for (int j = 0; j < f.namespace__size(); ++j) {
      const std::string& ns = f.namespace_(j);
      if (ns.empty() || ns.find('/') != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat(at.Family(i, "namespace", j), ": bad namespace ", QuoteInput(ns)));
      }
    }
    if (!f.name_regex().empty()) {
      RETURN_IF_ERROR(CheckRegex(f.name_regex(), at.Family(i, "name_regex")));
    }
    for (int j = 0; j < f.namespace_pattern_size(); ++j) {
      const auto& p = f.namespace_pattern(j);
      if (p.namespace_().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(at.Family(i, "namespace_pattern", j),
                                                       ": namespace_pattern has no namespace"));
      }
      RETURN_IF_ERROR(CheckRegex(p.name_regex(), at.Family(i, "namespace_pattern", j)));
    }
  }
  if (config.lineage().max_steps() < 0 || config.lineage().max_steps() > 10000) {
    return absl::InvalidArgumentError(
        absl::StrCat(at.Top("lineage"), ": max_steps must be between 0 and 10000"));
  }
  if (config.new_model_filter().min_downloads_all_time() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(at.Top("new_model_filter"), ": min_downloads_all_time is negative"));
  }
  return CheckNamespaceClaims(config, at);
}

}  // namespace

absl::StatusOr<v1::FamilyConfig> ParseFamilyConfig(absl::string_view text,
                                                   absl::string_view filename) {
  v1::FamilyConfig config;
  google::protobuf::TextFormat::Parser parser;
  config::FirstTextprotoError errors;
  google::protobuf::TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(absl::StrCat(filename, ":", InputExcerpt(errors.first())));
  }
  RETURN_IF_ERROR(Validate(config, Locator(filename, &tree, "")));
  return config;
}

absl::StatusOr<v1::FamilyConfig> LoadFamilyConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the families file"));
  std::stringstream buf;
  buf << in.rdbuf();
  std::string base = path.substr(path.find_last_of('/') + 1);
  return ParseFamilyConfig(buf.str(), path);
}

absl::Status ValidateFamilyConfig(const v1::FamilyConfig& config, absl::string_view field_prefix) {
  return Validate(config, Locator("", nullptr, field_prefix));
}

absl::string_view DefaultFamiliesText() { return kEmbeddedFamiliesTextproto; }

const v1::FamilyConfig& DefaultFamilyConfig() {
  static const v1::FamilyConfig* config = [] {
    auto parsed = ParseFamilyConfig(DefaultFamiliesText(), "config/families.textproto");
    // The embedded file is tested; a broken one is a build defect, not an input error.
    if (!parsed.ok()) std::abort();
    return new v1::FamilyConfig(WithDefaults(*parsed));
  }();
  return *config;
}

absl::StatusOr<v1::FamilyConfig> LoadFamilyConfigOrDefault(const std::string& path) {
  if (path.empty()) return DefaultFamilyConfig();
  ASSIGN_OR_RETURN(auto config, LoadFamilyConfig(path));
  return WithDefaults(std::move(config));
}

v1::FamilyConfig WithDefaults(v1::FamilyConfig config) {
  if (!config.has_new_model_filter()) {
    auto* f = config.mutable_new_model_filter();
    f->add_pipeline_tag("text-generation");
    f->add_pipeline_tag("image-text-to-text");
    f->set_min_downloads_all_time(5);
  }
  if (config.lineage().max_steps() == 0) {
    config.mutable_lineage()->set_max_steps(kDefaultMaxLineageSteps);
  }
  return config;
}

FamilyMatcher::FamilyMatcher(const v1::FamilyConfig& config) {
  for (int i = 0; i < config.family_size(); ++i) {
    const v1::Family& f = config.family(i);
    names_.push_back(f.name());
    regions_.push_back(f.region());
    for (const std::string& ns : f.namespace_()) {
      Rule rule{i, nullptr};
      if (!f.name_regex().empty()) rule.name_regex = std::make_unique<RE2>(f.name_regex());
      rules_by_namespace_[ns].push_back(std::move(rule));
    }
    for (const auto& p : f.namespace_pattern()) {
      rules_by_namespace_[p.namespace_()].push_back({i, std::make_unique<RE2>(p.name_regex())});
    }
  }
}

FamilyMatcher::~FamilyMatcher() = default;

int FamilyMatcher::FirstPartyFamily(absl::string_view repo_id) const {
  auto slash = repo_id.find('/');
  if (slash == absl::string_view::npos) return -1;  // legacy repos have no namespace
  auto it = rules_by_namespace_.find(repo_id.substr(0, slash));
  if (it == rules_by_namespace_.end()) return -1;
  absl::string_view name = repo_id.substr(slash + 1);
  int best = -1;
  for (const Rule& rule : it->second) {
    if (rule.name_regex == nullptr ||
        RE2::PartialMatch(re2::StringPiece(name.data(), name.size()), *rule.name_regex)) {
      if (best < 0 || rule.family < best) best = rule.family;
    }
  }
  return best;
}

int FamilyMatcher::IndexOf(absl::string_view family_name) const {
  for (int i = 0; i < size(); ++i) {
    if (names_[i] == family_name) return i;
  }
  return -1;
}

}  // namespace hubcensus
