// `hubcensus local` as a user runs it: real processes, a fakehub on loopback, two dates.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>
#include <regex>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "embedded/truth_check.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"
#include "hubcensus/v1/store.grpc.pb.h"
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

// SIGTERM stops `local` promptly (the crawl stays open, checkpointed); the next run with another
// Hub URL is refused with what to do; --retry starts a new attempt, which commits the truth.
TEST(LocalE2E, AnOpenCrawlOfAnotherHubIsRefusedAndRetryStartsANewAttempt) {
  const std::string data = MakeTempDir("local-other-hub");
  auto dead = Subprocess::Start({HubcensusBinary(), "local", "--hub_url=http://127.0.0.1:9",
                                 "--data_dir=" + data, "--date=2025-10-31", "--log_level=warn"});
  ASSERT_TRUE(dead);
  ASSERT_TRUE(dead->WaitForOutput("crawl-2025-10-31", absl::Seconds(60))) << dead->Output();
  const absl::Time signalled = absl::Now();
  dead->Signal(SIGTERM);
  EXPECT_EQ(dead->Wait(absl::Seconds(30)), 128 + SIGTERM) << dead->Output();
  std::fprintf(stderr, "local stopped %.2f s after SIGTERM\n",
               absl::ToDoubleSeconds(absl::Now() - signalled));
  EXPECT_NE(dead->Output().find("stays open"), std::string::npos) << dead->Output();

  std::string hub;
  auto fakehub =
      StartFakehub({"--repos=3000", "--seed=11", "--rate_limit=off", "--date=2025-10-31"}, &hub);
  ASSERT_TRUE(fakehub) << "fakehub did not start";
  std::string out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "local", "--hub_url=" + hub, "--data_dir=" + data,
                             "--date=2025-10-31", "--hub_quota=off", "--log_level=warn"},
                            &out, absl::Seconds(120)),
            1)
      << out;
  EXPECT_NE(out.find("crawl-2025-10-31 is open and crawls http://127.0.0.1:9, not " + hub),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("--retry"), std::string::npos) << out;
  EXPECT_NE(out.find("--hub_url=http://127.0.0.1:9"), std::string::npos) << out;

  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "local", "--hub_url=" + hub, "--data_dir=" + data,
                             "--date=2025-10-31", "--hub_quota=off", "--retry", "--format=json",
                             // Quiet: the cancelled attempt's workers may still log while the
                             // table is printed, and the table is read back from the output.
                             "--log_level=error"},
                            &out, absl::Seconds(300)),
            0)
      << out;
  EXPECT_NE(out.find("crawl-2025-10-31.2"), std::string::npos) << out;
  auto start = out.find("{\"crawl_id\"");
  ASSERT_NE(start, std::string::npos) << out;
  std::string body;
  ASSERT_EQ(HttpCall(hub + "/_sim/truth?date=2025-10-31", &body), 200);
  auto diffs = JsonDifferences(out.substr(start, out.rfind('}') + 1 - start),
                               Member(body, "families"), {"crawl_id"});
  ASSERT_TRUE(diffs.ok()) << diffs.status();
  EXPECT_TRUE(diffs->empty()) << (*diffs)[0];
  fakehub->Signal(SIGTERM);
  EXPECT_EQ(fakehub->Wait(), 0);
}

// An interrupted `local` resumes on the next run, and that run says so: where it resumed, the
// whole crawl's pages at the end, a rate of the repos it fetched itself, and what it crawled,
// never "nothing crawled".
TEST(LocalE2E, AResumedCrawlSaysWhatThisRunCrawled) {
  std::string hub;
  // 400 ms a page of 1,000 (one cursor chain: one page at a time), so the first run is
  // interrupted after a few of the thirteen pages and no rate can honestly pass 2,500 repos/s.
  auto fakehub = StartFakehub({"--repos=12000", "--seed=5", "--rate_limit=off",
                               "--page_latency_ms=400", "--date=2025-10-31"},
                              &hub);
  ASSERT_TRUE(fakehub) << "fakehub did not start";
  const std::string data = MakeTempDir("local-resume");
  const std::vector<std::string> local = {
      HubcensusBinary(),   "local",       "--hub_url=" + hub, "--data_dir=" + data,
      "--date=2025-10-31", "--workers=1", "--hub_quota=off",  "--format=csv",
      "--log_level=error"};
  auto first = Subprocess::Start(local);
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->WaitForOutput("crawl-2025-10-31: ", absl::Seconds(60))) << first->Output();
  absl::SleepFor(absl::Seconds(2.5));
  first->Signal(SIGTERM);
  ASSERT_EQ(first->Wait(absl::Seconds(30)), 128 + SIGTERM) << first->Output();

  std::string out;
  ASSERT_EQ(RunToCompletion(local, &out, absl::Seconds(300)), 0) << out;
  EXPECT_EQ(out.find("nothing crawled"), std::string::npos) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      out, m,
      std::regex("resuming crawl-2025-10-31 from its checkpoint: (\\d+) pages and (\\d+) "
                 "repos done before")))
      << out;
  const int64_t pages_before = std::stoll(m[1]);
  EXPECT_GT(pages_before, 0) << out;
  // Every progress line's rate counts this run's repos only.
  const std::regex line("crawl-2025-10-31: (\\d+)/(\\d+) pages, (\\d+) repos, (\\d+) repos/s");
  int64_t done = 0, total = 0, repos = 0;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator();
       ++it) {
    done = std::stoll((*it)[1]);
    total = std::stoll((*it)[2]);
    repos = std::stoll((*it)[3]);
    EXPECT_LE(std::stoll((*it)[4]), 5000) << it->str() << "\n" << out;
  }
  // The last line is the committed crawl: every page of it.
  EXPECT_EQ(done, total) << out;
  EXPECT_GT(done, pages_before) << out;
  EXPECT_GT(repos, 1000) << out;
  EXPECT_NE(out.find(absl::StrCat("crawl-2025-10-31 resumed and committed: ", done - pages_before,
                                  " of its ", done, " pages")),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("Qwen"), std::string::npos) << out;  // the family table follows
  fakehub->Signal(SIGTERM);
  EXPECT_EQ(fakehub->Wait(), 0);
}

