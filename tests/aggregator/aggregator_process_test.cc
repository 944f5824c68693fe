// The real `hubcensus aggregator` process: SIGKILL during ingest loses no acknowledged batch, and
// `hubcensus query` answers from it over gRPC and from its data folder while it runs.
#include <atomic>
#include <csignal>
#include <fstream>
#include <thread>

#include "aggregator/aggregator.h"
#include "common/checksum.h"
#include "common/grpc_server.h"
#include "gtest/gtest.h"
#include "hubcensus/v1/store.grpc.pb.h"
#include "tests/aggregator/crawl_builder.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::aggregator {
namespace {

using hubcensus::testing::HubcensusBinary;
using hubcensus::testing::MakeTempDir;
using hubcensus::testing::RunToCompletion;
using hubcensus::testing::Subprocess;

std::optional<Subprocess> StartAggregator(const std::string& dir, int* port) {
  auto p = Subprocess::Start(
      {HubcensusBinary(), "aggregator", "--data_dir=" + dir, "--listen=127.0.0.1:0"});
  if (!p) return std::nullopt;
  auto line = p->WaitForOutput("aggregator listening on ");
  if (!line) return std::nullopt;
  *port = std::stoi(line->substr(line->rfind(':') + 1));
  return p;
}

v1::WriteBatch Page(const std::string& crawl, int item) {
  v1::WriteBatch b;
  b.set_crawl_id(crawl);
  b.set_crawl_date("2025-10-31");
  b.set_item_id("list/" + std::to_string(item));
  b.set_fence(1);
  for (int j = 0; j < 50; ++j) {
    *b.add_repos() = testing::MakeRepo({"ns" + std::to_string(item) + "/model-" + std::to_string(j),
                                        {{"Qwen/Qwen2.5-7B", testing::kFinetune}}});
  }
  return b;
}

TEST(AggregatorProcessTest, SigkillDuringIngestLosesNoAcknowledgedBatch) {
  const std::string dir = MakeTempDir("aggregator-kill");
  int port = 0;
  auto proc = StartAggregator(dir, &port);
  ASSERT_TRUE(proc.has_value()) << "aggregator did not start";
  auto stub = v1::SnapshotStore::NewStub(MakeChannel("127.0.0.1:" + std::to_string(port)));

  std::vector<v1::ManifestEntry> acknowledged;
  std::atomic<int> acked{0};
  std::thread writer([&] {
    for (int item = 0;; ++item) {
      v1::WriteBatch b = Page("crawl-2025-10-31", item);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      v1::WriteResponse resp;
      auto w = stub->Write(&ctx, &resp);
      bool sent = w->Write(b);
      w->WritesDone();
      grpc::Status s = w->Finish();
      if (!sent || !s.ok()) return;  // the process is gone
      v1::ManifestEntry e;
      e.set_item_id(b.item_id());
      e.set_fence(1);
      e.set_repos(b.repos_size());
      e.set_id_checksum(resp.id_checksums(0));
      acknowledged.push_back(e);
      ++acked;
    }
  });
  while (acked.load() < 25) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  proc->Signal(SIGKILL);
  writer.join();
  EXPECT_EQ(proc->Wait(), 128 + SIGKILL);
  ASSERT_GE(acknowledged.size(), 25u);

  // Reopen: every acknowledged batch's marker matches, and all its repos are published.
  AggregatorOptions o;
  o.data_dir = dir;
  o.sync_writes = false;
  auto agg = Aggregator::Open(o);
  ASSERT_TRUE(agg.ok()) << agg.status();
  v1::CommitRequest commit;
  commit.set_crawl_id("crawl-2025-10-31");
  commit.set_crawl_date("2025-10-31");
  for (const auto& e : acknowledged) *commit.add_manifest() = e;
  auto committed = (*agg)->Commit(commit);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->repos(), static_cast<int64_t>(acknowledged.size()) * 50);
  auto view = (*agg)->store()->View();
  auto crawl = (*view)->FindCrawl("crawl-2025-10-31");
  ASSERT_TRUE(crawl.ok());
  for (size_t item = 0; item < acknowledged.size(); ++item) {
    auto repo = (*view)->GetRepo(*crawl, "ns" + std::to_string(item) + "/model-49");
    ASSERT_TRUE(repo.ok() && repo->has_value()) << "item " << item;
  }
}

