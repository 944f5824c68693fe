// What a crawl fetches, item by item: the head of each listing stream's cursor chain when the
// crawl starts, and after a LIST_PAGE completes, the next page of its chain (the checkpointed
// cursor) and the REPO_DETAIL shards of its changed repos. It also decides when a chain must end
// the crawl instead (a next link to another origin, a cursor loop, a run of empty pages).
// Pure: it reads the crawl's items and returns new ones; the LeaseTable queues and persists them.
#ifndef HUBCENSUS_COORDINATOR_INTERNAL_ITEM_PLANNER_H_
#define HUBCENSUS_COORDINATOR_INTERNAL_ITEM_PLANNER_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "coordinator_state.pb.h"
#include "hubcensus/v1/coordinator.pb.h"
#include "hubcensus/v1/crawl.pb.h"

namespace hubcensus::coordinator {

// A crawl's items as the planner reads them.
struct PlannedItems {
  const std::map<std::string, ItemRecord>& items;  // by item id
  // Per listing stream: the chain's page URLs so far, as ChainUrlKey gives them.
  const std::map<std::string, std::set<std::string>>& chain_urls;
};

// What follows a completed item.
struct CompletionPlan {
  // Non-empty: the chain must end the crawl (fetching on would loop forever or send requests
  // elsewhere), and `fault_cause` is the crawl_failures metric label. No items are planned.
  std::string chain_fault;
  std::string fault_cause;
  // LIST_PAGE: consecutive entry-less pages of the chain ending with this one (ItemRecord field).
  int32_t empty_page_run = 0;
  // Items not yet in the crawl, to be queued in the same write that records the completion.
  std::vector<ItemRecord> new_items;
};

class ItemPlanner {
 public:
  struct Options {
    // REPO_DETAIL shards: repo ids per shard (at least 1 is used).
    int32_t detail_shard_size = 100;
    // Entry-less pages with a next link in a row that end the crawl.
    int32_t max_empty_pages = 5;
  };
  explicit ItemPlanner(Options options) : options_(options) {}

  // The head of every stream's chain: the main sort, then listing.extra_streams.
  std::vector<ItemRecord> FirstPages(const std::string& crawl_id, const std::string& date,
                                     const std::string& hub_url,
                                     const v1::ListingOptions& listing) const;

  // After `completed` (still as leased, in `crawl`) was reported done by `report`.
  CompletionPlan AfterCompletion(const PlannedItems& crawl, const std::string& hub_url,
                                 bool fetch_details, const ItemRecord& completed,
                                 const v1::CompleteLeaseRequest& report) const;

  // "createdAt/p000042".
  static std::string PageItemId(const std::string& stream, int32_t page_index);

 private:
  Options options_;
};

// The key under which a listing chain remembers a page URL: the URL without its `limit` query
// parameter (workers shrink and grow `limit` on 504s; the cursor is what must not repeat).
std::string ChainUrlKey(const std::string& url);
// "host:port" of an http(s) URL, with the scheme's default port made explicit, lower case;
// "" when it is not an absolute http(s) URL. Two URLs share an origin when their schemes and
// these are equal (see SameOrigin).
std::string HostPortOf(const std::string& url);
bool SameOrigin(const std::string& a, const std::string& b);

}  // namespace hubcensus::coordinator

#endif  // HUBCENSUS_COORDINATOR_INTERNAL_ITEM_PLANNER_H_
