// The chaos suite (issue 12): every role as a real process on loopback, a Hub that fails one
// request in ten in every way it can, a crawler SIGKILLed every few seconds, and the coordinator
// and the aggregator each SIGKILLed once per crawl. Every committed census must equal the
// simulator's ground truth exactly; a second suite lets the Hub change under the crawl and checks
// that every repo present for the whole crawl is counted exactly once.
//
// CI runs 3 consecutive dates; HUBCENSUS_CHAOS_DATES=20 runs 20 (docs/reliability.md).
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/dates.h"
#include "common/grpc_server.h"
#include "embedded/truth_check.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"
#include "tests/embedded/e2e_util.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using testing::FreeLoopbackPort;
using testing::HubcensusBinary;
using testing::MakeTempDir;
using testing::RunToCompletion;
using testing::Subprocess;

// GET or POST on fakehub's simulator endpoints (never faulted).
std::string Http(const std::string& url, bool post = false) {
  std::string body;
  EXPECT_EQ(testing::HttpCall(url, &body, post), 200) << url << ": " << body;
  return body;
}

std::vector<std::string> JsonStrings(const std::string& json) {
  std::vector<std::string> out;
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(json);
  simdjson::ondemand::document doc = parser.iterate(padded);
  simdjson::ondemand::array array;
  if (doc.get_array().get(array) != simdjson::SUCCESS) return out;
  for (auto value : array) {
    std::string_view s;
    if (value.get_string().get(s) == simdjson::SUCCESS) out.emplace_back(s);
  }
  return out;
}

std::string AfterPrefix(const std::string& line, const std::string& prefix) {
  std::string rest = line.substr(line.find(prefix) + prefix.size());
  return std::string(absl::StripAsciiWhitespace(rest));
}

int DatesToRun() {
  int n = 3;
  const char* env = std::getenv("HUBCENSUS_CHAOS_DATES");
  if (env != nullptr && (!absl::SimpleAtoi(env, &n) || n < 1 || n > 365)) n = 3;
  return n;
}

// Every fault kind of fakehub but `mutate` at `total` combined (the Hub's truth must not move
// under the first suite), or `mutate` alone.
std::string FaultSpec(double total, bool mutate_only) {
  if (mutate_only) return absl::StrCat("mutate=", total);
  const char* kinds[] = {"http500",  "http502", "http503",   "http429", "reset",
                         "truncate", "stall",   "malformed", "repeat"};
  std::vector<std::string> parts;
  for (const char* kind : kinds) parts.push_back(absl::StrCat(kind, "=", total / 9));
  parts.push_back("mutate=0");
  return absl::StrJoin(parts, ",");
}

// fakehub, one aggregator and one coordinator on fixed loopback ports (so a killed one comes back
// on the same address and state), and `workers` crawler processes.
class Cluster {
 public:
  Cluster(const std::string& faults, int repos, int workers) : workers_(workers) {
    std::string line;
    auto hub = Subprocess::Start({HubcensusBinary(), "fakehub", "--port=0",
                                  absl::StrCat("--repos=", repos), "--seed=11", "--rate_limit=40/2",
                                  "--stall_seconds=3", "--faults=" + faults});
    EXPECT_TRUE(hub.has_value());
    fakehub_.emplace(std::move(*hub));
    auto ready = fakehub_->WaitForOutput("fakehub listening on ", absl::Seconds(120));
    EXPECT_TRUE(ready.has_value()) << fakehub_->Output();
    if (ready.has_value()) hub_url_ = AfterPrefix(*ready, "fakehub listening on ");
    store_address_ = absl::StrCat("127.0.0.1:", FreeLoopbackPort());
    store_dir_ = MakeTempDir("chaos_store");
    coordinator_address_ = absl::StrCat("127.0.0.1:", FreeLoopbackPort());
    coordinator_dir_ = MakeTempDir("chaos_coordinator");
    StartAggregator();
    StartCoordinator();
    for (int i = 0; i < workers_; ++i) crawlers_.push_back(StartCrawler());
  }

  ~Cluster() {
    for (auto& c : crawlers_) c.Signal(SIGTERM);
    if (coordinator_) coordinator_->Signal(SIGTERM);
    if (aggregator_) aggregator_->Signal(SIGTERM);
    if (fakehub_) fakehub_->Signal(SIGTERM);
  }

  const std::string& hub_url() const { return hub_url_; }
  const std::string& store_address() const { return store_address_; }
  const std::string& coordinator_address() const { return coordinator_address_; }
  const std::string& store_dir() const { return store_dir_; }
  int crawler_kills() const { return crawler_kills_; }

