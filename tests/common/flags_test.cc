#include "common/flags.h"

#include <gtest/gtest.h>

namespace hubcensus {
namespace {

struct Parsed {
  std::string hub_url = "https://huggingface.co";
  int64_t port = 0;
  double rate = 0.0;
  bool wait = false;
  std::vector<std::string> faults;
};

FlagSet MakeFlags(Parsed* p) {
  FlagSet flags("hubcensus test [flags]", "A test command.");
  flags.String("hub_url", &p->hub_url, "the Hub");
  flags.Int("port", &p->port, "the port");
  flags.Double("fault_rate", &p->rate, "faults");
  flags.Bool("wait", &p->wait, "wait");
  flags.StringList("fault", &p->faults, "one fault");
  return flags;
}

TEST(FlagSet, ParsesBothSpellingsAndPositionals) {
  Parsed p;
  FlagSet flags = MakeFlags(&p);
  auto rest =
      flags.Parse({"start", "--hub_url=http://127.0.0.1:1", "--port", "8080", "--fault_rate=0.05",
                   "--wait", "--fault=a", "--fault", "b", "--", "--not-a-flag"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(p.hub_url, "http://127.0.0.1:1");
  EXPECT_EQ(p.port, 8080);
  EXPECT_DOUBLE_EQ(p.rate, 0.05);
  EXPECT_TRUE(p.wait);
  EXPECT_EQ(p.faults, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*rest, (std::vector<std::string>{"start", "--not-a-flag"}));
  EXPECT_TRUE(flags.IsSet("port"));
  EXPECT_FALSE(flags.IsSet("log_level"));
}

TEST(FlagSet, ErrorsNameTheFlag) {
  Parsed p;
  FlagSet flags = MakeFlags(&p);
  auto unknown = flags.Parse({"--colour=red"});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().message(), "unknown flag --colour");

  FlagSet f2 = MakeFlags(&p);
  EXPECT_EQ(f2.Parse({"--port=eighty"}).status().message(),
            "flag --port: \"eighty\" is not an integer");
  FlagSet f3 = MakeFlags(&p);
  EXPECT_EQ(f3.Parse({"--port"}).status().message(), "flag --port needs a value");
  FlagSet f4 = MakeFlags(&p);
  EXPECT_EQ(f4.Parse({"--wait=maybe"}).status().message(),
            "flag --wait: \"maybe\" is not true or false");
  FlagSet f5 = MakeFlags(&p);
  EXPECT_FALSE(f5.Parse({"--log_format=xml"}).ok());
}

TEST(FlagSet, NegatedBoolAndHelp) {
  Parsed p;
  p.wait = true;
  FlagSet flags = MakeFlags(&p);
  ASSERT_TRUE(flags.Parse({"--nowait", "--help"}).ok());
  EXPECT_FALSE(p.wait);
  EXPECT_TRUE(flags.help_requested());
  std::string help = flags.Help();
  EXPECT_NE(help.find("usage: hubcensus test [flags]"), std::string::npos);
  EXPECT_NE(help.find("--hub_url=VALUE"), std::string::npos);
  EXPECT_NE(help.find("(default \"https://huggingface.co\")"), std::string::npos);
  EXPECT_NE(help.find("--log_format"), std::string::npos);
}

TEST(ParseFlagsOrExit, ReturnsUsageCodes) {
  Parsed p;
  FlagSet ok = MakeFlags(&p);
  EXPECT_EQ(ParseFlagsOrExit(ok, {"--port=1"}), std::nullopt);
  FlagSet bad = MakeFlags(&p);
  EXPECT_EQ(ParseFlagsOrExit(bad, {"--bogus"}), 2);
  FlagSet extra = MakeFlags(&p);
  EXPECT_EQ(ParseFlagsOrExit(extra, {"stray"}), 2);  // no positionals expected
  FlagSet help = MakeFlags(&p);
  EXPECT_EQ(ParseFlagsOrExit(help, {"--help"}), 0);
}

}  // namespace
}  // namespace hubcensus
