// The coordinator in-process over real loopback gRPC, real RocksDB and a real (recording)
// SnapshotStore server; time is a SimulatedClock driven by the test, so nothing sleeps.
#include "coordinator/coordinator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "common/grpc_server.h"
#include "common/metrics.h"
#include "common/worker_token.h"
#include "coordinator/internal/hub_quota_allocator.h"
#include "hub/listing_query.h"
#include "tests/coordinator/recording_store.h"
#include "tests/testing/metrics.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::coordinator {
namespace {

using ::hubcensus::testing::RecordingStore;

const char kHub[] = "http://127.0.0.1:9/hub";
const char kDate[] = "2025-10-31";

std::string PageUrl(int n) { return absl::StrCat(kHub, "/api/models?sort=createdAt&cursor=", n); }

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = GrpcServer::Start({}, {&store_});
    ASSERT_TRUE(store.ok()) << store.status();
    store_server_ = std::move(*store);
    state_dir_ = hubcensus::testing::MakeTempDir("coordinator_state");
    options_.state_dir = state_dir_;
    options_.store_target = store_server_->dial_address();
    options_.hub_url = kHub;
    options_.clock = &clock_;
    options_.sync_writes = false;
    // The Complete() helper rejects 1 entry per page; the rejected-fraction tests set their own.
    options_.max_rejected_fraction = 0.5;
  }

  void Open() {
    auto service = CoordinatorService::Open(options_);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = std::move(*service);
    auto server = GrpcServer::Start({}, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::Coordinator::NewStub(MakeChannel(server_->dial_address()));
  }

  // As a restart would: the process's memory is gone, the RocksDB stays.
  void Restart() {
    server_->Shutdown(absl::ZeroDuration());
    server_.reset();
    service_.reset();
    Open();
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::ZeroDuration());
    service_.reset();
  }

  std::unique_ptr<grpc::ClientContext> Context(const std::string& token = "") {
    auto context = std::make_unique<grpc::ClientContext>();
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }

  grpc::Status Start(const std::string& date, v1::StartCrawlResponse* response,
                     v1::ListingOptions listing = {}) {
    v1::StartCrawlRequest request;
    request.set_date(date);
    *request.mutable_listing() = listing;
    return stub_->StartCrawl(Context(token_).get(), request, response);
  }

  v1::Crawl Get(const std::string& crawl_id) {
    v1::GetCrawlRequest request;
    request.set_crawl_id(crawl_id);
    v1::Crawl crawl;
    grpc::Status s = stub_->GetCrawl(Context(token_).get(), request, &crawl);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return crawl;
  }

  v1::AcquireLeaseResponse Acquire(const std::string& worker) {
    v1::AcquireLeaseRequest request;
    request.set_worker_id(worker);
    v1::AcquireLeaseResponse response;
    grpc::Status s = stub_->AcquireLease(Context().get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  v1::Lease MustAcquire(const std::string& worker) {
    v1::AcquireLeaseResponse r = Acquire(worker);
    EXPECT_TRUE(r.has_lease()) << "no lease for " << worker;
    return r.lease();
  }

  grpc::Status Renew(const v1::Lease& lease, int32_t used = 0,
                     v1::RenewLeaseResponse* response = nullptr) {
    v1::RenewLeaseRequest request;
    request.set_lease_id(lease.lease_id());
    request.set_fence(lease.fence());
    request.set_requests_used(used);
    v1::RenewLeaseResponse local;
    return stub_->RenewLease(Context().get(), request, response ? response : &local);
  }

  // Completes a page that "wrote" `repos` snapshots named after the item.
  grpc::Status Complete(const v1::Lease& lease, const std::string& next_url, int64_t repos = 10,
                        std::vector<std::string> changed = {}, bool follow_chain = false,
                        v1::CompleteLeaseResponse* reply = nullptr) {
    v1::CompleteLeaseRequest request;
    request.set_lease_id(lease.lease_id());
    request.set_fence(lease.fence());
    request.set_next_url(next_url);
    request.set_repos(repos);
    RepoIdChecksum checksum;
    for (int i = 0; i < repos; ++i) checksum.Add(absl::StrCat(lease.item().item_id(), "/", i));
    request.set_id_checksum(checksum.value());
    request.set_rejected_entries(1);
    (*request.mutable_rejected_by_reason())["bad_created_at"] = 1;
    request.set_requests_used(1);
    for (auto& id : changed) request.add_changed_repo_ids(id);
    request.set_follow_chain(follow_chain);
    v1::CompleteLeaseResponse response;
    return stub_->CompleteLease(Context().get(), request, reply ? reply : &response);
  }

  grpc::Status Fail(const v1::Lease& lease, bool retryable, const std::string& reason) {
    v1::FailLeaseRequest request;
    request.set_lease_id(lease.lease_id());
    request.set_fence(lease.fence());
    request.set_reason(reason);
    request.set_retryable(retryable);
    v1::FailLeaseResponse response;
    return stub_->FailLease(Context().get(), request, &response);
  }

  // Crawls a chain of `pages` pages with one worker.
  void CrawlChain(int pages) {
    for (int i = 0; i < pages; ++i) {
      v1::Lease lease = MustAcquire("w1");
      ASSERT_EQ(lease.item().page_index(), i);
      ASSERT_TRUE(Complete(lease, i + 1 < pages ? PageUrl(i + 1) : "").ok());
    }
  }

  SimulatedClock clock_{absl::FromUnixSeconds(1761868800 + 3600)};  // 2025-10-31T01:00Z
  RecordingStore store_;
  std::unique_ptr<GrpcServer> store_server_;
  std::string state_dir_;
  CoordinatorOptions options_;
  std::string token_;
  std::unique_ptr<CoordinatorService> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

TEST_F(CoordinatorTest, StartCrawlIsIdempotentPerDate) {
  Open();
  v1::StartCrawlResponse first, second;
  ASSERT_TRUE(Start(kDate, &first).ok());
  EXPECT_FALSE(first.already_existed());
  EXPECT_EQ(first.crawl().crawl_id(), "crawl-2025-10-31");
  EXPECT_EQ(first.crawl().state(), v1::CRAWL_RUNNING);
  EXPECT_EQ(first.crawl().hub_url(), kHub);
  EXPECT_EQ(first.crawl().listing().sort(), "createdAt");
  EXPECT_EQ(first.crawl().listing().page_size(), 1000);
  EXPECT_FALSE(first.crawl().listing().fetch_details());

  clock_.Advance(absl::Minutes(5));
  v1::StartCrawlRequest other_hub;
  other_hub.set_date(kDate);
  other_hub.set_hub_url("http://elsewhere.test");
  ASSERT_TRUE(stub_->StartCrawl(Context().get(), other_hub, &second).ok());
  EXPECT_TRUE(second.already_existed());
  EXPECT_EQ(second.crawl().hub_url(), kHub);  // returned unchanged
  EXPECT_EQ(second.crawl().started_at_unix_ms(), first.crawl().started_at_unix_ms());
  EXPECT_EQ(second.crawl().stats().items_total(), 1);
}

TEST_F(CoordinatorTest, FirstItemIsTheFirstListingPage) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease lease = MustAcquire("w1");
  EXPECT_EQ(lease.item().item_id(), "createdAt/p000000");
  EXPECT_EQ(lease.item().kind(), v1::LIST_PAGE);
  EXPECT_EQ(lease.item().stream(), "createdAt");
  EXPECT_EQ(lease.item().page_index(), 0);
  EXPECT_EQ(lease.item().crawl_date(), kDate);
  EXPECT_EQ(lease.item().hub_url(), kHub);
  EXPECT_EQ(lease.item().url(), hub::FirstListingUrl(kHub, hub::WithListingDefaults({})));
  EXPECT_EQ(lease.fence(), 1u);
  EXPECT_EQ(lease.lease_duration_ms(), 30000);
  EXPECT_EQ(lease.expires_at_unix_ms(), absl::ToUnixMillis(clock_.Now() + absl::Seconds(30)));
  EXPECT_GT(lease.request_budget(), 0);
  EXPECT_LE(lease.request_budget(), 8);
  // One chain: nothing else to lease until the page reports its Link.
  v1::AcquireLeaseResponse none = Acquire("w2");
  EXPECT_FALSE(none.has_lease());
  EXPECT_GT(none.retry_after_ms(), 0);
}

TEST_F(CoordinatorTest, NextPageIsLeasedAsSoonAsThePreviousReportsItsLink) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease p0 = MustAcquire("w1");
  ASSERT_TRUE(Complete(p0, PageUrl(1)).ok());
  v1::Lease p1 = MustAcquire("w2");
  EXPECT_EQ(p1.item().item_id(), "createdAt/p000001");
  EXPECT_EQ(p1.item().url(), PageUrl(1));
  EXPECT_EQ(p1.item().page_index(), 1);
  EXPECT_EQ(p1.fence(), 1u);
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.stats().items_done(), 1);
  EXPECT_EQ(crawl.stats().items_total(), 2);
  EXPECT_EQ(crawl.stats().repos(), 10);
  EXPECT_EQ(crawl.stats().rejected_entries(), 1);
  EXPECT_EQ(crawl.stats().rejected_by_reason().at("bad_created_at"), 1);
}

