// `hubcensus crawl` against an in-process coordinator over loopback gRPC.
#include "coordinator/crawl_cli.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <thread>

#include "common/grpc_server.h"
#include "coordinator/coordinator.h"
#include "tests/coordinator/recording_store.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::coordinator {
namespace {

// Captures what a FILE* receives.
class Capture {
 public:
  Capture() : file_(open_memstream(&buffer_, &size_)) {}
  ~Capture() {
    std::fclose(file_);
    std::free(buffer_);
  }
  FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(buffer_, size_);
  }

 private:
  char* buffer_ = nullptr;
  size_t size_ = 0;
  FILE* file_;
};

class CrawlCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_server_ = *GrpcServer::Start({}, {&store_});
    CoordinatorOptions options;
    options.state_dir = hubcensus::testing::MakeTempDir("crawl_cli_state");
    options.store_target = store_server_->dial_address();
    options.hub_url = "http://127.0.0.1:9";
    options.clock = &clock_;
    options.sync_writes = false;
    options.admin_token = "tok";
    service_ = *CoordinatorService::Open(options);
    server_ = *GrpcServer::Start({}, {service_.get()});
    cli_.coordinator = server_->dial_address();
    cli_.admin_token = "tok";
    cli_.clock = &cli_clock_;
    cli_.date = "2025-10-31";
  }
  void TearDown() override { server_->Shutdown(absl::ZeroDuration()); }

  int Run(const std::string& action) {
    cli_.action = action;
    out_ = std::make_unique<Capture>();
    err_ = std::make_unique<Capture>();
    return RunCrawlCli(cli_, out_->file(), err_->file());
  }

  // What a worker does for a one-page crawl.
  void CrawlOnePage() {
    v1::AcquireLeaseRequest acquire;
    acquire.set_worker_id("w1");
    auto lease = service_->HandleAcquireLease(acquire);
    ASSERT_TRUE(lease.ok() && lease->has_lease());
    v1::CompleteLeaseRequest complete;
    complete.set_lease_id(lease->lease().lease_id());
    complete.set_fence(lease->lease().fence());
    complete.set_repos(1000);
    ASSERT_TRUE(service_->HandleCompleteLease(complete).ok());
    service_->Tick();
  }

  SimulatedClock clock_{absl::FromUnixSeconds(1761868800)};
  SimulatedClock cli_clock_{absl::FromUnixSeconds(1761868800)};
  hubcensus::testing::RecordingStore store_;
  std::unique_ptr<GrpcServer> store_server_;
  std::unique_ptr<CoordinatorService> service_;
  std::unique_ptr<GrpcServer> server_;
  CrawlCliOptions cli_;
  std::unique_ptr<Capture> out_, err_;
};

TEST_F(CrawlCliTest, StartStatusListCancel) {
  ASSERT_EQ(Run("start"), 0) << err_->text();
  EXPECT_EQ(out_->text(), "crawl-2025-10-31 started (RUNNING)\n");
  ASSERT_EQ(Run("start"), 0);
  EXPECT_EQ(out_->text(), "crawl-2025-10-31 already exists (RUNNING)\n");
  ASSERT_EQ(Run("status"), 0);
  EXPECT_NE(out_->text().find("state:            RUNNING"), std::string::npos) << out_->text();
  EXPECT_NE(out_->text().find("items:            0 done of 1"), std::string::npos);
  ASSERT_EQ(Run("list"), 0);
  EXPECT_NE(out_->text().find("crawl-2025-10-31   RUNNING"), std::string::npos) << out_->text();
  cli_.reason = "operator test";
  ASSERT_EQ(Run("cancel"), 0);
  EXPECT_NE(out_->text().find("CANCELLED"), std::string::npos);
  // --wait on a cancelled crawl exits non-zero with the reason.
  cli_.wait = true;
  EXPECT_EQ(Run("start"), 1);
  EXPECT_NE(err_->text().find("operator test"), std::string::npos) << err_->text();
}

