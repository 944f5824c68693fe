// The binary as a user meets it: help, usage errors, exit codes.
#include <gtest/gtest.h>

#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using testing::HubcensusBinary;
using testing::RunToCompletion;

TEST(Cli, HelpListsEveryRole) {
  std::string out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "help"}, &out), 0) << out;
  for (const char* cmd : {"coordinator", "crawler", "aggregator", "fakehub", "local", "demo",
                          "crawl", "query", "report", "export"}) {
    EXPECT_NE(out.find(std::string("  ") + cmd + " "), std::string::npos) << cmd << "\n" << out;
  }
}

TEST(Cli, UnknownCommandAndFlagExitTwoNamingThem) {
  std::string out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "frobnicate"}, &out), 2);
  EXPECT_NE(out.find("unknown command \"frobnicate\""), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "report", "--colour=red"}, &out), 2);
  EXPECT_NE(out.find("unknown flag --colour"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary()}, &out), 2);
}

TEST(Cli, CommandHelpExplainsFlags) {
  std::string out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "report", "--help"}, &out), 0);
  EXPECT_NE(out.find("usage: hubcensus report"), std::string::npos) << out;
  EXPECT_NE(out.find("--log_format"), std::string::npos) << out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "version"}, &out), 0);
  EXPECT_NE(out.find("hubcensus 0."), std::string::npos);
}

// `crawl ACTION --help` is that action's page: its usage, what it does, and its flags only.
TEST(Cli, EachCrawlActionHasItsOwnHelpPage) {
  std::string out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "crawl", "start", "--help"}, &out), 0) << out;
  EXPECT_NE(out.find("usage: hubcensus crawl start --coordinator=ADDR"), std::string::npos) << out;
  EXPECT_NE(out.find("Starts the crawl of a date"), std::string::npos) << out;
  for (const char* flag : {"--date=", "--retry", "--wait", "--extra_stream=", "--hub_url="}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag << "\n" << out;
  }
  for (const char* flag : {"--reason=", "--limit=", "--crawl_id="}) {
    EXPECT_EQ(out.find(flag), std::string::npos) << flag << "\n" << out;
  }
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "crawl", "list", "--help"}, &out), 0) << out;
  EXPECT_NE(out.find("usage: hubcensus crawl list"), std::string::npos) << out;
  EXPECT_NE(out.find("--limit="), std::string::npos) << out;
  EXPECT_EQ(out.find("--retry"), std::string::npos) << out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "crawl", "--help", "cancel"}, &out), 0) << out;
  EXPECT_NE(out.find("usage: hubcensus crawl cancel"), std::string::npos) << out;
  EXPECT_NE(out.find("--reason="), std::string::npos) << out;
  // Without an action: the list of actions.
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "crawl", "--help"}, &out), 0) << out;
  EXPECT_NE(out.find("`hubcensus crawl ACTION --help`"), std::string::npos) << out;
  for (const char* action : {"  start ", "  status ", "  list ", "  cancel "}) {
    EXPECT_NE(out.find(action), std::string::npos) << action << "\n" << out;
  }
}

// Servers listen on loopback unless --listen says otherwise (the deploy manifests pass
// --listen=0.0.0.0:PORT); the default each flag holds is what --help prints.
TEST(Cli, ServersListenOnLoopbackByDefault) {
  std::string out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "aggregator", "--help"}, &out), 0) << out;
  EXPECT_NE(out.find("(default \"127.0.0.1:7003\")"), std::string::npos) << out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "coordinator", "--help"}, &out), 0) << out;
  EXPECT_NE(out.find("(default \"127.0.0.1:7001\")"), std::string::npos) << out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "fakehub", "--help"}, &out), 0) << out;
  EXPECT_NE(out.find("(default \"127.0.0.1\")"), std::string::npos) << out;
  for (const char* role : {"aggregator", "coordinator", "fakehub"}) {
    ASSERT_EQ(RunToCompletion({HubcensusBinary(), role, "--help"}, &out), 0) << out;
    EXPECT_EQ(out.find("0.0.0.0\")"), std::string::npos) << role << "\n" << out;
  }
}

}  // namespace
}  // namespace hubcensus
