#include "fakehub/generated_hub.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "common/checksum.h"
#include "common/dates.h"
#include "common/status.h"
#include "fakehub/json_text.h"
#include "fakehub/scenario.h"

namespace hubcensus::fakehub {

namespace {

constexpr int64_t kEpoch = 1646092800;  // 2022-03-01T00:00:00Z
// The Hub's two placeholder createdAt values for repos older than its creation dates.
constexpr int64_t kPlaceholder = 1646263744;  // 2022-03-02T23:29:04Z
constexpr int64_t kPlaceholder05 = kPlaceholder + 1;
constexpr uint32_t kBare = UINT32_MAX;
constexpr uint16_t kNever = UINT16_MAX;
constexpr uint32_t kGhostBit = 0x80000000u;

enum Kind : uint8_t { kFirstParty, kDerivative, kStandalone, kLegacy };
enum Flag : uint8_t {
  kPrivate = 1,
  kDisabled = 2,
  kNoAllTime = 4,
  kRenamed = 8,
  kBareTags = 16,
  kGatedAuto = 32,
  kGatedManual = 64,
  kPlaceholderCreated = 128,
};
// RepoRecord::access: who may read a repo, decided after generation from the options.
enum Access : uint8_t {
  kTokenPrivate = 1,   // private, listed to requests with a token (--private_repos)
  kGatedNoAccess = 2,  // gated; the per-repo endpoint answers anonymous requests 401 GatedRepo
};

constexpr const char* kPipelines[] = {
    "",                              // 0: none
    "text-generation",               // 1
    "image-text-to-text",            // 2
    "text-classification",           // 3
    "token-classification",          // 4
    "question-answering",            // 5
    "fill-mask",                     // 6
    "feature-extraction",            // 7
    "sentence-similarity",           // 8
    "text2text-generation",          // 9
    "translation",                   // 10
    "summarization",                 // 11
    "automatic-speech-recognition",  // 12
    "text-to-speech",                // 13
    "image-classification",          // 14
    "object-detection",              // 15
    "text-to-image",                 // 16
    "image-to-image",                // 17
    "text-to-video",                 // 18
    "reinforcement-learning",        // 19
    "zero-shot-classification",      // 20
};
enum Lib : uint8_t {
  kNoLib,
  kTransformers,
  kPeft,
  kGguf,
  kDiffusers,
  kSentenceTransformers,
  kTimm,
  kSb3,
  kMlx,
  kMlAgents,
};
constexpr const char* kLibraries[] = {
    "",     "transformers",      "peft", "gguf",     "diffusers", "sentence-transformers",
    "timm", "stable-baselines3", "mlx",  "ml-agents"};
constexpr const char* kLicenses[] = {"apache-2.0", "mit",      "llama3.1", "other",
                                     "cc-by-4.0",  "openrail", "gemma",    "cc-by-nc-4.0"};

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A small deterministic generator for the construction pass.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(SplitMix(seed)) {}
  uint64_t Next() { return state_ = SplitMix(state_); }
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  bool Chance(double p) { return Uniform() < p; }

 private:
  uint64_t state_;
};

int MonthIndexOfDay(int day) {
  static const std::vector<int>* table = [] {
    auto* t = new std::vector<int>();
    for (int d = 0; d <= kLastDay; ++d) {
      absl::CivilDay c = absl::CivilDay(2022, 3, 1) + d;
      t->push_back(static_cast<int>(c.year() * 12 + c.month() - 1));
    }
    return t;
  }();
  return (*table)[std::min(std::max(day, 0), kLastDay)];
}

int MonthIndexOf(absl::string_view yyyy_mm) {
  int y = 0, m = 0;
  std::string s(yyyy_mm);
  std::sscanf(s.c_str(), "%d-%d", &y, &m);
  return y * 12 + m - 1;
}

int DayOf(int y, int m, int d) {
  return static_cast<int>(absl::CivilDay(y, m, d) - absl::CivilDay(2022, 3, 1));
}

int DayOfText(absl::string_view text) {
  int y = 0, m = 0, d = 0;
  std::string s(text);
  std::sscanf(s.c_str(), "%d-%d-%d", &y, &m, &d);
  return DayOf(y, m, d);
}

double Interpolate(const std::vector<std::pair<int, double>>& points, int x) {
  if (points.empty() || x < points.front().first) return 0;
  for (size_t k = 1; k < points.size(); ++k) {
    if (x <= points[k].first) {
      const auto& a = points[k - 1];
      const auto& b = points[k];
      if (b.first == a.first) return b.second;
      return a.second + (b.second - a.second) * (x - a.first) / (b.first - a.first);
    }
  }
  return points.back().second;
}

// Picks from a scenario list by hash; the scenario checks no list is empty.
const std::string& Pick(const google::protobuf::RepeatedPtrField<std::string>& list, uint64_t h) {
  return list[static_cast<int>(h % static_cast<uint64_t>(list.size()))];
}

std::string Base36(uint64_t v, int digits) {
  static const char* kDigits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out(static_cast<size_t>(digits), '0');
  for (int k = digits - 1; k >= 0; --k) {
    out[k] = kDigits[v % 36];
    v /= 36;
  }
  return out;
}

// Weighted choice by cumulative weights.
size_t PickWeighted(const std::vector<double>& weights, double u) {
  double total = 0;
  for (double w : weights) total += w;
  double x = u * total;
  for (size_t k = 0; k < weights.size(); ++k) {
    if (x < weights[k]) return k;
    x -= weights[k];
  }
  return weights.size() - 1;
}

// The id hash used by the lookup map.
uint64_t IdKey(absl::string_view id) { return Fnv1a64(id); }

}  // namespace

absl::StatusOr<int> DayOfDate(absl::string_view date) {
  auto t = ParseDate(date);
  if (!t.ok()) return t.status();
  int64_t day = (absl::ToUnixSeconds(*t) - kEpoch) / 86400;
  if (day < kFirstDay || day > kLastDay) {
    return absl::OutOfRangeError(absl::StrCat("date \"", date, "\" is outside the scenario (",
                                              DateOfDay(kFirstDay), " to ", DateOfDay(kLastDay),
                                              ")"));
  }
  return static_cast<int>(day);
}

std::string DateOfDay(int day) { return FormatDate(absl::FromUnixSeconds(kEpoch + day * 86400LL)); }

GeneratedHub::GeneratedHub(const GeneratedHubOptions& options, const Scenario* scenario,
                           const v1::FamilyConfig* config, const FamilyMatcher* matcher)
    : options_(options), scenario_(scenario), config_(config), matcher_(matcher) {}

uint64_t GeneratedHub::Hash(uint64_t a, uint64_t b) const {
  return SplitMix(options_.seed * 0x2545f4914f6cdd1dull ^ SplitMix(a * 0x9e3779b97f4a7c15ull + b));
}

// Grows the Hub in phases, in the order Run calls them. Every phase draws from one random stream,
// so the order of the phases and of the draws within each is part of what a seed generates
// (tests/fakehub/generated_hub_pin_test.cc pins the result).
class GeneratedHub::Generator {
 public:
  explicit Generator(GeneratedHub* hub)
      : hub_(*hub),
        scenario_(*hub->scenario_),
        config_(*hub->config_),
        matcher_(*hub->matcher_),
        families_(hub->config_->family_size()),
        n_total_(hub->options_.repos),
        rng_(hub->options_.seed),
        plans_(static_cast<size_t>(families_)),
        fp_list_(families_),
        deriv_list_(families_),
        month_assigned_(families_, 0),
        share_weight_(families_, 0.0) {}

  absl::Status Run() {
    PlanFamilies();
    CreateNamespaces();
    RETURN_IF_ERROR(PlanCreation());
    GrowInCreationOrder();
    AddMissingParents();
    AddLineageStructures();
    RETURN_IF_ERROR(AssignNames());
    CalibrateDownloads();
    BuildChildren();
    hub_.SetDay(kLastDay);
    AssignAccess();
    return absl::OkStatus();
  }

 private:
  // How one family of the families file grows: from the scenario when it names the family, else
  // defaults derived from a hash of its name.
  struct FamilyPlan {
    int start_day = kFirstDay;
    bool legacy = false;
    int first_party_count = 1;
    std::vector<std::pair<int, double>> anchors;  // (day, downloads), or empty: quadratic
    double downloads_at_end = 1e6;
    std::vector<std::pair<int, double>> shares;  // (month index, share); empty: "others"
    double other_weight = 0.1;  // weight among "other" LLM families, and for other derivatives
    bool diffusion = false;
    double primary_namespace_chance = 0;  // 0: first-party namespaces uniform
    const Distillation* distillation = nullptr;
    int distillation_since = 0;
    int distillation_base = -1, distillation_other_base = -1;
    std::vector<std::string> namespaces;  // where its first-party repos live
  };

  // One repo to be created: when, and whether first-party (of which family) or legacy.
  struct Slot {
    uint32_t created;
    uint8_t rank;  // ties at the placeholder: first-party first
    int16_t family;
    uint64_t tie;
  };

