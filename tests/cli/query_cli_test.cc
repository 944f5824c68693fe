// `hubcensus query`, `export` and `report` as a newcomer meets them: readable tables, forgiving
// names and dates, and clear refusals of flags that do not fit together. A real store with two
// committed crawls (Qwen passes Llama in the second), read by the real binary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <fstream>
#include <iterator>
#include <regex>

#include "aggregator/aggregator.h"
#include "tests/aggregator/crawl_builder.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using testing::HubcensusBinary;
using testing::MakeTempDir;
using testing::RunToCompletion;
using testing::Subprocess;

// A folder as `hubcensus local --data_dir=DIR` leaves it: the store is DIR/store.
class QueryCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("query-cli"));
    aggregator::AggregatorOptions o;
    o.data_dir = *dir_ + "/store";
    o.sync_writes = false;
    auto agg = aggregator::Aggregator::Open(o);
    ASSERT_TRUE(agg.ok()) << agg.status();
    // Llama leads at 10-31 (300M vs 250M), Qwen at 11-30 (385.3M vs 346.2M).
    struct Census {
      const char* date;
      int64_t qwen, llama;
    };
    for (const Census& c :
         {Census{"2025-10-31", 250000000, 300000000}, Census{"2025-11-30", 385300000, 346200000}}) {
      std::string crawl = std::string("crawl-") + c.date;
      v1::WriteBatch b;
      b.set_crawl_id(crawl);
      b.set_crawl_date(c.date);
      b.set_item_id("list/0");
      b.set_fence(1);
      *b.add_repos() = testing::MakeRepo({"Qwen/Qwen2.5-7B", {}, c.qwen, 1000});
      *b.add_repos() = testing::MakeRepo({"meta-llama/Llama-3.1-8B", {}, c.llama, 1000});
      for (int i = 0; i < 7; ++i) {
        *b.add_repos() = testing::MakeRepo({"someone/qwen-ft-" + std::to_string(i),
                                            {{"Qwen/Qwen2.5-7B", testing::kFinetune}},
                                            1000 + i,
                                            10,
                                            "2025-10-05T00:00:00.000Z"});
      }
      *b.add_repos() = testing::MakeRepo({"someone/llama-ft",
                                          {{"meta-llama/Llama-3.1-8B", testing::kFinetune}},
                                          5000,
                                          10,
                                          "2025-10-06T00:00:00.000Z"});
      auto written = (*agg)->Write(b);
      ASSERT_TRUE(written.ok()) << written.status();
      v1::CommitRequest commit;
      commit.set_crawl_id(crawl);
      commit.set_crawl_date(c.date);
      auto* e = commit.add_manifest();
      e->set_item_id("list/0");
      e->set_fence(1);
      e->set_repos(written->repos);
      e->set_id_checksum(written->id_checksum);
      auto committed = (*agg)->Commit(commit);
      ASSERT_TRUE(committed.ok()) << committed.status();
    }
  }
  static void TearDownTestSuite() { delete dir_; }

  // Runs `hubcensus <args>` with stdout only in *out (export's bytes, nothing logged).
  static int RunQuiet(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), HubcensusBinary());
    args.push_back("--log_level=error");
    std::string command;
    for (const auto& a : args) command += "'" + a + "' ";
    command += "2>/dev/null";
    return RunToCompletion({"/bin/sh", "-c", command}, out);
  }

  // Runs `hubcensus <args>`; returns the exit code, output in *out.
  static int Run(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), HubcensusBinary());
    args.push_back("--log_level=error");
    return RunToCompletion(args, out);
  }
  static std::string* dir_;
};
std::string* QueryCli::dir_ = nullptr;

