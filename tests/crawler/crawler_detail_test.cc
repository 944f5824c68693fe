// REPO_DETAIL leases and the lease budget, against a scripted Coordinator (a real gRPC service
// on loopback that hands out one lease and records what the worker reports) and the real
// aggregator store: the worker never sends a Hub request its lease was not granted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "aggregator/aggregator.h"
#include "common/checksum.h"
#include "common/grpc_server.h"
#include "crawler/crawler_worker.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::crawler {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kHub[] = "http://hub.test";

// Hands out one lease with `initial` requests, grants `per_renewal` per RenewLease.
class ScriptedCoordinator final : public v1::Coordinator::Service {
 public:
  ScriptedCoordinator(v1::WorkItem item, int32_t initial, int32_t per_renewal)
      : item_(std::move(item)), initial_(initial), per_renewal_(per_renewal) {
    granted_ = initial;
  }

  grpc::Status AcquireLease(grpc::ServerContext*, const v1::AcquireLeaseRequest* request,
                            v1::AcquireLeaseResponse* response) override {
    absl::MutexLock lock(&mu_);
    token_label_ = request->hub_token_label();
    if (handed_out_) {
      response->set_retry_after_ms(20);
      return grpc::Status::OK;
    }
    handed_out_ = true;
    v1::Lease* lease = response->mutable_lease();
    lease->set_lease_id("lease-1");
    lease->set_fence(3);
    lease->set_lease_duration_ms(60000);
    lease->set_expires_at_unix_ms(absl::ToUnixMillis(absl::Now()) + 60000);
    *lease->mutable_item() = item_;
    lease->set_request_budget(initial_);
    return grpc::Status::OK;
  }
  grpc::Status RenewLease(grpc::ServerContext*, const v1::RenewLeaseRequest* request,
                          v1::RenewLeaseResponse* response) override {
    absl::MutexLock lock(&mu_);
    reported_ += request->requests_used();
    ++renewals_;
    granted_ += per_renewal_;
    response->set_request_budget(per_renewal_);
    response->set_expires_at_unix_ms(absl::ToUnixMillis(absl::Now()) + 60000);
    return grpc::Status::OK;
  }
  grpc::Status CompleteLease(grpc::ServerContext*, const v1::CompleteLeaseRequest* request,
                             v1::CompleteLeaseResponse*) override {
    absl::MutexLock lock(&mu_);
    reported_ += request->requests_used();
    completes_.push_back(*request);
    return grpc::Status::OK;
  }
  grpc::Status FailLease(grpc::ServerContext*, const v1::FailLeaseRequest* request,
                         v1::FailLeaseResponse*) override {
    absl::MutexLock lock(&mu_);
    reported_ += request->requests_used();
    fails_.push_back(*request);
    return grpc::Status::OK;
  }

  int64_t granted() {
    absl::MutexLock lock(&mu_);
    return granted_;
  }
  int64_t reported() {
    absl::MutexLock lock(&mu_);
    return reported_;
  }
  int64_t renewals() {
    absl::MutexLock lock(&mu_);
    return renewals_;
  }
  std::string token_label() {
    absl::MutexLock lock(&mu_);
    return token_label_;
  }
  std::vector<v1::CompleteLeaseRequest> completes() {
    absl::MutexLock lock(&mu_);
    return completes_;
  }
  std::vector<v1::FailLeaseRequest> fails() {
    absl::MutexLock lock(&mu_);
    return fails_;
  }

 private:
  const v1::WorkItem item_;
  const int32_t initial_;
  const int32_t per_renewal_;
  absl::Mutex mu_;
  bool handed_out_ ABSL_GUARDED_BY(mu_) = false;
  int64_t granted_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t reported_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t renewals_ ABSL_GUARDED_BY(mu_) = 0;
  std::string token_label_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::CompleteLeaseRequest> completes_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::FailLeaseRequest> fails_ ABSL_GUARDED_BY(mu_);
};

hub::HttpResponse Detail(const std::string& id) {
  return hub::MakeResponse(200, absl::StrCat(R"({"id":")", id, R"(","downloads":5,"tags":[]})"));
}