  // Phase 1: each family's plan; the scenario's per-family rules resolved to family indices.
  void PlanFamilies() {
    for (int f = 0; f < families_; ++f) {
      const v1::Family& fam = config_.family(f);
      const ScenarioFamily* named = FindScenarioFamily(scenario_, fam.name());
      FamilyPlan& plan = plans_[f];
      hub_.named_.push_back(named);
      for (const auto& ns : fam.namespace_()) plan.namespaces.push_back(ns);
      for (const auto& p : fam.namespace_pattern()) plan.namespaces.push_back(p.namespace_());
      for (const auto& ns : plan.namespaces) family_namespaces_.insert(ns);
      uint64_t h = Fnv1a64(fam.name());
      plan.diffusion = absl::c_linear_search(scenario_.diffusion_family(), fam.name());
      hub_.diffusion_.push_back(plan.diffusion);
      if (named != nullptr) {
        plan.legacy = named->start() == "legacy";
        plan.start_day = plan.legacy ? kFirstDay : DayOfText(named->start());
        plan.first_party_count =
            std::max<int>(named->min_first_party(),
                          static_cast<int>(std::llround(named->first_party_per_repo() *
                                                        static_cast<double>(n_total_))));
        for (const auto& a : named->anchor()) {
          plan.anchors.emplace_back(DayOfText(a.date()), a.downloads());
        }
        plan.downloads_at_end = named->downloads_at_end();
        for (const auto& s : named->share()) {
          plan.shares.emplace_back(MonthIndexOf(s.month()), s.share());
        }
        plan.other_weight = named->other_derivative_weight();
        plan.primary_namespace_chance = named->primary_namespace_chance();
        if (named->has_distillation()) {
          plan.distillation = &named->distillation();
          plan.distillation_since = DayOfText(plan.distillation->since());
          plan.distillation_base = matcher_.IndexOf(plan.distillation->base());
          plan.distillation_other_base = matcher_.IndexOf(plan.distillation->other_base());
        }
      } else {
        plan.legacy = h % 5 == 0;
        plan.start_day =
            plan.legacy ? kFirstDay : DayOf(2022, 6, 1) + static_cast<int>((h >> 8) % 1100);
        double per_repo = 1e-5 * (1 + (h >> 20) % 4);
        plan.first_party_count =
            std::max(1, static_cast<int>(std::llround(per_repo * static_cast<double>(n_total_))));
        plan.downloads_at_end = 5e5 * static_cast<double>(1 + (h >> 24) % 80);
        plan.other_weight = 0.05 + static_cast<double>((h >> 32) % 20) / 100.0;
      }
      if (plan.namespaces.empty()) plan.first_party_count = 0;
    }
    for (const std::string& name : scenario_.legacy_finetune_base()) {
      legacy_bases_.push_back(matcher_.IndexOf(name));
    }
    long_chain_family_ = matcher_.IndexOf(scenario_.long_chain_family());
  }

  // Phase 2: namespaces, every family's first (sorted), then users (none of which a family
  // claims): the scenario's well-known accounts, then generated ones.
  void CreateNamespaces() {
    std::vector<std::string>& namespaces = hub_.namespaces_;
    for (const auto& f : family_namespaces_) namespaces.push_back(f);
    std::sort(namespaces.begin(), namespaces.end());
    for (uint32_t k = 0; k < namespaces.size(); ++k) ns_index_[namespaces[k]] = k;
    first_user_ns_ = static_cast<uint32_t>(namespaces.size());
    int64_t users = std::max<int64_t>(60, n_total_ / 7);
    absl::flat_hash_set<std::string> taken(family_namespaces_.begin(), family_namespaces_.end());
    for (const std::string& u : scenario_.user_namespace()) {
      if (taken.insert(u).second) namespaces.push_back(u);
    }
    const auto& syllables = scenario_.names().syllable();
    for (int64_t k = 0; static_cast<int64_t>(namespaces.size() - first_user_ns_) < users; ++k) {
      uint64_t h = hub_.Hash(0x5e55, static_cast<uint64_t>(k));
      std::string name;
      int count = 2 + static_cast<int>(h % 3);
      for (int s = 0; s < count; ++s) name += Pick(syllables, h >> (4 + 5 * s));
      if ((h >> 40) % 3 == 0) absl::StrAppend(&name, (h >> 44) % 1000);
      if ((h >> 50) % 7 == 0) name += "-ai";
      if ((h >> 54) % 9 == 0) name[0] = absl::ascii_toupper(name[0]);
      if (taken.insert(name).second) namespaces.push_back(name);
    }
    user_count_ = static_cast<uint32_t>(namespaces.size()) - first_user_ns_;
  }

  // Power law: a few accounts (quantizers) own many repos.
  uint32_t PickUser(double u) const {
    return first_user_ns_ +
           std::min<uint32_t>(user_count_ - 1,
                              static_cast<uint32_t>(user_count_ * std::pow(u, 3.0)));
  }

