// The one Census client, both ways: over loopback gRPC to a served aggregator, and through the
// in-process channel on its data folder. The same store gives the same answers and the same
// export bytes either way; an export larger than a chunk arrives whole and in order.
#include "aggregator/census_client.h"

#include <gtest/gtest.h>

#include <sstream>

#include "aggregator/aggregator.h"
#include "common/grpc_server.h"
#include "tests/aggregator/crawl_builder.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::aggregator {
namespace {

class CensusClientTest : public ::testing::Test {
 protected:
  // One committed crawl of `repos` repos with long ids: about 0.5 KiB per exported line, so
  // 4000 repos span two ExportChunks of 1 MiB.
  void SetUp() override {
    dir_ = testing::MakeTempDir("census-client") + "/store";
    AggregatorOptions o;
    o.data_dir = dir_;
    o.sync_writes = false;
    auto agg = Aggregator::Open(o);
    ASSERT_TRUE(agg.ok()) << agg.status();
    agg_ = std::move(*agg);
    v1::WriteBatch b;
    b.set_crawl_id("crawl-2025-10-31");
    b.set_crawl_date("2025-10-31");
    b.set_item_id("list/0");
    b.set_fence(1);
    *b.add_repos() = testing::MakeRepo({"Qwen/Qwen2.5-7B", {}, 385300000, 1000});
    for (int i = 0; i < 4000; ++i) {
      *b.add_repos() =
          testing::MakeRepo({"someone/qwen-finetune-with-a-long-descriptive-name-number-" +
                                 std::to_string(i) + std::string(200, 'x'),
                             {{"Qwen/Qwen2.5-7B", testing::kFinetune}},
                             1000 + i,
                             10,
                             "2025-10-05T00:00:00.000Z"});
    }
    auto written = agg_->Write(b);
    ASSERT_TRUE(written.ok()) << written.status();
    v1::CommitRequest commit;
    commit.set_crawl_id("crawl-2025-10-31");
    commit.set_crawl_date("2025-10-31");
    auto* e = commit.add_manifest();
    e->set_item_id("list/0");
    e->set_fence(1);
    e->set_repos(written->repos);
    e->set_id_checksum(written->id_checksum);
    auto committed = agg_->Commit(commit);
    ASSERT_TRUE(committed.ok()) << committed.status();
    auto server = GrpcServer::Start(GrpcServerOptions(), {agg_->census_service()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  std::string dir_;
  std::unique_ptr<Aggregator> agg_;
  std::unique_ptr<GrpcServer> server_;
};

TEST_F(CensusClientTest, RemoteAndDataDirGiveTheSameAnswersAndExportBytes) {
  auto remote = CensusClient::Connect("http://" + server_->dial_address() + "/", TlsOptions());
  ASSERT_TRUE(remote.ok()) << remote.status();
  auto in_process = CensusClient::OpenDataDir(dir_, DefaultFamilyConfig());
  ASSERT_TRUE(in_process.ok()) << in_process.status();
  EXPECT_EQ((*remote)->target(), server_->dial_address());
  EXPECT_EQ((*in_process)->target(), "");

  auto remote_families = (*remote)->Families(v1::FamiliesRequest());
  auto local_families = (*in_process)->Families(v1::FamiliesRequest());
  ASSERT_TRUE(remote_families.ok()) << remote_families.status();
  ASSERT_TRUE(local_families.ok()) << local_families.status();
  EXPECT_EQ(remote_families->SerializeAsString(), local_families->SerializeAsString());
  EXPECT_EQ(remote_families->crawl_id(), "crawl-2025-10-31");

  for (v1::ExportFormat format : {v1::EXPORT_FORMAT_JSON_LINES, v1::EXPORT_FORMAT_CSV}) {
    v1::ExportRequest request;
    request.set_format(format);
    std::ostringstream over_grpc, over_in_process, direct;
    auto n_remote = (*remote)->Export(request, over_grpc);
    auto n_local = (*in_process)->Export(request, over_in_process);
    ASSERT_TRUE(n_remote.ok()) << n_remote.status();
    ASSERT_TRUE(n_local.ok()) << n_local.status();
    auto n_direct = agg_->Export(
        v1::CrawlSelector(),
        format == v1::EXPORT_FORMAT_CSV ? ExportFormat::kCsv : ExportFormat::kJsonLines, direct);
    ASSERT_TRUE(n_direct.ok()) << n_direct.status();
    EXPECT_EQ(*n_remote, 4001);
    EXPECT_EQ(*n_local, 4001);
    // More than one 1 MiB chunk, byte for byte what the aggregator writes itself.
    EXPECT_GT(direct.str().size(), size_t{1} << 20);
    EXPECT_TRUE(over_grpc.str() == direct.str())
        << "remote export differs (format " << format << ")";
    EXPECT_TRUE(over_in_process.str() == direct.str())
        << "in-process export differs (format " << format << ")";
  }
}

TEST_F(CensusClientTest, ErrorsKeepTheServersCodeAndNameTheAddress) {
  auto in_process = CensusClient::OpenDataDir(dir_, DefaultFamilyConfig());
  ASSERT_TRUE(in_process.ok()) << in_process.status();
  v1::ExportRequest request;
  request.mutable_crawl()->set_date("2025-11-30");
  std::ostringstream out;
  auto n = (*in_process)->Export(request, out);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kNotFound) << n.status();
  EXPECT_EQ(out.str(), "");
  request.Clear();
  request.set_format(static_cast<v1::ExportFormat>(7));
  n = (*in_process)->Export(request, out);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument) << n.status();

  const int port = testing::FreeLoopbackPort();
  auto nobody = CensusClient::Connect("127.0.0.1:" + std::to_string(port), TlsOptions());
  ASSERT_TRUE(nobody.ok()) << nobody.status();
  auto crawls = (*nobody)->ListCrawls();
  EXPECT_EQ(crawls.status().code(), absl::StatusCode::kUnavailable) << crawls.status();
  EXPECT_NE(crawls.status().message().find("aggregator at 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << crawls.status();

  auto missing =
      CensusClient::OpenDataDir(testing::MakeTempDir("census-client-empty"), DefaultFamilyConfig());
  EXPECT_FALSE(missing.ok());
}

// A --data_dir client beside a running aggregator (a secondary instance) caches no answer: the
// aggregator's commits are another process's to it, so each call reads the store as it is.
TEST_F(CensusClientTest, ADataDirClientSeesACommitMadeAfterItsFirstCall) {
  auto remote = CensusClient::Connect("http://" + server_->dial_address() + "/", TlsOptions());
  ASSERT_TRUE(remote.ok()) << remote.status();
  auto in_process = CensusClient::OpenDataDir(dir_, DefaultFamilyConfig());
  ASSERT_TRUE(in_process.ok()) << in_process.status();
  v1::SeriesRequest series;
  series.set_metric("first_party_downloads_all_time");
  series.add_families("Qwen");
  for (CensusClient* client : {remote->get(), in_process->get()}) {
    auto families = client->Families(v1::FamiliesRequest());
    ASSERT_TRUE(families.ok()) << families.status();
    EXPECT_EQ(families->crawl_id(), "crawl-2025-10-31");
    auto points = client->Series(series);
    ASSERT_TRUE(points.ok()) << points.status();
    ASSERT_EQ(points->lines_size(), 1);
    EXPECT_EQ(points->lines(0).points_size(), 1);
  }

  v1::WriteBatch b;
  b.set_crawl_id("crawl-2025-11-30");
  b.set_crawl_date("2025-11-30");
  b.set_item_id("list/0");
  b.set_fence(1);
  *b.add_repos() = testing::MakeRepo({"Qwen/Qwen2.5-7B", {}, 400000000, 1000});
  auto written = agg_->Write(b);
  ASSERT_TRUE(written.ok()) << written.status();
  v1::CommitRequest commit;
  commit.set_crawl_id("crawl-2025-11-30");
  commit.set_crawl_date("2025-11-30");
  auto* e = commit.add_manifest();
  e->set_item_id("list/0");
  e->set_fence(1);
  e->set_repos(written->repos);
  e->set_id_checksum(written->id_checksum);
  ASSERT_TRUE(agg_->Commit(commit).ok());

  for (CensusClient* client : {remote->get(), in_process->get()}) {
    const std::string which = client->target().empty() ? "data_dir" : "remote";
    auto families = client->Families(v1::FamiliesRequest());
    ASSERT_TRUE(families.ok()) << families.status();
    EXPECT_EQ(families->crawl_id(), "crawl-2025-11-30") << which;
    auto points = client->Series(series);
    ASSERT_TRUE(points.ok()) << points.status();
    ASSERT_EQ(points->lines_size(), 1);
    ASSERT_EQ(points->lines(0).points_size(), 2) << which;
    EXPECT_EQ(points->lines(0).points(1).value(), 400000000) << which;
  }
}

}  // namespace
}  // namespace hubcensus::aggregator