TEST_F(CoordinatorTest, FollowingTheChainLeasesTheNextPageToTheSameWorkerFenced) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease p0 = MustAcquire("w1");
  v1::CompleteLeaseResponse reply;
  ASSERT_TRUE(Complete(p0, PageUrl(1), 10, {}, /*follow_chain=*/true, &reply).ok());
  ASSERT_TRUE(reply.has_next_lease());
  const v1::Lease p1 = reply.next_lease();
  EXPECT_EQ(p1.item().item_id(), "createdAt/p000001");
  EXPECT_EQ(p1.item().url(), PageUrl(1));
  EXPECT_EQ(p1.fence(), 1u);
  EXPECT_GT(p1.request_budget(), 0);
  EXPECT_FALSE(Acquire("w2").has_lease());  // it is w1's now
  // A chained lease is a lease: it expires and its item comes back with a higher fence.
  clock_.Advance(absl::Seconds(31));
  service_->Tick();
  v1::Lease again = MustAcquire("w2");
  EXPECT_EQ(again.item().item_id(), "createdAt/p000001");
  EXPECT_EQ(again.fence(), 2u);
  EXPECT_EQ(Complete(p1, PageUrl(2)).error_code(), grpc::StatusCode::ABORTED);
  // The last page hands nothing on, and the crawl commits with one entry per page.
  ASSERT_TRUE(Complete(again, "", 10, {}, /*follow_chain=*/true, &reply).ok());
  EXPECT_FALSE(reply.has_next_lease());
  service_->Tick();
  ASSERT_EQ(store_.commits().size(), 1u);
  ASSERT_EQ(store_.commits()[0].manifest_size(), 2);
  EXPECT_EQ(store_.commits()[0].manifest(1).fence(), 2u);
}

TEST_F(CoordinatorTest, NoChainedLeaseWithoutRequestsLeftInTheWindow) {
  options_.hub_quota = *hub::ParseHubQuota("10/60");
  options_.budget_chunk = 9;  // the first lease takes the window (10, less a margin of 1)
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease p0 = MustAcquire("w1");
  EXPECT_EQ(p0.request_budget(), 9);
  v1::CompleteLeaseRequest request;
  v1::CompleteLeaseResponse reply;
  // Reports all 9 used: nothing goes back to the window.
  request.set_lease_id(p0.lease_id());
  request.set_fence(p0.fence());
  request.set_next_url(PageUrl(1));
  request.set_repos(1);
  request.set_requests_used(9);
  request.set_follow_chain(true);
  ASSERT_TRUE(stub_->CompleteLease(Context().get(), request, &reply).ok());
  EXPECT_FALSE(reply.has_next_lease());
  EXPECT_EQ(Get("crawl-2025-10-31").stats().items_total(), 2);  // planned, queued for later
}

TEST_F(CoordinatorTest, ExpiredLeaseIsReassignedWithAHigherFence) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease first = MustAcquire("w1");
  // Renewing at a third of the lease keeps it alive well past one lease duration.
  for (int i = 0; i < 6; ++i) {
    clock_.Advance(absl::Seconds(10));
    ASSERT_TRUE(Renew(first).ok()) << i;
  }
  EXPECT_FALSE(Acquire("w2").has_lease());
  clock_.Advance(absl::Seconds(31));  // w1 went silent
  service_->Tick();
  v1::Lease second = MustAcquire("w2");
  EXPECT_EQ(second.item().item_id(), first.item().item_id());
  EXPECT_EQ(second.fence(), first.fence() + 1);
  EXPECT_NE(second.lease_id(), first.lease_id());
  EXPECT_EQ(Get("crawl-2025-10-31").stats().lease_expiries(), 1);
}

TEST_F(CoordinatorTest, StaleWorkerIsFenced) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease stale = MustAcquire("w1");
  clock_.Advance(absl::Seconds(30));  // expired, not yet swept: the next call notices
  v1::Lease fresh = MustAcquire("w2");
  ASSERT_EQ(fresh.fence(), 2u);

  EXPECT_EQ(Renew(stale).error_code(), grpc::StatusCode::ABORTED);
  grpc::Status late = Complete(stale, PageUrl(1), 999);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_NE(late.error_message().find("no longer held"), std::string::npos) << late.error_message();
  EXPECT_EQ(Fail(stale, false, "late").error_code(), grpc::StatusCode::ABORTED);
  // A wrong fence on a live lease id is just as stale.
  v1::Lease forged = fresh;
  forged.set_fence(1);
  EXPECT_EQ(Renew(forged).error_code(), grpc::StatusCode::ABORTED);

  ASSERT_TRUE(Complete(fresh, "", 7).ok());
  service_->Tick();
  ASSERT_EQ(store_.commits().size(), 1u);
  const auto manifest = store_.commits()[0].manifest();
  ASSERT_EQ(manifest.size(), 1);
  EXPECT_EQ(manifest[0].fence(), 2u);  // the stale worker's report counts for nothing
  EXPECT_EQ(manifest[0].repos(), 7);
}

TEST_F(CoordinatorTest, CommitSendsOneManifestEntryPerItem) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  CrawlChain(3);
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_COMMITTING);
  service_->Tick();
  ASSERT_EQ(store_.commits().size(), 1u);
  const v1::CommitRequest commit = store_.commits()[0];
  EXPECT_EQ(commit.crawl_id(), "crawl-2025-10-31");
  EXPECT_EQ(commit.crawl_date(), kDate);
  ASSERT_EQ(commit.manifest_size(), 3);
  for (int i = 0; i < 3; ++i) {
    const v1::ManifestEntry& e = commit.manifest(i);
    EXPECT_EQ(e.item_id(), CoordinatorService::PageItemId("createdAt", i));
    EXPECT_EQ(e.fence(), 1u);
    EXPECT_EQ(e.repos(), 10);
    RepoIdChecksum checksum;
    for (int r = 0; r < 10; ++r) checksum.Add(absl::StrCat(e.item_id(), "/", r));
    EXPECT_EQ(e.id_checksum(), checksum.value());
  }
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_COMMITTED);
  EXPECT_EQ(crawl.stats().repos(), 30);
  EXPECT_EQ(crawl.stats().pages(), 3);
  EXPECT_EQ(crawl.stats().items_done(), 3);
  EXPECT_EQ(crawl.stats().items_total(), 3);
  EXPECT_GT(crawl.finished_at_unix_ms(), 0);
  service_->Tick();
  EXPECT_EQ(store_.commits().size(), 1u);  // committed once
}

