// What a crawl asks of the Hub's model listing, shared by the coordinator (which plans the first
// page), the crawler and the tests.
#ifndef HUBCENSUS_COMMON_LISTING_H_
#define HUBCENSUS_COMMON_LISTING_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "hubcensus/v1/crawl.pb.h"

namespace hubcensus {

// Every value the Hub's model listing accepts in `expand` (../shared/hub-api.md); anything else
// gets a 400. The coordinator validates crawl requests against it, and tests hold fakehub to it.
const std::vector<std::string>& HubListingExpandValues();
// The listing properties the census reads (every one is on the Hub's accepted expand list).
// Not `cardData`, the heaviest field (the Hub answers 504 to heavy pages): lineage comes from
// `tags`; the parser still reads cardData.base_model when a crawl asks for it.
const std::vector<std::string>& DefaultListingExpand();
// sort=createdAt (immutable), limit=1000, the default expand list: what an empty option means.
v1::ListingOptions WithListingDefaults(v1::ListingOptions options);
// The absolute URL of the first page: {hub_url}/api/models?sort=...&limit=...&expand=...
// (expand repeated as huggingface_hub sends it). `hub_url` has no trailing slash needed.
std::string FirstListingUrl(const std::string& hub_url, const v1::ListingOptions& options);
// Percent-encodes a query value (RFC 3986 unreserved characters kept).
std::string UrlEncode(absl::string_view value);

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_LISTING_H_
