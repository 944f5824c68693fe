// GET /api/models as the Hub serves it: query validation (400 on a bad expand), descending sorts
// with an _id tie-break, and keyset pagination behind an opaque cursor, so pages shift exactly as
// real ones do when a mutable sort key changes between requests.
#ifndef HUBCENSUS_FAKEHUB_LISTING_H_
#define HUBCENSUS_FAKEHUB_LISTING_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fakehub/catalog.h"

namespace hubcensus::fakehub {

inline constexpr int kMaxPageSize = 1000;

struct ListingRequest {
  SortField sort = SortField::kTrendingScore;
  int limit = kMaxPageSize;
  FieldList fields;
  ListingFilter filter;
  std::string cursor;  // decoded from the query; empty on the first page
  // The request carried `Authorization: Bearer ...`: the token's private repos are listed too.
  bool with_token = false;
};

// Validates the query of GET /api/models; errors are INVALID_ARGUMENT with the Hub's message.
absl::StatusOr<ListingRequest> ParseListingRequest(
    const std::vector<std::pair<std::string, std::string>>& query);
// Parses the expand/expand[] values of a per-repo request (nullopt list: none given).
absl::StatusOr<std::optional<FieldList>> ParseRepoExpand(
    const std::vector<std::pair<std::string, std::string>>& query);

// The keyset after which the next page starts, as the Hub encodes it: base64 (with `=` padding)
// of {"$or":[{"<key>":v,"_id":{"$gt":"<id>"}},{"<key>":{"$lt":v}},{"<key>":null}]}. Decoding
// accepts exactly that shape (any other, or an undecodable cursor, is INVALID_ARGUMENT).
std::string EncodeCursor(SortField sort, double key, const ObjectId& oid);
struct Keyset {
  double key = 0;
  ObjectId oid;
};
absl::StatusOr<Keyset> DecodeCursor(absl::string_view cursor, SortField sort);

// One listing page as the simulator serves it: entries as JSON text and the next cursor (not
// hub::ListingPage, the page the client parsed).
struct ServedPage {
  std::vector<std::string> entries;  // one JSON object each
  std::vector<int64_t> indices;      // the catalog slot of each entry
  std::optional<std::string> next_cursor;
  // The listed entry just before this page (-1: none): what a repeated-entry fault repeats.
  int64_t previous_index = -1;
};

class ListingEngine {
 public:
  explicit ListingEngine(const ModelCatalog* catalog) : catalog_(catalog) {}
  // The caller holds whatever lock keeps the catalog still for the call.
  absl::StatusOr<ServedPage> Page(const ListingRequest& request);

 private:
  struct Order {
    uint64_t version = 0;
    std::vector<uint32_t> index;  // slots by (key desc, _id asc)
    std::vector<double> key;      // key of index[k]
  };
  std::shared_ptr<const Order> OrderFor(SortField field);

  const ModelCatalog* catalog_;
  absl::Mutex mu_;
  std::shared_ptr<const Order> orders_[5] ABSL_GUARDED_BY(mu_);
};

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_LISTING_H_