TEST_F(CoordinatorTest, RefusedCommitKeepsTheCrawlOpenAndRetriesWithBackoff) {
  Open();
  store_.RefuseNextCommits(2);
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  CrawlChain(2);
  service_->Tick();
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_COMMITTING);
  EXPECT_NE(crawl.failure_reason().find("manifest does not match"), std::string::npos)
      << crawl.failure_reason();
  service_->Tick();  // before the backoff: no new attempt
  EXPECT_EQ(store_.commits().size(), 1u);
  clock_.Advance(absl::Seconds(1));
  service_->Tick();
  EXPECT_EQ(store_.commits().size(), 2u);
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_COMMITTING);
  clock_.Advance(absl::Seconds(1));
  service_->Tick();
  EXPECT_EQ(store_.commits().size(), 2u);  // backoff doubled
  clock_.Advance(absl::Seconds(1));
  service_->Tick();
  ASSERT_EQ(store_.commits().size(), 3u);
  crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_COMMITTED);
  EXPECT_EQ(crawl.failure_reason(), "");
}

TEST_F(CoordinatorTest, UnreachableStoreKeepsTheCrawlOpenWithTheReason) {
  options_.store_target = "127.0.0.1:1";  // nothing listens there
  options_.commit_timeout = absl::Seconds(2);
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  CrawlChain(1);
  service_->Tick();
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_COMMITTING);
  EXPECT_NE(crawl.failure_reason().find("UNAVAILABLE"), std::string::npos)
      << crawl.failure_reason();
}

// A store that is down (restarting) is waited for and asked again every second, the crawl open;
// once it is back the commit lands.
TEST_F(CoordinatorTest, AStoreThatComesBackGetsTheCommit) {
  const int port = testing::FreeLoopbackPort();
  options_.store_target = absl::StrCat("127.0.0.1:", port);
  options_.store_connect_timeout = absl::Milliseconds(500);
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  CrawlChain(1);
  service_->Tick();
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_COMMITTING);
  EXPECT_NE(crawl.failure_reason().find("the store is unavailable"), std::string::npos)
      << crawl.failure_reason();
  GrpcServerOptions back;
  back.listen_address = options_.store_target;
  auto store = GrpcServer::Start(back, {&store_});
  ASSERT_TRUE(store.ok()) << store.status();
  clock_.Advance(absl::Seconds(1));
  service_->Tick();
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_COMMITTED);
  EXPECT_EQ(store_.commits().size(), 1u);
  (*store)->Shutdown(absl::ZeroDuration());
}

TEST_F(CoordinatorTest, RepeatedNonRetryableFailureFailsTheCrawlWithTheReason) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  // Retryable failures requeue without counting towards failing the crawl.
  v1::Lease lease = MustAcquire("w1");
  ASSERT_TRUE(Fail(lease, true, "HTTP 503").ok());
  EXPECT_FALSE(Acquire("w1").has_lease());  // backing off
  clock_.Advance(absl::Seconds(1));
  for (int i = 1; i <= 5; ++i) {
    clock_.Advance(absl::Seconds(60));
    lease = MustAcquire("w1");
    EXPECT_EQ(lease.fence(), static_cast<uint64_t>(i + 1));
    ASSERT_TRUE(Fail(lease, false, "HTTP 400: unknown expand value").ok());
    if (i < 5) {
      EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_RUNNING);
    }
  }
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_FAILED);
  EXPECT_NE(crawl.failure_reason().find("createdAt/p000000"), std::string::npos);
  EXPECT_NE(crawl.failure_reason().find("HTTP 400: unknown expand value"), std::string::npos)
      << crawl.failure_reason();
  EXPECT_EQ(crawl.stats().retries(), 1);
  service_->Tick();
  ASSERT_EQ(store_.aborts().size(), 1u);
  EXPECT_EQ(store_.aborts()[0].crawl_id(), "crawl-2025-10-31");
  EXPECT_TRUE(store_.commits().empty());
  // A failed date is not restarted by StartCrawl: it returns the failed crawl.
  v1::StartCrawlResponse again;
  ASSERT_TRUE(Start(kDate, &again).ok());
  EXPECT_TRUE(again.already_existed());
  EXPECT_EQ(again.crawl().state(), v1::CRAWL_FAILED);
}

// A date whose crawl failed or was cancelled can be crawled again: StartCrawl with retry makes
// a new attempt with an id of its own; without retry, and for a running or committed crawl, it
// stays idempotent.
TEST_F(CoordinatorTest, RetryStartsAnotherAttemptOfAFailedOrCancelledDate) {
  Open();
  auto start = [&](bool retry) {
    v1::StartCrawlRequest request;
    request.set_date(kDate);
    request.set_retry(retry);
    v1::StartCrawlResponse response;
    grpc::Status s = stub_->StartCrawl(Context(token_).get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  };
  auto by_date = [&]() {
    v1::GetCrawlRequest request;
    request.set_date(kDate);
    v1::Crawl crawl;
    grpc::Status s = stub_->GetCrawl(Context(token_).get(), request, &crawl);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return crawl;
  };
  // Retry of a running crawl is the running crawl.
  EXPECT_FALSE(start(false).already_existed());
  v1::StartCrawlResponse running = start(true);
  EXPECT_TRUE(running.already_existed());
  EXPECT_EQ(running.crawl().crawl_id(), "crawl-2025-10-31");

  v1::Lease stale = MustAcquire("w1");
  v1::CancelCrawlRequest cancel;
  cancel.set_crawl_id("crawl-2025-10-31");
  cancel.set_reason("wrong hub");
  v1::Crawl cancelled;
  ASSERT_TRUE(stub_->CancelCrawl(Context(token_).get(), cancel, &cancelled).ok());
  EXPECT_EQ(start(false).crawl().state(), v1::CRAWL_CANCELLED);

  clock_.Advance(absl::Minutes(10));
  v1::StartCrawlResponse second = start(true);
  EXPECT_FALSE(second.already_existed());
  EXPECT_EQ(second.crawl().crawl_id(), "crawl-2025-10-31.2");
  EXPECT_EQ(second.crawl().date(), kDate);
  EXPECT_EQ(second.crawl().state(), v1::CRAWL_RUNNING);
  EXPECT_EQ(second.crawl().started_at_unix_ms(), absl::ToUnixMillis(clock_.Now()));
  EXPECT_EQ(by_date().crawl_id(), "crawl-2025-10-31.2");
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_CANCELLED);  // the first is kept
  EXPECT_EQ(start(true).crawl().crawl_id(), "crawl-2025-10-31.2");  // running: unchanged

  // The cancelled attempt's worker is fenced out; the new attempt's page goes to a worker.
  EXPECT_EQ(Complete(stale, PageUrl(1)).error_code(), grpc::StatusCode::ABORTED);
  v1::Lease lease = MustAcquire("w2");
  EXPECT_EQ(lease.item().crawl_id(), "crawl-2025-10-31.2");
  EXPECT_EQ(lease.item().crawl_date(), kDate);

  // The attempts survive a restart, and the latest one is committed under its own id.
  Restart();
  EXPECT_EQ(by_date().crawl_id(), "crawl-2025-10-31.2");
  clock_.Advance(absl::Minutes(1));  // the lease held across the restart expires
  v1::Lease resumed = MustAcquire("w2");
  ASSERT_TRUE(Complete(resumed, "").ok());
  service_->Tick();
  ASSERT_EQ(store_.commits().size(), 1u);
  EXPECT_EQ(store_.commits()[0].crawl_id(), "crawl-2025-10-31.2");
  EXPECT_EQ(store_.commits()[0].crawl_date(), kDate);
  EXPECT_EQ(by_date().state(), v1::CRAWL_COMMITTED);
  v1::StartCrawlResponse after = start(true);
  EXPECT_TRUE(after.already_existed());
  EXPECT_EQ(after.crawl().state(), v1::CRAWL_COMMITTED);

  v1::ListCrawlsRequest list;
  v1::ListCrawlsResponse listed;
  ASSERT_TRUE(stub_->ListCrawls(Context(token_).get(), list, &listed).ok());
  ASSERT_EQ(listed.crawls_size(), 2);
  EXPECT_EQ(listed.crawls(0).crawl_id(), "crawl-2025-10-31.2");
  EXPECT_EQ(listed.crawls(1).crawl_id(), "crawl-2025-10-31");
}