  // Phase 3: when each repo is created. First-party repos per family, legacy placeholder repos,
  // the rest along the Hub's growth curve (density e^(day/450)), stratified so counts are smooth
  // at every size.
  absl::Status PlanCreation() {
    slots_.reserve(static_cast<size_t>(n_total_));
    int64_t first_party_total = 0;
    for (int f = 0; f < families_; ++f) {
      const FamilyPlan& plan = plans_[f];
      for (int k = 0; k < plan.first_party_count; ++k) {
        uint64_t h = hub_.Hash(0xf1, static_cast<uint64_t>(f) * 100003 + k);
        int64_t created;
        if (plan.legacy && (k == 0 || (h % 10) < 3)) {
          created = kPlaceholder;
        } else {
          double u = (k + 0.5) / plan.first_party_count;
          int day = plan.start_day +
                    (k == 0 ? 0 : static_cast<int>(std::pow(u, 0.8) * (kLastDay - plan.start_day)));
          day = std::min(std::max(day, std::max(plan.start_day, 2)), kLastDay);
          created = kEpoch + day * 86400LL + (k == 0 ? 43200 : static_cast<int64_t>(h % 86400));
        }
        slots_.push_back({static_cast<uint32_t>(created), 0, static_cast<int16_t>(f), h});
        ++first_party_total;
      }
    }
    int64_t rest = n_total_ - first_party_total;
    if (rest < n_total_ / 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("--repos: ", n_total_, " is too small for ", families_, " families"));
    }
    int64_t legacy = static_cast<int64_t>(std::llround(0.06 * static_cast<double>(n_total_)));
    for (int64_t k = 0; k < legacy; ++k) {
      slots_.push_back({static_cast<uint32_t>(kPlaceholder), 1, -1, hub_.Hash(0x1e, k)});
    }
    int64_t growth = rest - legacy;
    const double tau = 450.0;
    const double lo = std::exp(2 / tau), hi = std::exp((kLastDay + 1) / tau);
    for (int64_t k = 0; k < growth; ++k) {
      double u = (k + 0.5) / static_cast<double>(growth);
      double day = tau * std::log(lo + u * (hi - lo));
      int d = std::min(kLastDay, std::max(2, static_cast<int>(day)));
      uint64_t h = hub_.Hash(0x9e, k);
      slots_.push_back(
          {static_cast<uint32_t>(kEpoch + d * 86400LL + static_cast<int64_t>(h % 86400)), 2, -1,
           h});
    }
    std::sort(slots_.begin(), slots_.end(), [](const Slot& a, const Slot& b) {
      if (a.created != b.created) return a.created < b.created;
      if (a.rank != b.rank) return a.rank < b.rank;
      return a.tie < b.tie;
    });
    return absl::OkStatus();
  }

  // Phase 4: grow the Hub in creation order, so every parent exists before its children.
  void GrowInCreationOrder() {
    hub_.repos_.resize(slots_.size());
    for (size_t i = 0; i < slots_.size(); ++i) {
      const Slot& slot = slots_[i];
      RepoRecord& r = hub_.repos_[i];
      uint64_t h = hub_.Hash(0xabc, i);
      InitRecord(r, h);
      r.created = slot.created;
      r.created_day = static_cast<uint16_t>((static_cast<int64_t>(slot.created) - kEpoch) / 86400);
      int day = r.created_day;
      if (slot.created == kPlaceholder) {
        r.flags |= kPlaceholderCreated;
        // The Hub gives old repos either placeholder second (both recorded in data/real-hub).
        if (hub_.Hash(0x9105, i) & 1) r.created = static_cast<uint32_t>(kPlaceholder05);
        r.lastmod_days = static_cast<uint16_t>((h >> 12) % 1000);
      }
      if (slot.family >= 0) {
        GrowFirstParty(static_cast<uint32_t>(i), slot.family);
        continue;
      }
      r.ns = PickUser(rng_.Uniform());
      r.rate = static_cast<float>(0.2 * std::pow(1.0 - rng_.Uniform(), -0.9));
      r.rate = std::min(r.rate, 3000.0f);
      if (slot.rank == 1) {
        GrowLegacy(static_cast<uint32_t>(i));
      } else if (rng_.Chance(0.275)) {
        GrowDerivative(static_cast<uint32_t>(i), MonthIndexOfDay(day));
      } else {
        GrowStandalone(static_cast<uint32_t>(i));
      }
      AssignLifecycle(static_cast<uint32_t>(i));
    }
  }

  void InitRecord(RepoRecord& r, uint64_t h) {
    r.deleted_day = kNever;
    r.salt = 0;
    r.style = static_cast<uint8_t>(h >> 56);
    r.lastmod_days = static_cast<uint16_t>((h >> 12) % 200);
    r.edge_begin = static_cast<uint32_t>(hub_.edges_.size());
    r.edge_count = 0;
    r.flags = 0;
    r.first_party = -1;
    r.stem_family = -1;
    r.pipeline = 0;
    r.library = kNoLib;
    r.init_downloads = static_cast<uint8_t>((h >> 24) % 31);
  }

  void AddEdge(RepoRecord& r, uint32_t target, uint8_t relation) {
    for (uint32_t k = r.edge_begin; k < r.edge_begin + r.edge_count; ++k) {
      if (hub_.edges_[k].target == target) return;
    }
    hub_.edges_.push_back({target, relation});
    ++r.edge_count;
  }

  void GrowFirstParty(uint32_t i, int f) {
    RepoRecord& r = hub_.repos_[i];
    const FamilyPlan& plan = plans_[f];
    r.kind = kFirstParty;
    r.first_party = static_cast<int16_t>(f);
    r.stem_family = static_cast<int16_t>(f);
    size_t ns;
    if (plan.primary_namespace_chance > 0 && plan.namespaces.size() > 1) {
      ns = rng_.Chance(plan.primary_namespace_chance) ? 0
                                                      : 1 + rng_.Below(plan.namespaces.size() - 1);
    } else {
      ns = rng_.Below(plan.namespaces.size());
    }
    r.ns = ns_index_[plan.namespaces[ns]];
    r.rate = static_cast<float>(std::pow(1.0 - rng_.Uniform(), -1.0 / 1.2));
    if (plan.diffusion) {
      r.pipeline = 16;
      r.library = kDiffusers;
    } else if (!plan.shares.empty() || plan.legacy == false) {
      double u = rng_.Uniform();
      r.pipeline = u < 0.72 ? 1 : u < 0.84 ? 2 : u < 0.92 ? 7 : 0;
      r.library = kTransformers;
    } else {
      static const uint8_t kLegacyPipes[] = {1, 3, 6, 7, 9, 12, 14, 5, 0};
      r.pipeline = kLegacyPipes[rng_.Below(9)];
      r.library = r.pipeline == 0 ? kNoLib : kTransformers;
    }
    if (rng_.Chance(0.05))
      r.flags |= kGatedManual;
    else if (rng_.Chance(0.10))
      r.flags |= kGatedAuto;
    // Instruct from base, or a first-party quantization of its own model.
    if (!fp_list_[f].empty() && rng_.Chance(0.4)) {
      AddEdge(r, fp_list_[f][rng_.Below(fp_list_[f].size())],
              rng_.Chance(0.8) ? static_cast<uint8_t>(Relation::kFinetune)
                               : static_cast<uint8_t>(Relation::kQuantized));
    }
    // Distills: first-party repos whose one parent is another family's first-party repo.
    if (plan.distillation != nullptr && r.created_day >= plan.distillation_since &&
        rng_.Chance(plan.distillation->chance())) {
      int base = rng_.Chance(plan.distillation->base_chance()) ? plan.distillation_base
                                                               : plan.distillation_other_base;
      if (base >= 0 && !fp_list_[base].empty()) {
        r.edge_count = 0;
        r.edge_begin = static_cast<uint32_t>(hub_.edges_.size());
        AddEdge(r, fp_list_[base][rng_.Below(fp_list_[base].size())],
                static_cast<uint8_t>(Relation::kFinetune));
      }
    }
    fp_list_[f].push_back(i);
  }

  // Legacy: the placeholder createdAt; some without a namespace; some old finetunes.
  void GrowLegacy(uint32_t i) {
    RepoRecord& r = hub_.repos_[i];
    r.kind = kLegacy;
    if (rng_.Chance(0.15)) r.ns = kBare;
    if (rng_.Chance(0.15)) r.flags |= kNoAllTime;
    r.rate *= 2;
    std::vector<int> bases;
    for (int f : legacy_bases_) {
      if (f >= 0 && !fp_list_[f].empty()) bases.push_back(f);
    }
    if (!bases.empty() && rng_.Chance(0.12)) {
      int f = bases[rng_.Below(bases.size())];
      r.stem_family = static_cast<int16_t>(f);
      AddEdge(r, fp_list_[f][rng_.Below(fp_list_[f].size())],
              static_cast<uint8_t>(Relation::kFinetune));
      static const uint8_t kPipes[] = {3, 5, 4, 9, 1};
      r.pipeline = kPipes[rng_.Below(5)];
      r.library = kTransformers;
      deriv_list_[f].push_back(i);
    } else {
      static const uint8_t kPipes[] = {0, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 1, 19, 0};
      r.pipeline = kPipes[rng_.Below(14)];
      r.library = r.pipeline == 0 ? kNoLib : r.pipeline == 19 ? kSb3 : kTransformers;
    }
  }

  static uint8_t RelationFor(double u) {
    if (u < 0.43) return static_cast<uint8_t>(Relation::kAdapter);
    if (u < 0.79) return static_cast<uint8_t>(Relation::kFinetune);
    if (u < 0.98) return static_cast<uint8_t>(Relation::kQuantized);
    return static_cast<uint8_t>(Relation::kMerge);
  }

  uint32_t PickParent(int f) {
    const auto& fps = fp_list_[f];
    const auto& ds = deriv_list_[f];
    if (!ds.empty() && rng_.Chance(0.45)) {
      size_t window = std::min<size_t>(ds.size(), 300);
      return ds[ds.size() - 1 - rng_.Below(window)];
    }
    if (rng_.Chance(0.5)) {
      size_t window = std::min<size_t>(fps.size(), 5);
      return fps[fps.size() - 1 - rng_.Below(window)];
    }
    return fps[static_cast<size_t>(std::pow(rng_.Uniform(), 2.0) *
                                   static_cast<double>(fps.size()))];
  }

  // Eligible derivatives ("new LLM derivatives") follow the month's share curve exactly by
  // largest deficit, so shares hold at every --repos.
  int PickShareFamily(int month) {
    if (month != current_month_) {
      current_month_ = month;
      month_count_ = 0;
      std::fill(month_assigned_.begin(), month_assigned_.end(), 0);
    }
    double named_total = 0, others_weight = 0;
    for (int f = 0; f < families_; ++f) {
      share_weight_[f] = 0;
      if (fp_list_[f].empty() || plans_[f].diffusion) continue;
      if (!plans_[f].shares.empty()) {
        share_weight_[f] = Interpolate(plans_[f].shares, month);
        named_total += share_weight_[f];
      } else {
        others_weight += plans_[f].other_weight;
      }
    }
    double remainder = std::max(0.05, 1.0 - named_total);
    double total = 0;
    for (int f = 0; f < families_; ++f) {
      if (fp_list_[f].empty() || plans_[f].diffusion) continue;
      if (plans_[f].shares.empty() && others_weight > 0) {
        share_weight_[f] = remainder * plans_[f].other_weight / others_weight;
      }
      total += share_weight_[f];
    }
    if (total <= 0) return -1;
    int best = -1;
    double best_deficit = -1e18;
    for (int f = 0; f < families_; ++f) {
      if (share_weight_[f] <= 0) continue;
      double deficit = share_weight_[f] / total * (month_count_ + 1) - month_assigned_[f];
      if (deficit > best_deficit) {
        best_deficit = deficit;
        best = f;
      }
    }
    ++month_count_;
    ++month_assigned_[best];
    return best;
  }

  void GrowDerivative(uint32_t i, int month) {
    RepoRecord& r = hub_.repos_[i];
    r.kind = kDerivative;
    bool eligible = rng_.Chance(0.6);
    int f = eligible ? PickShareFamily(month) : -1;
    if (f < 0) {
      eligible = false;
      std::vector<double> w(families_, 0.0);
      for (int g = 0; g < families_; ++g) {
        if (!fp_list_[g].empty()) w[g] = plans_[g].other_weight;
      }
      f = static_cast<int>(PickWeighted(w, rng_.Uniform()));
      for (int g = 0; fp_list_[f].empty() && g < families_; ++g) f = g;
    }
    r.stem_family = static_cast<int16_t>(f);
    uint8_t relation = RelationFor(rng_.Uniform());
    AddEdge(r, PickParent(f), relation);
    if (relation == static_cast<uint8_t>(Relation::kMerge)) {
      int extra = 1 + (rng_.Chance(0.3) ? 1 : 0) + (rng_.Chance(0.1) ? 1 : 0);
      for (int k = 0; k < extra; ++k) {
        int g = f;
        if (rng_.Chance(0.3)) {
          int other = static_cast<int>(rng_.Below(families_));
          if (!fp_list_[other].empty()) g = other;
        }
        AddEdge(r, PickParent(g), relation);
      }
    }
    if (rng_.Chance(0.02)) r.flags |= kBareTags;
    if (eligible) {
      r.pipeline = rng_.Chance(0.88) ? 1 : 2;
      r.init_downloads =
          static_cast<uint8_t>(rng_.Chance(0.95) ? 5 + rng_.Below(56) : rng_.Below(5));
    } else if (plans_[f].diffusion) {
      r.pipeline = 16;
    } else {
      static const uint8_t kPipes[] = {3, 16, 7, 12, 4, 0, 8, 5, 14, 0};
      r.pipeline = kPipes[rng_.Below(10)];
    }
    switch (static_cast<Relation>(relation)) {
      case Relation::kAdapter:
        r.library = kPeft;
        break;
      case Relation::kQuantized:
        r.library = rng_.Chance(0.6) ? kGguf : rng_.Chance(0.5) ? kMlx : kTransformers;
        break;
      default:
        r.library = r.pipeline == 16 ? kDiffusers : kTransformers;
    }
    if (r.pipeline == 16 && relation == static_cast<uint8_t>(Relation::kAdapter)) {
      r.library = kDiffusers;
    }
    deriv_list_[f].push_back(i);
  }

  void GrowStandalone(uint32_t i) {
    RepoRecord& r = hub_.repos_[i];
    r.kind = kStandalone;
    static const uint8_t kPipes[] = {0,  0,  0, 0, 0, 1, 1, 1, 3,  3,  3, 16, 16, 19, 19, 12,
                                     14, 14, 7, 4, 5, 6, 8, 9, 10, 11, 2, 15, 13, 17, 18, 20};
    r.pipeline = kPipes[rng_.Below(sizeof(kPipes))];
    switch (r.pipeline) {
      case 0:
        r.library = rng_.Chance(0.5) ? kNoLib : kTransformers;
        break;
      case 16:
      case 17:
        r.library = kDiffusers;
        break;
      case 19:
        r.library = rng_.Chance(0.8) ? kSb3 : kMlAgents;
        break;
      case 8:
        r.library = kSentenceTransformers;
        break;
      case 14:
        r.library = rng_.Chance(0.5) ? kTimm : kTransformers;
        break;
      default:
        r.library = kTransformers;
    }
    // Names that mention a family without declaring it as a base.
    if (rng_.Chance(0.1)) r.stem_family = static_cast<int16_t>(rng_.Below(families_));
  }

  // Private, disabled, gated, no all-time figure, deleted or renamed later (user repos only).
  void AssignLifecycle(uint32_t i) {
    RepoRecord& r = hub_.repos_[i];
    int day = r.created_day;
    if (rng_.Chance(0.008)) r.flags |= kPrivate;
    if (rng_.Chance(0.002)) r.flags |= kDisabled;
    if (rng_.Chance(0.01)) r.flags |= kGatedAuto;
    if (r.kind != kLegacy && rng_.Chance(0.003)) r.flags |= kNoAllTime;
    if (rng_.Chance(0.004) && day < kLastDay - 1) {
      r.deleted_day = static_cast<uint16_t>(day + 1 + rng_.Below(kLastDay - day - 1));
    }
    if (rng_.Chance(0.003) && r.ns != kBare && day < kLastDay - 1) {
      r.flags |= kRenamed;
      hub_.rename_day_[i] = static_cast<uint16_t>(day + 1 + rng_.Below(kLastDay - day - 1));
    }
  }

  // Phase 5: parents that do not exist: about 1% of derivatives, half in their family's
  // namespace (still classified by it), half in a user namespace (no family).
  void AddMissingParents() {
    for (uint32_t i = 0; i < hub_.repos_.size(); ++i) {
      RepoRecord& r = hub_.repos_[i];
      if (r.kind != kDerivative || r.edge_count == 0 || r.stem_family < 0) continue;
      if (!rng_.Chance(0.01)) continue;
      Ghost g;
      g.stem_family = r.stem_family;
      g.salt = 0;
      const FamilyPlan& plan = plans_[r.stem_family];
      if (rng_.Chance(0.5) && !plan.namespaces.empty()) {
        g.ns = ns_index_[plan.namespaces[0]];
      } else {
        g.ns = PickUser(rng_.Uniform());
      }
      g.family = -1;
      hub_.edges_[r.edge_begin].target = kGhostBit | static_cast<uint32_t>(hub_.ghosts_.size());
      hub_.ghosts_.push_back(g);
    }
  }

  // Phase 6: structures the lineage rules must handle, rewired from standalone user repos
  // created from 2023-06: two-cycles fed by a third repo, self-loops, and one long chain.
  void AddLineageStructures() {
    std::vector<uint32_t> pool;
    const int pool_from = DayOf(2023, 6, 1);
    for (uint32_t i = 0; i < hub_.repos_.size(); ++i) {
      const RepoRecord& r = hub_.repos_[i];
      if (r.kind == kStandalone && r.created_day >= pool_from &&
          !(r.flags & (kPrivate | kRenamed)) && r.deleted_day == kNever && r.ns != kBare) {
        pool.push_back(i);
      }
    }
    // Shuffle deterministically, then take from the front.
    for (size_t k = pool.size(); k > 1; --k) std::swap(pool[k - 1], pool[rng_.Below(k)]);
    size_t next = 0;
    auto take = [&]() -> int64_t { return next < pool.size() ? pool[next++] : -1; };
    const uint8_t ft = static_cast<uint8_t>(Relation::kFinetune);
    int64_t specials = std::max<int64_t>(2, n_total_ / 25000);
    for (int64_t k = 0; k < specials; ++k) {
      int64_t a = take(), b = take(), c = take(), s = take();
      if (a < 0 || b < 0 || c < 0 || s < 0) break;
      if (a > b) std::swap(a, b);
      Rewire(static_cast<uint32_t>(a), {{static_cast<uint32_t>(b), ft}}, -1);  // a -> b -> a
      Rewire(static_cast<uint32_t>(b), {{static_cast<uint32_t>(a), ft}}, -1);
      Rewire(static_cast<uint32_t>(c), {{static_cast<uint32_t>(a), ft}}, -1);  // feeds the cycle
      Rewire(static_cast<uint32_t>(s), {{static_cast<uint32_t>(s), ft}}, -1);  // self-loop
    }
    // One long chain from the scenario's family's first first-party repo, longer than the
    // 64-step limit on big hubs.
    const int chain_family = long_chain_family_;
    if (chain_family >= 0 && !fp_list_[chain_family].empty()) {
      int64_t length = std::min<int64_t>(70, std::max<int64_t>(8, n_total_ / 300));
      std::vector<uint32_t> chain;
      uint32_t root = fp_list_[chain_family][0];
      while (static_cast<int64_t>(chain.size()) < length) {
        int64_t c = take();
        if (c < 0) break;
        if (static_cast<uint32_t>(c) > root) chain.push_back(static_cast<uint32_t>(c));
      }
      std::sort(chain.begin(), chain.end());
      uint32_t parent = root;
      for (uint32_t c : chain) {
        Rewire(c, {{parent, ft}}, chain_family);
        parent = c;
      }
    }
  }

  void Rewire(uint32_t i, const std::vector<std::pair<uint32_t, uint8_t>>& parents, int stem) {
    RepoRecord& r = hub_.repos_[i];
    r.kind = kDerivative;
    r.edge_begin = static_cast<uint32_t>(hub_.edges_.size());
    r.edge_count = 0;
    for (const auto& [t, rel] : parents) AddEdge(r, t, rel);
    r.pipeline = 1;
    r.library = kTransformers;
    r.init_downloads = 10;
    r.stem_family = static_cast<int16_t>(stem);
  }

  // Phase 7: unique names (a salt retried), renamed repos' second names, missing parents' names.
  absl::Status AssignNames() {
    hub_.ids_.reserve(hub_.repos_.size() + hub_.rename_day_.size() + hub_.ghosts_.size());
    for (uint32_t i = 0; i < hub_.repos_.size(); ++i) {
      RepoRecord& r = hub_.repos_[i];
      bool placed = false;
      for (int attempt = 0; attempt < 64 && !placed; ++attempt) {
        r.salt = static_cast<uint8_t>(attempt);
        std::string id = hub_.NameAt(i, 0);
        if (matcher_.FirstPartyFamily(id) != r.first_party) continue;
        placed = hub_.ids_.emplace(IdKey(id), static_cast<uint64_t>(i) << 8).second;
      }
      if (!placed) {
        // Its namespace is claimed first by another family: it is first-party for that one.
        for (int attempt = 0; attempt < 250 && !placed; ++attempt) {
          r.salt = static_cast<uint8_t>(attempt);
          std::string id = hub_.NameAt(i, 0);
          r.first_party = static_cast<int16_t>(matcher_.FirstPartyFamily(id));
          placed = hub_.ids_.emplace(IdKey(id), static_cast<uint64_t>(i) << 8).second;
        }
      }
      if (!placed) {
        return absl::InternalError(absl::StrCat("fakehub: could not name repo ", i, " uniquely"));
      }
    }
    for (auto it = hub_.rename_day_.begin(); it != hub_.rename_day_.end();) {
      uint32_t i = it->first;
      std::string id = hub_.NameAt(i, 1);
      if (matcher_.FirstPartyFamily(id) == hub_.repos_[i].first_party &&
          hub_.ids_.emplace(IdKey(id), (static_cast<uint64_t>(i) << 8) | 1).second) {
        ++it;
      } else {
        hub_.repos_[i].flags &= static_cast<uint8_t>(~kRenamed);
        hub_.rename_day_.erase(it++);
      }
    }
    for (uint32_t g = 0; g < hub_.ghosts_.size(); ++g) {
      for (int attempt = 0; attempt < 64; ++attempt) {
        hub_.ghosts_[g].salt = static_cast<uint16_t>(attempt);
        std::string id = hub_.GhostId(g);
        if (hub_.ids_.emplace(IdKey(id), (static_cast<uint64_t>(kGhostBit | g) << 8)).second) {
          hub_.ghosts_[g].family = static_cast<int16_t>(matcher_.FirstPartyFamily(id));
          break;
        }
      }
    }
    return absl::OkStatus();
  }

  // Phase 8: first-party download curves, exact at the scenario's anchors.
  void CalibrateDownloads() {
    const int families = families_;
    hub_.curves_.assign(static_cast<size_t>(families), FamilyCurve());
    std::vector<std::vector<uint32_t>> members(families);
    for (uint32_t i = 0; i < hub_.repos_.size(); ++i) {
      if (hub_.repos_[i].first_party >= 0) members[hub_.repos_[i].first_party].push_back(i);
    }
    const int anchor_day = DayOf(2025, 10, 31);
    for (int f = 0; f < families; ++f) {
      FamilyCurve& curve = hub_.curves_[f];
      curve.prefix.assign(kLastDay + 2, 0.0);
      if (members[f].empty()) continue;
      const std::vector<std::pair<int, double>>& anchors = plans_[f].anchors;
      int start = hub_.repos_[members[f][0]].created_day;
      double total = plans_[f].downloads_at_end;
      auto cumulative = [&](int d) -> double {
        if (d < start) return 0;
        if (!anchors.empty()) return std::floor(Interpolate(anchors, d));
        double x = static_cast<double>(d - start + 1) / static_cast<double>(kLastDay - start + 1);
        return std::floor(total * x * x);
      };
      std::vector<double> weight_by_day(kLastDay + 1, 0.0);
      for (uint32_t i : members[f])
        weight_by_day[hub_.repos_[i].created_day] += hub_.repos_[i].rate;
      double existing = 0, previous = 0;
      for (int d = 0; d <= kLastDay; ++d) {
        existing += weight_by_day[d];
        double c = cumulative(d);
        double rate = existing > 0 ? (c - previous) / existing : 0;
        if (existing > 0) previous = c;
        curve.prefix[d + 1] = curve.prefix[d] + rate;
      }
      if (!anchors.empty()) {
        // Exact at 2025-10-31: the first repo absorbs what flooring lost, growing into it.
        curve.anchor = members[f][0];
        curve.anchor_day = anchor_day;
        curve.anchor_delta = 0;
        int64_t sum = 0;
        for (uint32_t i : members[f]) sum += hub_.AllTimeAt(i, anchor_day);
        curve.anchor_delta = static_cast<int64_t>(cumulative(anchor_day)) - sum;
      }
    }
  }

  // Phase 9: the children index (CSR) by parent edge.
  void BuildChildren() {
    hub_.child_begin_.assign(hub_.repos_.size() + 1, 0);
    for (const RepoRecord& r : hub_.repos_) {
      for (uint32_t k = r.edge_begin; k < r.edge_begin + r.edge_count; ++k) {
        if (!(hub_.edges_[k].target & kGhostBit)) ++hub_.child_begin_[hub_.edges_[k].target + 1];
      }
    }
    for (size_t k = 1; k < hub_.child_begin_.size(); ++k)
      hub_.child_begin_[k] += hub_.child_begin_[k - 1];
    hub_.children_.assign(hub_.child_begin_.back(), 0);
    std::vector<uint32_t> fill(hub_.child_begin_.begin(), hub_.child_begin_.end() - 1);
    for (uint32_t i = 0; i < hub_.repos_.size(); ++i) {
      const RepoRecord& r = hub_.repos_[i];
      for (uint32_t k = r.edge_begin; k < r.edge_begin + r.edge_count; ++k) {
        if (!(hub_.edges_[k].target & kGhostBit)) hub_.children_[fill[hub_.edges_[k].target]++] = i;
      }
    }
  }

  // Phase 10: who may read each repo, from the options (not the random stream).
  void AssignAccess() {
    auto uniform = [](uint64_t h) {
      return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
    };
    for (uint32_t i = 0; i < hub_.repos_.size(); ++i) {
      RepoRecord& r = hub_.repos_[i];
      r.access = 0;
      // First-party repos can be private too (their children then have a missing parent in a
      // family's namespace), except the one each family's download curve is anchored on.
      bool anchor = r.first_party >= 0 && hub_.curves_[r.first_party].anchor == i;
      if (!anchor && !(r.flags & kPrivate) &&
          uniform(hub_.Hash(0x9717, i)) < hub_.options_.private_fraction) {
        r.access |= kTokenPrivate;
      }
      if ((r.flags & (kGatedAuto | kGatedManual)) &&
          uniform(hub_.Hash(0x6a7e, i)) < hub_.options_.gated_no_access_fraction) {
        r.access |= kGatedNoAccess;
      }
    }
  }

  GeneratedHub& hub_;
  const Scenario& scenario_;
  const v1::FamilyConfig& config_;
  const FamilyMatcher& matcher_;
  const int families_;
  const int64_t n_total_;
  Rng rng_;  // the one random stream every phase draws from, in order
  std::vector<FamilyPlan> plans_;
  std::vector<int> legacy_bases_;  // family indices (-1: not in the families file)
  int long_chain_family_ = -1;
  absl::flat_hash_set<std::string> family_namespaces_;
  absl::flat_hash_map<std::string, uint32_t> ns_index_;
  uint32_t first_user_ns_ = 0;
  uint32_t user_count_ = 0;
  std::vector<Slot> slots_;
  std::vector<std::vector<uint32_t>> fp_list_, deriv_list_;  // per family, in creation order
  // PickShareFamily's month: how many eligible derivatives it has assigned, per family.
  std::vector<int> month_assigned_;
  int current_month_ = -1, month_count_ = 0;
  std::vector<double> share_weight_;
};

