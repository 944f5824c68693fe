// A whole Hub grown deterministically from a seed: families of the default families file with
// first-party repos and derivative trees, evolving day by day under a scenario (the embedded
// fakehub/scenario_article.textproto: how named families grow, and the words names use), compact
// enough (about 70 bytes a repo) to serve 2.2M repos. It knows which family it grew every repo
// from, which is what the ground truth is computed from.
#ifndef HUBCENSUS_FAKEHUB_GENERATED_HUB_H_
#define HUBCENSUS_FAKEHUB_GENERATED_HUB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "config/family_config.h"
#include "fakehub/catalog.h"
#include "fakehub/truth.h"
#include "hubcensus/v1/config.pb.h"

namespace hubcensus::fakehub {

class Scenario;
class ScenarioFamily;

// Days are counted from 2022-03-01 (day 0); the placeholder createdAt falls on day 1.
inline constexpr int kFirstDay = 1;    // 2022-03-02
inline constexpr int kLastDay = 1401;  // 2025-12-31, the end of scenario `article`
absl::StatusOr<int> DayOfDate(absl::string_view yyyy_mm_dd);
std::string DateOfDay(int day);

struct GeneratedHubOptions {
  int64_t repos = 20000;
  uint64_t seed = 1;
  std::string scenario = "article";
  // Of the repos, this fraction is private to the token: listed (with
  // "private": true) and readable only by requests carrying a bearer token. Independent of the
  // scenario's own private repos (about 0.8%), which belong to other accounts: no one lists them.
  double private_fraction = 0;
  // Of the gated repos, this fraction answers anonymous per-repo requests 401 GatedRepo.
  double gated_no_access_fraction = 0;
};

class GeneratedHub : public ModelCatalog {
 public:
  // `config` (the families) and `matcher` must outlive the hub.
  static absl::StatusOr<std::unique_ptr<GeneratedHub>> Create(const GeneratedHubOptions& options,
                                                              const v1::FamilyConfig* config,
                                                              const FamilyMatcher* matcher);

  // The simulated date (not thread-safe: the caller serialises with readers).
  void SetDay(int day);
  int day() const { return day_; }

  // ModelCatalog, at the current date.
  int64_t Count() const override { return static_cast<int64_t>(repos_.size()); }
  bool Listed(int64_t i) const override { return ListedAt(static_cast<uint32_t>(i), day_); }
  bool ListedWithToken(int64_t i) const override;
  bool HasRevision(int64_t i, absl::string_view rev) const override;
  double SortKey(int64_t i, SortField field) const override;
  uint64_t KeyVersion(SortField field) const override;
  ObjectId Oid(int64_t i) const override;
  std::string Id(int64_t i) const override { return IdAt(static_cast<uint32_t>(i), day_); }
  bool Matches(int64_t i, const ListingFilter& filter) const override;
  void AppendEntry(int64_t i, const FieldList& fields, std::string* out) const override;
  RepoLookup Lookup(absl::string_view repo_id) const override;

  // The metrics' view of the Hub at `day`, and the id of every public repo listed then.
  TruthGraph GraphAt(int day) const;
  std::vector<std::string> ListedIdsAt(int day) const;

  // One burst of changes while a crawl pages (the caller holds the writer lock): a few repos
  // created (newest createdAt), one deleted, one renamed, downloads of a few bumped.
  void Mutate(uint64_t nonce);
  uint64_t mutations() const { return mutation_version_; }

  size_t MemoryBytes() const;
  int64_t AllTimeAt(uint32_t i, int day) const;  // 0 before creation

