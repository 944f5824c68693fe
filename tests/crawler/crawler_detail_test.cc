// REPO_DETAIL leases and the lease budget, against a scripted Coordinator (a real gRPC service
// on loopback that hands out one lease and records what the worker reports) and the real
// aggregator store: the worker never sends a Hub request its lease was not granted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "aggregator/aggregator.h"
#include "common/checksum.h"
#include "common/grpc_server.h"
#include "crawler/crawler_worker.h"
#include "hub/url.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"
#include "tests/hub/http_test_server.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::crawler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
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
  EXPECT_THAT(done.rejected_by_reason(), UnorderedElementsAre(Pair("duplicate_in_batch", 1)));
  EXPECT_EQ(done.rejected_entries(), 1);
  EXPECT_THAT(done.unreadable_by_reason(), UnorderedElementsAre(Pair("404", 1)));
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

// One lease against the real store over loopback gRPC, reported to a ScriptedCoordinator.
struct OneLease {
  std::unique_ptr<aggregator::Aggregator> aggregator;
  std::unique_ptr<GrpcServer> store_server;
  std::unique_ptr<ScriptedCoordinator> coordinator;
  std::unique_ptr<GrpcServer> coordinator_server;
  std::unique_ptr<CrawlerWorker> worker;

  static v1::WorkItem ListPage(const std::string& url) {
    v1::WorkItem item;
    item.set_item_id("createdAt/p000000");
    item.set_crawl_id("crawl-2025-10-31");
    item.set_crawl_date("2025-10-31");
    item.set_kind(v1::LIST_PAGE);
    item.set_hub_url(kHub);
    item.set_url(url);
    return item;
  }

  void StartStore(const std::string& listen = "127.0.0.1:0") {
    if (aggregator == nullptr) {
      aggregator::AggregatorOptions a;
      a.data_dir = hubcensus::testing::MakeTempDir("crawler_one_lease_store");
      a.sync_writes = false;
      auto opened = aggregator::Aggregator::Open(a);
      ASSERT_TRUE(opened.ok()) << opened.status();
      aggregator = std::move(*opened);
    }
    GrpcServerOptions options;
    options.listen_address = listen;
    auto server = GrpcServer::Start(options, {aggregator->snapshot_store_service()});
    ASSERT_TRUE(server.ok()) << server.status();
    store_server = std::move(*server);
  }

  // Runs a worker until the lease is completed or failed.
  void Run(v1::WorkItem item, CrawlerWorkerOptions o,
           absl::Duration give_up_after = absl::Seconds(60)) {
    if (store_server == nullptr) StartStore();
    coordinator = std::make_unique<ScriptedCoordinator>(std::move(item), 1000, 1000);
    auto server = GrpcServer::Start({}, {coordinator.get()});
    ASSERT_TRUE(server.ok());
    coordinator_server = std::move(*server);
    o.coordinator_target = coordinator_server->dial_address();
    if (o.store_target.empty()) o.store_target = store_server->dial_address();
    o.idle_wait = absl::Milliseconds(20);
    o.stop_on_shutdown_signal = false;
    if (o.retry.initial_backoff == absl::Seconds(1))
      o.retry.initial_backoff = absl::Milliseconds(5);
    auto created = CrawlerWorker::Create(o);
    ASSERT_TRUE(created.ok()) << created.status();
    worker = std::move(*created);
    ASSERT_TRUE(worker->Start().ok());
    absl::Time give_up = absl::Now() + give_up_after;
    while (coordinator->completes().empty() && coordinator->fails().empty() &&
           absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    worker->Stop();
    worker->Wait();
  }

  ~OneLease() {
    if (coordinator_server) coordinator_server->Shutdown(absl::ZeroDuration());
    if (store_server) store_server->Shutdown(absl::ZeroDuration());
  }
};

CrawlerWorkerOptions WithTransport(std::shared_ptr<hub::HttpTransport> transport) {
  CrawlerWorkerOptions o;
  o.hub_token = "hf_worker_secret_token";
  o.transport_factory = [transport] { return transport; };
  return o;
}

// A listing made with a token lists the private repos it can see; a detail can answer for a repo
// made private. The census counts the public Hub: neither is written, both are counted.
TEST(CrawlerPrivate, PrivateEntriesNeverReachTheStoreAndAreCounted) {
  auto transport = std::make_shared<hub::FakeHttpTransport>([](const hub::HttpRequest& r) {
    return hub::MakeResponse(200,
                             R"([{"id":"pub/1","private":false},{"id":"me/secret","private":true},
        {"id":"pub/2"},{"id":"org/internal","private":true}])");
  });
  OneLease run;
  run.Run(OneLease::ListPage(absl::StrCat(kHub, "/api/models?sort=createdAt&limit=100")),
          WithTransport(transport));
  ASSERT_TRUE(run.coordinator->fails().empty()) << run.coordinator->fails()[0].reason();
  ASSERT_EQ(run.coordinator->completes().size(), 1u);
  const v1::CompleteLeaseRequest done = run.coordinator->completes()[0];
  EXPECT_EQ(done.repos(), 2);
  EXPECT_EQ(done.private_skipped(), 2);
  RepoIdChecksum checksum;  // the store acknowledged exactly the public ids
  for (const char* id : {"pub/1", "pub/2"}) checksum.Add(id);
  EXPECT_EQ(done.id_checksum(), checksum.value());
  EXPECT_EQ(done.rejected_entries(), 0);
  EXPECT_EQ(run.worker->stats().private_skipped, 2);

