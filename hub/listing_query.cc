#include "hub/listing_query.h"

#include <algorithm>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace hubcensus::hub {

const std::vector<std::string>& HubListingSortKeys() {
  static const auto* keys = new std::vector<std::string>{"createdAt", "lastModified", "downloads",
                                                         "likes", "trendingScore"};
  return *keys;
}

const std::vector<std::string>& HubListingExpandValues() {
  static const auto* values = new std::vector<std::string>{"author",
                                                           "cardData",
                                                           "config",
                                                           "createdAt",
                                                           "disabled",
                                                           "downloads",
                                                           "downloadsAllTime",
                                                           "evalResults",
                                                           "gated",
                                                           "gguf",
                                                           "inference",
                                                           "inferenceProviderMapping",
                                                           "lastModified",
                                                           "library_name",
                                                           "likes",
                                                           "mask_token",
                                                           "model-index",
                                                           "pipeline_tag",
                                                           "private",
                                                           "safetensors",
                                                           "sha",
                                                           "siblings",
                                                           "spaces",
                                                           "tags",
                                                           "transformersInfo",
                                                           "trendingScore",
                                                           "widgetData",
                                                           "resourceGroup"};
  return *values;
}

const std::vector<std::string>& DefaultListingExpand() {
  static const auto* expand = new std::vector<std::string>{
      "author",  "createdAt",     "lastModified", "downloads",    "downloadsAllTime",
      "likes",   "trendingScore", "tags",         "pipeline_tag", "library_name",
      "private", "disabled",      "gated",        "sha"};
  return *expand;
}

v1::ListingOptions WithListingDefaults(v1::ListingOptions options) {
  if (options.sort().empty()) options.set_sort("createdAt");
  if (options.page_size() <= 0) options.set_page_size(1000);
  if (options.expand().empty()) {
    for (const auto& e : DefaultListingExpand()) options.add_expand(e);
  }
  return options;
}

std::string UrlEncode(absl::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

std::string FirstListingUrl(const std::string& hub_url, const v1::ListingOptions& options) {
  v1::ListingOptions o = WithListingDefaults(options);
  std::string url =
      absl::StrCat(absl::StripSuffix(hub_url, "/"), "/api/models?sort=", UrlEncode(o.sort()),
                   "&limit=", o.page_size());
  if (!o.author().empty()) absl::StrAppend(&url, "&author=", UrlEncode(o.author()));
  for (const auto& f : o.filter()) absl::StrAppend(&url, "&filter=", UrlEncode(f));
  for (const auto& e : o.expand()) absl::StrAppend(&url, "&expand=", UrlEncode(e));
  return url;
}

absl::Status ValidateListingOptions(const v1::ListingOptions& l) {
  const std::vector<std::string>& keys = HubListingSortKeys();
  const std::set<std::string> sorts(keys.begin(), keys.end());
  if (!l.sort().empty() && sorts.count(l.sort()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listing.sort: \"", l.sort(),
        "\" is not a Hub sort key (createdAt, lastModified, downloads, likes, trendingScore)"));
  }
  if (l.page_size() < 0 || l.page_size() > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("listing.page_size: ", l.page_size(), " is outside 0..1000 (0: 1000)"));
  }
  const std::vector<std::string>& accepted = HubListingExpandValues();
  for (int i = 0; i < l.expand_size(); ++i) {
    if (std::find(accepted.begin(), accepted.end(), l.expand(i)) == accepted.end()) {
      return absl::InvalidArgumentError(absl::StrCat("listing.expand[", i, "]: \"", l.expand(i),
                                                     "\" is not accepted by the Hub's listing"));
    }
  }
  const std::string main_sort = l.sort().empty() ? "createdAt" : l.sort();
  std::set<std::string> streams = {main_sort};
  for (int i = 0; i < l.extra_streams_size(); ++i) {
    const std::string& stream = l.extra_streams(i);
    if (sorts.count(stream) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("listing.extra_streams[", i, "]: \"", stream, "\" is not a Hub sort key"));
    }
    if (!streams.insert(stream).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("listing.extra_streams[", i, "]: \"", stream, "\" is already a stream"));
    }
  }
  for (int i = 0; i < l.filter_size(); ++i) {
    if (l.filter(i).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("listing.filter[", i, "]: empty"));
    }
  }
  return absl::OkStatus();
}

}  // namespace hubcensus::hub