 private:
  // Per repo: 36 bytes (access fills what was padding). Everything else (name, downloads at a date,
  // likes, sha) is derived.
  struct RepoRecord {
    uint32_t created;  // Unix seconds
    uint32_t ns;       // index into namespaces_, or kBare
    float rate;        // downloads a day (others) or share weight (first-party)
    uint32_t edge_begin;
    uint16_t created_day;
    uint16_t deleted_day;  // kNever
    int16_t first_party;   // family index or -1
    int16_t stem_family;   // the family it was grown from (or whose name it mentions), or -1
    uint16_t lastmod_days;
    uint8_t edge_count;
    uint8_t kind;
    uint8_t pipeline;
    uint8_t library;
    uint8_t flags;
    uint8_t salt;
    uint8_t init_downloads;
    uint8_t style;
    uint8_t access;  // Access bits
  };

  // First-party cumulative downloads of one family by day, and the per-weight prefix the repo
  // curves read: a repo of weight s has s * (P[d] - P[created - 1]) downloads at day d.
  struct FamilyCurve {
    std::vector<double> prefix;  // P[d + 1]; P[0] = 0
    uint32_t anchor = UINT32_MAX;
    int64_t anchor_delta = 0;
    int anchor_day = -1;
  };

  struct Edge {
    uint32_t target;  // repo index, or kGhostBit | ghost index
    uint8_t relation;
  };
  struct Ghost {
    uint32_t ns;
    uint16_t salt;
    int16_t family;       // FamilyMatcher on its id
    int16_t stem_family;  // what its name mentions
  };

  // Grows the Hub, one method per phase (generated_hub.cc).
  class Generator;

  GeneratedHub(const GeneratedHubOptions& options, const Scenario* scenario,
               const v1::FamilyConfig* config, const FamilyMatcher* matcher);

  // Listed to anonymous requests at `day`; ExistsAt: created, not deleted (private or not).
  bool ListedAt(uint32_t i, int day) const;
  bool ExistsAt(uint32_t i, int day) const;
  std::string Sha(uint32_t i) const;
  int GenAt(uint32_t i, int day) const;
  std::string NameAt(uint32_t i, int gen) const;
  std::string IdAt(uint32_t i, int day) const;
  std::string GhostId(uint32_t g) const;
  std::string EdgeTargetId(const Edge& e, int day) const;
  int64_t Downloads30At(uint32_t i, int day) const;
  int64_t LikesAt(uint32_t i, int day) const;
  double TrendingAt(uint32_t i, int day) const;
  int64_t LastModifiedAt(uint32_t i, int day) const;
  void AppendTags(uint32_t i, std::string* out) const;
  std::vector<std::string> Tags(uint32_t i) const;
  uint64_t Hash(uint64_t a, uint64_t b = 0) const;

  GeneratedHubOptions options_;
  const Scenario* scenario_;  // lives as long as the process
  const v1::FamilyConfig* config_;
  const FamilyMatcher* matcher_;
  int day_ = kLastDay;
  uint64_t mutation_version_ = 0;

  std::vector<RepoRecord> repos_;
  std::vector<Edge> edges_;
  std::vector<Ghost> ghosts_;
  std::vector<std::string> namespaces_;       // family namespaces first, then users
  std::vector<FamilyCurve> curves_;           // per family: first-party cumulative downloads
  std::vector<const ScenarioFamily*> named_;  // per family: its scenario entry, or null
  std::vector<bool> diffusion_;               // per family: its derivatives are images or video
  std::vector<uint32_t> child_begin_;         // CSR of children by first-or-any parent edge
  std::vector<uint32_t> children_;
  // Hash of an id -> (repo index << 8 | name generation); ghosts too (kGhostBit set).
  absl::flat_hash_map<uint64_t, uint64_t> ids_;
  absl::flat_hash_map<uint32_t, uint16_t> rename_day_;  // base-scenario renames
  // Mutation overlay.
  absl::flat_hash_set<uint32_t> mutation_deleted_;
  absl::flat_hash_map<uint32_t, uint8_t> mutation_gen_;
  absl::flat_hash_map<uint32_t, std::pair<int64_t, int>> mutation_downloads_;  // extra, from day
};

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_GENERATED_HUB_H_
