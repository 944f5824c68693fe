// The models a simulated Hub holds at its current date, as the listing engine and the per-repo
// endpoint see them: a generated Hub and a fixture of real entries both implement it, so both are
// paged, filtered and expanded by the same code.
#ifndef HUBCENSUS_FAKEHUB_CATALOG_H_
#define HUBCENSUS_FAKEHUB_CATALOG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hubcensus::fakehub {

// Listing sort keys; the Hub always sorts descending, ties broken by _id ascending.
enum class SortField { kTrendingScore, kCreatedAt, kLastModified, kDownloads, kLikes };
absl::StatusOr<SortField> ParseSortField(absl::string_view text);  // "" -> trendingScore
const char* SortFieldName(SortField field);

// A MongoDB ObjectId: 4 bytes of creation time, then 8 bytes; compared as 24 hex digits.
struct ObjectId {
  uint32_t time = 0;
  uint64_t rest = 0;
  bool operator<(const ObjectId& o) const { return time != o.time ? time < o.time : rest < o.rest; }
  bool operator==(const ObjectId& o) const { return time == o.time && rest == o.rest; }
  std::string Hex() const;
  static std::optional<ObjectId> FromHex(absl::string_view hex);
};

// Entry properties, in the order an expanded entry lists them. The first block is the listing's
// accepted `expand` list; the last three only the per-repo endpoint accepts.
enum class Property {
  kAuthor,
  kCardData,
  kConfig,
  kCreatedAt,
  kDisabled,
  kDownloads,
  kDownloadsAllTime,
  kEvalResults,
  kGated,
  kGguf,
  kInference,
  kInferenceProviderMapping,
  kLastModified,
  kLibraryName,
  kLikes,
  kMaskToken,
  kModelIndex,
  kPipelineTag,
  kPrivate,
  kSafetensors,
  kSha,
  kSiblings,
  kSpaces,
  kTags,
  kTransformersInfo,
  kTrendingScore,
  kWidgetData,
  kResourceGroup,
  kBaseModels,
  kChildrenModelCount,
  kUsedStorage,
  kModelId,  // the legacy duplicate of id in default responses; not expandable
};
const char* PropertyName(Property p);
// The property an `expand` value names; per_repo admits baseModels, childrenModelCount and
// usedStorage. Unknown values are nullopt.
std::optional<Property> ParseExpand(absl::string_view value, bool per_repo);
// The names accepted by `expand` (listing or per-repo), for error messages and --help.
std::vector<std::string> ExpandNames(bool per_repo);

// Which properties an entry carries, in order (after _id and id, which every entry has).
using FieldList = std::vector<Property>;
const FieldList& DefaultListingFields();  // no expand, no full
const FieldList& FullListingFields();     // full=true
const FieldList& DefaultRepoFields();     // per-repo without expand

// Case-insensitive (ASCII) substring test, as the Hub's `search` matches ids.
inline bool ContainsIgnoreCase(absl::string_view haystack, absl::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    size_t k = 0;
    while (k < needle.size()) {
      char a = haystack[i + k], b = needle[k];
      if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
      if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
      if (a != b) break;
      ++k;
    }
    if (k == needle.size()) return true;
  }
  return false;
}

struct ListingFilter {
  std::string search;             // case-insensitive substring of the id
  std::string author;             // exact namespace
  std::vector<std::string> tags;  // every one must be among the entry's tags
  std::string pipeline_tag;
};

// What GET /api/models/{id} finds.
struct RepoLookup {
  enum Kind { kFound, kRenamed, kPrivate, kNotFound } kind = kNotFound;
  int64_t index = -1;
  std::string current_id;  // for kRenamed: where the repo lives now
  // kPrivate: a private repo a request with a token sees (else another account's: never seen).
  bool token_visible = false;
  bool disabled = false;  // answers 403 to everyone
  // Gated, and its per-repo endpoint answers anonymous requests 401 `X-Error-Code: GatedRepo`.
  bool gated_no_access = false;
};

class ModelCatalog {
 public:
  virtual ~ModelCatalog() = default;
  // Repo slots; some are not listed at the current date (not created yet, deleted, private).
  virtual int64_t Count() const = 0;
  // Listed to anonymous requests (the public Hub).
  virtual bool Listed(int64_t i) const = 0;
  // Listed to a request with a token: the public Hub plus the private repos that token sees.
  virtual bool ListedWithToken(int64_t i) const { return Listed(i); }
  virtual double SortKey(int64_t i, SortField field) const = 0;
  // Changes whenever any SortKey(., field) or Count() may have changed.
  virtual uint64_t KeyVersion(SortField field) const = 0;
  virtual ObjectId Oid(int64_t i) const = 0;
  virtual std::string Id(int64_t i) const = 0;
  virtual bool Matches(int64_t i, const ListingFilter& filter) const = 0;
  // Appends one JSON object: _id, id, then `fields` in order (absent values are left out).
  virtual void AppendEntry(int64_t i, const FieldList& fields, std::string* out) const = 0;
  virtual RepoLookup Lookup(absl::string_view repo_id) const = 0;
  // Whether GET /api/models/{id}/revision/{rev} names a revision of repo i: "main", "HEAD" or
  // its head commit.
  virtual bool HasRevision(int64_t i, absl::string_view rev) const {
    return rev == "main" || rev == "HEAD";
  }
};

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_CATALOG_H_