TEST_F(QueryCli, TablesAreRoundedCsvAndJsonExact) {
  std::string out;
  ASSERT_EQ(Run({"query", "families", "--data_dir=" + *dir_}, &out), 0) << out;
  EXPECT_NE(out.find("crawl crawl-2025-11-30 (2025-11-30): repos counted "), std::string::npos)
      << out;
  EXPECT_NE(out.find("385.3M"), std::string::npos) << out;
  EXPECT_EQ(out.find("385300000"), std::string::npos) << out;
  ASSERT_EQ(Run({"query", "families", "--data_dir=" + *dir_, "--format=csv"}, &out), 0) << out;
  EXPECT_NE(out.find("Qwen,china,1,385300000,1000,"), std::string::npos) << out;
  ASSERT_EQ(Run({"query", "shares", "--data_dir=" + *dir_}, &out), 0) << out;
  EXPECT_NE(out.find("2025-10      8  Qwen        7  87.5%"), std::string::npos) << out;
  EXPECT_NE(out.find("0 placeholder-dated repos left out"), std::string::npos) << out;
  ASSERT_EQ(Run({"query", "crawls", "--data_dir=" + *dir_}, &out), 0) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("crawl-2025-11-30  2025-11-30  +10  "
                                                "20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:]{8}Z")))
      << out;
}

TEST_F(QueryCli, CrossoverIsASentenceEitherWay) {
  std::string out;
  ASSERT_EQ(Run({"query", "crossover", "--data_dir=" + *dir_, "--a=qwen", "--b=Llama"}, &out), 0)
      << out;
  EXPECT_EQ(out,
            "Qwen passed Llama in the crawl of 2025-11-30: 385.3M vs 346.2M (2025-10-31: "
            "250.0M vs 300.0M).\n");
  ASSERT_EQ(Run({"query", "crossover", "--data_dir=" + *dir_, "--a=Llama", "--b=Qwen"}, &out), 0)
      << out;
  EXPECT_EQ(out,
            "Llama does not pass Qwen in first_party_downloads_all_time: at the last crawl "
            "(2025-11-30) Qwen leads with 385.3M to 346.2M, by 39.1M (11.3%).\n");
  ASSERT_EQ(
      Run({"query", "crossover", "--data_dir=" + *dir_, "--a=Llama", "--b=Qwen", "--format=json"},
          &out),
      0);
  EXPECT_EQ(out, "{\"found\": false}\n");
}

TEST_F(QueryCli, BentFlagsAreRefusedNamingWhy) {
  std::string out;
  EXPECT_EQ(
      Run({"query", "series", "--data_dir=" + *dir_, "--family=Qwen", "--region=china"}, &out), 2);
  EXPECT_NE(out.find("give --family or --region, not both"), std::string::npos) << out;
  EXPECT_EQ(Run({"query", "top", "--data_dir=" + *dir_, "--family=Qwen", "--k=0"}, &out), 2);
  EXPECT_NE(out.find("--k=0 is out of range: give 1 to 1000"), std::string::npos) << out;
  EXPECT_EQ(Run({"query", "top", "--data_dir=" + *dir_, "--family=Qwen", "--k=1001"}, &out), 2);
  EXPECT_EQ(Run({"query", "top", "--data_dir=" + *dir_}, &out), 2);
  EXPECT_NE(out.find("top: --family is required"), std::string::npos) << out;
  EXPECT_EQ(Run({"query", "top", "--data_dir=" + *dir_, "--family=Qwen", "--family=Llama"}, &out),
            2);
  EXPECT_NE(out.find("give one --family"), std::string::npos) << out;
  EXPECT_EQ(Run({"query", "crossover", "--data_dir=" + *dir_, "--a=Qwen"}, &out), 2);
  EXPECT_NE(out.find("--a and --b are required"), std::string::npos) << out;
}

TEST_F(QueryCli, FamilyNamesIgnoreCaseOrGetASuggestion) {
  std::string out;
  ASSERT_EQ(Run({"query", "top", "--data_dir=" + *dir_, "--family=qwen", "--k=3"}, &out), 0) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("Qwen/Qwen2.5-7B +385.3M "))) << out;
  ASSERT_EQ(Run({"query", "series", "--data_dir=" + *dir_, "--family=LLAMA"}, &out), 0) << out;
  EXPECT_NE(out.find("Llama  2025-11-30  crawl-2025-11-30  346.2M"), std::string::npos) << out;
  EXPECT_EQ(Run({"query", "top", "--data_dir=" + *dir_, "--family=Qwn"}, &out), 2);
  EXPECT_NE(out.find("--family: unknown family \"Qwn\"; did you mean Qwen?"), std::string::npos)
      << out;
}

