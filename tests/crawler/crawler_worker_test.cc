// The crawler worker against the real coordinator and the real aggregator (RocksDB store), both
// in-process over loopback gRPC, and an in-memory faulty Hub; time is one SimulatedClock shared by
// all of them, so backoffs and rate-limit windows pass without sleeping.
#include "crawler/crawler_worker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "aggregator/aggregator.h"
#include "common/grpc_server.h"
#include "common/shutdown.h"
#include "coordinator/coordinator.h"
#include "hub/listing_query.h"
#include "tests/crawler/faulty_hub.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::crawler {
namespace {

using ::hubcensus::testing::FaultyHub;
using ::hubcensus::testing::FaultyHubOptions;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kHub[] = "http://hub.test";
constexpr char kDate[] = "2025-10-31";
constexpr char kCrawlId[] = "crawl-2025-10-31";
constexpr char kToken[] = "hf_WorkerSecretToken42";

class CrawlerWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ResetShutdownForTesting();
    aggregator::AggregatorOptions a;
    a.data_dir = hubcensus::testing::MakeTempDir("crawler_store");
    a.sync_writes = false;
    a.clock = &clock_;
    auto aggregator = aggregator::Aggregator::Open(a);
    ASSERT_TRUE(aggregator.ok()) << aggregator.status();
    aggregator_ = std::move(*aggregator);
    auto server = GrpcServer::Start({}, {aggregator_->snapshot_store_service()});
    ASSERT_TRUE(server.ok()) << server.status();
    store_server_ = std::move(*server);
  }

  void StartCoordinator(coordinator::HubQuota quota, absl::Duration lease = absl::Seconds(60),
                        int32_t budget_chunk = 8) {
    coordinator::CoordinatorOptions c;
    c.state_dir = hubcensus::testing::MakeTempDir("crawler_coordinator");
    c.store_target = store_server_->dial_address();
    c.hub_url = kHub;
    c.lease_duration = lease;
    c.clock = &clock_;
    c.sync_writes = false;
    c.hub_quota = quota;
    c.budget_chunk = budget_chunk;
    c.max_item_failures = 2;
    c.tick_interval = absl::Milliseconds(20);
    auto service = coordinator::CoordinatorService::Open(c);
    ASSERT_TRUE(service.ok()) << service.status();
    coordinator_ = std::move(*service);
    coordinator_->StartBackground();
    auto server = GrpcServer::Start({}, {coordinator_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    coordinator_server_ = std::move(*server);
    stub_ = v1::Coordinator::NewStub(MakeChannel(coordinator_server_->dial_address()));
  }

  void TearDown() override {
    if (coordinator_) coordinator_->StopBackground();
    if (coordinator_server_) coordinator_server_->Shutdown(absl::ZeroDuration());
    if (store_server_) store_server_->Shutdown(absl::ZeroDuration());
    ResetShutdownForTesting();
  }

  void StartCrawl(int page_size) {
    v1::StartCrawlRequest request;
    request.set_date(kDate);
    request.mutable_listing()->set_page_size(page_size);
    v1::StartCrawlResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub_->StartCrawl(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  CrawlerWorkerOptions WorkerOptions(std::shared_ptr<hub::HttpTransport> transport,
                                     int parallelism) {
    CrawlerWorkerOptions o;
    o.coordinator_target = coordinator_server_->dial_address();
    o.store_target = store_server_->dial_address();
    o.worker_id = "test-worker";
    o.parallelism = parallelism;
    o.hub_token = kToken;
    o.clock = &clock_;
    o.transport_factory = [transport] { return transport; };
    o.retry.initial_backoff = absl::Milliseconds(200);
    o.retry.max_backoff = absl::Seconds(4);
    o.idle_wait = absl::Milliseconds(200);
    o.budget_wait = absl::Milliseconds(500);
    o.stop_on_shutdown_signal = false;
    return o;
  }

  v1::Crawl GetCrawl() {
    v1::GetCrawlRequest request;
    request.set_crawl_id(kCrawlId);
    v1::Crawl crawl;
    grpc::ClientContext context;
    grpc::Status status = stub_->GetCrawl(&context, request, &crawl);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return crawl;
  }

  // Polls (real time) until the crawl reaches one of `states`.
  v1::Crawl WaitForCrawl(std::set<v1::CrawlState> states,
                         absl::Duration timeout = absl::Seconds(90)) {
    absl::Time give_up = absl::Now() + timeout;
    v1::Crawl crawl;
    while (absl::Now() < give_up) {
      crawl = GetCrawl();
      if (states.count(crawl.state())) return crawl;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "crawl still in state " << crawl.state() << ": " << crawl.DebugString();
    return crawl;
  }

  // The ids the store published for the crawl, each with how many times it was seen.
  std::multiset<std::string> CommittedIds() {
    std::multiset<std::string> ids;
    auto view = aggregator_->store()->View();
    EXPECT_TRUE(view.ok()) << view.status();
    if (!view.ok()) return ids;
    auto crawl = (*view)->FindCrawl(kCrawlId);
    EXPECT_TRUE(crawl.ok()) << crawl.status();
    if (!crawl.ok()) return ids;
    absl::Status s = (*view)->ForEachRepo(*crawl, [&](const v1::RepoSnapshot& repo) {
      ids.insert(repo.id());
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return ids;
  }

  SimulatedClock clock_{absl::FromUnixSeconds(1761868800 + 3600)};  // 2025-10-31T01:00Z
  std::unique_ptr<aggregator::Aggregator> aggregator_;
  std::unique_ptr<GrpcServer> store_server_;
  std::unique_ptr<coordinator::CoordinatorService> coordinator_;
  std::unique_ptr<GrpcServer> coordinator_server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

// Many pages, four leases in flight, 5% faults, a quota far below what the crawl needs: every
// repo lands in the store exactly once and no request goes beyond the Hub's quota.
TEST_F(CrawlerWorkerTest, CrawlsEveryRepoExactlyOnceWithFaultsWithinTheQuota) {
  FaultyHubOptions hub_options;
  hub_options.repos = 6000;
  hub_options.fault_rate = 0.05;
  hub_options.quota = 25;
  hub_options.window_s = 60;
  hub_options.seed = 7;
  FaultyHub hub(hub_options, &clock_);
  auto transport = std::make_shared<hub::FakeHttpTransport>(
      [&](const hub::HttpRequest& r) { return hub.Serve(r); }, &clock_, absl::Milliseconds(30));
  // The coordinator starts believing a larger quota than the Hub's and learns the real one.
  StartCoordinator(coordinator::HubQuota{false, 40, 60}, absl::Seconds(120), 4);
  StartCrawl(100);
  auto worker = CrawlerWorker::Create(WorkerOptions(transport, 4));
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE((*worker)->Start().ok());
  v1::Crawl crawl = WaitForCrawl({v1::CRAWL_COMMITTED, v1::CRAWL_FAILED, v1::CRAWL_CANCELLED});
  (*worker)->Stop();
  (*worker)->Wait();
  ASSERT_EQ(crawl.state(), v1::CRAWL_COMMITTED) << crawl.failure_reason();

  std::multiset<std::string> stored = CommittedIds();
  std::set<std::string> expected = hub.ids();
  EXPECT_EQ(stored.size(), expected.size());
  EXPECT_EQ(std::set<std::string>(stored.begin(), stored.end()), expected);
  EXPECT_EQ(crawl.stats().repos(), 6000) << "completed leases report each repo once";
  EXPECT_EQ(crawl.stats().pages(), 60);
  EXPECT_EQ(hub.over_quota(), 0) << "requests beyond the quota";
  EXPECT_GT(hub.faults(), 0);
  EXPECT_GT(crawl.stats().retries(), 0);
  EXPECT_EQ(crawl.stats().requests(), hub.requests()) << "every Hub request was reported";
  CrawlerWorkerStats stats = (*worker)->stats();
  EXPECT_EQ(stats.requests, hub.requests());
  EXPECT_GE(stats.completed, 60);
  EXPECT_EQ(stats.failed, 0);
  // Malformed extras the Hub slipped in were counted by reason; repeats were dropped.
  EXPECT_GT(crawl.stats().rejected_entries(), 0);
  // 6000 repos / 25 requests per 60 s window: the crawl needed several windows.
  EXPECT_GE(clock_.Now() - absl::FromUnixSeconds(1761868800 + 3600), absl::Minutes(2));
  for (const hub::HttpRequest& r : transport->requests()) {
    ASSERT_EQ(r.headers.Get("Authorization"), absl::StrCat("Bearer ", kToken));
    ASSERT_THAT(r.url, Not(HasSubstr(kToken)));
  }
}

// The listing chain is one cursor: one lease follows it, fetching page k+1 while page k is
// stored, and CompleteLease hands over page k+1's (fenced) lease. Every page is still stored once
// and every request reported.
TEST_F(CrawlerWorkerTest, OneLeaseFollowsTheChainFetchingTheNextPageWhileStoring) {
  FaultyHubOptions hub_options;
  hub_options.repos = 3000;
  FaultyHub hub(hub_options, &clock_);
  auto transport = std::make_shared<hub::FakeHttpTransport>(
      [&](const hub::HttpRequest& r) { return hub.Serve(r); });
  StartCoordinator(coordinator::HubQuota{true, 0, 0});
  StartCrawl(100);
  auto worker = CrawlerWorker::Create(WorkerOptions(transport, 1));
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE((*worker)->Start().ok());
  v1::Crawl crawl = WaitForCrawl({v1::CRAWL_COMMITTED, v1::CRAWL_FAILED, v1::CRAWL_CANCELLED});
  (*worker)->Stop();
  (*worker)->Wait();
  ASSERT_EQ(crawl.state(), v1::CRAWL_COMMITTED) << crawl.failure_reason();
  std::multiset<std::string> stored = CommittedIds();
  EXPECT_EQ(stored.size(), 3000u);
  EXPECT_EQ(std::set<std::string>(stored.begin(), stored.end()), hub.ids());
  EXPECT_EQ(crawl.stats().pages(), 30);
  CrawlerWorkerStats stats = (*worker)->stats();
  EXPECT_EQ(stats.completed, 30);
  EXPECT_EQ(stats.leases, 30);
  EXPECT_EQ(stats.chained, 29) << "every page after the first came with the previous one";
  EXPECT_EQ(hub.requests(), 30) << "each page fetched once, ahead or not";
  EXPECT_EQ(crawl.stats().requests(), hub.requests());
}

// The next page's fetch is not held behind the page before: the Hub answers page k+1 only once
// page k is completed at the coordinator, which a worker that waited for page k+1 before
// completing page k would never see (the answer would come after the 20 s wait, and the test
// fails). Every page is still stored once, under its own lease.
TEST_F(CrawlerWorkerTest, APageCompletesWhileTheNextPageIsStillBeingFetched) {
  FaultyHubOptions hub_options;
  hub_options.repos = 3000;
  FaultyHub hub(hub_options, &clock_);
  std::atomic<int> later_pages{0};
  std::atomic<int> answered_after_the_page_before{0};
  auto transport = std::make_shared<hub::FakeHttpTransport>([&](const hub::HttpRequest& r) {
    if (r.url.find("cursor=") != std::string::npos) {
      const int pages_before = ++later_pages;
      absl::Time give_up = absl::Now() + absl::Seconds(20);
      while (GetCrawl().stats().pages() < pages_before && absl::Now() < give_up) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      if (GetCrawl().stats().pages() >= pages_before) ++answered_after_the_page_before;
    }
    return hub.Serve(r);
  });
  StartCoordinator(coordinator::HubQuota{true, 0, 0});
  StartCrawl(1000);
  auto worker = CrawlerWorker::Create(WorkerOptions(transport, 1));
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE((*worker)->Start().ok());
  v1::Crawl crawl = WaitForCrawl({v1::CRAWL_COMMITTED, v1::CRAWL_FAILED, v1::CRAWL_CANCELLED});
  (*worker)->Stop();
  (*worker)->Wait();
  ASSERT_EQ(crawl.state(), v1::CRAWL_COMMITTED) << crawl.failure_reason();
  EXPECT_EQ(later_pages, 2);
  EXPECT_EQ(answered_after_the_page_before, 2);
  std::multiset<std::string> stored = CommittedIds();
  EXPECT_EQ(stored.size(), 3000u);
  EXPECT_EQ(std::set<std::string>(stored.begin(), stored.end()), hub.ids());
  CrawlerWorkerStats stats = (*worker)->stats();
  EXPECT_EQ(stats.completed, 3);
  EXPECT_EQ(stats.chained, 2);
  EXPECT_EQ(crawl.stats().requests(), hub.requests());
}

TEST_F(CrawlerWorkerTest, NonRetryableHubErrorFailsTheLeaseWithoutTheToken) {
  auto transport = std::make_shared<hub::FakeHttpTransport>(
      [&](const hub::HttpRequest&) { return hub::MakeResponse(403, "{\"error\":\"Forbidden\"}"); });
  StartCoordinator(coordinator::HubQuota{true, 0, 0});
  StartCrawl(100);
  auto worker = CrawlerWorker::Create(WorkerOptions(transport, 1));
  ASSERT_TRUE(worker.ok());
  ASSERT_TRUE((*worker)->Start().ok());
  v1::Crawl crawl = WaitForCrawl({v1::CRAWL_FAILED, v1::CRAWL_COMMITTED});
  (*worker)->Stop();
  (*worker)->Wait();
  EXPECT_EQ(crawl.state(), v1::CRAWL_FAILED);
  EXPECT_THAT(crawl.failure_reason(), HasSubstr("answered HTTP 403"));
  EXPECT_THAT(crawl.failure_reason(), HasSubstr("http://hub.test/api/models?sort=createdAt"));
  EXPECT_THAT(crawl.failure_reason(), Not(HasSubstr(kToken)));
  CrawlerWorkerStats stats = (*worker)->stats();
  EXPECT_EQ(stats.failed, 2);  // max_item_failures
  EXPECT_EQ(stats.completed, 0);
  EXPECT_EQ(transport->request_count(), 2) << "a 403 is not retried";
}

// A lease the coordinator stops honouring mid-fetch (here: the crawl is cancelled) is dropped
// without FailLease, and nothing else of the worker stops.
TEST_F(CrawlerWorkerTest, LostLeaseIsDroppedSilently) {
  std::atomic<bool> cancelled{false};
  FaultyHubOptions hub_options;
  hub_options.repos = 50;
  FaultyHub hub(hub_options, &clock_);
  auto transport = std::make_shared<hub::FakeHttpTransport>([&](const hub::HttpRequest& r) {
    if (!cancelled.exchange(true)) {
      v1::CancelCrawlRequest request;
      request.set_crawl_id(kCrawlId);
      request.set_reason("operator test");
      v1::Crawl crawl;
      grpc::ClientContext context;
      EXPECT_TRUE(stub_->CancelCrawl(&context, request, &crawl).ok());
    }
    return hub.Serve(r);
  });
  StartCoordinator(coordinator::HubQuota{true, 0, 0});
  StartCrawl(100);
  auto worker = CrawlerWorker::Create(WorkerOptions(transport, 1));
  ASSERT_TRUE(worker.ok());
  ASSERT_TRUE((*worker)->Start().ok());
  absl::Time give_up = absl::Now() + absl::Seconds(30);
  while ((*worker)->stats().lost == 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  (*worker)->Stop();
  (*worker)->Wait();
  CrawlerWorkerStats stats = (*worker)->stats();
  EXPECT_EQ(stats.lost, 1);
  EXPECT_EQ(stats.completed, 0);
  EXPECT_EQ(stats.failed + stats.handed_back, 0) << "a lost lease is not failed";
  EXPECT_EQ(GetCrawl().state(), v1::CRAWL_CANCELLED);
}

// The renewer keeps a lease alive while its fetch outlasts the lease time many times over.
TEST_F(CrawlerWorkerTest, RenewsAtAThirdOfTheLeaseTime) {
  FaultyHubOptions hub_options;
  hub_options.repos = 20;
  FaultyHub hub(hub_options, &clock_);
  std::atomic<bool> in_flight{false};
  std::atomic<bool> release{false};
  auto transport = std::make_shared<hub::FakeHttpTransport>([&](const hub::HttpRequest& r) {
    in_flight = true;
    while (!release) absl::SleepFor(absl::Milliseconds(2));
    return hub.Serve(r);
  });
  StartCoordinator(coordinator::HubQuota{true, 0, 0}, absl::Seconds(30));
  StartCrawl(100);
  auto worker = CrawlerWorker::Create(WorkerOptions(transport, 1));
  ASSERT_TRUE(worker.ok());
  ASSERT_TRUE((*worker)->Start().ok());
  while (!in_flight) absl::SleepFor(absl::Milliseconds(2));
  // 5 minutes of simulated time (10 lease times) in 4 s steps; the coordinator expires leases
  // not renewed within 30 s, the renewer (polling every 50 ms real) renews every 10 s.
  for (int i = 0; i < 75; ++i) {
    clock_.Advance(absl::Seconds(4));
    absl::SleepFor(absl::Milliseconds(60));
    coordinator_->Tick();
  }
  release = true;
  v1::Crawl crawl = WaitForCrawl({v1::CRAWL_COMMITTED, v1::CRAWL_FAILED});
  (*worker)->Stop();
  (*worker)->Wait();
  EXPECT_EQ(crawl.state(), v1::CRAWL_COMMITTED);
  EXPECT_EQ(crawl.stats().lease_expiries(), 0);
  CrawlerWorkerStats stats = (*worker)->stats();
  EXPECT_EQ(stats.completed, 1);
  EXPECT_EQ(stats.lost, 0);
  EXPECT_EQ(CommittedIds().size(), 20u);
}

// Stop() (what SIGTERM does) with a fetch that cannot finish: the lease is handed back
// (FailLease retryable=true) so another worker gets the item at once with a higher fence.
TEST_F(CrawlerWorkerTest, StopHandsBackALeaseThatCannotFinish) {
  std::atomic<bool> in_flight{false};
  auto transport = std::make_shared<hub::FakeHttpTransport>([&](const hub::HttpRequest& r) {
    in_flight = true;
    // Like libcurl's progress callback: the transfer ends when the request is cancelled.
    while (!(r.cancelled != nullptr && r.cancelled->load())) absl::SleepFor(absl::Milliseconds(2));
    return hub::MakeTransportError(absl::CancelledError("request cancelled"));
  });
  StartCoordinator(coordinator::HubQuota{true, 0, 0});
  StartCrawl(100);
  CrawlerWorkerOptions options = WorkerOptions(transport, 1);
  options.drain_timeout = absl::Seconds(5);
  options.stop_on_shutdown_signal = true;
  auto worker = CrawlerWorker::Create(options);
  ASSERT_TRUE(worker.ok());
  ASSERT_TRUE((*worker)->Start().ok());
  while (!in_flight) absl::SleepFor(absl::Milliseconds(2));
  RequestShutdown();  // as the SIGTERM handler does
  absl::SleepFor(absl::Milliseconds(200));
  clock_.Advance(absl::Seconds(6));  // past the drain timeout
  (*worker)->Wait();
  CrawlerWorkerStats stats = (*worker)->stats();
  EXPECT_EQ(stats.handed_back, 1);
  EXPECT_EQ(stats.lost + stats.failed + stats.completed, 0);
  // The item is back on the queue (after the coordinator's retry backoff): the next lease of it
  // has a higher fence.
  v1::AcquireLeaseResponse response;
  for (int i = 0; i < 20 && !response.has_lease(); ++i) {
    v1::AcquireLeaseRequest request;
    request.set_worker_id("other");
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->AcquireLease(&context, request, &response).ok());
    clock_.Advance(absl::Milliseconds(std::max<int64_t>(response.retry_after_ms(), 100)));
  }
  ASSERT_TRUE(response.has_lease());
  EXPECT_EQ(response.lease().item().page_index(), 0);
  EXPECT_GE(response.lease().fence(), 2u);
}

// Stop() while fetches finish quickly: nothing is handed back, the crawl simply goes on later.
TEST_F(CrawlerWorkerTest, StopWithoutWorkReturnsPromptly) {
  auto transport = std::make_shared<hub::FakeHttpTransport>(
      [&](const hub::HttpRequest&) { return hub::MakeResponse(500, ""); });
  StartCoordinator(coordinator::HubQuota{true, 0, 0});
  auto worker = CrawlerWorker::Create(WorkerOptions(transport, 3));
  ASSERT_TRUE(worker.ok());
  ASSERT_TRUE((*worker)->Start().ok());
  absl::SleepFor(absl::Milliseconds(100));
  (*worker)->Stop();
  (*worker)->Wait();
  EXPECT_EQ((*worker)->stats().leases, 0);
  EXPECT_EQ(transport->request_count(), 0);
}

TEST(CrawlerWorkerOptionsTest, InvalidOptionsNameTheField) {
  CrawlerWorkerOptions options;
  options.store_target = "127.0.0.1:1";
  EXPECT_THAT(CrawlerWorker::Create(options).status().message(), HasSubstr("coordinator"));
  options.coordinator_target = "127.0.0.1:1";
  options.parallelism = 0;
  EXPECT_THAT(CrawlerWorker::Create(options).status().message(), HasSubstr("parallelism"));
}

}  // namespace
}  // namespace hubcensus::crawler
