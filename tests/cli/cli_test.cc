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

}  // namespace
}  // namespace hubcensus