  void StartAggregator() {
    auto p = Subprocess::Start({HubcensusBinary(), "aggregator", "--data_dir=" + store_dir_,
                                "--listen=" + store_address_});
    ASSERT_TRUE(p.has_value());
    aggregator_.emplace(std::move(*p));
    ASSERT_TRUE(aggregator_->WaitForOutput("aggregator listening on ", absl::Seconds(120)))
        << aggregator_->Output();
  }

  void StartCoordinator() {
    auto p = Subprocess::Start({HubcensusBinary(), "coordinator", "--state_dir=" + coordinator_dir_,
                                "--store=" + store_address_, "--listen=" + coordinator_address_,
                                "--hub_url=" + hub_url_, "--lease_seconds=2"});
    ASSERT_TRUE(p.has_value());
    coordinator_.emplace(std::move(*p));
    ASSERT_TRUE(coordinator_->WaitForOutput("coordinator listening on ", absl::Seconds(120)))
        << coordinator_->Output();
  }

  Subprocess StartCrawler() {
    auto p = Subprocess::Start(
        {HubcensusBinary(), "crawler", "--coordinator=" + coordinator_address_,
         "--store=" + store_address_, absl::StrCat("--worker_id=chaos-", next_worker_++)});
    EXPECT_TRUE(p.has_value());
    return std::move(*p);
  }

  // SIGKILL, then start again on the same address and state.
  void KillAndRestartCoordinator() {
    coordinator_->Signal(SIGKILL);
    EXPECT_EQ(coordinator_->Wait(absl::Seconds(30)), 128 + SIGKILL);
    coordinator_.reset();
    StartCoordinator();
  }
  void StopAggregator() {
    aggregator_->Signal(SIGTERM);
    EXPECT_EQ(aggregator_->Wait(absl::Seconds(30)), 0);
    aggregator_.reset();
  }
  void KillAndRestartAggregator() {
    aggregator_->Signal(SIGKILL);
    EXPECT_EQ(aggregator_->Wait(absl::Seconds(30)), 128 + SIGKILL);
    aggregator_.reset();
    StartAggregator();
  }
  void KillAndRestartACrawler(std::mt19937* rng) {
    size_t victim = (*rng)() % crawlers_.size();
    crawlers_[victim].Signal(SIGKILL);
    crawlers_[victim].Wait(absl::Seconds(30));
    crawlers_[victim] = StartCrawler();
    ++crawler_kills_;
  }

  // The crawl of `date` as the coordinator knows it now (a fresh channel each time: the
  // coordinator may have been restarted since the last call).
  std::optional<v1::Crawl> GetCrawl(const std::string& date) {
    auto stub = v1::Coordinator::NewStub(MakeChannel(coordinator_address_));
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetCrawlRequest request;
    request.set_date(date);
    v1::Crawl crawl;
    if (!stub->GetCrawl(&context, request, &crawl).ok()) return std::nullopt;
    return crawl;
  }

