#include "crawler/internal/chain_fetcher.h"

#include <utility>

namespace hubcensus::crawler {

void AddFetchStats(const hub::FetchStats& from, hub::FetchStats* to) {
  to->Merge(from);
  to->limit_shrinks += from.limit_shrinks;
}

void BudgetRelay::Set(std::shared_ptr<hub::RequestBudget> budget) {
  absl::MutexLock lock(&mu_);
  current_ = std::move(budget);
  ++generation_;
}

void BudgetRelay::Clear() {
  absl::MutexLock lock(&mu_);
  current_ = nullptr;
  ++generation_;
}

void BudgetRelay::Close() {
  absl::MutexLock lock(&mu_);
  current_ = nullptr;
  closed_ = true;
  ++generation_;
}

absl::Status BudgetRelay::Acquire(absl::Time deadline) {
  for (;;) {
    std::shared_ptr<hub::RequestBudget> budget;
    int64_t generation = 0;
    {
      absl::MutexLock lock(&mu_);
      // Waits on real time: the gap between two leases of a chain is one CompleteLease call.
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return current_ != nullptr || closed_;
      };
      mu_.Await(absl::Condition(&ready));
      if (closed_) return absl::CancelledError("the listing chain was stopped");
      budget = current_;
      generation = generation_;
    }
    absl::Status status = budget->Acquire(deadline);
    if (status.ok()) return status;
    absl::MutexLock lock(&mu_);
    // Refused because its lease ended meanwhile: the next lease of the chain is asked.
    if (generation_ != generation && !closed_) continue;
    return status;
  }
}

void BudgetRelay::Observe(const v1::RateLimitObservation& observation) {
  std::shared_ptr<hub::RequestBudget> budget;
  {
    absl::MutexLock lock(&mu_);
    budget = current_;
  }
  if (budget != nullptr) budget->Observe(observation);
}

ChainFetcher::ChainFetcher(hub::HubClientOptions client_options, int max_pages_ahead)
    : max_pages_ahead_(std::max(1, max_pages_ahead)) {
  client_options.cancellation = &cancellation_;
  client_ = std::make_unique<hub::HubClient>(std::move(client_options));
}

ChainFetcher::~ChainFetcher() { Stop(); }

int ChainFetcher::AheadLocked() const {
  int ahead = static_cast<int>(pages_.size());
  if (waiting_for_front_ && ahead > 0) --ahead;
  return ahead;
}

void ChainFetcher::StartLocked(const std::string& url) {
  auto fetch = std::make_unique<Fetch>();
  fetch->url = url;
  fetch->result.url = url;
  Fetch* raw = fetch.get();
  pages_.push_back(std::move(fetch));
  raw->thread = std::thread([this, raw] { Run(raw); });
}

void ChainFetcher::MaybeStartDueLocked() {
  if (stopped_ || due_.empty() || AheadLocked() >= max_pages_ahead_) return;
  std::string url = std::move(due_);
  due_.clear();
  StartLocked(url);
}

void ChainFetcher::Run(Fetch* fetch) {
  hub::FetchStats stats;
  absl::StatusOr<hub::ListingPage> page = client_->FetchListingPage(
      fetch->url, &relay_, &stats,
      [this, fetch](const std::string& next_url) { OnNextUrl(fetch, next_url); });
  absl::MutexLock lock(&mu_);
  fetch->done = true;
  fetch->result.fetch = std::move(stats);
  if (!fetch->dropped && page.ok() && page->next_url != fetch->handed_next) {
    // The final answer names another next page than the head handed on (a retry answered
    // differently), or one was not handed on: what was started from the head is not the chain.
    bool behind = false;
    for (auto it = pages_.begin(); it != pages_.end();) {
      if (it->get() == fetch) {
        behind = true;
        ++it;
        continue;
      }
      if (!behind) {
        ++it;
        continue;
      }
      (*it)->dropped = true;
      dropped_.push_back(std::move(*it));
      it = pages_.erase(it);
    }
    // A page that links to itself is not fetched again (the coordinator ends such a chain).
    due_ = page->next_url == fetch->url ? std::string() : page->next_url;
    MaybeStartDueLocked();
  }
  fetch->result.page = std::move(page);
}

void ChainFetcher::OnNextUrl(Fetch* fetch, const std::string& next_url) {
  absl::MutexLock lock(&mu_);
  if (stopped_ || fetch->dropped || fetch->done) return;
  fetch->handed_next = next_url;
  // Only the chain's last fetch has no successor yet.
  if (pages_.empty() || pages_.back().get() != fetch) return;
  due_ = next_url;
  MaybeStartDueLocked();
}

void ChainFetcher::Begin(const std::string& url) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  if (!pages_.empty() && pages_.front()->url == url) return;
  if (pages_.empty() && due_ == url) {
    due_.clear();
    StartLocked(url);
    return;
  }
  // Anything held is another chain's (or another place in it): dropped.
  for (auto& fetch : pages_) {
    fetch->dropped = true;
    dropped_.push_back(std::move(fetch));
  }
  pages_.clear();
  due_.clear();
  StartLocked(url);
}

bool ChainFetcher::Holds(const std::string& url) {
  absl::MutexLock lock(&mu_);
  if (stopped_ || url.empty()) return false;
  if (pages_.empty()) return due_ == url;
  const Fetch& front = *pages_.front();
  return front.url == url && !(front.done && !front.result.page.ok());
}

std::optional<FetchedPage> ChainFetcher::Take(const std::string& url) {
  std::unique_ptr<Fetch> fetch;
  FetchedPage taken;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return std::nullopt;
    if (pages_.empty() && due_ == url) {
      due_.clear();
      StartLocked(url);
    }
    if (pages_.empty() || pages_.front()->url != url) return std::nullopt;
    Fetch* front = pages_.front().get();
    // The page waited for is not "ahead": the next one may start on its head.
    waiting_for_front_ = true;
    MaybeStartDueLocked();
    mu_.Await(absl::Condition(&front->done));
    waiting_for_front_ = false;
    fetch = std::move(pages_.front());
    pages_.pop_front();
    MaybeStartDueLocked();
    taken = std::move(fetch->result);
    ReapDroppedLocked(&taken.fetch);
  }
  fetch->thread.join();
  return taken;
}

void ChainFetcher::ReapDroppedLocked(hub::FetchStats* stats) {
  for (auto it = dropped_.begin(); it != dropped_.end();) {
    if (!(*it)->done) {
      ++it;
      continue;
    }
    (*it)->thread.join();  // it has ended: only its last statements are left
    AddFetchStats((*it)->result.fetch, stats);
    it = dropped_.erase(it);
  }
}

hub::FetchStats ChainFetcher::Stop() {
  std::vector<std::unique_ptr<Fetch>> fetches;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    due_.clear();
    for (auto& fetch : pages_) fetches.push_back(std::move(fetch));
    for (auto& fetch : dropped_) fetches.push_back(std::move(fetch));
    pages_.clear();
    dropped_.clear();
  }
  cancellation_.Cancel();
  relay_.Close();
  hub::FetchStats stats;
  for (auto& fetch : fetches) {
    fetch->thread.join();
    AddFetchStats(fetch->result.fetch, &stats);
  }
  return stats;
}

}  // namespace hubcensus::crawler
