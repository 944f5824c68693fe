// The listing chain fetched ahead (crawler/internal/chain_fetcher.h) over libcurl and real
// loopback sockets: the next page's request goes out on the head of the page before, a Link
// that is foreign never reaches its host, a retry that names another next page drops the page
// started from the first, the depth stays bounded, and every request is accounted once.
#include "crawler/internal/chain_fetcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "hub/http_transport.h"
#include "hub/request_budget.h"
#include "tests/hub/http_test_server.h"

namespace hubcensus::crawler {
namespace {

using ::hubcensus::testing::HttpTestServer;
using ::hubcensus::testing::ReceivedRequest;
using ::hubcensus::testing::ScriptedAnswer;

std::string Page(const std::string& id, const std::string& next_link = "") {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!next_link.empty()) headers.emplace_back("Link", absl::StrCat(next_link, "; rel=\"next\""));
  headers.emplace_back("Content-Type", "application/json");
  return HttpTestServer::Response(200, absl::StrCat(R"([{"id":")", id, R"("}])"), headers);
}

// The head as one write, the body later: the body goes once `body_when` holds (or after 20 s,
// and then the test that needed it first fails).
ScriptedAnswer HeadThenBody(const std::string& response, std::function<bool()> body_when,
                            std::atomic<bool>* body_when_met) {
  size_t cut = response.find("\r\n\r\n") + 4;
  ScriptedAnswer answer{response.substr(0, cut)};
  answer.then_raw = response.substr(cut);
  answer.then_delay = absl::Seconds(20);
  answer.then_when = std::move(body_when);
  answer.then_when_met = body_when_met;
  return answer;
}

hub::HubClientOptions ClientOptions(const HttpTestServer& server) {
  hub::HubClientOptions options;
  options.hub_url = server.url("");
  options.transport = hub::NewCurlTransport();
  options.retry.initial_backoff = absl::Milliseconds(1);
  options.retry.max_backoff = absl::Milliseconds(5);
  options.timeouts.total = absl::Seconds(60);
  return options;
}

int CountTargets(HttpTestServer& server, absl::string_view path) {
  int n = 0;
  for (const ReceivedRequest& r : server.requests()) {
    if (absl::StartsWith(r.target, path)) ++n;
  }
  return n;
}

// Waits (up to 20 s) for the server to have seen `n` requests.
void WaitForRequests(HttpTestServer& server, size_t n) {
  absl::Time until = absl::Now() + absl::Seconds(20);
  while (server.requests().size() < n && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(5));
  }
}

std::vector<std::string> Ids(const FetchedPage& page) {
  std::vector<std::string> ids;
  if (!page.page.ok()) return ids;
  for (const auto& repo : page.page->entries.repos) ids.push_back(repo.id());
  return ids;
}

// Page 1's body is sent only once page 2 has been asked for: the chain fetcher must ask for page 2
// on page 1's head, while page 1's body has not even left the server.
TEST(ChainFetcher, NextRequestGoesOutOnTheHeadOfThePageBefore) {
  std::atomic<bool> page2_asked{false};
  std::atomic<bool> body_after_page2{false};
  HttpTestServer server([&](const ReceivedRequest& r) {
    if (absl::StartsWith(r.target, "/p2")) {
      page2_asked = true;
      return ScriptedAnswer{Page("b/2")};
    }
    return HeadThenBody(
        Page("a/1", "</p2>"), [&] { return page2_asked.load(); }, &body_after_page2);
  });
  ChainFetcher chain(ClientOptions(server), 1);
  chain.budget().Set(std::make_shared<hub::FixedBudget>(100));
  chain.Begin(server.url("/p1"));
  std::optional<FetchedPage> first = chain.Take(server.url("/p1"));
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(first->page.ok()) << first->page.status();
  EXPECT_TRUE(body_after_page2) << "page 2 was asked for only after page 1's body";
  EXPECT_EQ(first->page->next_url, server.url("/p2"));
  EXPECT_THAT(Ids(*first), ::testing::ElementsAre("a/1"));
  EXPECT_TRUE(chain.Holds(server.url("/p2")));
  std::optional<FetchedPage> second = chain.Take(server.url("/p2"));
  ASSERT_TRUE(second.has_value());
  EXPECT_THAT(Ids(*second), ::testing::ElementsAre("b/2"));
  EXPECT_EQ(second->page->next_url, "");
  hub::FetchStats left = chain.Stop();
  EXPECT_EQ(first->fetch.requests + second->fetch.requests + left.requests, 2);
  EXPECT_EQ(server.requests().size(), 2u);
}

