// The Hub's listing vocabulary: its sort keys, the `expand` values it accepts, and how a listing
// URL is built from a crawl's ListingOptions. The Hub client library owns how the Hub is spoken
// to; the coordinator validates crawl requests and plans first pages with these, fakehub and the
// tests hold the simulator to them.
#ifndef HUBCENSUS_HUB_LISTING_QUERY_H_
#define HUBCENSUS_HUB_LISTING_QUERY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "hubcensus/v1/crawl.pb.h"

namespace hubcensus::hub {

// The keys the Hub sorts its model listing by (descending only): createdAt, lastModified,
// downloads, likes, trendingScore.
const std::vector<std::string>& HubListingSortKeys();

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
// Whether the Hub's listing accepts `listing` as a crawl asks for it (sort and extra streams are
// sort keys and distinct, page_size within 0..1000, expand values accepted, filters non-empty);
// INVALID_ARGUMENT naming the field ("listing.expand[2]: ...") otherwise.
absl::Status ValidateListingOptions(const v1::ListingOptions& listing);

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_LISTING_QUERY_H_