TEST(CrawlerDetail, FetchesEachRepoFollowsRenamesAndStaysWithinTheGrantedBudget) {
  aggregator::AggregatorOptions a;
  a.data_dir = hubcensus::testing::MakeTempDir("crawler_detail_store");
  a.sync_writes = false;
  auto aggregator = aggregator::Aggregator::Open(a);
  ASSERT_TRUE(aggregator.ok()) << aggregator.status();
  auto store_server = GrpcServer::Start({}, {(*aggregator)->snapshot_store_service()});
  ASSERT_TRUE(store_server.ok());

  v1::WorkItem item;
  item.set_item_id("detail/createdAt/p000000/s000");
  item.set_crawl_id("crawl-2025-10-31");
  item.set_crawl_date("2025-10-31");
  item.set_kind(v1::REPO_DETAIL);
  item.set_hub_url(kHub);
  for (const char* id : {"a/1", "b/2", "gone/x", "d/4", "e/5"}) item.add_repo_ids(id);
  ScriptedCoordinator coordinator(item, /*initial=*/2, /*per_renewal=*/2);
  auto coordinator_server = GrpcServer::Start({}, {&coordinator});
  ASSERT_TRUE(coordinator_server.ok());

  std::atomic<int64_t> sent{0};
  std::atomic<int64_t> beyond_grant{0};
  std::atomic<int> e5_calls{0};
  auto transport = std::make_shared<hub::FakeHttpTransport>([&](const hub::HttpRequest& r) {
    if (++sent > coordinator.granted()) ++beyond_grant;
    auto is = [&](const char* path) { return r.url.rfind(absl::StrCat(kHub, path, "?"), 0) == 0; };
    if (is("/api/models/a/1")) return Detail("a/1");
    if (is("/api/models/b/2")) {
      return hub::MakeResponse(307, "", {{"Location", "/api/models/c/3"}});
    }
    if (is("/api/models/c/3")) return Detail("c/3");
    if (is("/api/models/d/4")) {
      return hub::MakeResponse(307, "", {{"Location", "/api/models/a/1"}});  // renamed onto a/1
    }
    if (is("/api/models/e/5")) {
      return ++e5_calls == 1 ? hub::MakeResponse(503, "") : Detail("e/5");
    }
    return hub::MakeResponse(404, "{\"error\":\"Repository not found\"}");
  });

  CrawlerWorkerOptions o;
  o.coordinator_target = (*coordinator_server)->dial_address();
  o.store_target = (*store_server)->dial_address();
  o.hub_token = "hf_detail_token";
  o.transport_factory = [transport] { return transport; };
  o.retry.initial_backoff = absl::Milliseconds(1);
  o.idle_wait = absl::Milliseconds(20);
  o.stop_on_shutdown_signal = false;
  auto worker = CrawlerWorker::Create(o);
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE((*worker)->Start().ok());
  absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (coordinator.completes().empty() && coordinator.fails().empty() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  (*worker)->Stop();
  (*worker)->Wait();

  ASSERT_TRUE(coordinator.fails().empty()) << coordinator.fails()[0].reason();
  ASSERT_EQ(coordinator.completes().size(), 1u);
  const v1::CompleteLeaseRequest done = coordinator.completes()[0];
  EXPECT_EQ(done.lease_id(), "lease-1");
  EXPECT_EQ(done.fence(), 3u);
  EXPECT_EQ(done.next_url(), "");
  EXPECT_EQ(done.repos(), 3);  // a/1, c/3, e/5 (d/4 became a/1 again; gone/x is gone)
  RepoIdChecksum checksum;
  for (const char* id : {"a/1", "c/3", "e/5"}) checksum.Add(id);
  EXPECT_EQ(done.id_checksum(), checksum.value());
  EXPECT_THAT(done.rejected_by_reason(),
              UnorderedElementsAre(Pair("detail_not_found", 1), Pair("duplicate_in_batch", 1)));
  EXPECT_EQ(done.rejected_entries(), 2);
  EXPECT_EQ(done.retries(), 1);
  // a/1, b/2, c/3, gone/x, d/4, a/1, e/5 (503), e/5: 8 requests on a budget of 2 + 2 per renewal.
  EXPECT_EQ(transport->request_count(), 8);
  EXPECT_EQ(beyond_grant, 0) << "a Hub request the lease had not been granted";
  EXPECT_EQ(coordinator.reported(), 8) << "every request reported, once";
  EXPECT_GE(coordinator.renewals(), 3);
  EXPECT_FALSE(coordinator.token_label().empty());
  EXPECT_EQ(coordinator.token_label().find("hf_detail_token"), std::string::npos);
  CrawlerWorkerStats stats = (*worker)->stats();
  EXPECT_EQ(stats.details, 4);
  EXPECT_EQ(stats.completed, 1);

  (*coordinator_server)->Shutdown(absl::ZeroDuration());
  (*store_server)->Shutdown(absl::ZeroDuration());
}

}  // namespace
}  // namespace hubcensus::crawler