absl::StatusOr<std::unique_ptr<GeneratedHub>> GeneratedHub::Create(
    const GeneratedHubOptions& options, const v1::FamilyConfig* config,
    const FamilyMatcher* matcher) {
  ASSIGN_OR_RETURN(const Scenario* scenario, FindScenario(options.scenario));
  if (options.repos < 1000 || options.repos > 10000000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--repos: ", options.repos, " is outside 1000..10000000"));
  }
  std::unique_ptr<GeneratedHub> hub(new GeneratedHub(options, scenario, config, matcher));
  if (!(options.private_fraction >= 0 && options.private_fraction <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--private_repos: ", options.private_fraction, " is not a fraction in 0..1"));
  }
  if (!(options.gated_no_access_fraction >= 0 && options.gated_no_access_fraction <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--gated_no_access: ", options.gated_no_access_fraction, " is not a fraction in 0..1"));
  }
  RETURN_IF_ERROR(Generator(hub.get()).Run());
  return hub;
}

std::string GeneratedHub::NameAt(uint32_t i, int gen) const {
  const RepoRecord& r = repos_[i];
  uint64_t h = Hash(0x4a3e, (static_cast<uint64_t>(i) << 8) | r.salt);
  std::string name;
  if (r.ns != kBare) absl::StrAppend(&name, namespaces_[r.ns], "/");
  const v1::Family* fam = r.stem_family >= 0 ? &config_->family(r.stem_family) : nullptr;
  const ScenarioFamily* named = fam ? named_[r.stem_family] : nullptr;
  const NameVocabulary& words = scenario_->names();
  auto family_stem = [&](uint64_t x) -> std::string {
    if (named != nullptr) return Pick(named->stem(), x);
    return absl::StrCat(fam->name(), (x % 3 == 0) ? "" : absl::StrCat("-", 1 + x % 4));
  };
  if (r.kind == kFirstParty) {
    std::string stem = family_stem(h);
    absl::StrAppend(&name, stem);
    if (!diffusion_[r.stem_family]) absl::StrAppend(&name, "-", Pick(words.size(), h >> 8));
    absl::StrAppend(&name, Pick(words.variant(), h >> 16));
    if ((h >> 24) % 3 == 0) {
      absl::CivilDay d = absl::CivilDay(2022, 3, 1) + r.created_day;
      absl::StrAppendFormat(&name, "-%02d%02d", static_cast<int>(d.year() % 100), d.month());
    }
  } else if (fam != nullptr) {
    absl::StrAppend(&name, family_stem(h), "-", Pick(words.size(), h >> 8));
    if (r.kind == kDerivative && r.edge_count > 0) {
      switch (static_cast<Relation>(edges_[r.edge_begin].relation)) {
        case Relation::kQuantized:
          absl::StrAppend(&name, Pick(words.quantized_suffix(), h >> 16));
          break;
        case Relation::kAdapter:
          absl::StrAppend(&name, Pick(words.adapter_suffix(), h >> 16));
          break;
        case Relation::kMerge:
          absl::StrAppend(&name, Pick(words.merge_suffix(), h >> 16));
          break;
        default:
          absl::StrAppend(&name, Pick(words.finetune_suffix(), h >> 16));
      }
    } else {
      absl::StrAppend(&name, "-", Pick(words.task_word(), h >> 16));
    }
    if ((h >> 24) % 2 == 0)
      absl::StrAppend(&name, "-", Pick(words.word(), h >> 28), "-", (h >> 36) % 100);
  } else {
    absl::StrAppend(&name, Pick(words.generic_stem(), h >> 8), "-",
                    Pick(words.task_word(), h >> 16));
    if ((h >> 24) % 2 == 0) absl::StrAppend(&name, "-", Pick(words.word(), h >> 28));
    if ((h >> 32) % 3 != 0) absl::StrAppend(&name, "-", Base36(h >> 40, 4));
  }
  if (r.salt > 2) absl::StrAppend(&name, "-", Base36(h >> 20, 5));
  if (gen > 0) absl::StrAppend(&name, "-v", gen + 1);
  return name;
}

std::string GeneratedHub::GhostId(uint32_t g) const {
  const Ghost& ghost = ghosts_[g];
  uint64_t h = Hash(0x6405, (static_cast<uint64_t>(g) << 16) | ghost.salt);
  const v1::Family& fam = config_->family(ghost.stem_family);
  const ScenarioFamily* named = named_[ghost.stem_family];
  const NameVocabulary& words = scenario_->names();
  const std::string& stem = named ? Pick(named->stem(), h) : fam.name();
  return absl::StrCat(namespaces_[ghost.ns], "/", stem, "-", Pick(words.size(), h >> 8),
                      Pick(words.missing_parent_suffix(), h >> 16), "-", Base36(h >> 24, 4));
}

void GeneratedHub::SetDay(int day) { day_ = std::min(std::max(day, kFirstDay), kLastDay); }

bool GeneratedHub::ListedAt(uint32_t i, int day) const {
  return ExistsAt(i, day) && !(repos_[i].flags & kPrivate) && !(repos_[i].access & kTokenPrivate);
}

bool GeneratedHub::ExistsAt(uint32_t i, int day) const {
  const RepoRecord& r = repos_[i];
  if (r.created_day > day || r.deleted_day <= day) return false;
  return mutation_deleted_.empty() || !mutation_deleted_.contains(i);
}

bool GeneratedHub::ListedWithToken(int64_t index) const {
  uint32_t i = static_cast<uint32_t>(index);
  return ExistsAt(i, day_) && !(repos_[i].flags & kPrivate);
}

int GeneratedHub::GenAt(uint32_t i, int day) const {
  int gen = 0;
  if (repos_[i].flags & kRenamed) {
    auto it = rename_day_.find(i);
    if (it != rename_day_.end() && it->second <= day) gen = 1;
  }
  if (!mutation_gen_.empty()) {
    auto it = mutation_gen_.find(i);
    if (it != mutation_gen_.end()) gen = std::max<int>(gen, it->second);
  }
  return gen;
}

std::string GeneratedHub::IdAt(uint32_t i, int day) const { return NameAt(i, GenAt(i, day)); }

std::string GeneratedHub::EdgeTargetId(const Edge& e, int day) const {
  if (e.target & kGhostBit) return GhostId(e.target & ~kGhostBit);
  return IdAt(e.target, day);
}

int64_t GeneratedHub::AllTimeAt(uint32_t i, int day) const {
  const RepoRecord& r = repos_[i];
  if (day < r.created_day) return 0;
  int64_t v;
  if (r.first_party >= 0) {
    const FamilyCurve& curve = curves_[r.first_party];
    double span = curve.prefix[day + 1] - curve.prefix[r.created_day];
    v = static_cast<int64_t>(std::floor(static_cast<double>(r.rate) * span));
    if (curve.anchor == i && curve.anchor_delta > 0) {
      if (day >= curve.anchor_day) {
        v += curve.anchor_delta;
      } else {
        double full = curve.prefix[curve.anchor_day + 1] - curve.prefix[r.created_day];
        if (full > 0) {
          v += static_cast<int64_t>(
              std::floor(static_cast<double>(curve.anchor_delta) * span / full));
        }
      }
    }
  } else {
    double scale = 2200000.0 / static_cast<double>(options_.repos);
    v = r.init_downloads + static_cast<int64_t>(std::floor(static_cast<double>(r.rate) * scale *
                                                           (day - r.created_day + 1)));
  }
  if (!mutation_downloads_.empty()) {
    auto it = mutation_downloads_.find(i);
    if (it != mutation_downloads_.end() && day >= it->second.second) v += it->second.first;
  }
  return v;
}

int64_t GeneratedHub::Downloads30At(uint32_t i, int day) const {
  return AllTimeAt(i, day) - (day - 30 >= 0 ? AllTimeAt(i, day - 30) : 0);
}

int64_t GeneratedHub::LikesAt(uint32_t i, int day) const {
  uint64_t h = Hash(0x11ce, i);
  double factor = static_cast<double>(h % 400) / 1000.0;
  return static_cast<int64_t>(std::sqrt(static_cast<double>(AllTimeAt(i, day))) * factor);
}

double GeneratedHub::TrendingAt(uint32_t i, int day) const {
  uint64_t h = Hash(0x7e4d, i);
  double factor = static_cast<double>(h % 100) / 1000.0;
  double v = std::sqrt(static_cast<double>(Downloads30At(i, day))) * factor;
  return std::floor(v * 10) / 10;
}

int64_t GeneratedHub::LastModifiedAt(uint32_t i, int day) const {
  const RepoRecord& r = repos_[i];
  int64_t modified = static_cast<int64_t>(r.created) + r.lastmod_days * 86400LL +
                     static_cast<int64_t>(Hash(0x1a57, i) % 86400);
  int64_t end_of_day = kEpoch + (day + 1) * 86400LL - 1;
  return modified <= end_of_day ? modified : r.created;
}

double GeneratedHub::SortKey(int64_t index, SortField field) const {
  uint32_t i = static_cast<uint32_t>(index);
  switch (field) {
    case SortField::kCreatedAt:
      return static_cast<double>(repos_[i].created);
    case SortField::kLastModified:
      return static_cast<double>(LastModifiedAt(i, day_));
    case SortField::kDownloads:
      return static_cast<double>(Downloads30At(i, day_));
    case SortField::kLikes:
      return static_cast<double>(LikesAt(i, day_));
    case SortField::kTrendingScore:
      return TrendingAt(i, day_);
  }
  return 0;
}

uint64_t GeneratedHub::KeyVersion(SortField field) const {
  if (field == SortField::kCreatedAt) return mutation_version_;
  return (static_cast<uint64_t>(day_) << 32) | mutation_version_;
}

ObjectId GeneratedHub::Oid(int64_t index) const {
  uint32_t i = static_cast<uint32_t>(index);
  ObjectId oid;
  oid.time = repos_[i].created;
  // 5 random bytes, then a 3-byte counter (the slot), as MongoDB builds them.
  oid.rest = (Hash(0x01d, i) & 0xFFFFFFFFFF000000ull) | (static_cast<uint64_t>(i) & 0xFFFFFF);
  return oid;
}

std::vector<std::string> GeneratedHub::Tags(uint32_t i) const {
  const RepoRecord& r = repos_[i];
  std::vector<std::string> tags;
  if (r.library != kNoLib) tags.push_back(kLibraries[r.library]);
  bool safetensors = r.library == kTransformers || r.library == kDiffusers || r.library == kPeft;
  if (safetensors) tags.push_back("safetensors");
  if (r.library == kGguf) tags.push_back("gguf");
  if (r.pipeline != 0) tags.push_back(kPipelines[r.pipeline]);
  if (r.pipeline == 1 && (r.style & 1)) tags.push_back("conversational");
  if (r.stem_family >= 0 && r.pipeline <= 2 && r.pipeline != 0) {
    tags.push_back(absl::AsciiStrToLower(config_->family(r.stem_family).name()));
  }
  for (uint32_t k = r.edge_begin; k < r.edge_begin + r.edge_count; ++k) {
    tags.push_back(absl::StrCat("base_model:", EdgeTargetId(edges_[k], day_)));
  }
  if (!(r.flags & kBareTags)) {
    for (uint32_t k = r.edge_begin; k < r.edge_begin + r.edge_count; ++k) {
      tags.push_back(absl::StrCat("base_model:", kRelationNames[edges_[k].relation], ":",
                                  EdgeTargetId(edges_[k], day_)));
    }
  }
  tags.push_back(absl::StrCat("license:", kLicenses[(r.style >> 1) % 8]));
  if (r.library == kTransformers && (r.style & 16)) tags.push_back("text-generation-inference");
  if (r.style & 32) tags.push_back("endpoints_compatible");
  tags.push_back("region:us");
  return tags;
}

bool GeneratedHub::Matches(int64_t index, const ListingFilter& filter) const {
  uint32_t i = static_cast<uint32_t>(index);
  const RepoRecord& r = repos_[i];
  if (!filter.author.empty()) {
    if (r.ns == kBare || namespaces_[r.ns] != filter.author) return false;
  }
  if (!filter.pipeline_tag.empty() && filter.pipeline_tag != kPipelines[r.pipeline]) return false;
  if (!filter.search.empty() && !ContainsIgnoreCase(Id(index), filter.search)) {
    return false;
  }
  if (!filter.tags.empty()) {
    std::vector<std::string> tags = Tags(i);
    for (const auto& want : filter.tags) {
      if (std::find(tags.begin(), tags.end(), want) == tags.end()) return false;
    }
  }
  return true;
}

void GeneratedHub::AppendEntry(int64_t index, const FieldList& fields, std::string* out) const {
  uint32_t i = static_cast<uint32_t>(index);
  const RepoRecord& r = repos_[i];
  std::string id = Id(index);
  uint64_t h = Hash(0x5a5a, i);
  const char* pipeline = kPipelines[r.pipeline];
  const char* library = kLibraries[r.library];
  bool safetensors = r.library == kTransformers || r.library == kDiffusers || r.library == kPeft;
  int64_t params = static_cast<int64_t>(1e8 * (1 + h % 700));
  absl::StrAppend(out, "{\"_id\":\"", Oid(index).Hex(), "\",\"id\":");
  AppendJsonString(out, id);
  for (Property p : fields) {
    switch (p) {
      case Property::kAuthor:
        if (r.ns != kBare) {
          out->append(",\"author\":");
          AppendJsonString(out, namespaces_[r.ns]);
        }
        break;
      case Property::kCardData: {
        if (r.edge_count == 0 && (r.style & 4)) break;  // no model card
        absl::StrAppend(out, ",\"cardData\":{\"license\":\"", kLicenses[(r.style >> 1) % 8], "\"");
        if (r.edge_count == 1) {
          out->append(",\"base_model\":");
          AppendJsonString(out, EdgeTargetId(edges_[r.edge_begin], day_));
        } else if (r.edge_count > 1) {
          out->append(",\"base_model\":[");
          for (uint32_t k = 0; k < r.edge_count; ++k) {
            if (k) out->push_back(',');
            AppendJsonString(out, EdgeTargetId(edges_[r.edge_begin + k], day_));
          }
          out->append("]");
        }
        if (r.pipeline != 0) absl::StrAppend(out, ",\"pipeline_tag\":\"", pipeline, "\"");
        out->append("}");
        break;
      }
      case Property::kConfig:
        if (r.library == kTransformers || r.library == kPeft) {
          const char* arch = r.pipeline == 1 ? "LlamaForCausalLM" : "BertForSequenceClassification";
          const char* type = r.pipeline == 1 ? "llama" : "bert";
          absl::StrAppend(out, ",\"config\":{\"architectures\":[\"", arch, "\"],\"model_type\":\"",
                          type, "\"}");
        }
        break;
      case Property::kCreatedAt:
        out->append(",\"createdAt\":\"");
        AppendHubTimestamp(out, r.created);
        out->push_back('"');
        break;
      case Property::kDisabled:
        absl::StrAppend(out, ",\"disabled\":", (r.flags & kDisabled) ? "true" : "false");
        break;
      case Property::kDownloads:
        absl::StrAppend(out, ",\"downloads\":", Downloads30At(i, day_));
        break;
      case Property::kDownloadsAllTime:
        if (!(r.flags & kNoAllTime)) {
          absl::StrAppend(out, ",\"downloadsAllTime\":", AllTimeAt(i, day_));
        }
        break;
      case Property::kEvalResults:
        break;  // none recorded
      case Property::kGated:
        absl::StrAppend(out, ",\"gated\":",
                        (r.flags & kGatedManual) ? "\"manual\""
                        : (r.flags & kGatedAuto) ? "\"auto\""
                                                 : "false");
        break;
      case Property::kGguf:
        if (r.library == kGguf) {
          absl::StrAppend(out, ",\"gguf\":{\"total\":", params,
                          ",\"architecture\":\"llama\",\"context_length\":", 4096 << (h % 5), "}");
        }
        break;
      case Property::kInference:
        if (Downloads30At(i, day_) > 100000) out->append(",\"inference\":\"warm\"");
        break;
      case Property::kInferenceProviderMapping:
        out->append(",\"inferenceProviderMapping\":[]");
        break;
      case Property::kLastModified:
        out->append(",\"lastModified\":\"");
        AppendHubTimestamp(out, LastModifiedAt(i, day_));
        out->push_back('"');
        break;
      case Property::kLibraryName:
        if (r.library != kNoLib) absl::StrAppend(out, ",\"library_name\":\"", library, "\"");
        break;
      case Property::kLikes:
        absl::StrAppend(out, ",\"likes\":", LikesAt(i, day_));
        break;
      case Property::kMaskToken:
        if (r.pipeline == 6) out->append(",\"mask_token\":\"[MASK]\"");
        break;
      case Property::kModelIndex:
        break;  // no eval results
      case Property::kPipelineTag:
        if (r.pipeline != 0) absl::StrAppend(out, ",\"pipeline_tag\":\"", pipeline, "\"");
        break;
      case Property::kPrivate:
        absl::StrAppend(out, ",\"private\":",
                        (r.flags & kPrivate) || (r.access & kTokenPrivate) ? "true" : "false");
        break;
      case Property::kSafetensors:
        if (safetensors) {
          absl::StrAppend(out, ",\"safetensors\":{\"parameters\":{\"BF16\":", params,
                          "},\"total\":", params, "}");
        }
        break;
      case Property::kSha:
        absl::StrAppend(out, ",\"sha\":\"", Sha(i), "\"");
        break;
      case Property::kSiblings: {
        out->append(
            ",\"siblings\":[{\"rfilename\":\".gitattributes\"},{\"rfilename\":\"README.md\"}");
        if (r.library == kGguf) {
          absl::StrAppend(out, ",{\"rfilename\":\"model-Q4_K_M.gguf\"}");
        } else if (safetensors) {
          out->append(",{\"rfilename\":\"config.json\"},{\"rfilename\":\"model.safetensors\"}");
        }
        out->append("]");
        break;
      }
      case Property::kSpaces:
        out->append(",\"spaces\":[]");
        break;
      case Property::kTags: {
        out->append(",\"tags\":[");
        bool first = true;
        for (const auto& t : Tags(i)) {
          if (!first) out->push_back(',');
          first = false;
          AppendJsonString(out, t);
        }
        out->append("]");
        break;
      }
      case Property::kTransformersInfo:
        if (r.library == kTransformers) {
          absl::StrAppend(out, ",\"transformersInfo\":{\"auto_model\":\"",
                          r.pipeline == 1 ? "AutoModelForCausalLM" : "AutoModel",
                          "\",\"pipeline_tag\":\"", pipeline,
                          "\",\"processor\":\"AutoTokenizer\"}");
        }
        break;
      case Property::kTrendingScore:
        out->append(",\"trendingScore\":");
        AppendJsonNumber(out, TrendingAt(i, day_));
        break;
      case Property::kWidgetData:
        if (r.pipeline == 1)
          out->append(",\"widgetData\":[{\"text\":\"My name is Julien and I like to\"}]");
        break;
      case Property::kResourceGroup:
        break;
      case Property::kBaseModels: {
        std::string models;
        for (uint32_t k = r.edge_begin; k < r.edge_begin + r.edge_count; ++k) {
          const Edge& e = edges_[k];
          if ((e.target & kGhostBit) || !ListedAt(e.target, day_)) continue;
          absl::StrAppend(&models, models.empty() ? "" : ",", "{\"_id\":\"", Oid(e.target).Hex(),
                          "\",\"id\":", JsonString(IdAt(e.target, day_)), "}");
        }
        if (!models.empty()) {
          absl::StrAppend(
              out, ",\"baseModels\":{\"relation\":\"",
              (r.flags & kBareTags) ? "unknown" : kRelationNames[edges_[r.edge_begin].relation],
              "\",\"models\":[", models, "]}");
        }
        break;
      }
      case Property::kChildrenModelCount: {
        int64_t count = 0;
        for (uint32_t k = child_begin_[i]; k < child_begin_[i + 1]; ++k) {
          if (ListedAt(children_[k], day_)) ++count;
        }
        absl::StrAppend(out, ",\"childrenModelCount\":", count);
        break;
      }
      case Property::kUsedStorage:
        absl::StrAppend(out,
                        ",\"usedStorage\":", safetensors || r.library == kGguf ? params * 2 : 4096);
        break;
      case Property::kModelId:
        out->append(",\"modelId\":");
        AppendJsonString(out, id);
        break;
    }
  }
  out->push_back('}');
}

std::string GeneratedHub::Sha(uint32_t i) const {
  uint64_t a = Hash(0x54a, (static_cast<uint64_t>(i) << 20) ^ LastModifiedAt(i, day_));
  return absl::StrFormat("%016x%016x%08x", a, SplitMix(a), static_cast<uint32_t>(SplitMix(a + 1)));
}

bool GeneratedHub::HasRevision(int64_t index, absl::string_view rev) const {
  return rev == "main" || rev == "HEAD" || rev == Sha(static_cast<uint32_t>(index));
}

RepoLookup GeneratedHub::Lookup(absl::string_view repo_id) const {
  RepoLookup result;
  auto it = ids_.find(IdKey(repo_id));
  if (it == ids_.end()) return result;
  uint64_t value = it->second;
  uint32_t i = static_cast<uint32_t>(value >> 8);
  int gen = static_cast<int>(value & 0xFF);
  if (i & kGhostBit) return result;
  if (NameAt(i, gen) != repo_id) return result;  // a hash collision, not this repo
  const RepoRecord& r = repos_[i];
  if (r.created_day > day_ || r.deleted_day <= day_ || mutation_deleted_.contains(i)) {
    return result;
  }
  int current = GenAt(i, day_);
  if (gen > current) return result;
  result.index = i;
  result.disabled = (r.flags & kDisabled) != 0;
  result.gated_no_access = (r.access & kGatedNoAccess) != 0;
  if ((r.flags & kPrivate) || (r.access & kTokenPrivate)) {
    result.kind = RepoLookup::kPrivate;
    result.token_visible = (r.access & kTokenPrivate) != 0;
    if (gen < current) result.current_id = NameAt(i, current);
  } else if (gen < current) {
    result.kind = RepoLookup::kRenamed;
    result.current_id = NameAt(i, current);
  } else {
    result.kind = RepoLookup::kFound;
  }
  return result;
}

TruthGraph GeneratedHub::GraphAt(int day) const {
  TruthGraph g;
  g.date = DateOfDay(day);
  g.date_month = MonthIndexOfDay(day);
  std::vector<int32_t> node(repos_.size(), -1);
  int32_t n = 0;
  for (uint32_t i = 0; i < repos_.size(); ++i) {
    if (ListedAt(i, day)) node[i] = n++;
  }
  absl::flat_hash_set<std::string> filter_pipelines;
  v1::FamilyConfig config = WithDefaults(*config_);
  for (const auto& p : config.new_model_filter().pipeline_tag()) filter_pipelines.insert(p);
  std::vector<uint8_t> pipeline_ok(sizeof(kPipelines) / sizeof(kPipelines[0]), 0);
  for (size_t k = 0; k < pipeline_ok.size(); ++k) {
    pipeline_ok[k] = k != 0 && filter_pipelines.contains(kPipelines[k]);
  }
  for (uint32_t i = 0; i < repos_.size(); ++i) {
    if (node[i] < 0) continue;
    const RepoRecord& r = repos_[i];
    Relation relation = Relation::kUnknown;
    if (r.edge_count > 0 && !(r.flags & kBareTags)) {
      relation = static_cast<Relation>(edges_[r.edge_begin].relation);
    }
    // A placeholder createdAt is an unknown date before March 2022: new in no month.
    int32_t month = (r.flags & kPlaceholderCreated) ? TruthGraph::kPlaceholderMonth
                                                    : MonthIndexOfDay(r.created_day);
    g.AddNode(r.first_party, !(r.flags & kNoAllTime), AllTimeAt(i, day), Downloads30At(i, day),
              month, pipeline_ok[r.pipeline] != 0, relation);
    for (uint32_t k = r.edge_begin; k < r.edge_begin + r.edge_count; ++k) {
      const Edge& e = edges_[k];
      if (e.target & kGhostBit) {
        g.AddParent(TruthGraph::MissingParent(ghosts_[e.target & ~kGhostBit].family));
      } else if (node[e.target] >= 0) {
        g.AddParent(node[e.target]);
      } else {
        // Not on the public Hub (private to anyone, deleted, not yet created): missing,
        // classified by its namespace.
        g.AddParent(TruthGraph::MissingParent(repos_[e.target].first_party));
      }
    }
    g.EndNode();
  }
  return g;
}

std::vector<std::string> GeneratedHub::ListedIdsAt(int day) const {
  std::vector<std::string> ids;
  for (uint32_t i = 0; i < repos_.size(); ++i) {
    if (ListedAt(i, day)) ids.push_back(IdAt(i, day));
  }
  return ids;
}

void GeneratedHub::Mutate(uint64_t nonce) {
  Rng rng(Hash(0x3717, nonce));
  ++mutation_version_;
  int day = day_;
  // Candidates: listed user repos (first-party repos stay, so calibrated figures hold).
  auto random_listed = [&]() -> int64_t {
    for (int attempt = 0; attempt < 200; ++attempt) {
      uint32_t i = static_cast<uint32_t>(rng.Below(repos_.size()));
      if (ListedAt(i, day) && repos_[i].first_party < 0 && repos_[i].ns != kBare) return i;
    }
    return -1;
  };
  // New repos: the newest createdAt of the day, so a createdAt crawl has already passed them.
  uint32_t newest = 0;
  for (const RepoRecord& r : repos_) {
    if (r.created_day <= day) newest = std::max(newest, r.created);
  }
  int created = 1 + static_cast<int>(rng.Below(3));
  for (int k = 0; k < created; ++k) {
    int64_t model = random_listed();
    if (model < 0) break;
    RepoRecord r = repos_[model];
    r.created =
        std::min<uint32_t>(newest + 1 + k, static_cast<uint32_t>(kEpoch + (day + 1) * 86400LL - 1));
    r.created_day = static_cast<uint16_t>(day);
    r.flags &= static_cast<uint8_t>(~(kRenamed | kPrivate | kPlaceholderCreated));
    r.access = 0;
    r.deleted_day = kNever;
    r.ns = static_cast<uint32_t>(namespaces_.size() - 1 - rng.Below(20));
    r.salt = 0;
    uint32_t i = static_cast<uint32_t>(repos_.size());
    repos_.push_back(r);
    for (int attempt = 0; attempt < 64; ++attempt) {
      repos_[i].salt = static_cast<uint8_t>(attempt);
      if (ids_.emplace(IdKey(NameAt(i, 0)), static_cast<uint64_t>(i) << 8).second) break;
    }
    child_begin_.push_back(child_begin_.back());
  }
  if (int64_t victim = random_listed(); victim >= 0) {
    mutation_deleted_.insert(static_cast<uint32_t>(victim));
  }
  if (int64_t renamed = random_listed(); renamed >= 0) {
    uint32_t i = static_cast<uint32_t>(renamed);
    for (int gen = GenAt(i, day) + 1; gen < 250; ++gen) {
      if (ids_.emplace(IdKey(NameAt(i, gen)), (static_cast<uint64_t>(i) << 8) | gen).second) {
        mutation_gen_[i] = static_cast<uint8_t>(gen);
        break;
      }
    }
  }
  for (int k = 0; k < 5; ++k) {
    int64_t bumped = random_listed();
    if (bumped < 0) continue;
    auto& extra = mutation_downloads_[static_cast<uint32_t>(bumped)];
    extra.first += 1 + static_cast<int64_t>(rng.Below(100000));
    extra.second = std::min(extra.second == 0 ? day : extra.second, day);
  }
}

size_t GeneratedHub::MemoryBytes() const {
  return repos_.capacity() * sizeof(RepoRecord) + edges_.capacity() * sizeof(Edge) +
         ghosts_.capacity() * sizeof(Ghost) + child_begin_.capacity() * 4 +
         children_.capacity() * 4 + ids_.capacity() * (sizeof(uint64_t) * 2 + 1) +
         curves_.size() * (kLastDay + 2) * sizeof(double);
}

}  // namespace hubcensus::fakehub