TEST(AggregatorProcessTest, QueryCliAnswersOverGrpcAndFromTheDataFolder) {
  const std::string dir = MakeTempDir("aggregator-cli");
  int port = 0;
  auto proc = StartAggregator(dir, &port);
  ASSERT_TRUE(proc.has_value());
  const std::string addr = "127.0.0.1:" + std::to_string(port);
  auto stub = v1::SnapshotStore::NewStub(MakeChannel(addr));
  v1::CommitRequest commit;
  commit.set_crawl_id("crawl-2025-10-31");
  commit.set_crawl_date("2025-10-31");
  for (int item = 0; item < 3; ++item) {
    v1::WriteBatch b = Page("crawl-2025-10-31", item);
    if (item == 0) *b.add_repos() = testing::MakeRepo({"Qwen/Qwen2.5-7B", {}, 5000, 500});
    grpc::ClientContext ctx;
    v1::WriteResponse resp;
    auto w = stub->Write(&ctx, &resp);
    ASSERT_TRUE(w->Write(b));
    w->WritesDone();
    ASSERT_TRUE(w->Finish().ok());
    auto* e = commit.add_manifest();
    e->set_item_id(b.item_id());
    e->set_fence(1);
    e->set_repos(b.repos_size());
    e->set_id_checksum(resp.id_checksums(0));
  }
  grpc::ClientContext ctx;
  v1::CommitResponse cr;
  ASSERT_TRUE(stub->Commit(&ctx, commit, &cr).ok());
  EXPECT_EQ(cr.repos(), 151);

  std::string over_grpc, from_disk, err;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "query", "families", "--aggregator=" + addr,
                             "--format=json", "--log_level=error"},
                            &over_grpc),
            0)
      << over_grpc;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "query", "families", "--data_dir=" + dir,
                             "--format=json", "--log_level=error"},
                            &from_disk),
            0)
      << from_disk;
  EXPECT_EQ(over_grpc, from_disk);
  EXPECT_NE(over_grpc.find("{\"family\": \"Qwen\", \"region\": \"china\", \"first_party_repos\": "
                           "1, \"first_party_downloads_all_time\": 5000"),
            std::string::npos)
      << over_grpc;
  EXPECT_NE(over_grpc.find("\"finetune\": 150"), std::string::npos);

  std::string shares;
  ASSERT_EQ(
      RunToCompletion(
          {HubcensusBinary(), "query", "shares", "--aggregator=" + addr, "--format=csv"}, &shares),
      0);
  EXPECT_NE(shares.find("2025-03,150,Qwen,150,1"), std::string::npos) << shares;

  std::string lineage;
  ASSERT_EQ(RunToCompletion(
                {HubcensusBinary(), "query", "lineage", "--data_dir=" + dir, "--repo=ns1/model-3"},
                &lineage),
            0)
      << lineage;
  EXPECT_NE(lineage.find("family: Qwen"), std::string::npos) << lineage;

  std::string bad;
  EXPECT_EQ(
      RunToCompletion(
          {HubcensusBinary(), "query", "top", "--aggregator=" + addr, "--top_family=Nope"}, &bad),
      2);
  EXPECT_NE(bad.find("family: unknown family"), std::string::npos) << bad;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "query", "families", "--aggregator=" + addr,
                             "--date=2020-01-01"},
                            &bad),
            1);
  EXPECT_NE(bad.find("NOT_FOUND"), std::string::npos) << bad;

  const std::string out = dir + "/../export.csv";
  std::string export_log;
  ASSERT_EQ(RunToCompletion(
                {HubcensusBinary(), "export", "--data_dir=" + dir, "--format=csv", "--out=" + out},
                &export_log),
            0)
      << export_log;
  EXPECT_NE(export_log.find("exported 151 repos"), std::string::npos) << export_log;

  proc->Signal(SIGTERM);
  EXPECT_EQ(proc->Wait(), 0);
}

// Issue 12 #10: a families file with no family aborted `query`, `local` and the aggregator with
// a libprotobuf FATAL (exit 134). Each now exits 2 naming the file.
TEST(AggregatorProcessTest, AFamiliesFileWithNoFamilyExits2NamingTheFile) {
  const std::string dir = MakeTempDir("no-family");
  int n = 0;
  for (const char* text : {"", "# families: none yet\n", "lineage {}\n"}) {
    const std::string file = dir + "/families-" + std::to_string(n++) + ".textproto";
    std::ofstream(file) << text;
    std::string out;
    EXPECT_EQ(RunToCompletion({HubcensusBinary(), "query", "families", "--data_dir=" + dir + "/db",
                               "--families=" + file},
                              &out),
              2)
        << out;
    EXPECT_NE(out.find(file + ": no family defined"), std::string::npos) << out;
    EXPECT_EQ(RunToCompletion({HubcensusBinary(), "aggregator", "--data_dir=" + dir + "/db",
                               "--listen=127.0.0.1:0", "--families=" + file},
                              &out, absl::Seconds(60)),
              2)
        << out;
    EXPECT_NE(out.find(file + ": no family defined"), std::string::npos) << out;
  }
  const std::string twice = dir + "/twice.textproto";
  std::ofstream(twice) << "family { name: \"A\" region: \"us\" namespace: \"n\" }\n"
                          "family { name: \"B\" region: \"us\" namespace: \"n\" }\n";
  std::string out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "query", "families", "--data_dir=" + dir + "/db",
                             "--families=" + twice},
                            &out),
            2)
      << out;
  EXPECT_NE(out.find("namespace \"n\" is claimed by family \"A\" and by family \"B\""),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace hubcensus::aggregator
