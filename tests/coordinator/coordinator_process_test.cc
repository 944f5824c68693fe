// The real `hubcensus coordinator` process: killed with SIGKILL mid-crawl and restarted on the
// same state folder, it resumes from its checkpoint; operated through `hubcensus crawl`.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "common/worker_token.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"
#include "tests/coordinator/recording_store.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using testing::HubcensusBinary;
using testing::RunToCompletion;
using testing::Subprocess;

class CoordinatorProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_server_ = *GrpcServer::Start({}, {&store_});
    state_dir_ = testing::MakeTempDir("coordinator_process_state");
    token_file_ = testing::MakeTempDir("coordinator_process_token") + "/token";
    std::ofstream(token_file_) << "process-test-token\n";
  }

  void StartCoordinator(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {HubcensusBinary(),
                                     "coordinator",
                                     "--state_dir=" + state_dir_,
                                     "--store=" + store_server_->dial_address(),
                                     "--listen=127.0.0.1:0",
                                     "--hub_url=http://127.0.0.1:9",
                                     "--admin_token_file=" + token_file_,
                                     "--hub_quota=off"};
    for (auto& flag : extra) {
      // A later --store replaces the fixture's.
      if (flag.rfind("--store=", 0) == 0)
        argv[3] = flag;
      else
        argv.push_back(flag);
    }
    auto p = Subprocess::Start(argv);
    ASSERT_TRUE(p.has_value());
    coordinator_.emplace(std::move(*p));
    auto line = coordinator_->WaitForOutput("coordinator listening on ", absl::Seconds(30));
    ASSERT_TRUE(line.has_value()) << coordinator_->Output();
    address_ = line->substr(line->find("listening on ") + 13);
    while (!address_.empty() && (address_.back() == '\n' || address_.back() == '\r')) {
      address_.pop_back();
    }
    ASSERT_EQ(address_.rfind("127.0.0.1:", 0), 0u) << *line;
    stub_ = v1::Coordinator::NewStub(MakeChannel(address_));
  }

  int Crawl(std::vector<std::string> args, std::string* out) {
    std::vector<std::string> argv = {HubcensusBinary(), "crawl"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--coordinator=" + address_);
    argv.push_back("--admin_token_file=" + token_file_);
    return RunToCompletion(argv, out, absl::Seconds(60));
  }

  v1::Lease Acquire() {
    grpc::ClientContext context;
    v1::AcquireLeaseRequest request;
    request.set_worker_id("test-worker");
    v1::AcquireLeaseResponse response;
    grpc::Status s = stub_->AcquireLease(&context, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(response.has_lease());
    return response.lease();
  }

  grpc::Status Complete(const v1::Lease& lease, const std::string& next_url) {
    grpc::ClientContext context;
    v1::CompleteLeaseRequest request;
    request.set_lease_id(lease.lease_id());
    request.set_fence(lease.fence());
    request.set_next_url(next_url);
    request.set_repos(1000);
    request.set_id_checksum(lease.fence() * 7);
    v1::CompleteLeaseResponse response;
    return stub_->CompleteLease(&context, request, &response);
  }

  testing::RecordingStore store_;
  std::unique_ptr<GrpcServer> store_server_;
  std::string state_dir_, token_file_, address_;
  std::optional<Subprocess> coordinator_;
  std::unique_ptr<v1::Coordinator::Stub> stub_;
};

TEST_F(CoordinatorProcessTest, SigkillMidCrawlResumesFromTheCheckpoint) {
  StartCoordinator();
  std::string out;
  ASSERT_EQ(Crawl({"start", "--date=2025-10-31"}, &out), 0) << out;
  EXPECT_NE(out.find("crawl-2025-10-31 started (RUNNING)"), std::string::npos) << out;

  v1::Lease p0 = Acquire();
  const std::string page1 = "http://127.0.0.1:9/api/models?sort=createdAt&cursor=page1";
  ASSERT_TRUE(Complete(p0, page1).ok());
  v1::Lease p1 = Acquire();  // held when the coordinator is killed
  ASSERT_EQ(p1.item().item_id(), "createdAt/p000001");

  coordinator_->Signal(SIGKILL);
  EXPECT_EQ(coordinator_->Wait(absl::Seconds(30)), 128 + SIGKILL);
  StartCoordinator();

  ASSERT_EQ(Crawl({"status", "--date=2025-10-31"}, &out), 0) << out;
  EXPECT_NE(out.find("state:            RUNNING"), std::string::npos) << out;
  EXPECT_NE(out.find("items:            1 done of 2"), std::string::npos) << out;
  EXPECT_NE(out.find("lease expiries:   1"), std::string::npos) << out;

  grpc::Status stale = Complete(p1, "");
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED) << stale.error_message();
  v1::Lease resumed = Acquire();
  EXPECT_EQ(resumed.item().item_id(), "createdAt/p000001");
  EXPECT_EQ(resumed.item().url(), page1);
  EXPECT_EQ(resumed.fence(), p1.fence() + 1);
  ASSERT_TRUE(Complete(resumed, "").ok());

  // `crawl start --wait` on the same date follows the existing crawl to its commit.
  ASSERT_EQ(Crawl({"start", "--date=2025-10-31", "--wait", "--poll_seconds=0.05"}, &out), 0) << out;
  EXPECT_NE(out.find("already exists"), std::string::npos) << out;
  EXPECT_NE(out.find("COMMITTED items 2/2 repos 2000"), std::string::npos) << out;
  auto commits = store_.commits();
  ASSERT_EQ(commits.size(), 1u);
  ASSERT_EQ(commits[0].manifest_size(), 2);
  EXPECT_EQ(commits[0].manifest(1).item_id(), "createdAt/p000001");
  EXPECT_EQ(commits[0].manifest(1).fence(), resumed.fence());
  EXPECT_EQ(commits[0].manifest(1).id_checksum(), resumed.fence() * 7);

  ASSERT_EQ(Crawl({"list"}, &out), 0) << out;
  EXPECT_NE(out.find("crawl-2025-10-31   COMMITTED"), std::string::npos) << out;

  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(absl::Seconds(30)), 0) << coordinator_->Output();
}