TEST_F(CoordinatorTest, AttemptsPastTheNinthListInNumberOrder) {
  Open();
  v1::StartCrawlRequest request;
  request.set_date(kDate);
  request.set_retry(true);
  for (int k = 1; k <= 11; ++k) {
    v1::StartCrawlResponse started;
    ASSERT_TRUE(stub_->StartCrawl(Context(token_).get(), request, &started).ok());
    ASSERT_EQ(started.crawl().crawl_id(),
              k == 1 ? std::string("crawl-2025-10-31") : absl::StrCat("crawl-2025-10-31.", k));
    v1::CancelCrawlRequest cancel;
    cancel.set_crawl_id(started.crawl().crawl_id());
    v1::Crawl cancelled;
    ASSERT_TRUE(stub_->CancelCrawl(Context(token_).get(), cancel, &cancelled).ok());
  }
  v1::StartCrawlResponse other;
  ASSERT_TRUE(Start("2025-10-30", &other).ok());
  v1::ListCrawlsRequest list;
  list.set_limit(4);
  v1::ListCrawlsResponse listed;
  ASSERT_TRUE(stub_->ListCrawls(Context(token_).get(), list, &listed).ok());
  ASSERT_EQ(listed.crawls_size(), 4);
  EXPECT_EQ(listed.crawls(0).crawl_id(), "crawl-2025-10-31.11");
  EXPECT_EQ(listed.crawls(1).crawl_id(), "crawl-2025-10-31.10");
  EXPECT_EQ(listed.crawls(2).crawl_id(), "crawl-2025-10-31.9");
  EXPECT_EQ(listed.crawls(3).crawl_id(), "crawl-2025-10-31.8");
  list.set_limit(0);
  ASSERT_TRUE(stub_->ListCrawls(Context(token_).get(), list, &listed).ok());
  ASSERT_EQ(listed.crawls_size(), 12);
  EXPECT_EQ(listed.crawls(10).crawl_id(), "crawl-2025-10-31");
  EXPECT_EQ(listed.crawls(11).crawl_id(), "crawl-2025-10-30");
}

TEST_F(CoordinatorTest, CancelAbortsInTheStoreAndFencesOutItsWorkers) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease lease = MustAcquire("w1");
  v1::CancelCrawlRequest cancel;
  cancel.set_crawl_id("crawl-2025-10-31");
  cancel.set_reason("wrong hub");
  v1::Crawl crawl;
  ASSERT_TRUE(stub_->CancelCrawl(Context().get(), cancel, &crawl).ok());
  EXPECT_EQ(crawl.state(), v1::CRAWL_CANCELLED);
  EXPECT_EQ(crawl.failure_reason(), "wrong hub");
  EXPECT_EQ(Complete(lease, PageUrl(1)).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_FALSE(Acquire("w2").has_lease());
  service_->Tick();
  ASSERT_EQ(store_.aborts().size(), 1u);
  EXPECT_EQ(store_.aborts()[0].reason(), "wrong hub");
  // Cancelling again is harmless; a committed crawl cannot be cancelled.
  ASSERT_TRUE(stub_->CancelCrawl(Context().get(), cancel, &crawl).ok());
  v1::StartCrawlResponse other;
  ASSERT_TRUE(Start("2025-11-01", &other).ok());
  CrawlChain(1);
  service_->Tick();
  cancel.set_crawl_id("crawl-2025-11-01");
  EXPECT_EQ(stub_->CancelCrawl(Context().get(), cancel, &crawl).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(CoordinatorTest, RestartResumesFromTheCheckpointWithFencesStillIncreasing) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease p0 = MustAcquire("w1");
  ASSERT_TRUE(Complete(p0, PageUrl(1)).ok());
  v1::Lease p1 = MustAcquire("w1");
  ASSERT_TRUE(Complete(p1, PageUrl(2)).ok());
  v1::Lease p2 = MustAcquire("w1");  // held when the coordinator dies
  ASSERT_EQ(p2.fence(), 1u);

  Restart();
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_RUNNING);
  EXPECT_EQ(crawl.stats().items_done(), 2);
  EXPECT_EQ(crawl.stats().items_total(), 3);
  EXPECT_EQ(crawl.stats().repos(), 20);
  EXPECT_EQ(crawl.stats().lease_expiries(), 1);
  // The old lease died with the process.
  EXPECT_EQ(Complete(p2, PageUrl(3)).error_code(), grpc::StatusCode::ABORTED);
  v1::Lease resumed = MustAcquire("w2");
  EXPECT_EQ(resumed.item().item_id(), "createdAt/p000002");
  EXPECT_EQ(resumed.item().url(), PageUrl(2));  // the checkpointed cursor
  EXPECT_EQ(resumed.fence(), 2u);
  ASSERT_TRUE(Complete(resumed, "").ok());

  Restart();  // again between the last completion and the commit
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_COMMITTING);
  service_->Tick();
  ASSERT_EQ(store_.commits().size(), 1u);
  ASSERT_EQ(store_.commits()[0].manifest_size(), 3);
  EXPECT_EQ(store_.commits()[0].manifest(2).fence(), 2u);
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_COMMITTED);
  Restart();
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_COMMITTED);
  EXPECT_EQ(Get("crawl-2025-10-31").stats().repos(), 30);
}

TEST_F(CoordinatorTest, FourWorkersShareOneBudget) {
  options_.hub_quota = *hub::ParseHubQuota("100/60");
  options_.detail_shard_size = 2;
  Open();
  v1::ListingOptions listing;
  listing.set_fetch_details(true);
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started, listing).ok());
  // A page whose 40 changed repos become 20 detail shards: work for four workers at once.
  v1::Lease page = MustAcquire("w0");
  std::vector<std::string> changed;
  for (int i = 0; i < 40; ++i) changed.push_back(absl::StrCat("org/model-", i));
  ASSERT_TRUE(Complete(page, PageUrl(1), 10, changed).ok());
  EXPECT_EQ(Get("crawl-2025-10-31").stats().items_total(), 22);

  // Each worker spends every request it is granted (renewing for more) until the coordinator
  // has nothing more to give in this window.
  std::atomic<int64_t> granted{1};  // the page's one request
  std::atomic<int> leases{0};
  auto worker = [&](int w) {
    const std::string id = absl::StrCat("w", w);
    while (true) {
      v1::AcquireLeaseResponse r = Acquire(id);
      if (!r.has_lease()) return;
      ++leases;
      v1::Lease lease = r.lease();
      int32_t budget = lease.request_budget();
      granted += budget;
      while (budget > 0) {
        v1::RenewLeaseResponse renewed;
        ASSERT_TRUE(Renew(lease, budget, &renewed).ok());
        budget = renewed.request_budget();
        granted += budget;
      }
      v1::FailLeaseRequest fail;  // out of budget mid-item: give it back, retryable
      fail.set_lease_id(lease.lease_id());
      fail.set_fence(lease.fence());
      fail.set_reason("request budget spent");
      fail.set_retryable(true);
      v1::FailLeaseResponse ignored;
      grpc::ClientContext context;
      ASSERT_TRUE(stub_->FailLease(&context, fail, &ignored).ok());
    }
  };
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) workers.emplace_back(worker, w);
  for (auto& t : workers) t.join();
  // 100 per window minus the 2% margin, never more, with four workers racing.
  EXPECT_EQ(granted.load(), 98);
  EXPECT_GE(leases.load(), 1);
  v1::AcquireLeaseResponse spent = Acquire("w9");
  EXPECT_FALSE(spent.has_lease());
  EXPECT_EQ(spent.retry_after_ms(), 60000);  // the window started with the first grant
  EXPECT_EQ(Get("crawl-2025-10-31").stats().requests(), 98);

  // The next window brings a fresh budget.
  clock_.Advance(absl::Milliseconds(spent.retry_after_ms()));
  v1::AcquireLeaseResponse next_r = Acquire("w9");
  ASSERT_TRUE(next_r.has_lease()) << next_r.retry_after_ms();
  v1::Lease next = next_r.lease();
  EXPECT_EQ(next.request_budget(), 8);
}