TEST_F(QueryCli, DatesTodayLatestAndTheNearestCommitted) {
  std::string latest, plain, out;
  ASSERT_EQ(Run({"query", "families", "--data_dir=" + *dir_, "--date=latest"}, &latest), 0);
  ASSERT_EQ(Run({"query", "families", "--data_dir=" + *dir_}, &plain), 0);
  EXPECT_EQ(latest, plain);
  EXPECT_EQ(Run({"query", "families", "--data_dir=" + *dir_, "--date=2025-10-30"}, &out), 1);
  EXPECT_NE(out.find("no committed crawl of 2025-10-30; nearest committed crawls: 2025-10-31, "
                     "2025-11-30"),
            std::string::npos)
      << out;
  // "today" is a date like any other: here no crawl has it, and the error says which exist.
  EXPECT_EQ(Run({"query", "families", "--data_dir=" + *dir_, "--date=today"}, &out), 1);
  EXPECT_NE(out.find("nearest committed crawls: 2025-10-31, 2025-11-30"), std::string::npos) << out;
  EXPECT_EQ(Run({"query", "families", "--data_dir=" + *dir_, "--date=soon"}, &out), 2);
  EXPECT_NE(out.find("--date: \"soon\" is not YYYY-MM-DD, \"today\" or \"latest\""),
            std::string::npos)
      << out;
}

TEST_F(QueryCli, ExportUsesSnakeCaseAndExplainsAggregator) {
  std::string out;
  ASSERT_EQ(Run({"export", "--data_dir=" + *dir_, "--date=2025-10-31"}, &out), 0) << out;
  EXPECT_NE(out.find("{\"id\": \"Qwen/Qwen2.5-7B\", \"object_id\": "), std::string::npos) << out;
  EXPECT_NE(out.find("\"downloads_all_time\": 250000000"), std::string::npos) << out;
  EXPECT_EQ(out.find("createdAt"), std::string::npos) << out;
  // An aggregator address where nothing listens is named in the error.
  const std::string nobody = "127.0.0.1:" + std::to_string(testing::FreeLoopbackPort());
  EXPECT_EQ(Run({"export", "--aggregator=" + nobody}, &out), 1);
  EXPECT_NE(out.find("aggregator at " + nobody), std::string::npos) << out;
  EXPECT_EQ(Run({"export", "--aggregator=" + nobody, "--data_dir=" + *dir_}, &out), 2);
  EXPECT_NE(out.find("give exactly one of --aggregator=HOST:PORT or --data_dir=DIR"),
            std::string::npos)
      << out;
}

TEST_F(QueryCli, HelpSaysWhatEachKindAnswersAndWhatIsRequired) {
  std::string out;
  ASSERT_EQ(Run({"query", "--help"}, &out), 0);
  for (const char* line : {"  families   every family's and region's figures",
                           "  crossover  the first crawl where "
                           "family --a (REQUIRED) passes --b (REQUIRED)",
                           "  top        a family's (--family REQUIRED)",
                           "  lineage    the parent walk of --repo "
                           "(REQUIRED)"}) {
    EXPECT_NE(out.find(line), std::string::npos) << line << "\n" << out;
  }
}