  // Starts the crawl of `date` and drives the chaos until it ends: a crawler SIGKILLed every
  // 3 s, the coordinator SIGKILLed once a third of the way and the aggregator once two thirds of
  // the way (by pages done out of `expected_pages`). Returns the crawl as it ended.
  v1::Crawl CrawlUnderChaos(const std::string& date, int expected_pages, std::mt19937* rng,
                            const std::vector<std::string>& extra_start_flags = {}) {
    std::vector<std::string> start = {HubcensusBinary(), "crawl", "start",
                                      "--coordinator=" + coordinator_address_, "--date=" + date};
    start.insert(start.end(), extra_start_flags.begin(), extra_start_flags.end());
    std::string out;
    EXPECT_EQ(RunToCompletion(start, &out, absl::Seconds(60)), 0) << out;
    bool coordinator_killed = false, aggregator_killed = false;
    absl::Time next_crawler_kill = absl::Now() + absl::Seconds(3);
    const absl::Time give_up = absl::Now() + absl::Minutes(6);
    v1::Crawl last;
    while (absl::Now() < give_up) {
      std::optional<v1::Crawl> crawl = GetCrawl(date);
      if (crawl.has_value()) {
        last = *crawl;
        if (crawl->state() == v1::CRAWL_COMMITTED || crawl->state() == v1::CRAWL_FAILED ||
            crawl->state() == v1::CRAWL_CANCELLED) {
          return last;
        }
        if (!coordinator_killed && crawl->stats().pages() * 3 >= expected_pages) {
          KillAndRestartCoordinator();
          coordinator_killed = true;
          ++coordinator_kills_;
          continue;
        }
        if (coordinator_killed && !aggregator_killed &&
            crawl->stats().pages() * 3 >= expected_pages * 2) {
          KillAndRestartAggregator();
          aggregator_killed = true;
          ++aggregator_kills_;
          continue;
        }
      }
      if (absl::Now() >= next_crawler_kill) {
        KillAndRestartACrawler(rng);
        next_crawler_kill = absl::Now() + absl::Seconds(3);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "the crawl of " << date
                  << " did not end in 6 minutes: " << last.ShortDebugString()
                  << "\n--- coordinator:\n"
                  << coordinator_->Output().substr(0, 20000);
    return last;
  }

  int coordinator_kills() const { return coordinator_kills_; }
  int aggregator_kills() const { return aggregator_kills_; }

  // The committed census of `date` as `query` prints it, against fakehub's truth.
  void ExpectCensusEqualsTruth(const std::string& date) {
    std::string families, shares;
    ASSERT_EQ(RunToCompletion({HubcensusBinary(), "query", "families",
                               "--aggregator=" + store_address_, "--date=" + date, "--format=json"},
                              &families),
              0)
        << families;
    ASSERT_EQ(RunToCompletion({HubcensusBinary(), "query", "shares",
                               "--aggregator=" + store_address_, "--date=" + date, "--format=json"},
                              &shares),
              0)
        << shares;
    std::string ours = absl::StrCat("{\"families\":", families, ",\"shares\":", shares, "}");
    std::string truth = Http(absl::StrCat(hub_url_, "/_sim/truth?date=", date));
    auto differences = JsonDifferences(ours, truth);
    ASSERT_TRUE(differences.ok()) << differences.status();
    EXPECT_TRUE(differences->empty())
        << date << ": " << differences->size() << " figures differ:\n"
        << absl::StrJoin(differences->begin(),
                         differences->begin() + std::min<size_t>(differences->size(), 40), "\n");
    figures_checked_ += CountFigures(truth);
  }

  int64_t figures_checked() const { return figures_checked_; }

 private:
  // Numbers in the truth document: each is a figure the census had to match.
  static int64_t CountFigures(const std::string& json) {
    int64_t n = 0;
    bool in_string = false, in_number = false;
    for (size_t i = 0; i < json.size(); ++i) {
      char c = json[i];
      if (in_string) {
        if (c == '\\')
          ++i;
        else if (c == '"')
          in_string = false;
        continue;
      }
      if (c == '"') {
        in_string = true;
        in_number = false;
        continue;
      }
      bool digit = (c >= '0' && c <= '9') || c == '-' || c == '.' || c == 'e' || c == 'E';
      if (digit && !in_number) ++n;
      in_number = digit;
    }
    return n;
  }

  int workers_;
  std::string hub_url_, store_address_, store_dir_, coordinator_address_, coordinator_dir_;
  std::optional<Subprocess> fakehub_, aggregator_, coordinator_;
  std::vector<Subprocess> crawlers_;
  int next_worker_ = 0;
  int crawler_kills_ = 0, coordinator_kills_ = 0, aggregator_kills_ = 0;
  int64_t figures_checked_ = 0;
};

TEST(ChaosE2E, EveryCommittedCensusEqualsTheTruthUnderKillsAndFaults) {
  const int dates = DatesToRun();
  Cluster cluster(FaultSpec(0.10, /*mutate_only=*/false), /*repos=*/50000, /*workers=*/3);
  ASSERT_FALSE(cluster.hub_url().empty());
  std::mt19937 rng(20251031);
  auto first = ParseDate("2025-11-30");
  ASSERT_TRUE(first.ok());
  int committed = 0;
  for (int d = 0; d < dates; ++d) {
    const std::string date = FormatDate(*first - absl::Hours(24) * (dates - 1 - d));
    Http(absl::StrCat(cluster.hub_url(), "/_sim/clock?date=", date), /*post=*/true);
    const int expected_pages =
        static_cast<int>(
            JsonStrings(Http(absl::StrCat(cluster.hub_url(), "/_sim/ids?date=", date))).size() /
            1000) +
        1;
    v1::Crawl crawl = cluster.CrawlUnderChaos(date, expected_pages, &rng);
    ASSERT_EQ(crawl.state(), v1::CRAWL_COMMITTED) << date << ": " << crawl.failure_reason() << "\n"
                                                  << crawl.ShortDebugString();
    ++committed;
    cluster.ExpectCensusEqualsTruth(date);
    std::printf("chaos: %s committed: %lld pages, %lld repos, %lld retries, %lld lease expiries\n",
                date.c_str(), static_cast<long long>(crawl.stats().pages()),
                static_cast<long long>(crawl.stats().repos()),
                static_cast<long long>(crawl.stats().retries()),
                static_cast<long long>(crawl.stats().lease_expiries()));
  }
  std::printf(
      "chaos: %d of %d censuses committed and equal to the truth (%lld figures); %d crawler, "
      "%d coordinator and %d aggregator SIGKILLs\n",
      committed, dates, static_cast<long long>(cluster.figures_checked()), cluster.crawler_kills(),
      cluster.coordinator_kills(), cluster.aggregator_kills());
  EXPECT_EQ(cluster.coordinator_kills(), dates);
  EXPECT_EQ(cluster.aggregator_kills(), dates);
}

// The Hub changes under the crawl (repos created, deleted, renamed, downloads moved between
// pages), with a second listing stream so a renamed repo can be met under both names. Every repo
// listed both before and after the crawl must be in the census exactly once.
TEST(ChaosE2E, AMutatingHubCountsEveryRepoPresentForTheWholeCrawlOnce) {
  Cluster cluster(FaultSpec(0.10, /*mutate_only=*/true), /*repos=*/20000, /*workers=*/3);
  ASSERT_FALSE(cluster.hub_url().empty());
  std::mt19937 rng(7);
  const std::string date = "2025-11-30";
  Http(absl::StrCat(cluster.hub_url(), "/_sim/clock?date=", date), /*post=*/true);
  std::vector<std::string> before =
      JsonStrings(Http(absl::StrCat(cluster.hub_url(), "/_sim/ids?date=", date)));
  ASSERT_GT(before.size(), 5000u);
  v1::Crawl crawl = cluster.CrawlUnderChaos(date, static_cast<int>(before.size() / 1000) + 1, &rng,
                                            {"--extra_stream=downloads"});
  ASSERT_EQ(crawl.state(), v1::CRAWL_COMMITTED) << crawl.failure_reason();
  std::vector<std::string> after =
      JsonStrings(Http(absl::StrCat(cluster.hub_url(), "/_sim/ids?date=", date)));
  std::set<std::string> stable(before.begin(), before.end());
  {
    std::set<std::string> at_end(after.begin(), after.end());
    for (auto it = stable.begin(); it != stable.end();) {
      it = at_end.count(*it) > 0 ? std::next(it) : stable.erase(it);
    }
  }
  ASSERT_GT(stable.size(), 1000u);

  // The census's repos, from the store itself (export opens the folder: the aggregator stops
  // first).
  cluster.StopAggregator();
  std::string csv;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "export", "--data_dir=" + cluster.store_dir(),
                             "--date=" + date, "--format=csv"},
                            &csv),
            0)
      << csv.substr(0, 2000);
  std::vector<std::string> lines = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  ASSERT_GT(lines.size(), 1u);
  // id,object_id,... : a repo is one object_id (_id), whatever its name.
  std::map<std::string, int> counted;
  std::map<std::string, std::vector<std::string>> names_of_object;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> cells = absl::StrSplit(lines[i], absl::MaxSplits(',', 2));
    ASSERT_GE(cells.size(), 2u) << lines[i];
    ++counted[cells[0]];
    names_of_object[cells[1]].push_back(cells[0]);
  }
  std::string twice;
  for (const auto& [object_id, names] : names_of_object) {
    if (names.size() > 1 && twice.size() < 400) {
      absl::StrAppend(&twice, " ", object_id, "=", absl::StrJoin(names, "|"));
    }
  }
  EXPECT_EQ(names_of_object.size(), counted.size()) << "repos counted under two names:" << twice;
  int64_t missing = 0, repeated = 0;
  std::string examples;
  for (const std::string& id : stable) {
    auto it = counted.find(id);
    if (it == counted.end() || it->second != 1) {
      (it == counted.end() ? missing : repeated)++;
      if (examples.size() < 400) absl::StrAppend(&examples, " ", id);
    }
  }
  for (const auto& [id, n] : counted) {
    if (n > 1 && stable.count(id) == 0) {
      ++repeated;
      if (examples.size() < 400) absl::StrAppend(&examples, " ", id);
    }
  }
  EXPECT_EQ(missing, 0) << examples;
  EXPECT_EQ(repeated, 0) << examples;
  std::printf(
      "chaos: mutating Hub: %zu repos present for the whole crawl, %zu listed before, %zu after, "
      "%zu in the census; %lld pages, %d crawler SIGKILLs\n",
      stable.size(), before.size(), after.size(), counted.size(),
      static_cast<long long>(crawl.stats().pages()), cluster.crawler_kills());
}

}  // namespace
}  // namespace hubcensus
