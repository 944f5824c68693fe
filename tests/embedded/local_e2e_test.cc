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
using testing::RunInTerminal;
using testing::RunToCompletion;
using testing::StartFakehub;
using testing::Subprocess;

int Count(const std::string& text, const std::string& word) {
  int n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

// What follows "<prefix>" on the line a process printed, without the line end.
std::string AfterPrefix(const std::string& line, const std::string& prefix) {
  std::string rest = line.substr(line.find(prefix) + prefix.size());
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\r')) rest.pop_back();
  return rest;
}

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

// At a terminal, `local` and `crawl start --wait` redraw one live bar in place (carriage return,
// clear to end of line) instead of printing progress lines; the bar ends full.
TEST(LocalE2E, ATerminalGetsALiveProgressBar) {
  std::string hub;
  // Paced by a rate limit (10 requests a second), so the seven pages take over half a second
  // and the bar is drawn several times.
  auto fakehub =
      StartFakehub({"--repos=6000", "--seed=3", "--rate_limit=10/1", "--date=2025-10-31"}, &hub);
  ASSERT_TRUE(fakehub) << "fakehub did not start";
  std::string out;
  ASSERT_EQ(RunInTerminal({HubcensusBinary(), "local", "--hub_url=" + hub,
                           "--data_dir=" + MakeTempDir("local-tty"), "--date=2025-10-31",
                           "--workers=2", "--log_level=warn"},
                          &out, absl::Seconds(300)),
            0)
      << out;
  const std::string redraw = "\r\033[Kcrawl-2025-10-31 [";
  EXPECT_GE(Count(out, redraw), 2) << out;
  EXPECT_NE(out.find("[############################] "), std::string::npos) << out;
  EXPECT_NE(out.find(" repos/s  eta "), std::string::npos) << out;
  EXPECT_EQ(out.find("crawl-2025-10-31: "), std::string::npos) << "a plain progress line:\n" << out;
  // The family table follows the bar.
  EXPECT_NE(out.find("Qwen"), std::string::npos) << out;

  // The operator's CLI against real processes, its standard output a terminal.
  auto start = [](const std::vector<std::string>& argv, const std::string& ready,
                  std::string* address) -> std::optional<Subprocess> {
    auto p = Subprocess::Start(argv);
    if (!p) return std::nullopt;
    auto line = p->WaitForOutput(ready, absl::Seconds(60));
    if (!line) return std::nullopt;
    *address = AfterPrefix(*line, ready);
    return p;
  };
  std::string store, coordinator, ignored;
  auto aggregator = start({HubcensusBinary(), "aggregator",
                           "--data_dir=" + MakeTempDir("tty-store"), "--listen=127.0.0.1:0"},
                          "aggregator listening on ", &store);
  ASSERT_TRUE(aggregator);
  auto coord = start({HubcensusBinary(), "coordinator", "--state_dir=" + MakeTempDir("tty-coord"),
                      "--store=" + store, "--listen=127.0.0.1:0", "--hub_url=" + hub},
                     "coordinator listening on ", &coordinator);
  ASSERT_TRUE(coord);
  auto crawler = Subprocess::Start({HubcensusBinary(), "crawler", "--coordinator=" + coordinator,
                                    "--store=" + store, "--log_level=warn"});
  ASSERT_TRUE(crawler);
  ASSERT_EQ(RunInTerminal({HubcensusBinary(), "crawl", "start", "--coordinator=" + coordinator,
                           "--date=2025-10-31", "--wait", "--poll_seconds=0.05"},
                          &out, absl::Seconds(300)),
            0)
      << out;
  EXPECT_GE(Count(out, "\rcrawl-2025-10-31 ["), 2) << out;
  // The bar is full once, when the crawl is committed.
  const std::string full = "[" + std::string(30, '#') + "]";
  ASSERT_EQ(Count(out, full), 1) << out;
  EXPECT_NE(out.find("COMMITTED", out.find(full)), std::string::npos) << out;
  EXPECT_NE(out.find("\033[K"), std::string::npos) << out;
  EXPECT_NE(out.find("COMMITTED"), std::string::npos) << out;
  for (const char* plain : {"RUNNING items ", "COMMITTED items "}) {
    EXPECT_EQ(out.find(plain), std::string::npos) << "a plain progress line:\n" << out;
  }
  for (Subprocess* p : {&*crawler, &*coord, &*aggregator, &*fakehub}) p->Signal(SIGTERM);
  for (Subprocess* p : {&*crawler, &*coord, &*aggregator, &*fakehub}) {
    EXPECT_EQ(p->Wait(absl::Seconds(60)), 0);
  }
}

}  // namespace
}  // namespace hubcensus
