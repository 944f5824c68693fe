// `hubcensus crawler` as Kubernetes runs it: flags, a crawl against fakehub with the token from
// HF_TOKEN (never printed), /metrics, and SIGTERM -> exit 0.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "aggregator/aggregator.h"
#include "common/grpc_server.h"
#include "coordinator/coordinator.h"
#include "fakehub/fakehub.h"
#include "hub/http_transport.h"
#include "tests/hub/http_test_server.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::crawler {
namespace {

using ::hubcensus::testing::HubcensusBinary;
using ::hubcensus::testing::RunToCompletion;
using ::hubcensus::testing::Subprocess;
using ::testing::HasSubstr;
using ::testing::Not;

// An aggregator's store and a coordinator served on loopback, with the crawl of 2025-10-31
// started: what a `hubcensus crawler` process needs to find work. Members stop in reverse order.
struct RolesWithACrawl {
  std::unique_ptr<aggregator::Aggregator> aggregator;
  std::unique_ptr<GrpcServer> store_server;
  std::unique_ptr<coordinator::CoordinatorService> service;
  std::unique_ptr<GrpcServer> coordinator_server;
  std::unique_ptr<v1::Coordinator::Stub> stub;

  void Stop() {
    service->StopBackground();
    coordinator_server->Shutdown(absl::ZeroDuration());
    store_server->Shutdown(absl::ZeroDuration());
  }
};

// page_size 0 leaves the coordinator's default. ASSERTs: check HasFatalFailure() after.
void StartRolesWithACrawl(const std::string& hub_url, const std::string& name, int32_t page_size,
                          RolesWithACrawl* roles) {
  aggregator::AggregatorOptions a;
  a.data_dir = hubcensus::testing::MakeTempDir(name + "_store");
  a.sync_writes = false;
  auto aggregator = aggregator::Aggregator::Open(a);
  ASSERT_TRUE(aggregator.ok()) << aggregator.status();
  roles->aggregator = std::move(*aggregator);
  auto store_server = GrpcServer::Start({}, {roles->aggregator->snapshot_store_service()});
  ASSERT_TRUE(store_server.ok());
  roles->store_server = std::move(*store_server);
  coordinator::CoordinatorOptions c;
  c.state_dir = hubcensus::testing::MakeTempDir(name + "_coordinator");
  c.store_target = roles->store_server->dial_address();
  c.hub_url = hub_url;
  c.sync_writes = false;
  c.tick_interval = absl::Milliseconds(50);
  c.hub_quota = coordinator::HubQuota{true, 0, 0};
  auto service = coordinator::CoordinatorService::Open(c);
  ASSERT_TRUE(service.ok()) << service.status();
  roles->service = std::move(*service);
  roles->service->StartBackground();
  auto coordinator_server = GrpcServer::Start({}, {roles->service.get()});
  ASSERT_TRUE(coordinator_server.ok());
  roles->coordinator_server = std::move(*coordinator_server);
  roles->stub = v1::Coordinator::NewStub(MakeChannel(roles->coordinator_server->dial_address()));
  v1::StartCrawlRequest request;
  request.set_date("2025-10-31");
  if (page_size > 0) request.mutable_listing()->set_page_size(page_size);
  v1::StartCrawlResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(roles->stub->StartCrawl(&context, request, &response).ok());
}

TEST(CrawlerCommand, FlagErrorsNameTheFlag) {
  std::string out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "crawler"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("--coordinator"));
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "crawler", "--coordinator=127.0.0.1:1"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("--store"));
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "crawler", "--coordinator=a:1", "--store=b:2",
                             "--parallelism=0"},
                            &out),
            2);
  EXPECT_THAT(out, HasSubstr("--parallelism"));
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "crawler", "--coordinator=a:1", "--store=b:2",
                             "--hf_token_file=/nonexistent/token"},
                            &out),
            2);
  EXPECT_THAT(out, HasSubstr("--hf_token_file /nonexistent/token"));
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "crawler", "--help"}, &out), 0);
  EXPECT_THAT(out, HasSubstr("--parallelism"));
  EXPECT_THAT(out, HasSubstr("--hf_token_file"));
}