TEST_F(CoordinatorTest, BudgetFollowsTheRateLimitWorkersReport) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease lease = MustAcquire("w1");
  v1::RenewLeaseRequest renew;
  renew.set_lease_id(lease.lease_id());
  renew.set_fence(lease.fence());
  renew.set_requests_used(lease.request_budget());
  renew.mutable_rate_limit()->set_quota(1000);
  renew.mutable_rate_limit()->set_window_s(300);
  renew.mutable_rate_limit()->set_remaining(0);  // another client spent the token's window
  renew.mutable_rate_limit()->set_reset_s(12);
  renew.mutable_rate_limit()->set_observed_at_unix_ms(absl::ToUnixMillis(clock_.Now()));
  v1::RenewLeaseResponse renewed;
  ASSERT_TRUE(stub_->RenewLease(Context().get(), renew, &renewed).ok());
  EXPECT_EQ(renewed.request_budget(), 0);  // wait and renew
  clock_.Advance(absl::Seconds(12));
  renew.set_requests_used(0);
  renew.clear_rate_limit();
  ASSERT_TRUE(stub_->RenewLease(Context().get(), renew, &renewed).ok());
  EXPECT_EQ(renewed.request_budget(), 8);
}

TEST_F(CoordinatorTest, HubQuotaOffGrantsWithoutLimit) {
  options_.hub_quota = *hub::ParseHubQuota("off");
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  EXPECT_EQ(MustAcquire("w1").request_budget(), HubQuotaAllocator::kUnlimitedGrant);
}

TEST_F(CoordinatorTest, DetailShardsOnlyBehindFetchDetails) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease page = MustAcquire("w1");
  ASSERT_TRUE(Complete(page, "", 10, {"a/b", "c/d"}).ok());
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.stats().items_total(), 1);
  EXPECT_EQ(crawl.state(), v1::CRAWL_COMMITTING);

  v1::ListingOptions listing;
  listing.set_fetch_details(true);
  ASSERT_TRUE(Start("2025-11-01", &started, listing).ok());
  page = MustAcquire("w1");
  ASSERT_TRUE(Complete(page, "", 10, {"a/b", "c/d"}).ok());
  v1::Lease detail = MustAcquire("w1");
  EXPECT_EQ(detail.item().kind(), v1::REPO_DETAIL);
  EXPECT_EQ(detail.item().item_id(), "detail/createdAt/p000000/s000");
  ASSERT_EQ(detail.item().repo_ids_size(), 2);
  EXPECT_EQ(detail.item().repo_ids(1), "c/d");
  EXPECT_EQ(Get("crawl-2025-11-01").state(), v1::CRAWL_RUNNING);
  ASSERT_TRUE(Complete(detail, "", 2).ok());
  EXPECT_EQ(Get("crawl-2025-11-01").state(), v1::CRAWL_COMMITTING);
}

TEST_F(CoordinatorTest, FurtherListingStreamsAreCrawledInParallel) {
  Open();
  v1::ListingOptions listing;
  listing.add_extra_streams("lastModified");
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started, listing).ok());
  EXPECT_EQ(started.crawl().stats().items_total(), 2);
  v1::Lease a = MustAcquire("w1");
  v1::Lease b = MustAcquire("w2");  // both chains at once
  EXPECT_EQ(a.item().item_id(), "createdAt/p000000");
  EXPECT_EQ(b.item().item_id(), "lastModified/p000000");
  EXPECT_EQ(b.item().stream(), "lastModified");
  v1::ListingOptions expected = hub::WithListingDefaults({});
  expected.set_sort("lastModified");
  EXPECT_EQ(b.item().url(), hub::FirstListingUrl(kHub, expected));
  ASSERT_TRUE(Complete(b, PageUrl(7)).ok());
  v1::Lease b1 = MustAcquire("w2");
  EXPECT_EQ(b1.item().item_id(), "lastModified/p000001");
  ASSERT_TRUE(Complete(a, "").ok());
  ASSERT_TRUE(Complete(b1, "").ok());
  service_->Tick();
  ASSERT_EQ(store_.commits().size(), 1u);
  EXPECT_EQ(store_.commits()[0].manifest_size(), 3);

  v1::StartCrawlResponse bad;
  listing.add_extra_streams("createdAt");
  grpc::Status s = Start("2025-11-01", &bad, listing);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message().rfind("listing.extra_streams[1]", 0), 0u) << s.error_message();
}

TEST_F(CoordinatorTest, AnItemThatNeverSucceedsFailsTheCrawlEventually) {
  options_.max_item_failures = 2;
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_RUNNING) << i;
    v1::Lease lease = MustAcquire("w1");
    ASSERT_TRUE(Fail(lease, true, "HTTP 503 after 5 retries").ok());
    clock_.Advance(absl::Seconds(61));
  }
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_FAILED);
  EXPECT_NE(crawl.failure_reason().find("20 times (retryable): HTTP 503"), std::string::npos)
      << crawl.failure_reason();
}

