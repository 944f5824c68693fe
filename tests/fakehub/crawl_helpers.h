// A minimal crawl for the fakehub tests: follow Link from the first page, parse each page with
// simdjson, keep what the metrics read.
#ifndef HUBCENSUS_TESTS_FAKEHUB_CRAWL_HELPERS_H_
#define HUBCENSUS_TESTS_FAKEHUB_CRAWL_HELPERS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "hub/listing_query.h"
#include "simdjson.h"
#include "tests/fakehub/http_test_client.h"

namespace hubcensus::fakehub::testing {

struct CrawledEntry {
  std::string oid;
  std::string id;
  std::string created_at;
  std::string pipeline_tag;
  int64_t downloads = 0;
  bool has_all_time = false;
  int64_t all_time = 0;
  std::vector<std::string> tags;
  bool is_private = false;  // "private": true (listed only to a request with a token)
};

inline bool ParseEntries(const std::string& body, std::vector<CrawledEntry>* out) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS) return false;
  simdjson::dom::array array;
  if (doc.get(array) != simdjson::SUCCESS) return false;
  for (simdjson::dom::element e : array) {
    CrawledEntry c;
    std::string_view s;
    if (e["_id"].get(s) == simdjson::SUCCESS) c.oid = std::string(s);
    if (e["id"].get(s) == simdjson::SUCCESS) c.id = std::string(s);
    if (e["createdAt"].get(s) == simdjson::SUCCESS) c.created_at = std::string(s);
    if (e["pipeline_tag"].get(s) == simdjson::SUCCESS) c.pipeline_tag = std::string(s);
    int64_t v;
    if (e["downloads"].get(v) == simdjson::SUCCESS) c.downloads = v;
    if (e["downloadsAllTime"].get(v) == simdjson::SUCCESS) {
      c.has_all_time = true;
      c.all_time = v;
    }
    bool flag = false;
    if (e["private"].get(flag) == simdjson::SUCCESS) c.is_private = flag;
    simdjson::dom::array tags;
    if (e["tags"].get(tags) == simdjson::SUCCESS) {
      for (auto t : tags) {
        if (t.get(s) == simdjson::SUCCESS) c.tags.emplace_back(s);
      }
    }
    out->push_back(std::move(c));
  }
  return true;
}

struct CrawlResult {
  std::vector<CrawledEntry> entries;
  int pages = 0;
  bool ok = true;
  std::string error;
};

// Follows the chain from `first_url`; stops at the first non-200 or unparsable page.
inline CrawlResult Crawl(HttpTestClient& client, const std::string& first_url,
                         int max_pages = 100000, const std::vector<std::string>& headers = {}) {
  CrawlResult result;
  std::optional<std::string> url = first_url;
  while (url && result.pages < max_pages) {
    HttpResult page = client.Get(*url, headers);
    ++result.pages;
    if (page.code != CURLE_OK || page.status != 200 || !ParseEntries(page.body, &result.entries)) {
      result.ok = false;
      result.error = absl::StrCat("page ", result.pages, ": curl ", page.code, " status ",
                                  page.status, " ", page.body.substr(0, 200));
      return result;
    }
    url = page.NextLink();
  }
  return result;
}

// The first listing URL the crawler uses (sort=createdAt, limit, the default expand list).
inline std::string CrawlerFirstUrl(const std::string& hub_url, int limit = 1000) {
  v1::ListingOptions options;
  options.set_page_size(limit);
  return hub::FirstListingUrl(hub_url, options);
}

}  // namespace hubcensus::fakehub::testing

#endif  // HUBCENSUS_TESTS_FAKEHUB_CRAWL_HELPERS_H_
