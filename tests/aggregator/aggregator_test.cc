#include "aggregator/aggregator.h"

#include <atomic>
#include <sstream>
#include <thread>

#include "aggregator/census_format.h"
#include "aggregator/census_metrics.h"
#include "common/checksum.h"
#include "common/grpc_server.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "hubcensus/v1/census.grpc.pb.h"
#include "hubcensus/v1/store.grpc.pb.h"
#include "tests/aggregator/crawl_builder.h"
#include "tests/store/no_space_file_system.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::aggregator {
namespace {

using testing::kFinetune;
using testing::kQuantized;
using testing::MakeRepo;
using testing::RepoSpec;

v1::FamilyConfig ServedFamilies() {
  auto config = ParseFamilyConfig(R"pb(
                                    family { name: "Qwen" region: "china" namespace: "Qwen" }
                                    family { name: "Llama" region: "us" namespace: "meta-llama" }
                                    family { name: "Mistral" region: "eu" namespace: "mistralai" }
                                  )pb",
                                  "test.textproto");
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

std::string CrawlId(const std::string& date) { return "crawl-" + date; }

// A crawl where Qwen's first-party all-time downloads are `qwen` and Llama's `llama`.
std::vector<RepoSpec> CrawlSpecs(int64_t qwen, int64_t llama, int extra = 0) {
  std::vector<RepoSpec> specs = {
      {"Qwen/Qwen2.5-7B", {}, qwen, qwen / 10},
      {"meta-llama/Llama-3-8B", {}, llama, llama / 10},
      {"a/ft", {{"Qwen/Qwen2.5-7B", kFinetune}}, 50, 5, "2025-01-05T00:00:00.000Z"},
      {"b/gguf", {{"a/ft", kQuantized}}, 20, 2, "2025-01-06T00:00:00.000Z"},
      {"c/llama-ft", {{"meta-llama/Llama-3-8B", kFinetune}}, 30, 3, "2025-01-07T00:00:00.000Z"},
  };
  for (int i = 0; i < extra; ++i) {
    specs.push_back({"d/ft" + std::to_string(i), {{"Qwen/Qwen2.5-7B", kFinetune}}, 10 + i, 1});
  }
  return specs;
}

class AggregatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = hubcensus::testing::MakeTempDir("aggregator");
    Start(ServedFamilies());
  }
  void Start(const v1::FamilyConfig& families, rocksdb::Env* env = nullptr) {
    server_.reset();
    agg_.reset();
    AggregatorOptions o;
    o.data_dir = dir_;
    o.families = families;
    o.sync_writes = false;
    o.store_env = env;
    auto agg = Aggregator::Open(o);
    ASSERT_TRUE(agg.ok()) << agg.status();
    agg_ = std::move(*agg);
    auto server = GrpcServer::Start(GrpcServerOptions(),
                                    {agg_->snapshot_store_service(), agg_->census_service()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto channel = MakeChannel(server_->dial_address());
    store_ = v1::SnapshotStore::NewStub(channel);
    census_ = v1::Census::NewStub(channel);
  }

  // Streams the batches in one Write call.
  grpc::Status Write(const std::vector<v1::WriteBatch>& batches, v1::WriteResponse* response) {
    grpc::ClientContext ctx;
    auto writer = store_->Write(&ctx, response);
    for (const auto& b : batches) {
      if (!writer->Write(b)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  // Writes a crawl in pages of `page` repos over gRPC; returns its manifest.
  v1::CommitRequest Ingest(const std::string& date, const std::vector<RepoSpec>& specs,
                           int page = 2) {
    v1::CommitRequest commit;
    commit.set_crawl_id(CrawlId(date));
    commit.set_crawl_date(date);
    for (size_t start = 0, item = 0; start < specs.size(); start += page, ++item) {
      v1::WriteBatch b;
      b.set_crawl_id(CrawlId(date));
      b.set_crawl_date(date);
      b.set_item_id("list/" + std::to_string(item));
      b.set_fence(1);
      RepoIdChecksum checksum;
      for (size_t i = start; i < specs.size() && i < start + page; ++i) {
        *b.add_repos() = MakeRepo(specs[i]);
        checksum.Add(specs[i].id);
      }
      v1::WriteResponse response;
      grpc::Status s = Write({b}, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(response.id_checksums_size(), 1);
      if (response.id_checksums_size() == 1) {
        EXPECT_EQ(response.id_checksums(0), checksum.value());
      }
      auto* e = commit.add_manifest();
      e->set_item_id(b.item_id());
      e->set_fence(1);
      e->set_repos(b.repos_size());
      e->set_id_checksum(checksum.value());
    }
    return commit;
  }

  grpc::Status CommitRpc(const v1::CommitRequest& req, v1::CommitResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    v1::CommitResponse ignored;
    return store_->Commit(&ctx, req, resp ? resp : &ignored);
  }

  void IngestAndCommit(const std::string& date, const std::vector<RepoSpec>& specs) {
    auto manifest = Ingest(date, specs);
    grpc::Status s = CommitRpc(manifest);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  v1::FamiliesResponse Families(const v1::FamiliesRequest& req, grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    v1::FamiliesResponse resp;
    grpc::Status s = census_->Families(&ctx, req, &resp);
    if (status)
      *status = s;
    else
      EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  std::string dir_;
  std::unique_ptr<Aggregator> agg_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<v1::SnapshotStore::Stub> store_;
  std::unique_ptr<v1::Census::Stub> census_;
};

TEST_F(AggregatorTest, IngestsCommitsAndAnswersOverGrpc) {
  auto specs = CrawlSpecs(1000, 700);
  auto manifest = Ingest("2025-01-31", specs);
  v1::CommitResponse committed;
  grpc::Status s = CommitRpc(manifest, &committed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(committed.repos(), 5);
  EXPECT_EQ(committed.families(), 3);
  // A repeated commit is fine; a late write is not.
  EXPECT_TRUE(CommitRpc(manifest).ok());
  v1::WriteBatch late;
  late.set_crawl_id(CrawlId("2025-01-31"));
  late.set_item_id("list/9");
  late.set_fence(1);
  v1::WriteResponse wr;
  EXPECT_EQ(Write({late}, &wr).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  auto families = Families(v1::FamiliesRequest());
  EXPECT_EQ(families.crawl_id(), "crawl-2025-01-31");
  // The materialised rollup equals a direct computation over the same repos.
  auto want = ComputeCensus(testing::MakeSnapshot(specs), agg_->families(), "crawl-2025-01-31",
                            "2025-01-31", 0);
  ASSERT_TRUE(want.ok());
  v1::FamiliesResponse figures_only = families;
  figures_only.clear_counts();  // the counts come with the crawl record, not the figures
  EXPECT_EQ(FamiliesToJson(figures_only), FamiliesToJson(want->families));
  EXPECT_EQ(families.counts().repos(), 5);
  EXPECT_EQ(families.families(0).figures().first_party_downloads_all_time(), 1000);
  EXPECT_EQ(families.families(0).figures().derivatives().quantized(), 1);
  EXPECT_EQ(families.families(0).figures().ecosystem_downloads_all_time(), 1070);

  grpc::ClientContext ctx;
  v1::SharesRequest shares_req;
  v1::SharesResponse shares;
  ASSERT_TRUE(census_->Shares(&ctx, shares_req, &shares).ok());
  ASSERT_EQ(shares.months_size(), 1);
  EXPECT_EQ(shares.months(0).month(), "2025-01");
  EXPECT_EQ(shares.months(0).total(), 3);

  grpc::ClientContext ctx2;
  v1::TopReposRequest top_req;
  top_req.set_family("Qwen");
  top_req.set_k(2);
  v1::TopReposResponse top;
  ASSERT_TRUE(census_->TopRepos(&ctx2, top_req, &top).ok());
  ASSERT_EQ(top.repos_size(), 2);
  EXPECT_EQ(top.repos(0).id(), "Qwen/Qwen2.5-7B");
  EXPECT_EQ(top.repos(1).id(), "a/ft");

  grpc::ClientContext ctx3;
  v1::LineageRequest lin_req;
  lin_req.set_repo_id("b/gguf");
  v1::LineageResponse lineage;
  ASSERT_TRUE(census_->Lineage(&ctx3, lin_req, &lineage).ok());
  ASSERT_EQ(lineage.walk_size(), 3);
  EXPECT_EQ(lineage.family(), "Qwen");
  EXPECT_EQ(lineage.stop(), v1::LINEAGE_STOP_FIRST_PARTY);

  // Ad hoc: only Llama is a family now.
  v1::FamiliesRequest ad_hoc;
  auto* f = ad_hoc.mutable_families()->add_family();
  f->set_name("Llama");
  f->set_region("us");
  f->add_namespace_("meta-llama");
  auto llama_only = Families(ad_hoc);
  ASSERT_EQ(llama_only.families_size(), 1);
  EXPECT_EQ(llama_only.families(0).figures().ecosystem_downloads_all_time(), 730);
}

TEST_F(AggregatorTest, StaleFenceAndManifestMismatchOverGrpc) {
  v1::WriteBatch b;
  b.set_crawl_id("crawl-x");
  b.set_crawl_date("2025-01-31");
  b.set_item_id("list/0");
  b.set_fence(3);
  *b.add_repos() = MakeRepo({"a/one"});
  v1::WriteResponse wr;
  ASSERT_TRUE(Write({b}, &wr).ok());
  b.set_fence(2);
  grpc::Status s = Write({b}, &wr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED) << s.error_message();
  v1::CommitRequest req;
  req.set_crawl_id("crawl-x");
  auto* e = req.add_manifest();
  e->set_item_id("list/0");
  e->set_fence(3);
  e->set_repos(1);
  e->set_id_checksum(12345);
  s = CommitRpc(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("list/0"), std::string::npos) << s.error_message();
  grpc::ClientContext ctx;
  v1::AbortRequest abort;
  abort.set_crawl_id("crawl-x");
  v1::AbortResponse ar;
  EXPECT_TRUE(store_->Abort(&ctx, abort, &ar).ok());
  b.set_fence(4);
  EXPECT_EQ(Write({b}, &wr).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

struct BadCase {
  std::string name;
  std::function<grpc::Status(v1::Census::Stub*, grpc::ClientContext*)> call;
  grpc::StatusCode code;
  std::string field;
};

TEST_F(AggregatorTest, EveryCensusRpcRefusesBadArguments) {
  {
    grpc::Status s;
    Families(v1::FamiliesRequest(), &s);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << "no committed crawl yet";
  }
  IngestAndCommit("2025-01-31", CrawlSpecs(100, 200));
  auto families = [](std::function<void(v1::FamiliesRequest*)> edit) {
    return [edit](v1::Census::Stub* stub, grpc::ClientContext* ctx) {
      v1::FamiliesRequest r;
      edit(&r);
      v1::FamiliesResponse resp;
      return stub->Families(ctx, r, &resp);
    };
  };
  auto series = [](std::function<void(v1::SeriesRequest*)> edit) {
    return [edit](v1::Census::Stub* stub, grpc::ClientContext* ctx) {
      v1::SeriesRequest r;
      r.set_metric("first_party_repos");
      edit(&r);
      v1::SeriesResponse resp;
      return stub->Series(ctx, r, &resp);
    };
  };
  auto shares = [](std::function<void(v1::SharesRequest*)> edit) {
    return [edit](v1::Census::Stub* stub, grpc::ClientContext* ctx) {
      v1::SharesRequest r;
      edit(&r);
      v1::SharesResponse resp;
      return stub->Shares(ctx, r, &resp);
    };
  };
  auto crossover = [](std::function<void(v1::CrossoverRequest*)> edit) {
    return [edit](v1::Census::Stub* stub, grpc::ClientContext* ctx) {
      v1::CrossoverRequest r;
      r.set_a("Qwen");
      r.set_b("Llama");
      edit(&r);
      v1::CrossoverResponse resp;
      return stub->Crossover(ctx, r, &resp);
    };
  };
  auto top = [](std::function<void(v1::TopReposRequest*)> edit) {
    return [edit](v1::Census::Stub* stub, grpc::ClientContext* ctx) {
      v1::TopReposRequest r;
      r.set_family("Qwen");
      edit(&r);
      v1::TopReposResponse resp;
      return stub->TopRepos(ctx, r, &resp);
    };
  };
  auto lineage = [](std::function<void(v1::LineageRequest*)> edit) {
    return [edit](v1::Census::Stub* stub, grpc::ClientContext* ctx) {
      v1::LineageRequest r;
      r.set_repo_id("a/ft");
      edit(&r);
      v1::LineageResponse resp;
      return stub->Lineage(ctx, r, &resp);
    };
  };
  auto bad_region = [](v1::FamilyConfig* c) {
    auto* f = c->add_family();
    f->set_name("A");
    f->set_region("us");
    f->add_namespace_("a");
    f = c->add_family();
    f->set_name("B");
    f->set_region("eu");
    f->add_namespace_("b");
    f = c->add_family();
    f->set_name("C");
    f->set_region("mars");
    f->add_namespace_("c");
  };
  const auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  const auto kNotFound = grpc::StatusCode::NOT_FOUND;
  std::vector<BadCase> cases = {
      {"families bad date", families([](auto* r) { r->mutable_crawl()->set_date("2025-13-01"); }),
       kInvalid, "crawl.date"},
      {"families unknown date",
       families([](auto* r) { r->mutable_crawl()->set_date("2020-01-01"); }), kNotFound,
       "2020-01-01"},
      {"families unknown crawl",
       families([](auto* r) { r->mutable_crawl()->set_crawl_id("crawl-nope"); }), kNotFound,
       "crawl-nope"},
      {"families bad ad-hoc config", families([&](auto* r) { bad_region(r->mutable_families()); }),
       kInvalid, "families.family[2].region"},
      {"series no metric", series([](auto* r) { r->clear_metric(); }), kInvalid, "metric"},
      {"series unknown metric", series([](auto* r) { r->set_metric("likes"); }), kInvalid,
       "metric"},
      {"series unknown family", series([](auto* r) {
         r->add_families("Qwen");
         r->add_families("Nope");
       }),
       kInvalid, "families[1]"},
      {"series unknown region", series([](auto* r) { r->add_regions("mars"); }), kInvalid,
       "regions[0]"},
      {"series bad from", series([](auto* r) { r->set_from_date("yesterday"); }), kInvalid,
       "from_date"},
      {"series bad to", series([](auto* r) { r->set_to_date("2025-02-30"); }), kInvalid, "to_date"},
      {"series reversed", series([](auto* r) {
         r->set_from_date("2025-03-01");
         r->set_to_date("2025-01-01");
       }),
       kInvalid, "from_date"},
      {"shares bad from", shares([](auto* r) { r->set_from_month("2025-13"); }), kInvalid,
       "from_month"},
      {"shares bad to", shares([](auto* r) { r->set_to_month("October"); }), kInvalid, "to_month"},
      {"shares reversed", shares([](auto* r) {
         r->set_from_month("2025-05");
         r->set_to_month("2025-01");
       }),
       kInvalid, "from_month"},
      {"shares unknown date", shares([](auto* r) { r->mutable_crawl()->set_date("2024-01-01"); }),
       kNotFound, "2024-01-01"},
      {"shares bad config", shares([&](auto* r) { bad_region(r->mutable_families()); }), kInvalid,
       "families.family[2].region"},
      {"crossover no a", crossover([](auto* r) { r->clear_a(); }), kInvalid, "a:"},
      {"crossover unknown b", crossover([](auto* r) { r->set_b("Nope"); }), kInvalid, "b:"},
      {"crossover same", crossover([](auto* r) { r->set_b("Qwen"); }), kInvalid, "b:"},
      {"crossover metric", crossover([](auto* r) { r->set_metric("stars"); }), kInvalid, "metric"},
      {"crossover date", crossover([](auto* r) { r->set_from_date("2025-1-1"); }), kInvalid,
       "from_date"},
      {"top no family", top([](auto* r) { r->clear_family(); }), kInvalid, "family"},
      {"top unknown family", top([](auto* r) { r->set_family("Nope"); }), kInvalid, "family"},
      {"top k too big", top([](auto* r) { r->set_k(5000); }), kInvalid, "k:"},
      {"top k negative", top([](auto* r) { r->set_k(-1); }), kInvalid, "k:"},
      {"top order", top([](auto* r) { r->set_order_by("likes"); }), kInvalid, "order_by"},
      {"top unknown crawl", top([](auto* r) { r->mutable_crawl()->set_crawl_id("nope"); }),
       kNotFound, "nope"},
      {"lineage no repo", lineage([](auto* r) { r->clear_repo_id(); }), kInvalid, "repo_id"},
      {"lineage unknown repo", lineage([](auto* r) { r->set_repo_id("zz/unknown"); }), kNotFound,
       "zz/unknown"},
      {"lineage bad date", lineage([](auto* r) { r->mutable_crawl()->set_date("31-01-2025"); }),
       kInvalid, "crawl.date"},
      {"lineage bad config", lineage([&](auto* r) { bad_region(r->mutable_families()); }), kInvalid,
       "families.family[2].region"},
  };
  for (const auto& c : cases) {
    grpc::ClientContext ctx;
    grpc::Status s = c.call(census_.get(), &ctx);
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(c.field), std::string::npos)
        << c.name << ": \"" << s.error_message() << "\" does not name " << c.field;
  }
}

TEST_F(AggregatorTest, SeriesAndCrossoverOverCommittedCrawls) {
  IngestAndCommit("2025-01-31", CrawlSpecs(100, 500));
  IngestAndCommit("2025-02-28", CrawlSpecs(300, 400));
  IngestAndCommit("2025-03-31", CrawlSpecs(900, 600));
  {
    grpc::ClientContext ctx;
    v1::CrossoverRequest req;
    req.set_a("Qwen");
    req.set_b("Llama");
    req.set_metric("first_party_downloads_all_time");
    v1::CrossoverResponse resp;
    ASSERT_TRUE(census_->Crossover(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.found());
    EXPECT_EQ(resp.date(), "2025-03-31");
    EXPECT_EQ(resp.previous_date(), "2025-02-28");
    EXPECT_EQ(resp.a_value(), 900);
    EXPECT_EQ(resp.previous_b_value(), 400);
    // Llama never overtakes Qwen after being below it.
    grpc::ClientContext ctx2;
    req.set_a("Llama");
    req.set_b("Qwen");
    ASSERT_TRUE(census_->Crossover(&ctx2, req, &resp).ok());
    EXPECT_FALSE(resp.found());
  }
  {
    grpc::ClientContext ctx;
    v1::SeriesRequest req;
    req.set_metric("downloads_in_period");
    req.add_families("Qwen");
    req.set_from_date("2025-02-01");
    v1::SeriesResponse resp;
    ASSERT_TRUE(census_->Series(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.lines_size(), 1);
    ASSERT_EQ(resp.lines(0).points_size(), 2);
    EXPECT_EQ(resp.lines(0).points(0).value(), 200);  // the difference from January's crawl
    EXPECT_EQ(resp.lines(0).points(1).value(), 600);
  }
  {
    grpc::ClientContext ctx;
    v1::SeriesRequest req;
    req.set_metric("first_party_downloads_all_time");
    req.add_regions("us");
    req.set_to_date("2025-02-28");
    v1::SeriesResponse resp;
    ASSERT_TRUE(census_->Series(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.lines(0).points_size(), 2);
    EXPECT_EQ(resp.lines(0).name(), "us");
    EXPECT_EQ(resp.lines(0).points(1).value(), 400);
  }
  {
    grpc::ClientContext ctx;
    v1::ListCommittedCrawlsResponse resp;
    ASSERT_TRUE(census_->ListCrawls(&ctx, v1::ListCommittedCrawlsRequest(), &resp).ok());
    ASSERT_EQ(resp.crawls_size(), 3);
    EXPECT_EQ(resp.crawls(0).date(), "2025-01-31");
  }
  // Families by date picks the right crawl.
  v1::FamiliesRequest req;
  req.mutable_crawl()->set_date("2025-02-28");
  EXPECT_EQ(Families(req).families(1).figures().first_party_downloads_all_time(), 400);
}

TEST_F(AggregatorTest, AQueryDuringIngestSeesOnlyThePreviousCrawl) {
  IngestAndCommit("2025-01-31", CrawlSpecs(100, 500));
  const std::string first = FamiliesToJson(Families(v1::FamiliesRequest()));
  auto second_specs = CrawlSpecs(300, 400, 60);
  auto second_want = ComputeCensus(testing::MakeSnapshot(second_specs), agg_->families(),
                                   "crawl-2025-02-28", "2025-02-28", 0);
  ASSERT_TRUE(second_want.ok());
  const std::string second = FamiliesToJson(second_want->families);

  std::atomic<bool> done{false};
  std::atomic<int> seen_first{0}, seen_second{0}, seen_other{0};
  std::thread reader([&] {
    while (!done.load()) {
      auto got = FamiliesToJson(Families(v1::FamiliesRequest()));
      if (got == first) {
        ++seen_first;
      } else if (got == second) {
        ++seen_second;
      } else {
        ++seen_other;
      }
    }
  });
  auto manifest = Ingest("2025-02-28", second_specs, 3);
  // Every batch of the second crawl is in; it is still invisible.
  EXPECT_EQ(FamiliesToJson(Families(v1::FamiliesRequest())), first);
  {
    grpc::ClientContext ctx;
    v1::ListCommittedCrawlsResponse resp;
    ASSERT_TRUE(census_->ListCrawls(&ctx, v1::ListCommittedCrawlsRequest(), &resp).ok());
    EXPECT_EQ(resp.crawls_size(), 1);
  }
  ASSERT_TRUE(CommitRpc(manifest).ok());
  while (seen_second.load() == 0) std::this_thread::yield();
  done = true;
  reader.join();
  EXPECT_GT(seen_first.load(), 0);
  EXPECT_EQ(seen_other.load(), 0) << "a query saw a half-published crawl";
  EXPECT_EQ(FamiliesToJson(Families(v1::FamiliesRequest())), second);
}

TEST_F(AggregatorTest, ANewServedConfigRematerialisesRollups) {
  IngestAndCommit("2025-01-31", CrawlSpecs(100, 500));
  auto llama_first =
      ParseFamilyConfig(R"pb(
                          family { name: "Llama" region: "us" namespace: "meta-llama" }
                          family { name: "Qwen" region: "china" namespace: "Qwen" }
                        )pb",
                        "t");
  ASSERT_TRUE(llama_first.ok());
  Start(*llama_first);
  auto families = Families(v1::FamiliesRequest());
  ASSERT_EQ(families.families_size(), 2);
  EXPECT_EQ(families.families(0).family(), "Llama");
  EXPECT_EQ(families.families(0).figures().first_party_downloads_all_time(), 500);
}

}  // namespace
}  // namespace hubcensus::aggregator

namespace hubcensus::aggregator {
namespace {

// What per-repo detail shards are planned from (listing.fetch_details): the store names the repos
// of a batch that are new or whose sha changed since the latest committed crawl before it.
TEST_F(AggregatorTest, ReportsNewAndChangedReposSinceTheLastCommittedCrawl) {
  auto batch_of = [](const std::string& date,
                     const std::vector<std::pair<std::string, std::string>>& repos) {
    v1::WriteBatch b;
    b.set_crawl_id(CrawlId(date));
    b.set_crawl_date(date);
    b.set_item_id("createdAt/p000000");
    b.set_fence(1);
    b.set_report_changed(true);
    for (const auto& [id, sha] : repos) {
      v1::RepoSnapshot* r = b.add_repos();
      r->set_id(id);
      r->set_author(id.substr(0, id.find('/')));
      r->set_sha(sha);
      r->set_downloads_all_time(10);
    }
    return b;
  };
  // No committed crawl yet: everything is new.
  v1::WriteBatch first = batch_of("2025-09-30", {{"Qwen/A", "s1"}, {"x/B", "s1"}});
  v1::WriteResponse response;
  ASSERT_TRUE(Write({first}, &response).ok());
  EXPECT_THAT(response.changed_repo_ids(), ::testing::ElementsAre("Qwen/A", "x/B"));
  v1::CommitRequest commit;
  commit.set_crawl_id(first.crawl_id());
  commit.set_crawl_date(first.crawl_date());
  auto* e = commit.add_manifest();
  e->set_item_id(first.item_id());
  e->set_fence(1);
  e->set_repos(2);
  RepoIdChecksum sum;
  sum.Add("Qwen/A");
  sum.Add("x/B");
  e->set_id_checksum(sum.value());
  ASSERT_TRUE(CommitRpc(commit).ok());

  // The next crawl: A unchanged, B with a new head commit, C new.
  v1::WriteBatch second = batch_of("2025-10-31", {{"Qwen/A", "s1"}, {"x/B", "s2"}, {"y/C", "s1"}});
  v1::WriteResponse second_response;
  ASSERT_TRUE(Write({second}, &second_response).ok());
  EXPECT_THAT(second_response.changed_repo_ids(), ::testing::ElementsAre("x/B", "y/C"));

  // Without report_changed nothing is reported (the default listing needs no details).
  second.set_report_changed(false);
  v1::WriteResponse quiet;
  ASSERT_TRUE(Write({second}, &quiet).ok());
  EXPECT_EQ(quiet.changed_repo_ids_size(), 0);
}

// Issue 12: a census carries its counts: what the coordinator counted (rejections, private
// entries skipped, unreadable details) and the repos the store published.
TEST_F(AggregatorTest, TheCensusCountsComeWithFamiliesAndTheCrawlList) {
  auto manifest = Ingest("2025-01-31", CrawlSpecs(1000, 700));
  auto* counts = manifest.mutable_counts();
  counts->set_rejected_entries(3);
  (*counts->mutable_rejected_by_reason())["bad_id"] = 2;
  (*counts->mutable_rejected_by_reason())["missing_id"] = 1;
  counts->set_private_skipped(11);
  counts->set_unreadable(1);
  (*counts->mutable_unreadable_by_reason())["403"] = 1;
  ASSERT_TRUE(CommitRpc(manifest).ok());
  for (int restart = 0; restart < 2; ++restart) {
    SCOPED_TRACE(restart ? "after a restart" : "as committed");
    auto families = Families(v1::FamiliesRequest());
    EXPECT_EQ(families.counts().repos(), 5);
    EXPECT_EQ(families.counts().rejected_entries(), 3);
    EXPECT_EQ(families.counts().rejected_by_reason().at("bad_id"), 2);
    EXPECT_EQ(families.counts().private_skipped(), 11);
    EXPECT_EQ(families.counts().unreadable_by_reason().at("403"), 1);
    // An ad-hoc families config reads the same crawl: the same counts.
    v1::FamiliesRequest ad_hoc;
    auto* f = ad_hoc.mutable_families()->add_family();
    f->set_name("Llama");
    f->set_region("us");
    f->add_namespace_("meta-llama");
    EXPECT_EQ(Families(ad_hoc).counts().private_skipped(), 11);

    grpc::ClientContext ctx;
    v1::ListCommittedCrawlsResponse list;
    ASSERT_TRUE(census_->ListCrawls(&ctx, v1::ListCommittedCrawlsRequest(), &list).ok());
    ASSERT_EQ(list.crawls_size(), 1);
    EXPECT_EQ(list.crawls(0).counts().repos(), 5);
    EXPECT_EQ(list.crawls(0).counts().rejected_entries(), 3);
    EXPECT_EQ(list.crawls(0).counts().unreadable(), 1);
    Start(ServedFamilies());
  }
}

// Issue 11: placeholder createdAt values (both of them) count in every sum and are new in no
// month; Shares says how many were left out.
TEST_F(AggregatorTest, PlaceholderDatedReposAreNewInNoMonth) {
  auto specs = CrawlSpecs(1000, 700);
  specs.push_back(
      {"old/ft04", {{"Qwen/Qwen2.5-7B", kFinetune}}, 50, 5, "2022-03-02T23:29:04.000Z"});
  specs.push_back(
      {"old/ft05", {{"Qwen/Qwen2.5-7B", kFinetune}}, 50, 5, "2022-03-02T23:29:05.000Z"});
  IngestAndCommit("2025-01-31", specs);
  grpc::ClientContext ctx;
  v1::SharesRequest req;
  req.set_from_month("2025-01");
  v1::SharesResponse shares;
  ASSERT_TRUE(census_->Shares(&ctx, req, &shares).ok());
  EXPECT_EQ(shares.placeholder_dated_left_out(), 2);
  ASSERT_EQ(shares.months_size(), 1);
  EXPECT_EQ(shares.months(0).total(), 3);
  grpc::ClientContext ctx2;
  v1::SharesResponse all;
  ASSERT_TRUE(census_->Shares(&ctx2, v1::SharesRequest(), &all).ok());
  ASSERT_GT(all.months_size(), 0);
  EXPECT_EQ(all.months(0).month(), "2025-01");  // no 2022-03 bar at all
  auto families = Families(v1::FamiliesRequest());
  EXPECT_EQ(families.families(0).figures().derivatives().finetune(), 3);  // but in the sums
}

// Issue 11: private repos are never stored, counted or exported. A batch with one is refused
// (the crawler drops them first); a private repo met as a parent is missing, so its children
// are classified by its namespace and the walk stops there.
TEST_F(AggregatorTest, PrivateReposAreNeverStoredCountedOrExported) {
  v1::WriteBatch with_private;
  with_private.set_crawl_id(CrawlId("2025-01-31"));
  with_private.set_crawl_date("2025-01-31");
  with_private.set_item_id("list/0");
  with_private.set_fence(1);
  *with_private.add_repos() = MakeRepo({"a/public"});
  v1::RepoSnapshot secret = MakeRepo({"Qwen/secret-base", {{"meta-llama/Llama-3-8B", kFinetune}}});
  secret.set_is_private(true);
  *with_private.add_repos() = secret;
  v1::WriteResponse wr;
  grpc::Status refused = Write({with_private}, &wr);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(refused.error_message().find("\"Qwen/secret-base\" is private"), std::string::npos)
      << refused.error_message();

  // What the crawler sends instead: the public entries only. Two of them derive from private
  // repos: one in Qwen's namespace, one in a user's namespace built on Llama.
  std::vector<RepoSpec> specs = {
      {"Qwen/Qwen2.5-7B", {}, 1000, 100},
      {"meta-llama/Llama-3-8B", {}, 700, 70},
      {"u/child-of-qwen-secret",
       {{"Qwen/secret-base", kFinetune}},
       40,
       4,
       "2025-01-05T00:00:00.000Z"},
      {"u/child-of-user-secret",
       {{"someone/private-llama-ft", kFinetune}},
       30,
       3,
       "2025-01-06T00:00:00.000Z"},
  };
  IngestAndCommit("2025-01-31", specs);
  auto families = Families(v1::FamiliesRequest());
  EXPECT_EQ(families.counts().repos(), 4);
  EXPECT_EQ(families.families(0).family(), "Qwen");
  EXPECT_EQ(families.families(0).figures().first_party_repos(), 1);  // not the private one
  EXPECT_EQ(families.families(0).figures().derivatives().finetune(), 1);
  EXPECT_EQ(families.families(1).figures().derivatives().finetune(), 0);  // walk stopped

  grpc::ClientContext ctx;
  v1::LineageRequest lin;
  lin.set_repo_id("u/child-of-qwen-secret");
  v1::LineageResponse lineage;
  ASSERT_TRUE(census_->Lineage(&ctx, lin, &lineage).ok());
  EXPECT_EQ(lineage.family(), "Qwen");
  // The private parent is a missing one: Qwen's by its namespace, and the walk ends there.
  EXPECT_EQ(lineage.stop(), v1::LINEAGE_STOP_FIRST_PARTY);
  ASSERT_EQ(lineage.walk_size(), 2);
  EXPECT_EQ(lineage.walk(1).repo_id(), "Qwen/secret-base");
  EXPECT_FALSE(lineage.walk(1).in_crawl());

  std::ostringstream exported;
  auto n = agg_->Export(v1::CrawlSelector(), ExportFormat::kJsonLines, exported);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 4);
  // The private repo is named only as a parent in its child's public tags, never as a repo.
  std::istringstream lines(exported.str());
  for (std::string line; std::getline(lines, line);) {
    EXPECT_NE(line.rfind("{\"id\": \"Qwen/secret-base\"", 0), 0u) << line;
    EXPECT_NE(line.rfind("{\"id\": \"someone/private-llama-ft\"", 0), 0u) << line;
  }
  EXPECT_EQ(exported.str().find("\"private\": true"), std::string::npos);
}

// Issue 12 #9 over gRPC: two streams list one repo under its old and new names.
TEST_F(AggregatorTest, ARepoRenamedMidCrawlCountsOnce) {
  RepoSpec old_name{"alice/qwen-ft", {{"Qwen/Qwen2.5-7B", kFinetune}}, 50, 5};
  RepoSpec new_name = old_name;
  new_name.id = "alice-lab/qwen-ft";
  old_name.object_id = new_name.object_id = "65f0aa11bb22cc33dd44ee55";
  auto specs = CrawlSpecs(1000, 700);
  specs.push_back(old_name);
  specs.push_back(new_name);  // ingested after: the newest-seen name
  IngestAndCommit("2025-01-31", specs);
  auto families = Families(v1::FamiliesRequest());
  EXPECT_EQ(families.counts().repos(), 6);
  EXPECT_EQ(families.families(0).figures().derivatives().finetune(), 2);
}

// Issue 12 #5: with the store's disk full the aggregator stays up: ingest answers
// RESOURCE_EXHAUSTED naming the cause, every census query still answers (a restart on the full
// disk too), and once space returns a crawl is ingested and committed, with no restart.
TEST_F(AggregatorTest, AFullDiskRefusesIngestAndKeepsServingQueries) {
  hubcensus::testing::NoSpaceEnv disk;
  Start(ServedFamilies(), disk.env.get());
  IngestAndCommit("2025-01-31", CrawlSpecs(1000, 700));
  const auto before = Families(v1::FamiliesRequest());

  disk.fs->SetFull(true);
  auto check_serving = [&] {
    auto families = Families(v1::FamiliesRequest());
    EXPECT_EQ(families.families(0).figures().first_party_downloads_all_time(),
              before.families(0).figures().first_party_downloads_all_time());
    grpc::ClientContext ctx;
    v1::TopReposRequest top_req;
    top_req.set_family("Qwen");
    v1::TopReposResponse top;
    EXPECT_TRUE(census_->TopRepos(&ctx, top_req, &top).ok());
    grpc::ClientContext ctx2;
    v1::ListCommittedCrawlsResponse list;
    EXPECT_TRUE(census_->ListCrawls(&ctx2, v1::ListCommittedCrawlsRequest(), &list).ok());
    std::ostringstream exported;
    EXPECT_TRUE(agg_->Export(v1::CrawlSelector(), ExportFormat::kCsv, exported).ok());
  };
  v1::WriteBatch page;
  page.set_crawl_id(CrawlId("2025-02-28"));
  page.set_crawl_date("2025-02-28");
  page.set_item_id("list/0");
  page.set_fence(1);
  *page.add_repos() = MakeRepo({"e/new"});
  for (int attempt = 0; attempt < 2; ++attempt) {
    v1::WriteResponse wr;
    grpc::Status refused = Write({page}, &wr);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << refused.error_message();
    EXPECT_NE(refused.error_message().find("disk full"), std::string::npos)
        << refused.error_message();
    check_serving();
  }
  // Restarted on the full disk, under another served config (whose rollups it cannot write):
  // it opens and answers.
  v1::FamilyConfig llama_first = ServedFamilies();
  std::swap(*llama_first.mutable_family(0), *llama_first.mutable_family(1));
  Start(llama_first, disk.env.get());
  auto reopened = Families(v1::FamiliesRequest());
  EXPECT_EQ(reopened.families(0).family(), "Llama");
  Start(ServedFamilies(), disk.env.get());
  check_serving();

  disk.fs->SetFull(false);
  IngestAndCommit("2025-02-28", CrawlSpecs(2000, 700));
  grpc::ClientContext ctx;
  v1::ListCommittedCrawlsResponse list;
  ASSERT_TRUE(census_->ListCrawls(&ctx, v1::ListCommittedCrawlsRequest(), &list).ok());
  EXPECT_EQ(list.crawls_size(), 2);
  EXPECT_EQ(Families(v1::FamiliesRequest()).families(0).figures().first_party_downloads_all_time(),
            2000);
  server_.reset();
  agg_.reset();  // before the Env it uses goes
}

// Crawls committed before the shares had a rollup of their own keep them inside "summary":
// Shares, Families and Series read such a crawl as they read a new one, without recomputing it.
TEST_F(AggregatorTest, CrawlsWithTheOlderRollupLayoutAnswerTheSame) {
  IngestAndCommit("2025-01-31", CrawlSpecs(300, 200));
  grpc::ClientContext shares_ctx;
  v1::SharesResponse shares_before;
  ASSERT_TRUE(census_->Shares(&shares_ctx, v1::SharesRequest(), &shares_before).ok());
  const auto families_before = Families(v1::FamiliesRequest());
  // Rewrite the crawl's rollups as the older layout had them: one summary holding everything.
  {
    auto view = agg_->store()->View();
    ASSERT_TRUE(view.ok());
    auto crawl = (*view)->FindCrawl(CrawlId("2025-01-31"));
    ASSERT_TRUE(crawl.ok());
    auto summary = (*view)->GetRollup(crawl->crawl_number(), "summary");
    ASSERT_TRUE(summary.ok() && summary->has_value());
    v1::CrawlRollup old;
    ASSERT_TRUE(old.ParseFromString(**summary));
    // Different from what a recomputation gives: the answer shows which one was read.
    v1::SharesResponse marked = shares_before;
    marked.set_placeholder_dated_left_out(shares_before.placeholder_dated_left_out() + 1000);
    *old.mutable_shares() = marked;
    ASSERT_TRUE(agg_->store()
                    ->PutRollups(crawl->crawl_number(), {{"summary", old.SerializeAsString()}})
                    .ok());
  }
  Start(ServedFamilies());
  grpc::ClientContext ctx;
  v1::SharesResponse shares_after;
  ASSERT_TRUE(census_->Shares(&ctx, v1::SharesRequest(), &shares_after).ok());
  EXPECT_EQ(shares_after.placeholder_dated_left_out(),
            shares_before.placeholder_dated_left_out() + 1000);
  EXPECT_EQ(shares_after.months_size(), shares_before.months_size());
  EXPECT_EQ(Families(v1::FamiliesRequest()).SerializeAsString(),
            families_before.SerializeAsString());
}

}  // namespace
}  // namespace hubcensus::aggregator

namespace hubcensus::aggregator {
namespace {

// Families, Series and Shares answer from a cache of serialized answers, one per request and
// commit generation (aggregator.cc AnswerCache). Each request shape, asked twice over gRPC (the
// second answer from the cache), equals what the Aggregator computes for it; a commit between two
// calls shows the new crawl in the second.
// Issue 15: a Series in columns (SeriesRequest.columns) holds exactly the points' figures: the
// crawls once, in the points' order, and per line one value per crawl.
TEST_F(AggregatorTest, SeriesInColumnsHoldsThePointsFigures) {
  IngestAndCommit("2025-01-31", CrawlSpecs(100, 500));
  IngestAndCommit("2025-02-28", CrawlSpecs(300, 400, 3));
  IngestAndCommit("2025-03-31", CrawlSpecs(900, 600, 5));
  std::vector<v1::SeriesRequest> requests(5);
  requests[0].set_metric("ecosystem_downloads_all_time");
  requests[1].set_metric("downloads_in_period");  // no value for the first crawl
  requests[2].set_metric("derivatives");
  requests[2].add_families("Qwen");
  requests[2].set_from_date("2025-02-01");
  requests[3].set_metric("first_party_repos");
  requests[3].add_regions("china");
  requests[3].add_regions("us");
  requests[4].set_metric("first_party_downloads_30d");
  requests[4].set_from_date("2026-01-01");  // no crawl
  for (v1::SeriesRequest request : requests) {
    grpc::ClientContext points_ctx;
    v1::SeriesResponse points;
    ASSERT_TRUE(census_->Series(&points_ctx, request, &points).ok());
    request.set_columns(true);
    grpc::ClientContext columns_ctx;
    v1::SeriesResponse columns;
    ASSERT_TRUE(census_->Series(&columns_ctx, request, &columns).ok());
    const std::string what = request.ShortDebugString();
    EXPECT_EQ(columns.metric(), points.metric()) << what;
    ASSERT_EQ(columns.lines_size(), points.lines_size()) << what;
    ASSERT_GT(points.lines_size(), 0) << what;
    ASSERT_EQ(columns.crawls_size(), points.lines(0).points_size()) << what;
    for (int c = 0; c < columns.crawls_size(); ++c) {
      EXPECT_EQ(columns.crawls(c).date(), points.lines(0).points(c).date()) << what;
      EXPECT_EQ(columns.crawls(c).crawl_id(), points.lines(0).points(c).crawl_id()) << what;
    }
    for (int i = 0; i < points.lines_size(); ++i) {
      const v1::SeriesLine& want = points.lines(i);
      const v1::SeriesLine& got = columns.lines(i);
      EXPECT_EQ(got.name(), want.name()) << what;
      EXPECT_EQ(got.points_size(), 0) << what;
      ASSERT_EQ(got.values_size(), want.points_size()) << what << " " << want.name();
      for (int c = 0; c < want.points_size(); ++c) {
        EXPECT_EQ(got.values(c), want.points(c).value()) << what << " " << want.name() << " " << c;
      }
    }
  }
  // The first request's lines really carry figures over three crawls.
  v1::SeriesRequest all = requests[0];
  all.set_columns(true);
  auto typed = agg_->Series(all);
  ASSERT_TRUE(typed.ok()) << typed.status();
  EXPECT_EQ(typed->crawls_size(), 3);
  double total = 0;
  for (const auto& line : typed->lines())
    for (double v : line.values()) total += v;
  EXPECT_GT(total, 0);
}

TEST_F(AggregatorTest, CachedAnswersEqualComputedOnesForEveryRequestShape) {
  IngestAndCommit("2025-01-31", CrawlSpecs(100, 500));
  IngestAndCommit("2025-02-28", CrawlSpecs(300, 400, 3));

  std::vector<v1::SeriesRequest> series;
  auto add_series = [&](const std::string& metric, std::vector<std::string> families,
                        std::vector<std::string> regions, std::string from, std::string to) {
    v1::SeriesRequest r;
    r.set_metric(metric);
    for (auto& f : families) r.add_families(f);
    for (auto& g : regions) r.add_regions(g);
    r.set_from_date(from);
    r.set_to_date(to);
    series.push_back(r);
    r.set_columns(true);  // the same series in columns: cached apart, computed the same way
    series.push_back(r);
  };
  add_series("ecosystem_downloads_all_time", {}, {}, "", "");
  add_series("first_party_downloads_all_time", {}, {}, "", "");
  add_series("downloads_in_period", {}, {}, "2025-02-01", "");
  add_series("downloads_in_period", {"Qwen"}, {}, "", "");
  add_series("derivatives", {"Llama", "Qwen"}, {}, "", "2025-01-31");
  add_series("first_party_repos", {}, {"us", "china", "unknown"}, "", "");
  add_series("derivatives_finetune", {}, {"china"}, "2025-02-28", "2025-02-28");
  add_series("first_party_downloads_30d", {"Mistral"}, {}, "2025-03-01", "");  // no crawl: empty

  std::vector<v1::FamiliesRequest> families(4);
  families[1].mutable_crawl()->set_date("2025-01-31");
  families[2].mutable_crawl()->set_crawl_id(CrawlId("2025-02-28"));
  *families[3].mutable_families() = ServedFamilies();
  families[3].mutable_families()->mutable_family()->SwapElements(0, 1);  // ad hoc: another order

  std::vector<v1::SharesRequest> shares(4);
  shares[1].set_from_month("2025-01");
  shares[1].set_to_month("2025-01");
  shares[2].mutable_crawl()->set_date("2025-01-31");
  *shares[3].mutable_families() = families[3].families();

  auto check_every_shape = [&](const std::string& when) {
    for (int repeat = 0; repeat < 2; ++repeat) {
      const std::string what = when + (repeat == 0 ? ", first call" : ", repeated call");
      for (const auto& req : series) {
        grpc::ClientContext ctx;
        v1::SeriesResponse got;
        grpc::Status s = census_->Series(&ctx, req, &got);
        ASSERT_TRUE(s.ok()) << what << ": " << s.error_message();
        auto want = agg_->Series(req);
        ASSERT_TRUE(want.ok()) << want.status();
        EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got, *want))
            << what << ": " << req.ShortDebugString() << "\ngot " << got.ShortDebugString()
            << "\nwant " << want->ShortDebugString();
      }
      for (const auto& req : families) {
        v1::FamiliesResponse got = Families(req);
        auto want = agg_->Families(req);
        ASSERT_TRUE(want.ok()) << want.status();
        EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got, *want))
            << what << ": " << req.ShortDebugString();
      }
      for (const auto& req : shares) {
        grpc::ClientContext ctx;
        v1::SharesResponse got;
        grpc::Status s = census_->Shares(&ctx, req, &got);
        ASSERT_TRUE(s.ok()) << what << ": " << s.error_message();
        auto want = agg_->Shares(req);
        ASSERT_TRUE(want.ok()) << want.status();
        EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got, *want))
            << what << ": " << req.ShortDebugString();
      }
    }
  };
  check_every_shape("two crawls");
  // The ad hoc order really was another one.
  EXPECT_EQ(Families(families[3]).families(0).family(), "Llama");
  EXPECT_EQ(Families(families[0]).families(0).family(), "Qwen");

  IngestAndCommit("2025-03-31", CrawlSpecs(900, 600, 5));
  check_every_shape("after a third commit");
  {
    grpc::ClientContext ctx;
    v1::SeriesResponse got;
    ASSERT_TRUE(census_->Series(&ctx, series[0], &got).ok());
    ASSERT_EQ(got.lines_size(), 3);
    for (const auto& line : got.lines()) EXPECT_EQ(line.points_size(), 3) << line.name();
    EXPECT_EQ(got.lines(0).points(2).crawl_id(), CrawlId("2025-03-31"));
  }
  EXPECT_EQ(Families(families[0]).crawl_id(), CrawlId("2025-03-31"));
  EXPECT_EQ(Families(families[0]).families(1).figures().first_party_downloads_all_time(), 600);
  {
    grpc::ClientContext ctx;
    v1::SharesResponse got;
    ASSERT_TRUE(census_->Shares(&ctx, shares[0], &got).ok());
    EXPECT_EQ(got.crawl_id(), CrawlId("2025-03-31"));
  }
  // Errors are never cached: the same bad request fails the same way every time.
  for (int repeat = 0; repeat < 2; ++repeat) {
    grpc::ClientContext ctx;
    v1::SeriesRequest req;
    req.set_metric("ecosystem_downloads_all_time");
    req.add_families("Gemma");
    v1::SeriesResponse got;
    grpc::Status s = census_->Series(&ctx, req, &got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr("families[0]: unknown family"));
  }
}

// The store changed under a cached answer without a commit (what no running aggregator does: a
// test's direct rollup write) is not seen until the next commit, which drops every cached answer.
// This is what shows that the cache is in use, and that a commit really ends it.
TEST_F(AggregatorTest, ACommitEndsEveryCachedAnswer) {
  IngestAndCommit("2025-01-31", CrawlSpecs(300, 200));
  v1::SharesRequest january;
  january.mutable_crawl()->set_date("2025-01-31");
  auto shares = [&] {
    grpc::ClientContext ctx;
    v1::SharesResponse got;
    grpc::Status s = census_->Shares(&ctx, january, &got);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return got;
  };
  const v1::SharesResponse before = shares();
  {
    auto view = agg_->store()->View();
    ASSERT_TRUE(view.ok());
    auto crawl = (*view)->FindCrawl(CrawlId("2025-01-31"));
    ASSERT_TRUE(crawl.ok());
    auto summary = (*view)->GetRollup(crawl->crawl_number(), "summary");
    ASSERT_TRUE(summary.ok() && summary->has_value());
    v1::CrawlRollup marked;
    ASSERT_TRUE(marked.ParseFromString(**summary));
    *marked.mutable_shares() = before;
    marked.mutable_shares()->set_placeholder_dated_left_out(before.placeholder_dated_left_out() +
                                                            1000);
    ASSERT_TRUE(agg_->store()
                    ->PutRollups(crawl->crawl_number(), {{"summary", marked.SerializeAsString()}})
                    .ok());
  }
  // Still the cached answer.
  EXPECT_EQ(shares().placeholder_dated_left_out(), before.placeholder_dated_left_out());
  IngestAndCommit("2025-02-28", CrawlSpecs(400, 100));
  // The commit ended it: January's answer is read again, and it is the marked one.
  EXPECT_EQ(shares().placeholder_dated_left_out(), before.placeholder_dated_left_out() + 1000);
}

// Readers calling all the time while crawls are committed: the call after each Commit returns
// sees that crawl, and no answer is ever torn or older than one seen before.
TEST_F(AggregatorTest, TheCallAfterACommitSeesItWhileOthersHitTheCache) {
  IngestAndCommit("2025-01-01", CrawlSpecs(100, 100));
  v1::SeriesRequest every;
  every.set_metric("first_party_downloads_all_time");
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, went_back{0}, calls{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      int last = 0;
      while (!done.load()) {
        grpc::ClientContext ctx;
        v1::SeriesResponse got;
        if (!census_->Series(&ctx, every, &got).ok()) continue;
        ++calls;
        const int points = got.lines_size() == 3 ? got.lines(0).points_size() : -1;
        for (const auto& line : got.lines()) {
          if (line.points_size() != points) ++torn;
        }
        if (points < last) ++went_back;
        last = points;
      }
    });
  }
  for (int day = 2; day <= 6; ++day) {
    const std::string date = "2025-01-0" + std::to_string(day);
    IngestAndCommit(date, CrawlSpecs(100 * day, 100));
    grpc::ClientContext ctx;
    v1::SeriesResponse got;
    ASSERT_TRUE(census_->Series(&ctx, every, &got).ok());
    ASSERT_EQ(got.lines_size(), 3);
    EXPECT_EQ(got.lines(0).points_size(), day) << "after committing " << date;
    EXPECT_EQ(got.lines(0).points(day - 1).value(), 100 * day);
    EXPECT_EQ(Families(v1::FamiliesRequest()).crawl_id(), CrawlId(date));
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(calls.load(), 0);
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(went_back.load(), 0);
}

// A new served families config (a restart, which re-materialises the rollups) answers with its
// own figures, not with anything the previous process served.
TEST_F(AggregatorTest, ANewServedConfigAnswersItsOwnSeriesAndShares) {
  IngestAndCommit("2025-01-31", CrawlSpecs(100, 500));
  IngestAndCommit("2025-02-28", CrawlSpecs(300, 400));
  v1::SeriesRequest every;
  every.set_metric("first_party_downloads_all_time");
  auto series = [&] {
    grpc::ClientContext ctx;
    v1::SeriesResponse got;
    grpc::Status s = census_->Series(&ctx, every, &got);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return got;
  };
  ASSERT_EQ(series().lines_size(), 3);
  EXPECT_EQ(series().lines(0).name(), "Qwen");
  auto llama_first =
      ParseFamilyConfig(R"pb(
                          family { name: "Llama" region: "us" namespace: "meta-llama" }
                          family { name: "Qwen" region: "china" namespace: "Qwen" }
                        )pb",
                        "t");
  ASSERT_TRUE(llama_first.ok());
  Start(*llama_first);
  const v1::SeriesResponse after = series();
  ASSERT_EQ(after.lines_size(), 2);
  EXPECT_EQ(after.lines(0).name(), "Llama");
  ASSERT_EQ(after.lines(0).points_size(), 2);
  EXPECT_EQ(after.lines(0).points(1).value(), 400);
  auto want = agg_->Series(every);
  ASSERT_TRUE(want.ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(after, *want));
  grpc::ClientContext ctx;
  v1::SharesResponse shares;
  ASSERT_TRUE(census_->Shares(&ctx, v1::SharesRequest(), &shares).ok());
  auto want_shares = agg_->Shares(v1::SharesRequest());
  ASSERT_TRUE(want_shares.ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(shares, *want_shares));
  EXPECT_EQ(Families(v1::FamiliesRequest()).families(0).family(), "Llama");
}

}  // namespace
}  // namespace hubcensus::aggregator