TEST_F(CoordinatorProcessTest, WaitExitsNonZeroWhenTheCrawlIsCancelled) {
  StartCoordinator();
  std::string out;
  ASSERT_EQ(Crawl({"start", "--date=2025-11-01"}, &out), 0) << out;
  ASSERT_EQ(Crawl({"cancel", "--date=2025-11-01", "--reason=bad night"}, &out), 0) << out;
  EXPECT_EQ(Crawl({"start", "--date=2025-11-01", "--wait"}, &out), 1) << out;
  EXPECT_NE(out.find("bad night"), std::string::npos) << out;
  EXPECT_NE(out.find("start it again with --retry"), std::string::npos) << out;
  // --retry starts a second attempt; --date then means the latest attempt.
  ASSERT_EQ(Crawl({"start", "--date=2025-11-01", "--retry"}, &out), 0) << out;
  EXPECT_NE(out.find("crawl-2025-11-01.2 started (RUNNING)"), std::string::npos) << out;
  ASSERT_EQ(Crawl({"status", "--date=2025-11-01"}, &out), 0) << out;
  EXPECT_NE(out.find("crawl-2025-11-01.2"), std::string::npos) << out;
  EXPECT_NE(out.find("RUNNING"), std::string::npos) << out;
  ASSERT_EQ(Crawl({"cancel", "--date=2025-11-01", "--reason=again"}, &out), 0) << out;
  ASSERT_EQ(Crawl({"list"}, &out), 0) << out;
  EXPECT_NE(out.find("crawl-2025-11-01.2 CANCELLED"), std::string::npos) << out;
  EXPECT_NE(out.find("crawl-2025-11-01   CANCELLED"), std::string::npos) << out;
  // Without the token, operator commands are refused.
  std::string refused;
  EXPECT_EQ(
      RunToCompletion({HubcensusBinary(), "crawl", "list", "--coordinator=" + address_}, &refused),
      1);
  EXPECT_NE(refused.find("UNAUTHENTICATED"), std::string::npos) << refused;
}

