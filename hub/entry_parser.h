// Turns the Hub's JSON (a listing page, or one per-repo detail) into RepoSnapshots with
// simdjson's on-demand API. A malformed entry is rejected with a reason and counted, and the rest
// of the page is kept; a body that is not JSON or is truncated is an error the caller retries.
#ifndef HUBCENSUS_HUB_ENTRY_PARSER_H_
#define HUBCENSUS_HUB_ENTRY_PARSER_H_

#include <simdjson.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "hubcensus/v1/repo.pb.h"

namespace hubcensus::hub {

// Longest repo id accepted; the Hub's own limit is far lower (96 characters per name).
inline constexpr size_t kMaxRepoIdBytes = 1024;
// Longest other string field accepted.
inline constexpr size_t kMaxFieldBytes = 64 * 1024;
// Most tags accepted on one entry.
inline constexpr size_t kMaxTags = 10000;

// The entries of one body: the accepted snapshots, in body order, and the rejected ones counted
// by reason ("missing_id", "wrong_type:downloads", "invalid_utf8", ...; a small fixed set).
struct ParsedEntries {
  std::vector<v1::RepoSnapshot> repos;
  std::map<std::string, int64_t> rejected_by_reason;
  int64_t rejected() const;
};

// Reuses one simdjson parser and one padded buffer across bodies: one per thread.
//
// Parents are derived by DeriveParents (below), the one reading of the lineage tags.
class EntryParser {
 public:
  EntryParser() = default;
  EntryParser(const EntryParser&) = delete;
  EntryParser& operator=(const EntryParser&) = delete;

  // A listing page: a JSON array of entries. Appends to `out`. DATA_LOSS when the body is not
  // JSON, is truncated or is not an array (the caller retries, as for a transport fault); `out`
  // is then unchanged.
  absl::Status ParseListing(absl::string_view body, ParsedEntries* out);

  // A per-repo detail: one JSON object. A malformed entry is counted in `out`, not an error.
  absl::Status ParseDetail(absl::string_view body, ParsedEntries* out);

 private:
  simdjson::padded_string_view Pad(absl::string_view body);
  absl::Status ParseArray(absl::string_view body, ParsedEntries* out);
  absl::Status ParseArrayKeepingValidUtf8(absl::string_view body, ParsedEntries* out);

  simdjson::ondemand::parser parser_;
  std::string buffer_;
};

// THE reading of the lineage tags (shared/design.md), for the parser, fakehub and anyone holding
// tags already: the parents are the ids of the base_model:<relation>:<id> tags (relation
// finetune, adapter, quantized, merge) in tag order; only when the entry has no relation tag at
// all, the ids of its bare base_model:<id> tags, in tag order (the Hub writes both tags for each
// base it knows the relation of, so a bare tag beside relation tags adds nothing). Then the
// cardData.base_model ids (a string or a list; only present when cardData was asked for) not
// already present, as RELATION_UNKNOWN. An id appears once, with its first relation.
std::vector<v1::Parent> DeriveParents(const std::vector<absl::string_view>& tags,
                                      const std::vector<absl::string_view>& card_base_models);

// The createdAt values the Hub reports for repos created before creation dates were stored
// (both are in ../shared/data/real-hub): such a repo is new in no month.
inline constexpr char kCreatedAtPlaceholder[] = "2022-03-02T23:29:04.000Z";
inline constexpr char kCreatedAtPlaceholder2[] = "2022-03-02T23:29:05.000Z";
// Whether `created_at` (as the Hub writes it) is one of the placeholders.
bool IsCreatedAtPlaceholder(absl::string_view created_at);

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_ENTRY_PARSER_H_