  // A detail that answers private is dropped too.
  v1::WorkItem detail;
  detail.set_item_id("detail/createdAt/p000000/s000");
  detail.set_crawl_id("crawl-2025-10-31");
  detail.set_crawl_date("2025-10-31");
  detail.set_kind(v1::REPO_DETAIL);
  detail.set_hub_url(kHub);
  detail.add_repo_ids("pub/1");
  detail.add_repo_ids("pub/2");
  transport->set_handler([](const hub::HttpRequest& r) {
    if (r.url.find("/api/models/pub/1?") != std::string::npos) return Detail("pub/1");
    return hub::MakeResponse(200, R"({"id":"pub/2","private":true})");
  });
  OneLease second;
  second.Run(detail, WithTransport(transport));
  ASSERT_EQ(second.coordinator->completes().size(), 1u);
  EXPECT_EQ(second.coordinator->completes()[0].repos(), 1);
  EXPECT_EQ(second.coordinator->completes()[0].private_skipped(), 1);
}

// Per-repo answers as the real Hub gives them: unreadable, counted by reason, never a failure;
// nothing is written for them (the listing's snapshot of the repo is what stays).
TEST(CrawlerDetailUnreadable, CountedByReasonAndNeverAFailure) {
  v1::WorkItem item;
  item.set_item_id("detail/createdAt/p000000/s000");
  item.set_crawl_id("crawl-2025-10-31");
  item.set_crawl_date("2025-10-31");
  item.set_kind(v1::REPO_DETAIL);
  item.set_hub_url(kHub);
  for (const char* id : {"ok/1", "missing/x", "gated/x", "disabled/x", "gone/x", "renamed/old",
                         "hops/a", "loop/a"}) {
    item.add_repo_ids(id);
  }
  auto transport = std::make_shared<hub::FakeHttpTransport>([](const hub::HttpRequest& r) {
    auto is = [&](const char* id) {
      return r.url.rfind(absl::StrCat(kHub, "/api/models/", id, "?"), 0) == 0;
    };
    if (is("ok/1")) return Detail("ok/1");
    if (is("missing/x"))
      return hub::MakeResponse(401, R"({"error":"Invalid username or password."})");
    if (is("gated/x")) {
      return hub::MakeResponse(401, R"({"error":"gated"})", {{"X-Error-Code", "GatedRepo"}});
    }
    if (is("disabled/x")) return hub::MakeResponse(403, "Access to this resource is disabled.");
    if (is("gone/x")) return hub::MakeResponse(404, R"({"error":"RevisionNotFound"})");
    if (is("renamed/old"))
      return hub::MakeResponse(307, "", {{"Location", "/api/models/renamed/new"}});
    if (is("renamed/new")) return Detail("renamed/new");
    if (is("hops/a")) return hub::MakeResponse(307, "", {{"Location", "/api/models/hops/b"}});
    if (is("hops/b")) return hub::MakeResponse(307, "", {{"Location", "/api/models/hops/c"}});
    if (is("loop/a")) return hub::MakeResponse(307, "", {{"Location", "/api/models/loop/b"}});
    if (is("loop/b")) return hub::MakeResponse(307, "", {{"Location", "/api/models/loop/a"}});
    return hub::MakeResponse(500, "unexpected");
  });
  OneLease run;
  run.Run(item, WithTransport(transport));
  ASSERT_TRUE(run.coordinator->fails().empty()) << run.coordinator->fails()[0].reason();
  ASSERT_EQ(run.coordinator->completes().size(), 1u);
  const v1::CompleteLeaseRequest done = run.coordinator->completes()[0];
  EXPECT_EQ(done.repos(), 2);  // ok/1 and renamed/new
  RepoIdChecksum checksum;
  for (const char* id : {"ok/1", "renamed/new"}) checksum.Add(id);
  EXPECT_EQ(done.id_checksum(), checksum.value());
  EXPECT_THAT(
      done.unreadable_by_reason(),
      UnorderedElementsAre(Pair("401", 1), Pair("401_gated", 1), Pair("403", 1), Pair("404", 1),
                           Pair("second_redirect", 1), Pair("redirect_loop", 1)));
  EXPECT_EQ(done.rejected_entries(), 0);
  EXPECT_EQ(run.worker->stats().unreadable, 6);
}