TEST_F(CoordinatorTest, ListCrawlsNewestFirstWithEta) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start("2025-10-30", &started).ok());
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(absl::Seconds(10));
    v1::Lease lease = MustAcquire("w1");
    ASSERT_TRUE(Complete(lease, i < 3 ? PageUrl(i + 1) : "").ok());
  }
  service_->Tick();
  ASSERT_TRUE(Start(kDate, &started).ok());
  EXPECT_EQ(Get("crawl-2025-10-31").stats().eta_seconds(), -1);  // nothing done yet
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(Complete(MustAcquire("w1"), PageUrl(1)).ok());
  // One item in 10 s, three to go if it is as long as the last crawl.
  EXPECT_EQ(Get("crawl-2025-10-31").stats().eta_seconds(), 30);
  ASSERT_TRUE(Start("2025-10-29", &started).ok());

  v1::ListCrawlsRequest request;
  v1::ListCrawlsResponse response;
  ASSERT_TRUE(stub_->ListCrawls(Context().get(), request, &response).ok());
  ASSERT_EQ(response.crawls_size(), 3);
  EXPECT_EQ(response.crawls(0).crawl_id(), "crawl-2025-10-31");
  EXPECT_EQ(response.crawls(1).crawl_id(), "crawl-2025-10-30");
  EXPECT_EQ(response.crawls(1).state(), v1::CRAWL_COMMITTED);
  EXPECT_EQ(response.crawls(2).crawl_id(), "crawl-2025-10-29");
  request.set_limit(1);
  ASSERT_TRUE(stub_->ListCrawls(Context().get(), request, &response).ok());
  EXPECT_EQ(response.crawls_size(), 1);
  v1::GetCrawlRequest by_date;
  by_date.set_date("2025-10-30");
  v1::Crawl crawl;
  ASSERT_TRUE(stub_->GetCrawl(Context().get(), by_date, &crawl).ok());
  EXPECT_EQ(crawl.crawl_id(), "crawl-2025-10-30");
  by_date.set_date("2025-01-01");
  EXPECT_EQ(stub_->GetCrawl(Context().get(), by_date, &crawl).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(CoordinatorTest, ScheduleStartsTheDaysCrawlOnce) {
  options_.schedule_minute_utc = 2 * 60;  // 02:00 UTC; the clock says 01:00
  Open();
  service_->Tick();
  v1::ListCrawlsResponse response;
  ASSERT_TRUE(stub_->ListCrawls(Context().get(), {}, &response).ok());
  EXPECT_EQ(response.crawls_size(), 0);
  clock_.Advance(absl::Hours(1));
  service_->Tick();
  service_->Tick();
  ASSERT_TRUE(stub_->ListCrawls(Context().get(), {}, &response).ok());
  ASSERT_EQ(response.crawls_size(), 1);
  EXPECT_EQ(response.crawls(0).crawl_id(), "crawl-2025-10-31");
  clock_.Advance(absl::Hours(24));
  service_->Tick();
  ASSERT_TRUE(stub_->ListCrawls(Context().get(), {}, &response).ok());
  EXPECT_EQ(response.crawls(0).crawl_id(), "crawl-2025-11-01");
}

TEST_F(CoordinatorTest, CountsLeaseEventsInPrometheus) {
  auto granted = [] {
    return testing::CounterValue("hubcensus_coordinator_leases_total", {{"event", "granted"}});
  };
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  const double before = granted();
  CrawlChain(2);
  EXPECT_EQ(granted(), before + 2);
}

TEST_F(CoordinatorTest, InvalidRequestsNameTheField) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease lease = MustAcquire("w1");

  auto expect_invalid = [](const grpc::Status& s, const std::string& field) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << field << ": " << s.error_message();
    EXPECT_EQ(s.error_message().rfind(field, 0), 0u) << field << ": " << s.error_message();
  };
  v1::StartCrawlResponse sr;
  auto refused_starts = [] {
    return testing::CounterValue(
        "hubcensus_grpc_server_handled_total",
        {{"method", "/hubcensus.v1.Coordinator/StartCrawl"}, {"code", "INVALID_ARGUMENT"}});
  };
  const double refused_before = refused_starts();
  for (const char* bad_date :
       {"", "2025-13-01", "31/10/2025", "today", "2025-10-31x", "2025-11-02", "2062-10-31"}) {
    expect_invalid(Start(bad_date, &sr), "date");
  }
  EXPECT_EQ(refused_starts(), refused_before + 7);  // each refusal is counted
  {
    v1::StartCrawlRequest r;
    r.set_date("2025-10-30");
    r.set_hub_url("ftp://hub");
    expect_invalid(stub_->StartCrawl(Context().get(), r, &sr), "hub_url");
    r.set_hub_url("");
    r.mutable_listing()->set_page_size(5000);
    expect_invalid(stub_->StartCrawl(Context().get(), r, &sr), "listing.page_size");
    r.mutable_listing()->set_page_size(0);
    r.mutable_listing()->add_expand("downloads");
    r.mutable_listing()->add_expand("baseModels");  // per-repo only
    expect_invalid(stub_->StartCrawl(Context().get(), r, &sr), "listing.expand[1]");
    r.mutable_listing()->clear_expand();
    r.mutable_listing()->set_sort("random");
    expect_invalid(stub_->StartCrawl(Context().get(), r, &sr), "listing.sort");
  }
  v1::Crawl crawl;
  expect_invalid(stub_->GetCrawl(Context().get(), {}, &crawl), "crawl_id");
  {
    v1::GetCrawlRequest r;
    r.set_date("yesterday");
    expect_invalid(stub_->GetCrawl(Context().get(), r, &crawl), "date");
  }
  {
    v1::ListCrawlsRequest r;
    r.set_limit(-1);
    v1::ListCrawlsResponse resp;
    expect_invalid(stub_->ListCrawls(Context().get(), r, &resp), "limit");
  }
  expect_invalid(stub_->CancelCrawl(Context().get(), {}, &crawl), "crawl_id");
  {
    v1::AcquireLeaseResponse resp;
    expect_invalid(stub_->AcquireLease(Context().get(), {}, &resp), "worker_id");
  }
  {
    v1::RenewLeaseRequest r;
    v1::RenewLeaseResponse resp;
    expect_invalid(stub_->RenewLease(Context().get(), r, &resp), "lease_id");
    r.set_lease_id(lease.lease_id());
    expect_invalid(stub_->RenewLease(Context().get(), r, &resp), "fence");
    r.set_fence(lease.fence());
    r.set_requests_used(-3);
    expect_invalid(stub_->RenewLease(Context().get(), r, &resp), "requests_used");
    r.set_requests_used(0);
    r.set_lease_id("not-a-lease");
    expect_invalid(stub_->RenewLease(Context().get(), r, &resp), "lease_id");
  }
  {
    v1::CompleteLeaseRequest r;
    v1::CompleteLeaseResponse resp;
    r.set_lease_id(lease.lease_id());
    r.set_fence(lease.fence());
    r.set_repos(-1);
    expect_invalid(stub_->CompleteLease(Context().get(), r, &resp), "repos");
    r.set_repos(1);
    r.set_next_url("/api/models?cursor=abc");  // relative: the Link must be absolute
    expect_invalid(stub_->CompleteLease(Context().get(), r, &resp), "next_url");
    r.set_next_url(lease.item().url());
    expect_invalid(stub_->CompleteLease(Context().get(), r, &resp), "next_url");
    r.set_next_url("");
    r.set_rejected_entries(-2);
    expect_invalid(stub_->CompleteLease(Context().get(), r, &resp), "rejected_entries");
  }
  {
    v1::FailLeaseRequest r;
    v1::FailLeaseResponse resp;
    r.set_lease_id(lease.lease_id());
    r.set_fence(lease.fence());
    expect_invalid(stub_->FailLease(Context().get(), r, &resp), "reason");
  }
  // None of that disturbed the lease.
  EXPECT_TRUE(Renew(lease).ok());
}