// `crawl start --wait` (the nightly CronJob's command) stops waiting on SIGTERM or SIGINT, says
// the crawl goes on and how to follow it, and exits 128+signal; the crawl is untouched.
TEST_F(CoordinatorProcessTest, CrawlStartWaitStopsOnSigtermAndTheCrawlGoesOn) {
  StartCoordinator();
  for (int sig : {SIGTERM, SIGINT}) {
    const std::string date = sig == SIGTERM ? "2025-11-02" : "2025-11-03";
    auto wait = Subprocess::Start({HubcensusBinary(), "crawl", "start", "--date=" + date, "--wait",
                                   "--poll_seconds=0.2", "--coordinator=" + address_,
                                   "--admin_token_file=" + token_file_});
    ASSERT_TRUE(wait);
    ASSERT_TRUE(wait->WaitForOutput("RUNNING", absl::Seconds(60))) << wait->Output();
    const absl::Time signalled = absl::Now();
    wait->Signal(sig);
    EXPECT_EQ(wait->Wait(absl::Seconds(30)), 128 + sig) << wait->Output();
    std::fprintf(stderr, "crawl start --wait stopped %.2f s after signal %d\n",
                 absl::ToDoubleSeconds(absl::Now() - signalled), sig);
    const std::string crawl_id = "crawl-" + date;
    EXPECT_NE(wait->Output().find(crawl_id + " goes on in the coordinator"), std::string::npos)
        << wait->Output();
    EXPECT_NE(wait->Output().find("hubcensus crawl status --crawl_id=" + crawl_id),
              std::string::npos)
        << wait->Output();
    std::string out;
    ASSERT_EQ(Crawl({"status", "--crawl_id=" + crawl_id}, &out), 0) << out;
    EXPECT_NE(out.find("state:            RUNNING"), std::string::npos) << out;
  }
}

// SIGTERM stops the coordinator even while it waits for a store that does not answer.
TEST_F(CoordinatorProcessTest, SigtermStopsTheCoordinatorWhileTheStoreIsDown) {
  StartCoordinator({"--store=127.0.0.1:1"});
  std::string out;
  ASSERT_EQ(Crawl({"start", "--date=2025-10-31"}, &out), 0) << out;
  ASSERT_TRUE(Complete(Acquire(), "").ok());  // the crawl is committing: a store call is due
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const absl::Time signalled = absl::Now();
  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(absl::Seconds(30)), 0) << coordinator_->Output();
  std::fprintf(stderr, "coordinator stopped %.2f s after SIGTERM\n",
               absl::ToDoubleSeconds(absl::Now() - signalled));
}