// A heavy page: 504 (HTML body) above limit 100. The lease completes with the page fetched at a
// smaller limit, counts the shrinks, and reports the Hub's next cursor with the item's limit.
TEST(CrawlerHeavyPages, ShrinkTheLimitAndReportTheShrinks) {
  auto transport = std::make_shared<hub::FakeHttpTransport>([](const hub::HttpRequest& r) {
    std::optional<std::string> limit = hub::QueryParameter(r.url, "limit");
    int n = 0;
    if (!limit || !absl::SimpleAtoi(*limit, &n) || n > 100) {
      return hub::MakeResponse(504, "<html>504 Gateway Time-out</html>",
                               {{"Content-Type", "text/html"}});
    }
    std::string body = "[";
    for (int i = 0; i < n; ++i) absl::StrAppend(&body, i ? "," : "", R"({"id":"o/m)", i, "\"}");
    body += "]";
    return hub::MakeResponse(
        200, body,
        {{"Link", absl::StrCat("<", kHub, "/api/models?sort=createdAt&limit=", n,
                               "&cursor=eyJfaWQiOnsiJGd0IjoiNjYifX0%3D>; rel=\"next\"")}});
  });
  OneLease run;
  run.Run(
      OneLease::ListPage(absl::StrCat(kHub, "/api/models?sort=createdAt&limit=1000&cursor=AAA%3D")),
      WithTransport(transport));
  ASSERT_TRUE(run.coordinator->fails().empty()) << run.coordinator->fails()[0].reason();
  ASSERT_EQ(run.coordinator->completes().size(), 1u);
  const v1::CompleteLeaseRequest done = run.coordinator->completes()[0];
  EXPECT_EQ(done.limit_shrinks(), 4);  // 1000 -> 500 -> 250 -> 125 -> 62
  EXPECT_EQ(done.repos(), 62);
  EXPECT_EQ(done.next_url(), absl::StrCat(kHub,
                                          "/api/models?sort=createdAt&limit=1000"
                                          "&cursor=eyJfaWQiOnsiJGd0IjoiNjYifX0%3D"));
  // Every request for the page kept its cursor, byte for byte; the only other cursor asked is
  // the next link's, fetched ahead while the page was stored (no lease took it here, so it was
  // dropped), and it started at the shrunk limit.
  int page_requests = 0;
  for (const hub::HttpRequest& r : transport->requests()) {
    if (hub::QueryParameter(r.url, "cursor") == "AAA%3D") {
      ++page_requests;
      continue;
    }
    EXPECT_EQ(hub::QueryParameter(r.url, "cursor"), "eyJfaWQiOnsiJGd0IjoiNjYifX0%3D") << r.url;
    EXPECT_EQ(hub::QueryParameter(r.url, "limit"), "62") << r.url;
  }
  EXPECT_EQ(page_requests, 5);  // 1000, 500, 250, 125, 62
  EXPECT_EQ(run.worker->stats().limit_shrinks, 4);
}