TEST_F(CrawlCliTest, WaitFollowsTheCrawlUntilCommitted) {
  cli_.wait = true;
  cli_.poll_interval = absl::Milliseconds(5);
  std::thread worker([this] {
    // Let the CLI start the crawl, then do its one page.
    for (int i = 0; i < 2000; ++i) {
      v1::GetCrawlRequest get;
      get.set_date("2025-10-31");
      if (service_->HandleGetCrawl(get).ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    CrawlOnePage();
  });
  int code = Run("start");
  worker.join();
  EXPECT_EQ(code, 0) << err_->text();
  std::string out = out_->text();
  EXPECT_NE(out.find("crawl-2025-10-31 started (RUNNING)\n"), std::string::npos) << out;
  EXPECT_NE(out.find("crawl-2025-10-31 COMMITTED items 1/1 repos 1000"), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos);  // not a terminal: lines, no bar
}

TEST_F(CrawlCliTest, WithoutTheTokenTheCoordinatorRefuses) {
  cli_.admin_token = "";
  EXPECT_EQ(Run("list"), 1);
  EXPECT_NE(err_->text().find("UNAUTHENTICATED"), std::string::npos) << err_->text();
  EXPECT_EQ(Run("frobnicate"), 2);
  cli_.date = "31.10.2025";
  EXPECT_EQ(Run("start"), 2);
}

// `status` shows what the census leaves out and the last error as they happen.
TEST_F(CrawlCliTest, StatusShowsRejectionsSkipsShrinksUnreadableAndTheLastError) {
  ASSERT_EQ(Run("start"), 0) << err_->text();
  v1::AcquireLeaseRequest acquire;
  acquire.set_worker_id("w1");
  auto lease = service_->HandleAcquireLease(acquire);
  ASSERT_TRUE(lease.ok() && lease->has_lease());
  v1::FailLeaseRequest fail;
  fail.set_lease_id(lease->lease().lease_id());
  fail.set_fence(lease->lease().fence());
  fail.set_reason("HTTP 504 after 5 retries");
  fail.set_retryable(true);
  ASSERT_TRUE(service_->HandleFailLease(fail).ok());
  clock_.Advance(absl::Seconds(2));
  lease = service_->HandleAcquireLease(acquire);
  ASSERT_TRUE(lease.ok() && lease->has_lease());
  v1::CompleteLeaseRequest complete;
  complete.set_lease_id(lease->lease().lease_id());
  complete.set_fence(lease->lease().fence());
  complete.set_next_url("http://127.0.0.1:9/api/models?cursor=2");
  complete.set_repos(1000);
  complete.set_rejected_entries(2);
  (*complete.mutable_rejected_by_reason())["bad_created_at"] = 2;
  complete.set_private_skipped(7);
  complete.set_limit_shrinks(3);
  ASSERT_TRUE(service_->HandleCompleteLease(complete).ok());
  ASSERT_EQ(Run("status"), 0) << err_->text();
  const std::string out = out_->text();
  for (const char* line :
       {"rejected entries: 2\n  bad_created_at: 2\n", "private skipped:  7\n",
        "unreadable:       0\n", "limit shrinks:    3\n",
        "last error:       2025-10-31T00:00:00Z createdAt/p000000: HTTP 504 after 5 retries\n"}) {
    EXPECT_NE(out.find(line), std::string::npos) << line << "\n" << out;
  }
}

// A signal stops --wait: it says the crawl goes on and how to follow it, and exits 128+signal.
TEST_F(CrawlCliTest, WaitStopsWhenAskedAndTheCrawlGoesOn) {
  cli_.wait = true;
  cli_.poll_interval = absl::Milliseconds(5);
  int polls = 0;
  cli_.stop_requested = [&polls] { return ++polls >= 3; };
  EXPECT_EQ(Run("start"), 128 + SIGTERM) << err_->text();
  EXPECT_NE(err_->text().find("crawl-2025-10-31 goes on in the coordinator: hubcensus crawl "
                              "status --crawl_id=crawl-2025-10-31"),
            std::string::npos)
      << err_->text();
  v1::GetCrawlRequest get;
  get.set_crawl_id("crawl-2025-10-31");
  EXPECT_EQ(service_->HandleGetCrawl(get)->state(), v1::CRAWL_RUNNING);
}

TEST(CrawlCliFormat, ProgressBarAndLine) {
  v1::Crawl crawl;
  crawl.set_crawl_id("crawl-2025-10-31");
  crawl.set_state(v1::CRAWL_RUNNING);
  crawl.set_started_at_unix_ms(1000000);
  crawl.mutable_stats()->set_items_done(3);
  crawl.mutable_stats()->set_items_total(4);
  crawl.mutable_stats()->set_repos(3000);
  crawl.mutable_stats()->set_eta_seconds(30);
  EXPECT_EQ(FormatCrawlLine(crawl),
            "crawl-2025-10-31 RUNNING items 3/4 repos 3000 rejected 0 retries 0 eta 30s");
  // 10 s elapsed, 30 s to go: a quarter.
  EXPECT_EQ(FormatProgressBar(crawl, 8, absl::FromUnixMillis(1000000) + absl::Seconds(10)),
            "crawl-2025-10-31 [##......] 3/4 items, 3000 repos, RUNNING, eta 30s");
  // The ETA says 0 s while the last page is still out: nearly full, not full.
  crawl.mutable_stats()->set_eta_seconds(0);
  EXPECT_EQ(
      FormatProgressBar(crawl, 4, absl::FromUnixMillis(1000000) + absl::Seconds(10)).substr(17, 6),
      "[###.]");
  crawl.set_state(v1::CRAWL_COMMITTED);
  EXPECT_EQ(FormatProgressBar(crawl, 4, absl::FromUnixMillis(1000000)).substr(17, 6), "[####]");
}

}  // namespace
}  // namespace hubcensus::coordinator
