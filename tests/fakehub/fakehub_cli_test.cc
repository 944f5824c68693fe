// `hubcensus fakehub` as a process: the line it prints, serving, SIGTERM, flag errors, --help.
#include <gtest/gtest.h>

#include <csignal>
#include <regex>

#include "absl/strings/str_cat.h"
#include "fakehub/faults.h"
#include "tests/fakehub/http_test_client.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::fakehub {
namespace {

using ::hubcensus::testing::HubcensusBinary;
using ::hubcensus::testing::RunToCompletion;
using ::hubcensus::testing::Subprocess;
using testing::HttpTestClient;

TEST(FakeHubCli, PrintsItsUrlServesAndStopsOnSigterm) {
  auto proc = Subprocess::Start(
      {HubcensusBinary(), "fakehub", "--port=0", "--repos=1000", "--seed=5", "--date=2025-06-30"});
  ASSERT_TRUE(proc.has_value());
  auto line = proc->WaitForOutput("fakehub listening on http://127.0.0.1:");
  ASSERT_TRUE(line.has_value()) << proc->Output();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      *line, m, std::regex("fakehub listening on (http://127\\.0\\.0\\.1:[0-9]+)")));
  std::string url = m[1];
  HttpTestClient client;
  EXPECT_EQ(client.Get(url + "/_sim/health").status, 200);
  EXPECT_EQ(client.Get(url + "/_sim/clock").body, "{\"date\":\"2025-06-30\"}");
  auto page = client.Get(url + "/api/models?limit=2");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.Header("ratelimit-policy"), "\"fixed window\";\"api\";q=1000;w=300");
  proc->Signal(SIGTERM);
  EXPECT_EQ(proc->Wait(), 0) << proc->Output();
}

TEST(FakeHubCli, BadFlagsExitTwoNamingTheFlag) {
  std::string out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "fakehub", "--repos=5"}, &out), 2);
  EXPECT_NE(out.find("--repos"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "fakehub", "--faults=gremlins=0.1"}, &out), 2);
  EXPECT_NE(out.find("gremlins"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "fakehub", "--rate_limit=lots"}, &out), 2);
  EXPECT_NE(out.find("--rate_limit"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "fakehub", "--hostile=gremlins"}, &out), 2);
  EXPECT_NE(out.find("--hostile"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "fakehub", "--hostile=foreign_next"}, &out), 2);
  EXPECT_NE(out.find("--foreign_origin"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "fakehub", "--private_repos=2"}, &out), 2);
  EXPECT_NE(out.find("--private_repos"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "fakehub", "--date=2019-01-01"}, &out), 1);
  EXPECT_NE(out.find("2019-01-01"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "fakehub", "--fixture=/no/such/file.json"}, &out),
            1);
  EXPECT_NE(out.find("/no/such/file.json"), std::string::npos) << out;
}

TEST(FakeHubCli, HelpExplainsEveryFlagAndListsTheFaultKinds) {
  std::string out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "fakehub", "--help"}, &out), 0);
  for (const char* flag :
       {"--port", "--listen", "--repos", "--seed", "--date", "--scenario", "--rate_limit",
        "--fault_rate", "--faults", "--fixture", "--private_repos", "--gated_no_access",
        "--heavy_page_limit", "--page_latency_ms", "--hostile", "--foreign_origin"}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag;
  }
  for (const char* mode : {"link_cycle: ", "empty_pages: ", "foreign_next: ", "foreign_redirect: ",
                           "html_200: ", "garbage_entries=F: "}) {
    EXPECT_NE(out.find(mode), std::string::npos) << mode;
  }
  for (int k = 0; k < kFaultKinds; ++k) {
    EXPECT_NE(out.find(absl::StrCat(FaultKindName(static_cast<FaultKind>(k)), ": ")),
              std::string::npos)
        << FaultKindName(static_cast<FaultKind>(k));
  }
}

}  // namespace
}  // namespace hubcensus::fakehub
