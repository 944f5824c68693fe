// Issue 11's done-when, as a user runs it: `hubcensus local` against a fakehub that behaves as the
// recorded Hub (private repos listed to token requests, both placeholder creation dates, listing
// pages above 100 entries answered 504, three-branch cursors, 10% faults). The census made with a
// token equals the census made without one, both equal the simulator's truth, and no private id
// reaches the store or `export`.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "embedded/truth_check.h"
#include "tests/embedded/e2e_util.h"

namespace hubcensus {
namespace {

using testing::HttpCall;
using testing::HubcensusBinary;
using testing::MakeTempDir;
using testing::RunToCompletion;
using testing::StartFakehub;

const char kDate[] = "2025-10-31";

// Every fault kind but `mutate` (the truth must hold still), 10% of requests in all.
const char kFaults[] =
    "--faults=http500=0.0112,http502=0.0111,http503=0.0111,http429=0.0111,reset=0.0111,"
    "truncate=0.0111,stall=0.0111,malformed=0.0111,repeat=0.0111,mutate=0";

struct Census {
  std::string families, shares;
  std::set<std::string> exported_ids;
};

Census CrawlAndQuery(const std::string& hub, const std::string& token_file) {
  Census census;
  const std::string data = MakeTempDir(token_file.empty() ? "recorded-anon" : "recorded-token");
  std::vector<std::string> local = {HubcensusBinary(),
                                    "local",
                                    "--hub_url=" + hub,
                                    "--data_dir=" + data,
                                    std::string("--date=") + kDate,
                                    "--workers=2",
                                    "--hub_quota=off",
                                    "--log_level=warn"};
  if (!token_file.empty()) local.push_back("--hf_token_file=" + token_file);
  std::string out;
  // No HF_TOKEN from the environment: the anonymous run must be anonymous.
  EXPECT_EQ(RunToCompletion(local, &out, absl::Seconds(600), {"HF_TOKEN="}), 0) << out;
  EXPECT_EQ(out.find("s3cret"), std::string::npos) << "the token was printed:\n" << out;
  auto query = [&](const std::string& kind, std::string* json) {
    std::string result;
    EXPECT_EQ(RunToCompletion({HubcensusBinary(), "query", kind, "--data_dir=" + data,
                               std::string("--date=") + kDate, "--format=json"},
                              &result),
              0)
        << result;
    *json = result;
  };
  query("families", &census.families);
  query("shares", &census.shares);
  std::string csv;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "export", "--data_dir=" + data,
                             std::string("--date=") + kDate, "--format=csv"},
                            &csv),
            0)
      << csv.substr(0, 1000);
  std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  for (size_t i = 1; i < lines.size(); ++i) {
    census.exported_ids.insert(lines[i].substr(0, lines[i].find(',')));
  }
  return census;
}

TEST(RecordedHubE2E, ATokenCrawlOfHeavyFaultyPagesEqualsTheAnonymousCrawlAndTheTruth) {
  std::string hub;
  auto fakehub =
      StartFakehub({"--repos=6000", "--seed=21", "--rate_limit=off", std::string("--date=") + kDate,
                    "--private_repos=0.05", "--heavy_page_limit=100", "--stall_seconds=3", kFaults},
                   &hub);
  ASSERT_TRUE(fakehub) << "fakehub did not start";

  const std::string token_file = MakeTempDir("recorded-token-file") + "/token";
  std::ofstream(token_file) << "hf_recorded_s3cret\n";
  Census anonymous = CrawlAndQuery(hub, "");
  Census with_token = CrawlAndQuery(hub, token_file);

  std::string truth;
  ASSERT_EQ(HttpCall(hub + "/_sim/truth?date=" + kDate, &truth), 200);
  std::string ids_json;
  ASSERT_EQ(HttpCall(hub + "/_sim/ids?date=" + kDate, &ids_json), 200);
  std::set<std::string> public_ids;
  {
    simdjson::dom::parser parser;
    simdjson::dom::array ids;
    ASSERT_FALSE(parser.parse(ids_json).get(ids));
    for (auto id : ids) public_ids.insert(std::string(std::string_view(id)));
  }
  ASSERT_GT(public_ids.size(), 3000u);

  for (const Census* census : {&anonymous, &with_token}) {
    const char* which = census == &anonymous ? "anonymous" : "with a token";
    std::string ours =
        absl::StrCat("{\"families\":", census->families, ",\"shares\":", census->shares, "}");
    auto differences = JsonDifferences(ours, truth);
    ASSERT_TRUE(differences.ok()) << which << ": " << differences.status();
    EXPECT_TRUE(differences->empty()) << which << ": " << (*differences)[0];
    // Exactly the public Hub: no private id, none missing.
    EXPECT_EQ(census->exported_ids, public_ids) << which;
  }
  EXPECT_EQ(anonymous.families, with_token.families);
  EXPECT_EQ(anonymous.shares, with_token.shares);
  // Both placeholder dates were in the Hub, and left out of the months.
  EXPECT_NE(truth.find("\"placeholder_dated_left_out\":"), std::string::npos);
  EXPECT_EQ(truth.find("\"placeholder_dated_left_out\":0"), std::string::npos)
      << truth.substr(0, 300);
}

}  // namespace
}  // namespace hubcensus