TEST_F(CoordinatorTest, OperatorRpcsNeedTheAdminTokenWorkerRpcsDoNot) {
  options_.admin_token = "s3cret-token";
  Open();
  v1::StartCrawlRequest start;
  start.set_date(kDate);
  v1::StartCrawlResponse sr;
  grpc::Status s = stub_->StartCrawl(Context().get(), start, &sr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message().find("s3cret"), std::string::npos);
  EXPECT_EQ(stub_->StartCrawl(Context("wrong").get(), start, &sr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::Crawl crawl;
  v1::GetCrawlRequest get;
  get.set_date(kDate);
  EXPECT_EQ(stub_->GetCrawl(Context().get(), get, &crawl).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::ListCrawlsResponse lr;
  EXPECT_EQ(stub_->ListCrawls(Context().get(), {}, &lr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::CancelCrawlRequest cancel;
  cancel.set_crawl_id("crawl-2025-10-31");
  EXPECT_EQ(stub_->CancelCrawl(Context().get(), cancel, &crawl).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  ASSERT_TRUE(stub_->StartCrawl(Context("s3cret-token").get(), start, &sr).ok());
  ASSERT_TRUE(stub_->GetCrawl(Context("s3cret-token").get(), get, &crawl).ok());
  v1::Lease lease = MustAcquire("w1");  // workers are not gated
  EXPECT_TRUE(Renew(lease).ok());
  EXPECT_TRUE(Complete(lease, "").ok());
}

// A Link cycle A -> B -> A must end the chain, even when the worker changed `limit` (it shrinks
// on 504s) and the coordinator restarted in between: the seen URLs come back from RocksDB.
TEST_F(CoordinatorTest, ChainEndsOnANextLinkAlreadySeenInIt) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  v1::Lease p0 = MustAcquire("w1");
  const std::string first_url = p0.item().url();
  ASSERT_NE(first_url.find("limit=1000"), std::string::npos) << first_url;
  ASSERT_TRUE(Complete(p0, PageUrl(1)).ok());
  Restart();
  v1::Lease p1 = MustAcquire("w1");
  ASSERT_EQ(p1.item().item_id(), "createdAt/p000001");
  std::string looped = first_url;
  looped.replace(looped.find("limit=1000"), 10, "limit=500");
  ASSERT_TRUE(Complete(p1, looped).ok());
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_FAILED);
  EXPECT_NE(crawl.failure_reason().find("createdAt/p000001"), std::string::npos)
      << crawl.failure_reason();
  EXPECT_NE(crawl.failure_reason().find("cursor loop"), std::string::npos)
      << crawl.failure_reason();
  EXPECT_EQ(crawl.stats().items_total(), 2);  // no third page was queued
  EXPECT_EQ(crawl.stats().last_error(), crawl.failure_reason());
  EXPECT_EQ(crawl.stats().last_error_at_unix_ms(), absl::ToUnixMillis(clock_.Now()));
  EXPECT_FALSE(Acquire("w1").has_lease());
  service_->Tick();
  ASSERT_EQ(store_.aborts().size(), 1u);
  EXPECT_TRUE(store_.commits().empty());
}

TEST_F(CoordinatorTest, ChainEndsAfterARunOfEmptyPages) {
  options_.max_empty_pages = 5;
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  // Empty pages then a page with entries: the run starts again.
  int page = 0;
  auto complete_empty = [&] {
    v1::Lease lease = MustAcquire("w1");
    v1::CompleteLeaseRequest request;
    request.set_lease_id(lease.lease_id());
    request.set_fence(lease.fence());
    request.set_next_url(PageUrl(++page));
    v1::CompleteLeaseResponse response;
    return stub_->CompleteLease(Context().get(), request, &response);
  };
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(complete_empty().ok());
  ASSERT_TRUE(Complete(MustAcquire("w1"), PageUrl(++page)).ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(complete_empty().ok());
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_RUNNING);
  // A restart keeps the run where it stood.
  Restart();
  ASSERT_TRUE(complete_empty().ok());
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_FAILED);
  EXPECT_NE(crawl.failure_reason().find("5 pages in a row"), std::string::npos)
      << crawl.failure_reason();
  EXPECT_NE(crawl.failure_reason().find("createdAt/p000009"), std::string::npos)
      << crawl.failure_reason();
}

// What counts as another origin: tests/coordinator/item_planner_test.cc.
TEST_F(CoordinatorTest, NextLinkToAnotherOriginFailsTheCrawlNamingTheHost) {
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  ASSERT_TRUE(Complete(MustAcquire("w1"), "http://evil.test:8443/api/models?cursor=2").ok());
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_FAILED);
  EXPECT_NE(crawl.failure_reason().find("evil.test:8443"), std::string::npos)
      << crawl.failure_reason();
  EXPECT_EQ(crawl.stats().items_total(), 1);  // nothing was queued for the other host
  EXPECT_FALSE(Acquire("w1").has_lease());
}

TEST_F(CoordinatorTest, TooManyRejectedEntriesFailTheCrawlInsteadOfCommitting) {
  options_.max_rejected_fraction = 0.01;
  Open();
  auto complete = [&](const std::string& next, int64_t repos,
                      std::map<std::string, int64_t> rejected) {
    v1::Lease lease = MustAcquire("w1");
    v1::CompleteLeaseRequest request;
    request.set_lease_id(lease.lease_id());
    request.set_fence(lease.fence());
    request.set_next_url(next);
    request.set_repos(repos);
    int64_t total = 0;
    for (const auto& [reason, n] : rejected) {
      (*request.mutable_rejected_by_reason())[reason] = n;
      total += n;
    }
    request.set_rejected_entries(total);
    request.set_private_skipped(3);
    v1::CompleteLeaseResponse response;
    return stub_->CompleteLease(Context().get(), request, &response);
  };
  // 150 of 300 rejected: the garbage must not become a census.
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start("2025-10-30", &started).ok());
  ASSERT_TRUE(complete(PageUrl(1), 100, {{"bad_created_at", 100}}).ok());
  ASSERT_TRUE(complete("", 50, {{"not_an_object", 50}}).ok());
  v1::Crawl crawl = Get("crawl-2025-10-30");
  EXPECT_EQ(crawl.state(), v1::CRAWL_FAILED);
  EXPECT_NE(crawl.failure_reason().find("150 of 300 entries rejected"), std::string::npos)
      << crawl.failure_reason();
  EXPECT_NE(crawl.failure_reason().find("bad_created_at: 100, not_an_object: 50"),
            std::string::npos)
      << crawl.failure_reason();
  service_->Tick();
  EXPECT_TRUE(store_.commits().empty());
  ASSERT_EQ(store_.aborts().size(), 1u);

  // 1 of 101: within the fraction; the commit carries the counts.
  ASSERT_TRUE(Start(kDate, &started).ok());
  ASSERT_TRUE(complete("", 100, {{"bad_created_at", 1}}).ok());
  service_->Tick();
  ASSERT_EQ(store_.commits().size(), 1u);
  const v1::CensusCounts counts = store_.commits()[0].counts();
  EXPECT_EQ(counts.rejected_entries(), 1);
  EXPECT_EQ(counts.rejected_by_reason().at("bad_created_at"), 1);
  EXPECT_EQ(counts.private_skipped(), 3);
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_COMMITTED);
}

