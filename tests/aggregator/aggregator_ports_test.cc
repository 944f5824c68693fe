// The real `hubcensus aggregator` process with --ingest_listen: SnapshotStore is served only on
// the ingest port and Census only on the query port (so NetworkPolicies can tell them apart),
// both answer grpc.health.v1, and without --ingest_listen one port still serves both.
#include <csignal>
#include <optional>
#include <string>

#include "common/grpc_server.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "hubcensus/v1/census.grpc.pb.h"
#include "hubcensus/v1/store.grpc.pb.h"
#include "tests/aggregator/crawl_builder.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::aggregator {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using hubcensus::testing::HubcensusBinary;
using hubcensus::testing::MakeTempDir;
using hubcensus::testing::RunToCompletion;
using hubcensus::testing::Subprocess;

constexpr char kCrawl[] = "crawl-2025-10-31";
constexpr char kDate[] = "2025-10-31";

// "PREFIX 127.0.0.1:PORT" -> "127.0.0.1:PORT", from the process's output.
std::optional<std::string> AddressAfter(Subprocess& p, const std::string& prefix) {
  auto line = p.WaitForOutput(prefix, absl::Seconds(30));
  if (!line) return std::nullopt;
  std::string address = line->substr(line->find(prefix) + prefix.size());
  while (!address.empty() && (address.back() == '\n' || address.back() == '\r')) {
    address.pop_back();
  }
  return address;
}

grpc::ClientContext* WithDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return ctx;
}

// Writes one page of three Qwen fine-tunes plus Qwen's own repo, and commits it: the status of
// the first call that fails, or OK.
grpc::Status IngestAndCommit(const std::string& ingest_address, v1::CommitResponse* committed) {
  auto stub = v1::SnapshotStore::NewStub(MakeChannel(ingest_address));
  v1::WriteBatch b;
  b.set_crawl_id(kCrawl);
  b.set_crawl_date(kDate);
  b.set_item_id("list/0");
  b.set_fence(1);
  *b.add_repos() = testing::MakeRepo({"Qwen/Qwen2.5-7B", {}, 5000, 500});
  for (int j = 0; j < 3; ++j) {
    *b.add_repos() = testing::MakeRepo(
        {"someone/qwen-tune-" + std::to_string(j), {{"Qwen/Qwen2.5-7B", testing::kFinetune}}});
  }
  grpc::ClientContext write_ctx;
  v1::WriteResponse written;
  auto w = stub->Write(WithDeadline(&write_ctx), &written);
  w->Write(b);
  w->WritesDone();
  grpc::Status s = w->Finish();
  if (!s.ok()) return s;
  v1::CommitRequest commit;
  commit.set_crawl_id(kCrawl);
  commit.set_crawl_date(kDate);
  auto* e = commit.add_manifest();
  e->set_item_id(b.item_id());
  e->set_fence(1);
  e->set_repos(b.repos_size());
  e->set_id_checksum(written.id_checksums(0));
  grpc::ClientContext commit_ctx;
  return stub->Commit(WithDeadline(&commit_ctx), commit, committed);
}

grpc::Status Families(const std::string& address, v1::FamiliesResponse* out) {
  auto stub = v1::Census::NewStub(MakeChannel(address));
  grpc::ClientContext ctx;
  return stub->Families(WithDeadline(&ctx), v1::FamiliesRequest(), out);
}

grpc::Status ListCrawls(const std::string& address) {
  auto stub = v1::Census::NewStub(MakeChannel(address));
  grpc::ClientContext ctx;
  v1::ListCommittedCrawlsResponse resp;
  return stub->ListCrawls(WithDeadline(&ctx), v1::ListCommittedCrawlsRequest(), &resp);
}

grpc::Status Abort(const std::string& address) {
  auto stub = v1::SnapshotStore::NewStub(MakeChannel(address));
  grpc::ClientContext ctx;
  v1::AbortRequest req;
  req.set_crawl_id("crawl-2025-11-30");
  v1::AbortResponse resp;
  return stub->Abort(WithDeadline(&ctx), req, &resp);
}

HealthCheckResponse::ServingStatus Health(const std::string& address) {
  auto stub = Health::NewStub(MakeChannel(address));
  grpc::ClientContext ctx;
  HealthCheckResponse resp;
  grpc::Status s = stub->Check(WithDeadline(&ctx), HealthCheckRequest(), &resp);
  EXPECT_TRUE(s.ok()) << address << ": " << s.error_message();
  return resp.status();
}

