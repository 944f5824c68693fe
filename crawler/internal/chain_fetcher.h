// Fetches a listing's cursor chain ahead of the leases that store it: page k+1's request goes out
// as soon as the head of page k's answer names it (its Link header), while page k's body is still
// arriving, being parsed, stored and completed. At most `max_pages_ahead` pages are held beyond
// the one a lease is waiting for, so a slow store stops the fetching rather than memory growing.
//
// Nothing here is stored: a page is handed to the lease that asks for its URL, and that lease
// writes it under its own fence. Requests are charged to whichever lease's budget is current
// (SetBudget), so each is reported to the coordinator exactly once, with a lease of the chain.
#ifndef HUBCENSUS_CRAWLER_INTERNAL_CHAIN_FETCHER_H_
#define HUBCENSUS_CRAWLER_INTERNAL_CHAIN_FETCHER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "hub/cancellation.h"
#include "hub/hub_client.h"
#include "hub/request_budget.h"

namespace hubcensus::crawler {

// A RequestBudget that passes each Acquire to the budget set now: the lease in whose time the
// request goes out. Between two leases (Clear, then Set) an Acquire waits for the next one;
// after Close it is CANCELLED. A budget cleared while an Acquire was asking it is asked no more:
// an Acquire it refused then is passed to the next budget instead.
class BudgetRelay : public hub::RequestBudget {
 public:
  void Set(std::shared_ptr<hub::RequestBudget> budget);
  // Before the lease behind the budget reports its final use: no request is charged to it after
  // this returns, except by an Acquire it already granted.
  void Clear();
  void Close();
  absl::Status Acquire(absl::Time deadline) override;
  void Observe(const v1::RateLimitObservation& observation) override;

 private:
  absl::Mutex mu_;
  std::shared_ptr<hub::RequestBudget> current_ ABSL_GUARDED_BY(mu_);
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by every Set and Clear
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// One page of the chain as fetched.
struct FetchedPage {
  std::string url;
  absl::StatusOr<hub::ListingPage> page = absl::UnknownError("not fetched");
  // What fetching it cost, plus pages fetched for nothing since the last Take (a chain whose
  // head named another next page than its body's final answer).
  hub::FetchStats fetch;
};

class ChainFetcher {
 public:
  // The fetches share one HubClient built from `client_options` (its cancellation is this
  // fetcher's).
  ChainFetcher(hub::HubClientOptions client_options, int max_pages_ahead);
  ~ChainFetcher();  // Stop()
  ChainFetcher(const ChainFetcher&) = delete;
  ChainFetcher& operator=(const ChainFetcher&) = delete;

  const std::string& hub_url() const { return client_->hub_url(); }
  // Cancels every fetch under way (a lease lost or handed back).
  hub::Cancellation& cancellation() { return cancellation_; }
  BudgetRelay& budget() { return relay_; }

  // Fetches `url` now, as the chain's head, unless it is already the next page held or due.
  void Begin(const std::string& url);
  // Whether `url` is the next page held or due (fetched, under way, or waiting for room) and
  // has not failed: the page a lease of it would be handed.
  bool Holds(const std::string& url);
  // The page of `url` once fetched, when it is the next page held or due; nullopt otherwise (the
  // caller fetches it another way, after Stop).
  std::optional<FetchedPage> Take(const std::string& url);
  // Cancels the fetches, joins every thread, and returns what the pages never taken cost. The
  // fetcher takes no more work afterwards.
  hub::FetchStats Stop();

 private:
  struct Fetch {
    std::string url;
    std::string handed_next;  // the next URL its head named ("" when none was handed on)
    bool done = false;
    bool dropped = false;  // started from a URL the chain's final answers did not name
    FetchedPage result;
    std::thread thread;
  };
  void StartLocked(const std::string& url) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeStartDueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int AheadLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnNextUrl(Fetch* fetch, const std::string& next_url);
  void Run(Fetch* fetch);
  // Joins the dropped fetches that ended; their cost is added to `stats`.
  void ReapDroppedLocked(hub::FetchStats* stats) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_pages_ahead_;
  hub::Cancellation cancellation_;
  BudgetRelay relay_;
  std::unique_ptr<hub::HubClient> client_;
  absl::Mutex mu_;
  std::deque<std::unique_ptr<Fetch>> pages_ ABSL_GUARDED_BY(mu_);  // chain order, not taken
  std::vector<std::unique_ptr<Fetch>> dropped_ ABSL_GUARDED_BY(mu_);
  std::string due_ ABSL_GUARDED_BY(mu_);  // known next URL waiting for room ("": none)
  bool waiting_for_front_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

void AddFetchStats(const hub::FetchStats& from, hub::FetchStats* to);

}  // namespace hubcensus::crawler

#endif  // HUBCENSUS_CRAWLER_INTERNAL_CHAIN_FETCHER_H_