// A Hub nothing answers at: `local` ends non-zero with one short line naming the host (the
// crawler reports FailLease.connection_failure; the coordinator fails the crawl after the timeout).
TEST(LocalE2E, AnUnreachableHubEndsLocalWithOneShortLine) {
  std::string out;
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "local", "--hub_url=http://127.0.0.1:9",
                             "--data_dir=" + MakeTempDir("local-unreachable"), "--date=2025-10-31",
                             "--unreachable_hub_timeout=3s", "--log_level=error"},
                            &out, absl::Seconds(120)),
            1)
      << out;
  const auto at = out.find("hubcensus local: ");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string line = out.substr(at, out.find('\n', at) - at);
  EXPECT_LE(line.size(), 250u) << line;
  EXPECT_NE(line.find("127.0.0.1:9 unreachable"), std::string::npos) << line;
}

// Worker RPCs and ingest with --worker_token_file on every role, as the prod overlay runs them:
// the crawl commits; a client without the token can neither lease, fail a lease nor write.
TEST(ProcessE2E, TheWorkerTokenGuardsLeasesAndIngest) {
  std::string hub;
  auto fakehub =
      StartFakehub({"--repos=2000", "--seed=5", "--rate_limit=off", "--date=2025-10-31"}, &hub);
  ASSERT_TRUE(fakehub) << "fakehub did not start";
  const std::string token_file = MakeTempDir("worker-token") + "/token";
  std::ofstream(token_file) << "worker-e2e-s3cret\n";
  auto start = [](const std::vector<std::string>& argv, const std::string& ready,
                  std::string* address) -> std::optional<Subprocess> {
    auto p = Subprocess::Start(argv);
    if (!p) return std::nullopt;
    auto line = p->WaitForOutput(ready, absl::Seconds(60));
    if (!line) return std::nullopt;
    *address = AfterPrefix(*line, ready);
    return p;
  };
  std::string store, coordinator;
  auto aggregator = start({HubcensusBinary(), "aggregator", "--data_dir=" + MakeTempDir("wt-store"),
                           "--listen=127.0.0.1:0", "--worker_token_file=" + token_file},
                          "aggregator listening on ", &store);
  ASSERT_TRUE(aggregator);
  auto coord = start({HubcensusBinary(), "coordinator", "--state_dir=" + MakeTempDir("wt-coord"),
                      "--store=" + store, "--listen=127.0.0.1:0", "--hub_url=" + hub,
                      "--hub_quota=off", "--worker_token_file=" + token_file},
                     "coordinator listening on ", &coordinator);
  ASSERT_TRUE(coord);

  // Without the token: refused, and the refusal says what is missing, not the token.
  {
    auto stub = v1::Coordinator::NewStub(MakeChannel(coordinator));
    grpc::ClientContext context;
    v1::AcquireLeaseRequest request;
    request.set_worker_id("intruder");
    v1::AcquireLeaseResponse response;
    grpc::Status s = stub->AcquireLease(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
    EXPECT_NE(s.error_message().find("worker token"), std::string::npos) << s.error_message();
    auto store_stub = v1::SnapshotStore::NewStub(MakeChannel(store));
    grpc::ClientContext abort_context;
    v1::AbortRequest abort;
    abort.set_crawl_id("crawl-2025-10-31");
    v1::AbortResponse aborted;
    s = store_stub->Abort(&abort_context, abort, &aborted);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  }

  auto crawler = Subprocess::Start({HubcensusBinary(), "crawler", "--coordinator=" + coordinator,
                                    "--store=" + store, "--worker_token_file=" + token_file,
                                    "--log_level=warn"});
  ASSERT_TRUE(crawler);
  std::string out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "crawl", "start", "--coordinator=" + coordinator,
                             "--date=2025-10-31", "--wait", "--poll_seconds=0.1"},
                            &out, absl::Seconds(300)),
            0)
      << out << crawler->Output();
  EXPECT_NE(out.find("COMMITTED"), std::string::npos) << out;
  for (Subprocess* p : {&*crawler, &*coord, &*aggregator}) {
    EXPECT_EQ(p->Output().find("worker-e2e-s3cret"), std::string::npos) << p->Output();
  }
  for (Subprocess* p : {&*crawler, &*coord, &*aggregator, &*fakehub}) p->Signal(SIGTERM);
  for (Subprocess* p : {&*crawler, &*coord, &*aggregator, &*fakehub}) {
    EXPECT_EQ(p->Wait(absl::Seconds(60)), 0);
  }
}

}  // namespace
}  // namespace hubcensus