// A rel="next" link to another origin fails the item for good, naming the host; the Hub token is
// sent nowhere else. With the real libcurl transport and two loopback servers: the second one
// must receive nothing at all.
TEST(CrawlerTokenOrigin, NextLinkToAnotherOriginFailsTheItemAndSendsNothingThere) {
  hubcensus::testing::HttpTestServer elsewhere([](const hubcensus::testing::ReceivedRequest&) {
    return hubcensus::testing::ScriptedAnswer{
        hubcensus::testing::HttpTestServer::Response(200, "[]")};
  });
  const std::string elsewhere_url = elsewhere.url("/api/models?cursor=stolen");
  hubcensus::testing::HttpTestServer hub([&](const hubcensus::testing::ReceivedRequest& r) {
    if (r.target.find("/redirect") == 0) {
      return hubcensus::testing::ScriptedAnswer{
          hubcensus::testing::HttpTestServer::Response(302, "", {{"Location", elsewhere_url}})};
    }
    return hubcensus::testing::ScriptedAnswer{hubcensus::testing::HttpTestServer::Response(
        200, R"([{"id":"a/1"}])", {{"Link", absl::StrCat("<", elsewhere_url, ">; rel=\"next\"")}})};
  });
  for (const char* path : {"/api/models?limit=10", "/redirect?limit=10"}) {
    v1::WorkItem item = OneLease::ListPage(hub.url(path));
    item.set_hub_url(hub.url(""));
    CrawlerWorkerOptions o;
    o.hub_token = "hf_worker_secret_token";
    OneLease run;
    run.Run(item, o);
    ASSERT_TRUE(run.coordinator->completes().empty()) << path;
    ASSERT_EQ(run.coordinator->fails().size(), 1u) << path;
    const v1::FailLeaseRequest failed = run.coordinator->fails()[0];
    EXPECT_FALSE(failed.retryable()) << failed.reason();
    EXPECT_THAT(failed.reason(), HasSubstr(absl::StrCat("127.0.0.1:", elsewhere.port())));
    EXPECT_THAT(failed.reason(), Not(HasSubstr("hf_worker_secret_token")));
    EXPECT_LE(failed.reason().size(), 700u) << failed.reason();
  }
  EXPECT_EQ(elsewhere.connections(), 0);
  EXPECT_TRUE(elsewhere.requests().empty());
  ASSERT_EQ(hub.requests().size(), 2u);
  EXPECT_EQ(hub.requests()[0].headers["authorization"], "Bearer hf_worker_secret_token");
}

// A Hub that cannot be reached (connection refused, real libcurl): the lease fails quickly with
// connection_failure and one short line naming the host and the cause.
TEST(CrawlerUnreachableHub, ConnectionRefusedIsReportedAsConnectionFailure) {
  const int closed_port = hubcensus::testing::FreeLoopbackPort();
  const std::string hub = absl::StrCat("http://127.0.0.1:", closed_port);
  v1::WorkItem item = OneLease::ListPage(absl::StrCat(hub, "/api/models?limit=10"));
  item.set_hub_url(hub);
  CrawlerWorkerOptions o;
  o.retry.initial_backoff = absl::Milliseconds(100);
  o.retry.connection_failure_deadline = absl::Seconds(2);
  OneLease run;
  run.Run(item, o);
  ASSERT_TRUE(run.coordinator->completes().empty());
  ASSERT_EQ(run.coordinator->fails().size(), 1u);
  const v1::FailLeaseRequest failed = run.coordinator->fails()[0];
  EXPECT_TRUE(failed.connection_failure()) << failed.reason();
  EXPECT_TRUE(failed.retryable());
  EXPECT_FALSE(failed.peer_unavailable());
  EXPECT_THAT(failed.reason(),
              ::testing::StartsWith(
                  absl::StrCat("cannot reach 127.0.0.1:", closed_port, ": connection refused")));
  EXPECT_LT(failed.reason().size(), 120u) << failed.reason();
}