double QwenFinetunes(const v1::FamiliesResponse& r) {
  for (const auto& f : r.families()) {
    if (f.family() == "Qwen") return f.figures().derivatives().finetune();
  }
  return -1;
}

TEST(AggregatorPortsTest, IngestPortServesOnlySnapshotStoreAndQueryPortOnlyCensus) {
  const std::string dir = MakeTempDir("aggregator-ports");
  auto proc = Subprocess::Start({HubcensusBinary(), "aggregator", "--data_dir=" + dir,
                                 "--listen=127.0.0.1:0", "--ingest_listen=127.0.0.1:0"});
  ASSERT_TRUE(proc.has_value());
  auto query = AddressAfter(*proc, "aggregator listening on ");
  ASSERT_TRUE(query.has_value()) << proc->Output();
  auto ingest = AddressAfter(*proc, "aggregator ingest listening on ");
  ASSERT_TRUE(ingest.has_value()) << proc->Output();
  ASSERT_NE(*query, *ingest);

  EXPECT_EQ(Health(*query), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(*ingest), HealthCheckResponse::SERVING);

  // Ingest on the query port: not served there, before any data exists and after.
  v1::CommitResponse committed;
  EXPECT_EQ(IngestAndCommit(*query, &committed).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(Abort(*query).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(ListCrawls(*query).error_code(), grpc::StatusCode::OK);

  grpc::Status s = IngestAndCommit(*ingest, &committed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(committed.repos(), 4);

  v1::FamiliesResponse families;
  s = Families(*query, &families);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(families.crawl_id(), kCrawl);
  EXPECT_EQ(QwenFinetunes(families), 3);

  // Census on the ingest port: not served there.
  EXPECT_EQ(Families(*ingest, &families).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(ListCrawls(*ingest).error_code(), grpc::StatusCode::UNIMPLEMENTED);

  // The query CLI against the query port sees the commit made through the ingest port.
  std::string out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "query", "crawls", "--aggregator=" + *query,
                             "--format=csv", "--log_level=error"},
                            &out),
            0)
      << out;
  EXPECT_NE(out.find(kCrawl), std::string::npos) << out;

  proc->Signal(SIGTERM);
  EXPECT_EQ(proc->Wait(absl::Seconds(30)), 0) << proc->Output();
}

TEST(AggregatorPortsTest, WithoutIngestListenOnePortServesBoth) {
  const std::string dir = MakeTempDir("aggregator-one-port");
  auto proc = Subprocess::Start(
      {HubcensusBinary(), "aggregator", "--data_dir=" + dir, "--listen=127.0.0.1:0"});
  ASSERT_TRUE(proc.has_value());
  auto address = AddressAfter(*proc, "aggregator listening on ");
  ASSERT_TRUE(address.has_value()) << proc->Output();
  EXPECT_EQ(proc->Output().find("ingest listening"), std::string::npos) << proc->Output();
  EXPECT_EQ(Health(*address), HealthCheckResponse::SERVING);

  v1::CommitResponse committed;
  grpc::Status s = IngestAndCommit(*address, &committed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(committed.repos(), 4);
  v1::FamiliesResponse families;
  s = Families(*address, &families);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(QwenFinetunes(families), 3);

  proc->Signal(SIGTERM);
  EXPECT_EQ(proc->Wait(absl::Seconds(30)), 0) << proc->Output();
}

TEST(AggregatorPortsTest, IngestListenOnTheQueryPortIsRefused) {
  // gRPC binds with SO_REUSEPORT, so the second bind would succeed and mix the services again.
  const std::string dir = MakeTempDir("aggregator-same-port");
  std::string out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "aggregator", "--data_dir=" + dir,
                             "--listen=127.0.0.1:17003", "--ingest_listen=0.0.0.0:17003"},
                            &out, absl::Seconds(60)),
            2)
      << out;
  EXPECT_NE(out.find("--ingest_listen: port 17003 is the --listen port"), std::string::npos) << out;
}

TEST(AggregatorPortsTest, HelpExplainsTheDefault) {
  std::string out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "aggregator", "--help"}, &out), 0) << out;
  EXPECT_NE(out.find("--ingest_listen=VALUE"), std::string::npos) << out;
  EXPECT_NE(out.find("Without --ingest_listen both services share --listen"), std::string::npos)
      << out;
  EXPECT_NE(out.find("SnapshotStore is served only on --ingest_listen and Census only on --listen"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace hubcensus::aggregator