// A rel="next" to another origin is never requested (the token goes only to the Hub), not even
// ahead: the page fails, naming the host, and the foreign server sees nothing.
TEST(ChainFetcher, ForeignNextLinkIsNeverRequested) {
  HttpTestServer foreign([](const ReceivedRequest&) { return ScriptedAnswer{Page("x/1")}; });
  const std::string foreign_next = foreign.url("/api/models?cursor=B");
  HttpTestServer server([&](const ReceivedRequest&) {
    return ScriptedAnswer{Page("a/1", absl::StrCat("<", foreign_next, ">"))};
  });
  hub::HubClientOptions options = ClientOptions(server);
  options.token = "hf_ChainSecret";
  ChainFetcher chain(options, 1);
  chain.budget().Set(std::make_shared<hub::FixedBudget>(100));
  chain.Begin(server.url("/p1"));
  std::optional<FetchedPage> first = chain.Take(server.url("/p1"));
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(absl::IsFailedPrecondition(first->page.status())) << first->page.status();
  EXPECT_THAT(std::string(first->page.status().message()), ::testing::HasSubstr("127.0.0.1"));
  EXPECT_THAT(std::string(first->page.status().message()),
              ::testing::Not(::testing::HasSubstr("hf_ChainSecret")));
  EXPECT_FALSE(chain.Holds(foreign_next));
  chain.Stop();
  EXPECT_TRUE(foreign.requests().empty());
  EXPECT_EQ(server.requests().size(), 1u);
}

// The first answer's head names /p2a, then its body is cut; the retry names /p2b. The chain
// follows the complete answer: /p2b is the next page, the page started from /p2a is dropped, and
// its request is still accounted.
TEST(ChainFetcher, RetryNamingAnotherNextPageDropsThePageStartedFromTheHead) {
  std::atomic<int> first_page_answers{0};
  HttpTestServer server([&](const ReceivedRequest& r) {
    if (absl::StartsWith(r.target, "/p2a")) return ScriptedAnswer{Page("wrong/2")};
    if (absl::StartsWith(r.target, "/p2b")) return ScriptedAnswer{Page("right/2")};
    if (first_page_answers++ == 0) {
      // A head that promises more body than is sent, then the connection closes.
      std::string full = Page("a/1", "</p2a>");
      std::string cut = full.substr(0, full.size() - 5);
      return ScriptedAnswer{cut, absl::ZeroDuration(), /*close=*/true};
    }
    return ScriptedAnswer{Page("a/1", "</p2b>")};
  });
  ChainFetcher chain(ClientOptions(server), 1);
  chain.budget().Set(std::make_shared<hub::FixedBudget>(100));
  chain.Begin(server.url("/p1"));
  std::optional<FetchedPage> first = chain.Take(server.url("/p1"));
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(first->page.ok()) << first->page.status();
  EXPECT_EQ(first->page->next_url, server.url("/p2b"));
  EXPECT_EQ(first->fetch.retries, 1);
  EXPECT_FALSE(chain.Holds(server.url("/p2a")));
  EXPECT_TRUE(chain.Holds(server.url("/p2b")));
  std::optional<FetchedPage> second = chain.Take(server.url("/p2b"));
  ASSERT_TRUE(second.has_value());
  EXPECT_THAT(Ids(*second), ::testing::ElementsAre("right/2"));
  hub::FetchStats left = chain.Stop();
  EXPECT_EQ(CountTargets(server, "/p2b"), 1);
  EXPECT_LE(CountTargets(server, "/p2a"), 1);
  EXPECT_EQ(first->fetch.requests + second->fetch.requests + left.requests,
            static_cast<int64_t>(server.requests().size()))
      << "every request is accounted once, the dropped page's too";
}