// A 200 listing answer that is an HTML page: a few attempts, then the item fails for good,
// naming the content type and the first bytes.
TEST(CrawlerGarbage, HtmlBodyFailsTheItemNamingTheContentType) {
  auto transport = std::make_shared<hub::FakeHttpTransport>([](const hub::HttpRequest&) {
    return hub::MakeResponse(
        200, "<html><body>Sign in to continue" + std::string(4000, '.') + "</body></html>",
        {{"Content-Type", "text/html"}});
  });
  OneLease run;
  run.Run(OneLease::ListPage(absl::StrCat(kHub, "/api/models?limit=10")), WithTransport(transport));
  ASSERT_EQ(run.coordinator->fails().size(), 1u);
  const v1::FailLeaseRequest failed = run.coordinator->fails()[0];
  EXPECT_FALSE(failed.retryable());
  EXPECT_THAT(failed.reason(), HasSubstr("text/html"));
  EXPECT_THAT(failed.reason(), HasSubstr("<html><body>Sign in to continue"));
  EXPECT_LE(failed.reason().size(), 700u);
  EXPECT_EQ(transport->request_count(), 3);
}

// The store goes away while a page is being written and comes back on the same port: the write
// waits for it (wait_for_ready) and the lease completes. When it stays away, the lease is handed
// back as the peer's outage, not the item's failure.
TEST(CrawlerPeerOutage, StoreRestartMidLeaseIsWaitedFor) {
  OneLease run;
  run.StartStore();
  const std::string store_address = run.store_server->dial_address();
  std::atomic<bool> store_down{false};
  auto transport = std::make_shared<hub::FakeHttpTransport>([&](const hub::HttpRequest&) {
    // The store stops while the page is fetched; it is back 3 s later.
    run.store_server->Shutdown(absl::ZeroDuration());
    store_down = true;
    return hub::MakeResponse(200, R"([{"id":"a/1"},{"id":"a/2"}])");
  });
  std::thread restarter([&] {
    while (!store_down) absl::SleepFor(absl::Milliseconds(5));
    absl::SleepFor(absl::Seconds(3));
    run.StartStore(store_address);
  });
  CrawlerWorkerOptions o = WithTransport(transport);
  o.rpc_timeout = absl::Seconds(20);
  run.Run(OneLease::ListPage(absl::StrCat(kHub, "/api/models?limit=10")), o);
  restarter.join();
  ASSERT_TRUE(run.coordinator->fails().empty()) << run.coordinator->fails()[0].reason();
  ASSERT_EQ(run.coordinator->completes().size(), 1u);
  EXPECT_EQ(run.coordinator->completes()[0].repos(), 2);
}

TEST(CrawlerPeerOutage, StoreThatStaysDownHandsTheLeaseBackAsPeerUnavailable) {
  auto transport = std::make_shared<hub::FakeHttpTransport>(
      [](const hub::HttpRequest&) { return hub::MakeResponse(200, R"([{"id":"a/1"}])"); });
  CrawlerWorkerOptions o = WithTransport(transport);
  o.store_target = absl::StrCat("127.0.0.1:", hubcensus::testing::FreeLoopbackPort());
  o.rpc_timeout = absl::Milliseconds(300);
  o.rpc_attempts = 2;
  OneLease run;
  run.Run(OneLease::ListPage(absl::StrCat(kHub, "/api/models?limit=10")), o);
  ASSERT_TRUE(run.coordinator->completes().empty());
  ASSERT_EQ(run.coordinator->fails().size(), 1u);
  const v1::FailLeaseRequest failed = run.coordinator->fails()[0];
  EXPECT_TRUE(failed.retryable());
  EXPECT_TRUE(failed.peer_unavailable()) << failed.reason();
  EXPECT_FALSE(failed.connection_failure());
}

}  // namespace
}  // namespace hubcensus::crawler