// With --worker_token_file, worker RPCs need the token (a forged FailLease cannot fail a crawl)
// and the coordinator's commit carries it to the store.
TEST_F(CoordinatorProcessTest, WorkerRpcsNeedTheWorkerToken) {
  const std::string worker_token_file = testing::MakeTempDir("coordinator_worker_token") + "/t";
  std::ofstream(worker_token_file) << "worker-process-s3cret\n";
  auto gate = GateSnapshotStore(&store_, "worker-process-s3cret");
  auto gated_store = GrpcServer::Start({}, {gate.get()});
  ASSERT_TRUE(gated_store.ok());
  StartCoordinator(
      {"--store=" + (*gated_store)->dial_address(), "--worker_token_file=" + worker_token_file});
  std::string out;
  ASSERT_EQ(Crawl({"start", "--date=2025-10-31"}, &out), 0) << out;
  {
    grpc::ClientContext context;
    v1::AcquireLeaseRequest request;
    request.set_worker_id("forger");
    v1::AcquireLeaseResponse response;
    grpc::Status s = stub_->AcquireLease(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  }
  stub_ = v1::Coordinator::NewStub(MakeWorkerChannel(address_, nullptr, "worker-process-s3cret"));
  v1::Lease lease = Acquire();
  auto forger = v1::Coordinator::NewStub(MakeChannel(address_));
  for (int i = 0; i < 6; ++i) {
    grpc::ClientContext context;
    v1::FailLeaseRequest request;
    request.set_lease_id(lease.lease_id());
    request.set_fence(lease.fence());
    request.set_reason("forged");
    v1::FailLeaseResponse response;
    EXPECT_EQ(forger->FailLease(&context, request, &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  ASSERT_TRUE(Complete(lease, "").ok());
  ASSERT_EQ(Crawl({"status", "--date=2025-10-31", "--wait", "--poll_seconds=0.1"}, &out), 0)
      << out << coordinator_->Output();
  EXPECT_EQ(store_.commits().size(), 1u);
  EXPECT_EQ(coordinator_->Output().find("worker-process-s3cret"), std::string::npos);
  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(absl::Seconds(30)), 0);
}

// A CA and a leaf certificate for 127.0.0.1 signed by it, made by the openssl CLI as an
// operator would; "" when openssl is missing.
std::string MakePki() {
  if (std::system("openssl version >/dev/null 2>&1") != 0) return "";
  std::string dir = testing::MakeTempDir("coordinator_pki");
  std::ofstream(dir + "/leaf.ext") << "basicConstraints=critical,CA:FALSE\n"
                                      "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                      "extendedKeyUsage=serverAuth,clientAuth\n"
                                      "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  auto leaf = [&](const std::string& name) {
    return absl::StrCat("openssl req ", key, " -subj /CN=", name, " -keyout ", name, ".key -out ",
                        name, ".csr; openssl x509 -req -in ", name,
                        ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile leaf.ext",
                        " -out ", name, ".crt;");
  };
  std::string script = absl::StrCat(
      "set -e; cd '", dir, "'; openssl req -x509 ", key,
      " -days 2 -subj /CN=ca -keyout ca.key -out ca.crt"
      " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign;",
      leaf("server"), leaf("client"));
  if (std::system(absl::StrCat("bash -c \"", script, "\" >'", dir, "/openssl.log' 2>&1").c_str()) !=
      0) {
    return "";
  }
  return dir;
}

TEST_F(CoordinatorProcessTest, OperatorCallsOverMutualTls) {
  const std::string pki = MakePki();
  ASSERT_FALSE(pki.empty()) << "openssl could not make test certificates";
  auto p = Subprocess::Start({HubcensusBinary(), "coordinator", "--state_dir=" + state_dir_,
                              "--store=" + store_server_->dial_address(), "--listen=127.0.0.1:0",
                              "--hub_url=http://127.0.0.1:9", "--tls_cert=" + pki + "/server.crt",
                              "--tls_key=" + pki + "/server.key", "--tls_ca=" + pki + "/ca.crt",
                              "--tls_require_client_cert", "--health_port=0"});
  ASSERT_TRUE(p.has_value());
  auto line = p->WaitForOutput("coordinator listening on ", absl::Seconds(30));
  ASSERT_TRUE(line.has_value()) << p->Output();
  std::string address = line->substr(line->find("listening on ") + 13);
  address.erase(address.find_last_not_of("\r\n") + 1);
  std::string out;
  const std::vector<std::string> tls = {"--tls_ca=" + pki + "/ca.crt",
                                        "--tls_cert=" + pki + "/client.crt",
                                        "--tls_key=" + pki + "/client.key"};
  std::vector<std::string> start = {HubcensusBinary(), "crawl", "start", "--date=2025-10-31",
                                    "--coordinator=" + address};
  start.insert(start.end(), tls.begin(), tls.end());
  ASSERT_EQ(RunToCompletion(start, &out), 0) << out;
  EXPECT_NE(out.find("crawl-2025-10-31 started"), std::string::npos) << out;
  // Without a client certificate, and in plaintext, the coordinator cannot be reached.
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "crawl", "list", "--coordinator=" + address,
                             "--tls_ca=" + pki + "/ca.crt"},
                            &out),
            1)
      << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "crawl", "list", "--coordinator=" + address}, &out),
            1)
      << out;
  p->Signal(SIGTERM);
  EXPECT_EQ(p->Wait(absl::Seconds(30)), 0);
}

TEST(CoordinatorCommand, FlagErrorsNameTheFlag) {
  std::string out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "coordinator", "--store=127.0.0.1:1"}, &out), 2);
  EXPECT_NE(out.find("--state_dir"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "coordinator", "--state_dir=/tmp/x",
                             "--store=127.0.0.1:1", "--hub_quota=lots"},
                            &out),
            2);
  EXPECT_NE(out.find("--hub_quota"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "coordinator", "--state_dir=/tmp/x",
                             "--store=127.0.0.1:1", "--schedule=25:00"},
                            &out),
            2);
  EXPECT_NE(out.find("--schedule"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "crawl"}, &out), 2);
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "crawl", "start", "--help"}, &out), 0);
  EXPECT_NE(out.find("--wait"), std::string::npos) << out;
}

}  // namespace
}  // namespace hubcensus
