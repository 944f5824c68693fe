// A Hub made of real recorded entries (--fixture=FILE, a JSON array in the listing's shape),
// served as they were recorded, so tests can run the pipeline on data no one here wrote.
#ifndef HUBCENSUS_FAKEHUB_FIXTURE_HUB_H_
#define HUBCENSUS_FAKEHUB_FIXTURE_HUB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "config/family_config.h"
#include "fakehub/catalog.h"
#include "fakehub/truth.h"

namespace hubcensus::fakehub {

class FixtureHub : public ModelCatalog {
 public:
  // Errors name the file and the entry.
  static absl::StatusOr<std::unique_ptr<FixtureHub>> Load(const std::string& path,
                                                          const v1::FamilyConfig* config,
                                                          const FamilyMatcher* matcher);

  // Entries created after the end of this day (Unix seconds of midnight UTC) are not listed.
  void SetDate(int64_t midnight_unix) { end_of_day_ = midnight_unix + 86399; }

  int64_t Count() const override { return static_cast<int64_t>(entries_.size()); }
  bool Listed(int64_t i) const override;
  bool ListedWithToken(int64_t i) const override;
  double SortKey(int64_t i, SortField field) const override;
  uint64_t KeyVersion(SortField field) const override { return 1; }
  ObjectId Oid(int64_t i) const override { return entries_[i].oid; }
  std::string Id(int64_t i) const override { return entries_[i].id; }
  bool Matches(int64_t i, const ListingFilter& filter) const override;
  void AppendEntry(int64_t i, const FieldList& fields, std::string* out) const override;
  RepoLookup Lookup(absl::string_view repo_id) const override;

  TruthGraph Graph(const std::string& date) const;
  std::vector<std::string> ListedIds() const;

 private:
  struct Entry {
    std::string id;
    ObjectId oid;
    std::string author;
    std::string pipeline_tag;
    int64_t created = 0;
    int64_t last_modified = 0;
    int64_t downloads = 0;
    int64_t likes = 0;
    double trending = 0;
    bool has_all_time = false;
    int64_t all_time = 0;
    bool is_private = false;
    bool disabled = false;
    std::vector<std::string> tags;
    std::vector<std::pair<std::string, std::string>> raw;  // key -> minified JSON value
  };
  FixtureHub(const v1::FamilyConfig* config, const FamilyMatcher* matcher)
      : config_(config), matcher_(matcher) {}
  // (parent id, relation) from the entry's tags by hub::DeriveParents.
  std::vector<std::pair<std::string, Relation>> Parents(const Entry& e) const;

  const v1::FamilyConfig* config_;
  const FamilyMatcher* matcher_;
  int64_t end_of_day_ = INT64_MAX;
  std::vector<Entry> entries_;
  absl::flat_hash_map<std::string, int64_t> by_id_;
};

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_FIXTURE_HUB_H_
