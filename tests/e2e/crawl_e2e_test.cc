// The coordinator's done-when: a crawl by real processes on loopback (fakehub, aggregator,
// coordinator, three crawler workers) completes although one worker is SIGKILLed mid-lease and
// the coordinator is SIGKILLed and restarted once, and the committed census equals fakehub's
// ground truth.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>

#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/grpc_server.h"
#include "embedded/truth_check.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using testing::HubcensusBinary;
using testing::MakeTempDir;
using testing::RunToCompletion;
using testing::Subprocess;

const char kDate[] = "2025-10-31";

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string HttpGet(const std::string& url) {
  std::string body;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  EXPECT_EQ(rc, CURLE_OK) << url;
  EXPECT_EQ(status, 200) << url << ": " << body;
  return body;
}

// What follows "<prefix>" on the line that has it.
std::string AfterPrefix(const std::string& line, const std::string& prefix) {
  std::string rest = line.substr(line.find(prefix) + prefix.size());
  return std::string(absl::StripAsciiWhitespace(rest));
}

Subprocess MustStart(const std::vector<std::string>& argv, const std::string& ready,
                     std::string* ready_line = nullptr) {
  auto p = Subprocess::Start(argv);
  EXPECT_TRUE(p.has_value()) << argv[1];
  auto line = p->WaitForOutput(ready, absl::Seconds(60));
  EXPECT_TRUE(line.has_value()) << argv[1] << " never printed \"" << ready << "\":\n"
                                << p->Output();
  if (ready_line != nullptr && line.has_value()) *ready_line = *line;
  return std::move(*p);
}

