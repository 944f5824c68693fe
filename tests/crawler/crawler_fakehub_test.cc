// The done-when: a worker crawls a 200,000-repo fakehub with --fault_rate=0.05 and the
// store holds every repo exactly once (checked against fakehub's ids), with no request beyond
// the quota. Real processes' parts in-process: fakehub (HTTP on loopback, libcurl), the
// coordinator and the aggregator (gRPC on loopback, RocksDB), the real clock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "aggregator/aggregator.h"
#include "common/grpc_server.h"
#include "coordinator/coordinator.h"
#include "crawler/crawler_worker.h"
#include "fakehub/fakehub.h"
#include "tests/hub/quota_watch_transport.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::crawler {
namespace {

using ::hubcensus::testing::QuotaWatchTransport;

// fakehub's scenario ends (and holds the most repos) on this date.
constexpr char kDate[] = "2025-12-31";
constexpr char kCrawlId[] = "crawl-2025-12-31";

struct CrawlRun {
  v1::Crawl crawl;
  std::multiset<std::string> stored;
  CrawlerWorkerStats worker;
  int64_t hub_requests = 0;
  int64_t over_quota = 0;
};

// Crawls `hub` with one worker of `parallelism` leases and returns what the store published.
CrawlRun Crawl(fakehub::FakeHub& hub, int parallelism, int page_size,
               coordinator::HubQuota initial_quota) {
  CrawlRun run;
  aggregator::AggregatorOptions a;
  a.data_dir = hubcensus::testing::MakeTempDir("fakehub_crawl_store");
  a.sync_writes = false;
  auto aggregator = aggregator::Aggregator::Open(a);
  EXPECT_TRUE(aggregator.ok()) << aggregator.status();
  if (!aggregator.ok()) return run;
  auto store_server = GrpcServer::Start({}, {(*aggregator)->snapshot_store_service()});
  EXPECT_TRUE(store_server.ok());
  if (!store_server.ok()) return run;

  coordinator::CoordinatorOptions c;
  c.state_dir = hubcensus::testing::MakeTempDir("fakehub_crawl_coordinator");
  c.store_target = (*store_server)->dial_address();
  c.hub_url = hub.url();
  c.sync_writes = false;
  c.hub_quota = initial_quota;
  c.tick_interval = absl::Milliseconds(50);
  auto service = coordinator::CoordinatorService::Open(c);
  EXPECT_TRUE(service.ok()) << service.status();
  if (!service.ok()) return run;
  (*service)->StartBackground();
  auto coordinator_server = GrpcServer::Start({}, {service->get()});
  EXPECT_TRUE(coordinator_server.ok());
  if (!coordinator_server.ok()) return run;
  auto stub = v1::Coordinator::NewStub(MakeChannel((*coordinator_server)->dial_address()));
  {
    v1::StartCrawlRequest request;
    request.set_date(kDate);
    request.mutable_listing()->set_page_size(page_size);
    v1::StartCrawlResponse response;
    grpc::ClientContext context;
    grpc::Status s = stub->StartCrawl(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }

  auto watch = std::make_shared<QuotaWatchTransport>(hub::NewCurlTransport());
  CrawlerWorkerOptions o;
  o.coordinator_target = (*coordinator_server)->dial_address();
  o.store_target = (*store_server)->dial_address();
  o.worker_id = "fakehub-worker";
  o.parallelism = parallelism;
  o.hub_token = "hf_done_when_token";
  o.transport_factory = [watch] { return watch; };
  o.retry.initial_backoff = absl::Milliseconds(50);
  o.retry.max_backoff = absl::Seconds(2);
  o.timeouts.total = absl::Seconds(2);  // fakehub's stalls are 4 s
  o.budget_wait = absl::Milliseconds(200);
  o.idle_wait = absl::Milliseconds(100);
  o.stop_on_shutdown_signal = false;
  auto worker = CrawlerWorker::Create(o);
  EXPECT_TRUE(worker.ok()) << worker.status();
  if (!worker.ok()) return run;
  EXPECT_TRUE((*worker)->Start().ok());

  absl::Time give_up = absl::Now() + absl::Minutes(3);
  while (absl::Now() < give_up) {
    v1::GetCrawlRequest request;
    request.set_crawl_id(kCrawlId);
    grpc::ClientContext context;
    grpc::Status s = stub->GetCrawl(&context, request, &run.crawl);
    if (s.ok() &&
        (run.crawl.state() == v1::CRAWL_COMMITTED || run.crawl.state() == v1::CRAWL_FAILED ||
         run.crawl.state() == v1::CRAWL_CANCELLED)) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  (*worker)->Stop();
  (*worker)->Wait();
  (*service)->StopBackground();
  run.worker = (*worker)->stats();
  run.hub_requests = watch->requests();
  run.over_quota = watch->over_quota();

  auto view = (*aggregator)->store()->View();
  EXPECT_TRUE(view.ok());
  if (view.ok()) {
    auto stored = (*view)->FindCrawl(kCrawlId);
    if (stored.ok()) {
      absl::Status s = (*view)->ForEachRepo(*stored, [&](const v1::RepoSnapshot& repo) {
        run.stored.insert(repo.id());
        return absl::OkStatus();
      });
      EXPECT_TRUE(s.ok()) << s;
    }
  }
  (*coordinator_server)->Shutdown(absl::ZeroDuration());
  (*store_server)->Shutdown(absl::ZeroDuration());
  return run;
}

TEST(CrawlerFakehub, DoneWhen200kReposWithFivePercentFaultsExactlyOnceWithinTheQuota) {
  fakehub::FakeHubOptions hub_options;
  hub_options.repos = 200000;
  hub_options.seed = 4;
  hub_options.date = kDate;
  hub_options.fault_rate = 0.05;
  // Every fault kind but `mutate`, which changes the Hub mid-crawl and so the ids to check
  // against (its guarantees are the next test's).
  hub_options.faults = "mutate=0";
  hub_options.rate_limit = "60/4";  // binding: the crawl needs several windows
  hub_options.stall_seconds = 4;
  auto hub = fakehub::FakeHub::Start(hub_options);
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::vector<std::string> truth = (*hub)->RepoIdsAt(kDate);
  ASSERT_GT(truth.size(), 190000u);

  CrawlRun run = Crawl(**hub, 4, 1000, coordinator::HubQuota{false, 500, 300});
  ASSERT_EQ(run.crawl.state(), v1::CRAWL_COMMITTED)
      << run.crawl.failure_reason() << " " << run.crawl.DebugString();
  std::set<std::string> distinct(run.stored.begin(), run.stored.end());
  EXPECT_EQ(run.stored.size(), distinct.size());
  EXPECT_EQ(distinct, std::set<std::string>(truth.begin(), truth.end()));
  EXPECT_EQ(run.crawl.stats().repos(), static_cast<int64_t>(truth.size()));
  EXPECT_EQ(run.over_quota, 0) << "requests beyond the quota";
  EXPECT_EQ(run.crawl.stats().requests(), run.hub_requests);
  EXPECT_GT(run.crawl.stats().retries(), 0);
  EXPECT_EQ(run.worker.failed, 0);
  std::cout << "done-when: " << truth.size() << " repos, " << run.crawl.stats().pages()
            << " pages, " << run.hub_requests << " Hub requests, " << run.crawl.stats().retries()
            << " retries, " << run.crawl.stats().rejected_entries() << " rejected, "
            << run.worker.lost << " lost leases, " << run.worker.handed_back << " handed back\n";
}

// With `mutate` faults the Hub changes mid-crawl (repos created, deleted, renamed): what the
// store holds is still a set (no repo twice), every repo listed from start to end is in it, and
// nothing in it was never on the Hub.
TEST(CrawlerFakehub, MutatingHubLosesNoRepoThatStayed) {
  fakehub::FakeHubOptions hub_options;
  hub_options.repos = 20000;
  hub_options.seed = 5;
  hub_options.date = kDate;
  hub_options.faults = "mutate=0.3,http503=0.05,truncate=0.05,repeat=0.05";
  hub_options.rate_limit = "off";
  auto hub = fakehub::FakeHub::Start(hub_options);
  ASSERT_TRUE(hub.ok()) << hub.status();
  std::vector<std::string> before = (*hub)->RepoIdsAt(kDate);
  CrawlRun run = Crawl(**hub, 2, 500, coordinator::HubQuota{true, 0, 0});
  ASSERT_EQ(run.crawl.state(), v1::CRAWL_COMMITTED) << run.crawl.failure_reason();
  std::vector<std::string> after = (*hub)->RepoIdsAt(kDate);
  std::set<std::string> stored(run.stored.begin(), run.stored.end());
  EXPECT_EQ(stored.size(), run.stored.size());
  std::set<std::string> after_set(after.begin(), after.end());
  std::set<std::string> ever(before.begin(), before.end());
  ever.insert(after.begin(), after.end());
  int64_t stayed = 0, missing = 0, foreign = 0;
  for (const std::string& id : before) {
    if (!after_set.count(id)) continue;
    ++stayed;
    if (!stored.count(id)) ++missing;
  }
  for (const std::string& id : stored) {
    if (!ever.count(id)) ++foreign;
  }
  EXPECT_GT(stayed, 15000);
  EXPECT_EQ(missing, 0) << "repos listed throughout the crawl but not stored";
  EXPECT_EQ(foreign, 0);
  EXPECT_NE(before.size(), after.size()) << "the Hub did change mid-crawl";
}

}  // namespace
}  // namespace hubcensus::crawler