TEST_F(QueryCli, WrongEndpointsAreExplained) {
  // An aggregator reached with an http:// scheme; its ingest port, and a coordinator, given as
  // the aggregator.
  int port = 0;
  std::string served = MakeTempDir("query-cli-served");
  std::string out;
  ASSERT_EQ(RunToCompletion({"/bin/cp", "-r", *dir_ + "/store", served + "/store"}, &out), 0)
      << out;
  auto agg = Subprocess::Start({HubcensusBinary(), "aggregator", "--data_dir=" + served + "/store",
                                "--listen=127.0.0.1:0", "--ingest_listen=127.0.0.1:0"});
  ASSERT_TRUE(agg.has_value());
  auto line = agg->WaitForOutput("aggregator ingest listening on ");
  ASSERT_TRUE(line.has_value());
  const std::string ingest =
      "127.0.0.1:" + std::to_string(std::stoi(line->substr(line->rfind(':') + 1)));
  line = agg->WaitForOutput("aggregator listening on ");
  ASSERT_TRUE(line.has_value());
  port = std::stoi(line->substr(line->rfind(':') + 1));
  // The ingest port serves SnapshotStore only.
  EXPECT_EQ(Run({"query", "crawls", "--aggregator=" + ingest}, &out), 1);
  EXPECT_NE(out.find("answered gRPC but does not serve hubcensus.v1.Census"), std::string::npos)
      << out;
  ASSERT_EQ(
      Run({"query", "crawls", "--aggregator=http://127.0.0.1:" + std::to_string(port) + "/"}, &out),
      0)
      << out;
  EXPECT_NE(out.find("crawl-2025-11-30"), std::string::npos) << out;
  // export --aggregator (Census.Export) writes the bytes export --data_dir writes, either format,
  // to stdout or to a file.
  const std::string aggregator = "--aggregator=127.0.0.1:" + std::to_string(port);
  for (const char* format : {"--format=jsonl", "--format=csv"}) {
    std::string remote, direct;
    ASSERT_EQ(RunQuiet({"export", aggregator, "--date=2025-10-31", format}, &remote), 0) << remote;
    ASSERT_EQ(RunQuiet({"export", "--data_dir=" + *dir_, "--date=2025-10-31", format}, &direct), 0)
        << direct;
    EXPECT_GT(std::count(direct.begin(), direct.end(), '\n'), 9) << direct;
    EXPECT_TRUE(remote == direct) << format << "\n" << remote << "\nvs\n" << direct;
  }
  const std::string file = served + "/export.csv";
  ASSERT_EQ(
      Run({"export", aggregator, "--crawl_id=crawl-2025-11-30", "--format=csv", "--out=" + file},
          &out),
      0)
      << out;
  EXPECT_NE(out.find("exported 10 repos to " + file), std::string::npos) << out;
  std::string direct;
  ASSERT_EQ(
      RunQuiet({"export", "--data_dir=" + *dir_, "--crawl_id=crawl-2025-11-30", "--format=csv"},
               &direct),
      0);
  std::ifstream written(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(written)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(bytes == direct) << bytes;

  auto coordinator = Subprocess::Start({HubcensusBinary(), "coordinator",
                                        "--state_dir=" + MakeTempDir("query-cli-coord"),
                                        "--store=" + ingest, "--listen=127.0.0.1:0"});
  ASSERT_TRUE(coordinator.has_value());
  line = coordinator->WaitForOutput("coordinator listening on ");
  ASSERT_TRUE(line.has_value());
  std::string coordinator_address = line->substr(line->rfind(' ') + 1);
  while (!coordinator_address.empty() && std::isspace(coordinator_address.back())) {
    coordinator_address.pop_back();
  }
  EXPECT_EQ(Run({"query", "families", "--aggregator=" + coordinator_address}, &out), 1);
  EXPECT_NE(out.find("is a hubcensus coordinator (it answered hubcensus.v1.Coordinator), not an "
                     "aggregator"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("UNIMPLEMENTED: \n"), std::string::npos) << out;
  coordinator->Signal(SIGTERM);
  coordinator->Wait();
  agg->Signal(SIGTERM);
  agg->Wait();
}

TEST_F(QueryCli, ReportTakesTheFolderGivenToLocal) {
  std::string out;
  std::string report = MakeTempDir("query-cli-report") + "/r";
  ASSERT_EQ(Run({"report", "--data_dir=" + *dir_, "--out=" + report}, &out), 0) << out;
  EXPECT_NE(out.find("(2 crawls)"), std::string::npos) << out;
}

}  // namespace
}  // namespace hubcensus