TEST(CrawlE2E, SurvivesAKilledWorkerAndAKilledCoordinatorAndMatchesTheTruth) {
  std::string line;
  // About 30 pages, paced by the simulated Hub's rate limit (20 requests per 2 s window, learned by
  // the coordinator from the workers' RateLimit headers), so the kills land mid-crawl.
  Subprocess fakehub = MustStart({HubcensusBinary(), "fakehub", "--port=0", "--repos=30000",
                                  "--seed=7", absl::StrCat("--date=", kDate), "--rate_limit=20/2"},
                                 "fakehub listening on ", &line);
  const std::string hub_url = AfterPrefix(line, "fakehub listening on ");
  ASSERT_EQ(hub_url.rfind("http://127.0.0.1:", 0), 0u) << line;

  Subprocess aggregator =
      MustStart({HubcensusBinary(), "aggregator", "--data_dir=" + MakeTempDir("e2e_store"),
                 "--listen=127.0.0.1:0"},
                "aggregator listening on ", &line);
  const std::string store = AfterPrefix(line, "aggregator listening on ");

  const std::string coordinator = absl::StrCat("127.0.0.1:", testing::FreeLoopbackPort());
  const std::vector<std::string> coordinator_argv = {
      HubcensusBinary(),
      "coordinator",
      "--state_dir=" + MakeTempDir("e2e_coordinator"),
      "--store=" + store,
      "--listen=" + coordinator,
      "--hub_url=" + hub_url,
      "--lease_seconds=2"};
  std::optional<Subprocess> coord(MustStart(coordinator_argv, "coordinator listening on "));

  auto start_worker = [&](int i) {
    auto w = Subprocess::Start({HubcensusBinary(), "crawler", "--coordinator=" + coordinator,
                                "--store=" + store, absl::StrCat("--worker_id=worker-", i),
                                "--log_level=debug"});
    EXPECT_TRUE(w.has_value());
    return std::move(*w);
  };
  std::vector<Subprocess> workers;
  workers.push_back(start_worker(0));

  std::string out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "crawl", "start", "--coordinator=" + coordinator,
                             absl::StrCat("--date=", kDate)},
                            &out),
            0)
      << out;

  // Worker 0 dies holding the first page's lease: the lease expires and the page goes to
  // another worker.
  ASSERT_TRUE(workers[0].WaitForOutput("lease_acquired", absl::Seconds(60)).has_value())
      << workers[0].Output();
  workers[0].Signal(SIGKILL);
  EXPECT_EQ(workers[0].Wait(absl::Seconds(30)), 128 + SIGKILL);
  auto count = [](const std::string& text, const std::string& word) {
    int n = 0;
    for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
    return n;
  };
  const std::string dead = workers[0].Output();
  ASSERT_GT(count(dead, "lease_acquired"), count(dead, "lease_completed"))
      << "worker 0 was not killed mid-lease:\n"
      << dead;
  workers.push_back(start_worker(1));
  workers.push_back(start_worker(2));

  // The coordinator dies mid-crawl and comes back on the same address and state.
  auto stub = v1::Coordinator::NewStub(MakeChannel(coordinator));
  int64_t done_before_kill = 0;
  for (int i = 0; i < 3000; ++i) {
    grpc::ClientContext context;
    v1::GetCrawlRequest request;
    request.set_date(kDate);
    v1::Crawl crawl;
    if (stub->GetCrawl(&context, request, &crawl).ok() && crawl.stats().items_done() >= 6) {
      done_before_kill = crawl.stats().items_done();
      ASSERT_EQ(crawl.state(), v1::CRAWL_RUNNING) << "the crawl ended before the kill";
      EXPECT_GE(crawl.stats().lease_expiries(), 1) << "worker 0's lease";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(done_before_kill, 6);
  coord->Signal(SIGKILL);
  EXPECT_EQ(coord->Wait(absl::Seconds(30)), 128 + SIGKILL);
  coord.reset();
  coord.emplace(MustStart(coordinator_argv, "coordinator listening on "));

  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "crawl", "start", "--coordinator=" + coordinator,
                             absl::StrCat("--date=", kDate), "--wait", "--poll_seconds=0.2"},
                            &out, absl::Seconds(180)),
            0)
      << out << "\n--- coordinator:\n"
      << coord->Output();
  EXPECT_NE(out.find("already exists"), std::string::npos) << out;
  EXPECT_NE(out.find("COMMITTED"), std::string::npos) << out;

  // The first channel held a connection to the killed coordinator, and a call on that connection
  // fails with UNAVAILABLE ("Broken pipe") once; a new channel dials the restarted one.
  stub = v1::Coordinator::NewStub(MakeChannel(coordinator));
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::GetCrawlRequest request;
  request.set_date(kDate);
  v1::Crawl crawl;
  grpc::Status got = stub->GetCrawl(&context, request, &crawl);
  ASSERT_TRUE(got.ok()) << got.error_code() << ": " << got.error_message();
  EXPECT_EQ(crawl.state(), v1::CRAWL_COMMITTED);
  EXPECT_GE(crawl.stats().lease_expiries(), 1);  // the killed worker's, and the restart's
  // Every repo listed at that date, once (the store de-duplicates; the count is its census size).
  simdjson::ondemand::parser parser;
  simdjson::padded_string ids(HttpGet(absl::StrCat(hub_url, "/_sim/ids?date=", kDate)));
  simdjson::ondemand::document doc = parser.iterate(ids);
  simdjson::ondemand::array array = doc.get_array();
  int64_t listed = 0;
  for (auto id : array) {
    std::string_view ignored;
    ASSERT_EQ(id.get_string().get(ignored), simdjson::SUCCESS);
    ++listed;
  }
  ASSERT_GT(listed, 10000);
  EXPECT_EQ(crawl.stats().repos(), listed);
  EXPECT_GE(crawl.stats().pages(), listed / 1000);

  // The committed census equals the simulator's ground truth, figure by figure.
  std::string families, shares;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "query", "families", "--aggregator=" + store,
                             absl::StrCat("--date=", kDate), "--format=json"},
                            &families),
            0)
      << families;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "query", "shares", "--aggregator=" + store,
                             absl::StrCat("--date=", kDate), "--format=json"},
                            &shares),
            0)
      << shares;
  std::string ours = absl::StrCat("{\"families\":", families, ",\"shares\":", shares, "}");
  std::string truth = HttpGet(absl::StrCat(hub_url, "/_sim/truth?date=", kDate));
  std::printf(
      "e2e: %lld pages, %lld repos, %lld lease expiries, %lld retries; %zu bytes of "
      "census JSON against %zu bytes of truth\n",
      static_cast<long long>(crawl.stats().pages()), static_cast<long long>(crawl.stats().repos()),
      static_cast<long long>(crawl.stats().lease_expiries()),
      static_cast<long long>(crawl.stats().retries()), ours.size(), truth.size());
  auto differences = JsonDifferences(ours, truth);
  ASSERT_TRUE(differences.ok()) << differences.status() << "\nours: " << ours.substr(0, 2000);
  EXPECT_TRUE(differences->empty()) << absl::StrJoin(*differences, "\n");

  for (size_t i = 1; i < workers.size(); ++i) workers[i].Signal(SIGTERM);
  coord->Signal(SIGTERM);
  EXPECT_EQ(coord->Wait(absl::Seconds(30)), 0);
  for (size_t i = 1; i < workers.size(); ++i) EXPECT_EQ(workers[i].Wait(absl::Seconds(60)), 0);
  aggregator.Signal(SIGTERM);
  fakehub.Signal(SIGTERM);
}

}  // namespace
}  // namespace hubcensus
