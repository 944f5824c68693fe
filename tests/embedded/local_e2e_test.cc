// `hubcensus local` as a user runs it: real processes, a fakehub on loopback, two dates.
#include <gtest/gtest.h>
#include <simdjson.h>

#include "embedded/truth_check.h"
#include "tests/embedded/e2e_util.h"

namespace hubcensus {
namespace {

using testing::HttpCall;
using testing::HubcensusBinary;
using testing::MakeTempDir;
using testing::RunToCompletion;
using testing::StartFakehub;

std::string Member(const std::string& json, const char* key) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_FALSE(parser.parse(json).get(doc)) << json.substr(0, 200);
  simdjson::dom::element m;
  EXPECT_FALSE(doc[key].get(m));
  return simdjson::minify(m);
}

TEST(LocalE2E, TwoDatesGiveTwoCrawlsEqualToGroundTruth) {
  std::string hub;
  auto fakehub =
      StartFakehub({"--repos=6000", "--seed=7", "--rate_limit=off", "--date=2025-09-30"}, &hub);
  ASSERT_TRUE(fakehub) << "fakehub did not start";
  std::string data = MakeTempDir("local-e2e");
  std::string out;

  for (const std::string date : {"2025-09-30", "2025-10-31"}) {
    std::string body;
    ASSERT_EQ(HttpCall(hub + "/_sim/clock?date=" + date, &body, /*post=*/true), 200) << body;
    ASSERT_EQ(RunToCompletion({HubcensusBinary(), "local", "--hub_url=" + hub, "--data_dir=" + data,
                               "--date=" + date, "--workers=2", "--hub_quota=off", "--format=json",
                               "--log_level=warn"},
                              &out),
              0)
        << out;
    // The family table (JSON on stdout) comes after the progress lines (stderr).
    auto start = out.find("{\"crawl_id\"");
    ASSERT_NE(start, std::string::npos) << out;
    std::string families = out.substr(start, out.rfind('}') + 1 - start);
    ASSERT_EQ(HttpCall(hub + "/_sim/truth?date=" + date, &body), 200);
    auto diffs = JsonDifferences(families, Member(body, "families"));
    ASSERT_TRUE(diffs.ok()) << diffs.status();
    EXPECT_TRUE(diffs->empty()) << date << ": " << (*diffs)[0];
  }

  // The same date again changes nothing.
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "local", "--hub_url=" + hub, "--data_dir=" + data,
                             "--date=2025-10-31", "--hub_quota=off"},
                            &out),
            0)
      << out;
  EXPECT_NE(out.find("crawl-2025-10-31 exists"), std::string::npos) << out;

  // A series over the store shows both crawls.
  ASSERT_EQ(
      RunToCompletion({HubcensusBinary(), "query", "series", "--data_dir=" + data + "/store",
                       "--metric=first_party_downloads_all_time", "--family=Qwen", "--format=csv"},
                      &out),
      0)
      << out;
  EXPECT_NE(out.find("2025-09-30"), std::string::npos) << out;
  EXPECT_NE(out.find("2025-10-31"), std::string::npos) << out;

  // Bad input is a usage error naming it.
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "local", "--hub_url=" + hub, "--data_dir=" + data,
                             "--date=2025-13-01"},
                            &out),
            2);
  EXPECT_NE(out.find("2025-13-01"), std::string::npos) << out;
  fakehub->Signal(SIGTERM);
  EXPECT_EQ(fakehub->Wait(), 0);
}

}  // namespace
}  // namespace hubcensus