TEST_F(CoordinatorTest, WorkerReportsAccumulateInTheCrawlAndInPrometheus) {
  auto counter = [](const char* name, std::map<std::string, std::string> labels) {
    return testing::CounterValue(name, labels);
  };
  Open();
  // Exported from the start, before any report (a missing series reads as "no data", not 0).
  auto exported = [](const std::string& name, const std::string& label, const std::string& value) {
    for (const auto& family : MetricsRegistry()->Collect()) {
      if (family.name != name) continue;
      for (const auto& metric : family.metric) {
        if (label.empty()) return true;
        for (const auto& l : metric.label) {
          if (l.name == label && l.value == value) return true;
        }
      }
    }
    return false;
  };
  EXPECT_TRUE(exported("hubcensus_coordinator_limit_shrinks_total", "", ""));
  EXPECT_TRUE(exported("hubcensus_coordinator_unreadable_total", "reason", "401_gated"));
  EXPECT_TRUE(exported("hubcensus_coordinator_entries_total", "kind", "rejected"));
  EXPECT_TRUE(exported("hubcensus_coordinator_crawl_failures_total", "cause", "unreachable_hub"));
  const double shrinks = counter("hubcensus_coordinator_limit_shrinks_total", {});
  const double gated = counter("hubcensus_coordinator_unreadable_total", {{"reason", "401_gated"}});
  const double private_skipped =
      counter("hubcensus_coordinator_entries_total", {{"kind", "private_skipped"}});
  v1::StartCrawlResponse started;
  v1::ListingOptions listing;
  listing.set_fetch_details(true);
  ASSERT_TRUE(Start(kDate, &started, listing).ok());
  v1::Lease page = MustAcquire("w1");
  {
    v1::CompleteLeaseRequest request;
    request.set_lease_id(page.lease_id());
    request.set_fence(page.fence());
    request.set_repos(10);
    request.set_private_skipped(4);
    request.set_limit_shrinks(2);
    request.add_changed_repo_ids("a/b");
    v1::CompleteLeaseResponse response;
    ASSERT_TRUE(stub_->CompleteLease(Context().get(), request, &response).ok());
  }
  v1::Lease detail = MustAcquire("w1");
  ASSERT_EQ(detail.item().kind(), v1::REPO_DETAIL);
  ASSERT_TRUE(Fail(detail, true, "HTTP 503 after 5 retries").ok());
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.stats().last_error(),
            absl::StrCat(detail.item().item_id(), ": HTTP 503 after 5 retries"));
  EXPECT_EQ(crawl.stats().last_error_at_unix_ms(), absl::ToUnixMillis(clock_.Now()));
  clock_.Advance(absl::Seconds(2));
  detail = MustAcquire("w1");
  {
    v1::CompleteLeaseRequest request;
    request.set_lease_id(detail.lease_id());
    request.set_fence(detail.fence());
    (*request.mutable_unreadable_by_reason())["401_gated"] = 2;
    (*request.mutable_unreadable_by_reason())["404"] = 1;
    v1::CompleteLeaseResponse response;
    ASSERT_TRUE(stub_->CompleteLease(Context().get(), request, &response).ok());
  }
  crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.stats().private_skipped(), 4);
  EXPECT_EQ(crawl.stats().limit_shrinks(), 2);
  EXPECT_EQ(crawl.stats().unreadable(), 3);
  EXPECT_EQ(crawl.stats().unreadable_by_reason().at("401_gated"), 2);
  EXPECT_EQ(crawl.stats().unreadable_by_reason().at("404"), 1);
  EXPECT_EQ(counter("hubcensus_coordinator_limit_shrinks_total", {}), shrinks + 2);
  EXPECT_EQ(counter("hubcensus_coordinator_unreadable_total", {{"reason", "401_gated"}}),
            gated + 2);
  EXPECT_EQ(counter("hubcensus_coordinator_entries_total", {{"kind", "private_skipped"}}),
            private_skipped + 4);
  service_->Tick();
  ASSERT_EQ(store_.commits().size(), 1u);
  const v1::CensusCounts counts = store_.commits()[0].counts();
  EXPECT_EQ(counts.private_skipped(), 4);
  EXPECT_EQ(counts.unreadable(), 3);
  EXPECT_EQ(counts.unreadable_by_reason().at("404"), 1);
}

grpc::Status FailWith(v1::Coordinator::Stub& stub, const v1::Lease& lease, bool connection_failure,
                      bool peer_unavailable, const std::string& reason) {
  v1::FailLeaseRequest request;
  request.set_lease_id(lease.lease_id());
  request.set_fence(lease.fence());
  request.set_reason(reason);
  request.set_retryable(true);
  request.set_connection_failure(connection_failure);
  request.set_peer_unavailable(peer_unavailable);
  v1::FailLeaseResponse response;
  grpc::ClientContext context;
  return stub.FailLease(&context, request, &response);
}

TEST_F(CoordinatorTest, AnUnreachableHubFailsTheCrawlAfterTheTimeoutWithOneShortLine) {
  options_.unreachable_hub_timeout = absl::Seconds(60);
  options_.max_retry_backoff = absl::Seconds(5);
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  const std::string long_reason =
      absl::StrCat("cannot connect to 127.0.0.1:9: Connection refused ", std::string(900, 'x'));
  // 50 s of connection failures, then a success: the clock starts again.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(FailWith(*stub_, MustAcquire("w1"), true, false, long_reason).ok());
    clock_.Advance(absl::Seconds(5));
  }
  ASSERT_TRUE(Complete(MustAcquire("w1"), PageUrl(1)).ok());
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_RUNNING) << i;
    ASSERT_TRUE(FailWith(*stub_, MustAcquire("w1"), true, false, long_reason).ok());
    clock_.Advance(absl::Seconds(5));
  }
  ASSERT_TRUE(FailWith(*stub_, MustAcquire("w1"), true, false, long_reason).ok());
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_FAILED);
  EXPECT_LE(crawl.failure_reason().size(), 200u) << crawl.failure_reason();
  EXPECT_EQ(crawl.failure_reason().find('\n'), std::string::npos);
  EXPECT_EQ(crawl.failure_reason().rfind("Hub 127.0.0.1:9 unreachable for 1m", 0), 0u)
      << crawl.failure_reason();
  EXPECT_NE(crawl.failure_reason().find("Connection refused"), std::string::npos)
      << crawl.failure_reason();
}

TEST_F(CoordinatorTest, APeersOutageRequeuesTheItemWithoutCountingTowardsFailing) {
  options_.max_item_failures = 1;  // ten retryable failures would fail the crawl
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  for (int i = 0; i < 30; ++i) {
    v1::Lease lease = MustAcquire("w1");
    ASSERT_TRUE(FailWith(*stub_, lease, false, true, "store 127.0.0.1:7003: UNAVAILABLE").ok());
    EXPECT_FALSE(Acquire("w1").has_lease());  // a short pause before it is leased again
    clock_.Advance(absl::Seconds(1));
  }
  v1::Crawl crawl = Get("crawl-2025-10-31");
  EXPECT_EQ(crawl.state(), v1::CRAWL_RUNNING);
  EXPECT_NE(crawl.stats().last_error().find("UNAVAILABLE"), std::string::npos);
  CrawlChain(1);
  service_->Tick();
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_COMMITTED);
}

TEST_F(CoordinatorTest, WorkerRpcsAndStoreCallsNeedTheWorkerTokenWhenConfigured) {
  // The store behind the same token: the commit only lands if the coordinator sends it.
  auto gate = GateSnapshotStore(&store_, "worker-s3cret");
  auto gated_store = GrpcServer::Start({}, {gate.get()});
  ASSERT_TRUE(gated_store.ok());
  options_.store_target = (*gated_store)->dial_address();
  options_.worker_token = "worker-s3cret";
  Open();
  v1::StartCrawlResponse started;
  ASSERT_TRUE(Start(kDate, &started).ok());
  const double refused_before =
      testing::CounterValue("hubcensus_worker_token_refused_total",
                            {{"method", "/hubcensus.v1.Coordinator/AcquireLease"}});
  v1::AcquireLeaseRequest acquire;
  acquire.set_worker_id("forger");
  v1::AcquireLeaseResponse leased;
  for (const std::string& token : {std::string(), std::string("wrong")}) {
    grpc::Status s = stub_->AcquireLease(Context(token).get(), acquire, &leased);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(s.error_message().find("s3cret"), std::string::npos) << s.error_message();
  }
  EXPECT_EQ(testing::CounterValue("hubcensus_worker_token_refused_total",
                                  {{"method", "/hubcensus.v1.Coordinator/AcquireLease"}}),
            refused_before + 2);
  auto worker = v1::Coordinator::NewStub(
      MakeWorkerChannel(server_->dial_address(), nullptr, "worker-s3cret"));
  {
    grpc::ClientContext context;
    ASSERT_TRUE(worker->AcquireLease(&context, acquire, &leased).ok());
    ASSERT_TRUE(leased.has_lease());
  }
  // Forged failures and completions without the token change nothing.
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(FailWith(*stub_, leased.lease(), false, false, "forged").error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(Complete(leased.lease(), "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Renew(leased.lease()).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_RUNNING);
  {
    grpc::ClientContext context;
    v1::CompleteLeaseRequest request;
    request.set_lease_id(leased.lease().lease_id());
    request.set_fence(leased.lease().fence());
    request.set_repos(10);
    v1::CompleteLeaseResponse response;
    ASSERT_TRUE(worker->CompleteLease(&context, request, &response).ok());
  }
  service_->Tick();
  ASSERT_EQ(store_.commits().size(), 1u);
  EXPECT_EQ(Get("crawl-2025-10-31").state(), v1::CRAWL_COMMITTED);
  (*gated_store)->Shutdown(absl::ZeroDuration());
}

}  // namespace
}  // namespace hubcensus::coordinator