// At most one page is fetched ahead of the one the caller takes: with nobody taking, the chain
// stops after the first page; each Take lets one more go out.
TEST(ChainFetcher, HoldsAtMostOnePageAhead) {
  HttpTestServer server([&](const ReceivedRequest& r) {
    int n = 0;
    if (r.target.size() > 2) n = std::stoi(r.target.substr(2));  // "/p7"
    return ScriptedAnswer{Page(absl::StrCat("r/", n), absl::StrCat("</p", n + 1, ">"))};
  });
  ChainFetcher chain(ClientOptions(server), 1);
  chain.budget().Set(std::make_shared<hub::FixedBudget>(100));
  chain.Begin(server.url("/p1"));
  WaitForRequests(server, 1);
  absl::SleepFor(absl::Milliseconds(300));  // room for a request that must not go out
  EXPECT_EQ(server.requests().size(), 1u);
  int64_t requests = 0;
  for (int k = 1; k <= 3; ++k) {
    std::optional<FetchedPage> page = chain.Take(server.url(absl::StrCat("/p", k)));
    ASSERT_TRUE(page.has_value());
    ASSERT_TRUE(page->page.ok()) << page->page.status();
    requests += page->fetch.requests;
    WaitForRequests(server, static_cast<size_t>(k + 1));
    absl::SleepFor(absl::Milliseconds(300));
    EXPECT_EQ(server.requests().size(), static_cast<size_t>(k + 1)) << "after taking page " << k;
  }
  // Another chain's page: what was held is dropped, and the fetcher starts over from it.
  EXPECT_FALSE(chain.Take(server.url("/p9")).has_value());
  hub::FetchStats left = chain.Stop();
  EXPECT_EQ(requests + left.requests, static_cast<int64_t>(server.requests().size()));
}

// Stop cancels a fetch that is waiting for the Hub and joins it.
TEST(ChainFetcher, StopCancelsAFetchInFlight) {
  HttpTestServer server([&](const ReceivedRequest&) {
    return ScriptedAnswer{Page("a/1"), absl::Seconds(60)};
  });
  ChainFetcher chain(ClientOptions(server), 1);
  chain.budget().Set(std::make_shared<hub::FixedBudget>(100));
  chain.Begin(server.url("/p1"));
  WaitForRequests(server, 1);
  hub::FetchStats left = chain.Stop();
  EXPECT_EQ(left.requests, 1);
  EXPECT_FALSE(chain.Holds(server.url("/p1")));
  EXPECT_FALSE(chain.Take(server.url("/p1")).has_value());
}

// A budget that holds its Acquire until released, then refuses (a lease that finished meanwhile).
class HeldBudget : public hub::RequestBudget {
 public:
  absl::Status Acquire(absl::Time) override {
    asked.Notify();
    release.WaitForNotification();
    return absl::FailedPreconditionError("lease finished");
  }
  absl::Notification asked;
  absl::Notification release;
};

// Requests are charged to the budget set when they go out; between two budgets an Acquire waits
// for the next; one refused by a budget cleared meanwhile goes to the next; Close cancels.
TEST(BudgetRelay, ChargesTheCurrentBudgetAndWaitsBetweenBudgets) {
  BudgetRelay relay;
  auto first = std::make_shared<hub::FixedBudget>(1);
  relay.Set(first);
  EXPECT_TRUE(relay.Acquire(absl::InfiniteFuture()).ok());
  EXPECT_EQ(first->left(), 0);
  EXPECT_TRUE(absl::IsResourceExhausted(relay.Acquire(absl::InfiniteFuture())));

  relay.Clear();
  std::atomic<bool> done{false};
  absl::Status waited;
  std::thread asker([&] {
    waited = relay.Acquire(absl::InfiniteFuture());
    done = true;
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(done) << "no budget set: the request waits";
  auto second = std::make_shared<hub::FixedBudget>(5);
  relay.Set(second);
  asker.join();
  EXPECT_TRUE(waited.ok()) << waited;
  EXPECT_EQ(second->left(), 4);

  auto held = std::make_shared<HeldBudget>();
  relay.Set(held);
  std::thread refused([&] { waited = relay.Acquire(absl::InfiniteFuture()); });
  held->asked.WaitForNotification();
  relay.Clear();
  relay.Set(second);
  held->release.Notify();
  refused.join();
  EXPECT_TRUE(waited.ok()) << waited;
  EXPECT_EQ(second->left(), 3) << "refused by the cleared budget, charged to the next";

  relay.Close();
  EXPECT_TRUE(absl::IsCancelled(relay.Acquire(absl::InfiniteFuture())));
}

}  // namespace
}  // namespace hubcensus::crawler