TEST(CrawlerCommand, CrawlsThenExitsZeroOnSigterm) {
  const std::string token = "hf_ProcessSecretToken777";
  fakehub::FakeHubOptions hub_options;
  hub_options.repos = 5000;
  // Enough faults that every metric family has a sample: retries and rejected entries.
  hub_options.faults = "http503=0.2,malformed=0.3";
  hub_options.rate_limit = "off";
  hub_options.date = "2025-10-31";
  auto hub = fakehub::FakeHub::Start(hub_options);
  ASSERT_TRUE(hub.ok()) << hub.status();

  RolesWithACrawl roles;
  StartRolesWithACrawl((*hub)->url(), "crawler_process", 500, &roles);
  ASSERT_FALSE(HasFatalFailure());
  auto process =
      Subprocess::Start({HubcensusBinary(), "crawler",
                         absl::StrCat("--coordinator=", roles.coordinator_server->dial_address()),
                         absl::StrCat("--store=", roles.store_server->dial_address()),
                         "--parallelism=2", "--metrics_port=-1", "--log_level=debug"},
                        {absl::StrCat("HF_TOKEN=", token)});
  ASSERT_TRUE(process.has_value());
  std::optional<std::string> metrics_line = process->WaitForOutput("metrics_listening");
  ASSERT_TRUE(metrics_line.has_value()) << process->Output();

  v1::Crawl crawl;
  absl::Time give_up = absl::Now() + absl::Seconds(90);
  while (absl::Now() < give_up) {
    v1::GetCrawlRequest request;
    request.set_crawl_id("crawl-2025-10-31");
    grpc::ClientContext context;
    if (roles.stub->GetCrawl(&context, request, &crawl).ok() &&
        (crawl.state() == v1::CRAWL_COMMITTED || crawl.state() == v1::CRAWL_FAILED)) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(crawl.state(), v1::CRAWL_COMMITTED) << crawl.failure_reason();
  EXPECT_EQ(crawl.stats().repos(), static_cast<int64_t>((*hub)->RepoIdsAt("").size()));

  // /metrics names what the worker did.
  size_t at = metrics_line->find("port=");
  ASSERT_NE(at, std::string::npos) << *metrics_line;
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      metrics_line->substr(at + 5, metrics_line->find_first_of(" \n", at) - at - 5), &port))
      << *metrics_line;
  hub::HttpRequest request;
  request.url = absl::StrCat("http://127.0.0.1:", port, "/metrics");
  hub::HttpResponse metrics = hub::NewCurlTransport()->Send(request);
  ASSERT_EQ(metrics.status, 200) << metrics.transport_error;
  for (const char* name :
       {"hubcensus_crawler_pages_total", "hubcensus_crawler_repos_total",
        "hubcensus_crawler_bytes_total", "hubcensus_crawler_rejected_entries_total",
        "hubcensus_hub_retries_total", "hubcensus_hub_rate_limited_total",
        "hubcensus_hub_request_duration_seconds_bucket"}) {
    EXPECT_THAT(metrics.body, HasSubstr(name));
  }

  process->Signal(SIGTERM);
  std::optional<int> code = process->Wait(absl::Seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << process->Output();
  EXPECT_THAT(process->Output(), HasSubstr("crawler_stopped"));
  EXPECT_THAT(process->Output(), Not(HasSubstr(token)));
  roles.Stop();
}

// SIGTERM while a lease is in flight on a Hub that does not answer: the worker hands the lease
// back and exits within about a second (the drain), not after the Hub's timeouts.
TEST(CrawlerCommand, SigtermWithALeaseInFlightExitsPromptly) {
  std::atomic<int> listing_requests{0};
  hubcensus::testing::HttpTestServer hub([&](const hubcensus::testing::ReceivedRequest&) {
    ++listing_requests;
    hubcensus::testing::ScriptedAnswer stall;
    stall.raw = hubcensus::testing::HttpTestServer::Response(200, "[]");
    stall.delay = absl::Minutes(10);
    return stall;
  });
  RolesWithACrawl roles;
  StartRolesWithACrawl(hub.url(""), "crawler_sigterm", 0, &roles);
  ASSERT_FALSE(HasFatalFailure());
  auto process =
      Subprocess::Start({HubcensusBinary(), "crawler",
                         absl::StrCat("--coordinator=", roles.coordinator_server->dial_address()),
                         absl::StrCat("--store=", roles.store_server->dial_address()),
                         "--parallelism=1", "--metrics_port=-1", "--log_level=debug"},
                        {});
  ASSERT_TRUE(process.has_value());
  std::optional<std::string> metrics_line = process->WaitForOutput("metrics_listening");
  ASSERT_TRUE(metrics_line.has_value()) << process->Output();
  absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (listing_requests == 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_GT(listing_requests, 0) << process->Output();

  // The new counters are exported from the start, at 0.
  size_t at = metrics_line->find("port=");
  ASSERT_NE(at, std::string::npos) << *metrics_line;
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      metrics_line->substr(at + 5, metrics_line->find_first_of(" \n", at) - at - 5), &port));
  hub::HttpRequest request;
  request.url = absl::StrCat("http://127.0.0.1:", port, "/metrics");
  hub::HttpResponse metrics = hub::NewCurlTransport()->Send(request);
  ASSERT_EQ(metrics.status, 200) << metrics.transport_error;
  EXPECT_THAT(metrics.body, HasSubstr("hubcensus_hub_limit_shrinks_total 0"));
  EXPECT_THAT(metrics.body, HasSubstr("hubcensus_crawler_private_skipped_total 0"));

  process->Signal(SIGTERM);
  // The drain is 1 s; 8 s leaves room for a loaded machine, and is far below the old 20 s drain.
  std::optional<int> code = process->Wait(absl::Seconds(8));
  ASSERT_TRUE(code.has_value()) << "still running 8 s after SIGTERM\n" << process->Output();
  EXPECT_EQ(*code, 0) << process->Output();
  EXPECT_THAT(process->Output(), HasSubstr("lease_handed_back"));
  roles.Stop();
}

}  // namespace
}  // namespace hubcensus::crawler
