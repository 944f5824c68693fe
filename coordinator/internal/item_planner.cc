#include "coordinator/internal/item_planner.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "coordinator/internal/error_text.h"
#include "hub/listing_query.h"

namespace hubcensus::coordinator {
namespace {

struct UrlParts {
  std::string scheme;  // lower case
  std::string host;    // lower case, without userinfo
  std::string port;    // explicit: the scheme's default when the URL names none
  std::string rest;    // path, query and fragment
};

bool SplitUrl(absl::string_view url, UrlParts* parts) {
  auto sep = url.find("://");
  if (sep == absl::string_view::npos) return false;
  parts->scheme = absl::AsciiStrToLower(url.substr(0, sep));
  if (parts->scheme != "http" && parts->scheme != "https") return false;
  absl::string_view after = url.substr(sep + 3);
  auto end = after.find_first_of("/?#");
  absl::string_view authority = after.substr(0, end);
  parts->rest = end == absl::string_view::npos ? "" : std::string(after.substr(end));
  auto at = authority.rfind('@');
  if (at != absl::string_view::npos) authority = authority.substr(at + 1);
  // "[::1]:8080", "host:8080", "host".
  auto colon = authority.rfind(':');
  auto bracket = authority.rfind(']');
  if (colon != absl::string_view::npos && (bracket == absl::string_view::npos || colon > bracket)) {
    parts->host = absl::AsciiStrToLower(authority.substr(0, colon));
    parts->port = std::string(authority.substr(colon + 1));
  } else {
    parts->host = absl::AsciiStrToLower(authority);
    parts->port = "";
  }
  if (parts->port.empty()) parts->port = parts->scheme == "https" ? "443" : "80";
  return !parts->host.empty();
}

}  // namespace

std::string ChainUrlKey(const std::string& url) {
  const auto query = url.find('?');
  if (query == std::string::npos) return url;
  const auto fragment = url.find('#', query);
  absl::string_view params = absl::string_view(url).substr(
      query + 1, fragment == std::string::npos ? std::string::npos : fragment - query - 1);
  std::string kept;
  for (absl::string_view param : absl::StrSplit(params, '&')) {
    if (param.empty() || param == "limit" || absl::StartsWith(param, "limit=")) continue;
    absl::StrAppend(&kept, kept.empty() ? "" : "&", param);
  }
  return absl::StrCat(url.substr(0, query), kept.empty() ? "" : "?", kept);
}

std::string HostPortOf(const std::string& url) {
  UrlParts parts;
  if (!SplitUrl(url, &parts)) return "";
  return absl::StrCat(parts.host, ":", parts.port);
}

bool SameOrigin(const std::string& a, const std::string& b) {
  UrlParts x, y;
  if (!SplitUrl(a, &x) || !SplitUrl(b, &y)) return false;
  return x.scheme == y.scheme && x.host == y.host && x.port == y.port;
}

std::string ItemPlanner::PageItemId(const std::string& stream, int32_t page_index) {
  return absl::StrFormat("%s/p%06d", stream, page_index);
}

std::vector<ItemRecord> ItemPlanner::FirstPages(const std::string& crawl_id,
                                                const std::string& date, const std::string& hub_url,
                                                const v1::ListingOptions& listing) const {
  std::vector<std::string> streams = {listing.sort()};
  streams.insert(streams.end(), listing.extra_streams().begin(), listing.extra_streams().end());
  std::vector<ItemRecord> pages;
  for (const auto& stream : streams) {
    v1::ListingOptions stream_listing = listing;
    stream_listing.set_sort(stream);
    ItemRecord first;
    v1::WorkItem* item = first.mutable_item();
    item->set_item_id(PageItemId(stream, 0));
    item->set_crawl_id(crawl_id);
    item->set_crawl_date(date);
    item->set_kind(v1::LIST_PAGE);
    item->set_stream(stream);
    item->set_url(hub::FirstListingUrl(hub_url, stream_listing));
    item->set_page_index(0);
    item->set_hub_url(hub_url);
    item->set_fetch_details(listing.fetch_details());
    pages.push_back(std::move(first));
  }
  return pages;
}

CompletionPlan ItemPlanner::AfterCompletion(const PlannedItems& crawl, const std::string& hub_url,
                                            bool fetch_details, const ItemRecord& completed,
                                            const v1::CompleteLeaseRequest& report) const {
  CompletionPlan plan;
  const v1::WorkItem& work = completed.item();
  if (work.kind() != v1::LIST_PAGE) return plan;
  const std::string& next = report.next_url();

  // The chain's faults (only a page with a next link can have one).
  if (!next.empty()) {
    auto fail = [&](std::string cause, std::string reason) {
      plan.fault_cause = std::move(cause);
      plan.chain_fault = std::move(reason);
      return plan;
    };
    if (!SameOrigin(next, hub_url)) {
      return fail(
          "foreign_origin",
          Truncated(absl::StrCat("item ", work.item_id(), ": the next link leads to another host (",
                                 HostPortOf(next), ", not the Hub's ", HostPortOf(hub_url),
                                 "); nothing was sent there"),
                    300));
    }
    auto chain = crawl.chain_urls.find(work.stream());
    if (chain != crawl.chain_urls.end() && chain->second.count(ChainUrlKey(next)) > 0) {
      return fail("cursor_loop",
                  absl::StrCat("item ", work.item_id(), ": the next link repeats a page of the ",
                               work.stream(), " chain (a cursor loop): ", Truncated(next)));
    }
    const int64_t entries = report.repos() + report.rejected_entries() + report.private_skipped();
    int32_t run = 0;
    if (entries == 0) {
      run = 1;
      auto previous = crawl.items.find(PageItemId(work.stream(), work.page_index() - 1));
      if (work.page_index() > 0 && previous != crawl.items.end()) {
        run += previous->second.empty_page_run();
      }
    }
    plan.empty_page_run = run;
    if (run >= options_.max_empty_pages) {
      return fail(
          "empty_pages",
          absl::StrCat("item ", work.item_id(), ": ", run, " pages in a row of the ", work.stream(),
                       " chain had no entry but a next link (the listing does not end)"));
    }

    // The next page of the chain: the checkpointed cursor.
    ItemRecord page;
    v1::WorkItem* w = page.mutable_item();
    *w = work;
    w->set_item_id(PageItemId(work.stream(), work.page_index() + 1));
    w->set_url(next);
    w->set_page_index(work.page_index() + 1);
    if (crawl.items.count(w->item_id()) == 0) plan.new_items.push_back(std::move(page));
  }

  // The page's new or changed repos, in shards, when the crawl fetches details.
  if (fetch_details && report.changed_repo_ids_size() > 0) {
    const int shard = std::max(1, options_.detail_shard_size);
    for (int start = 0, n = 0; start < report.changed_repo_ids_size(); start += shard, ++n) {
      ItemRecord detail;
      v1::WorkItem* w = detail.mutable_item();
      w->set_item_id(absl::StrFormat("detail/%s/s%03d", work.item_id(), n));
      w->set_crawl_id(work.crawl_id());
      w->set_crawl_date(work.crawl_date());
      w->set_kind(v1::REPO_DETAIL);
      w->set_stream(work.stream());
      w->set_page_index(work.page_index());
      w->set_hub_url(work.hub_url());
      for (int i = start; i < std::min(start + shard, report.changed_repo_ids_size()); ++i) {
        w->add_repo_ids(report.changed_repo_ids(i));
      }
      if (crawl.items.count(w->item_id()) == 0) plan.new_items.push_back(std::move(detail));
    }
  }
  return plan;
}

}  // namespace hubcensus::coordinator
