// Store and aggregation benchmark: bytes on disk per repo per crawl, ingest and commit time, and
// lineage + family metrics over a synthetic Hub of N repos (2.2M is the design's scale).
//
//   store_bench [--repos=200000] [--crawls=2] [--in_memory_repos=2200000] [--dir=PATH]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/census_metrics.h"
#include "aggregator/lineage.h"
#include "common/checksum.h"
#include "config/family_config.h"
#include "store/snapshot_store.h"

namespace hubcensus {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// CPU seconds of the process so far (every thread): on a shared machine, wall times swing with
// the load and CPU time much less.
double CpuSeconds() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// A line of /proc/self/status in MB ("VmRSS", "VmHWM"); -1 when unreadable.
double StatusMb(const char* field) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  double kb = -1;
  const size_t len = std::strlen(field);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, len) == 0 && line[len] == ':') kb = std::atof(line + len + 1);
  }
  std::fclose(f);
  return kb < 0 ? -1 : kb / 1024;
}

// Starts the peak RSS (VmHWM) over from the current RSS (Linux: clear_refs 5).
void ResetPeakRss() {
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

// A Hub shaped like the real one: ~2% first-party repos of tracked families, 28% with declared
// bases (adapter 43%, finetune 36%, quantized 19%, merge 2%), heavy-tailed downloads.
std::vector<v1::RepoSnapshot> SyntheticHub(int64_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  const auto& config = DefaultFamilyConfig();
  std::vector<std::string> tracked;
  for (const auto& f : config.family()) {
    for (const auto& ns : f.namespace_()) tracked.push_back(ns);
  }
  const char* tags[] = {"text-generation", "image-text-to-text",           "text-classification",
                        "text-to-image",   "automatic-speech-recognition", ""};
  std::vector<v1::RepoSnapshot> repos(n);
  std::vector<int64_t> first_party;
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t i = 0; i < n; ++i) {
    v1::RepoSnapshot& r = repos[i];
    std::string ns;
    bool fp = u(rng) < 0.02;
    if (fp) {
      ns = tracked[rng() % tracked.size()];
    } else {
      // Zipf-like authors: a few prolific quantizers, a long tail of single-model users.
      double x = std::pow(u(rng), 3.0);
      ns = "user" + std::to_string(static_cast<int64_t>(x * (n / 4 + 1)));
    }
    r.set_id(ns + "/model-" + std::to_string(i) + (i % 3 == 0 ? "-GGUF" : "-Instruct"));
    r.set_author(ns);
    char oid[25];
    std::snprintf(oid, sizeof(oid), "%024llx", static_cast<unsigned long long>(rng()));
    r.set_object_id(oid);
    r.set_created_at(1640995200 + static_cast<int64_t>(u(rng) * 120e6));
    r.set_last_modified(r.created_at() + static_cast<int64_t>(u(rng) * 1e6));
    double heavy = std::pow(u(rng), -1.2);
    r.set_downloads_30d(static_cast<int64_t>(heavy) - 1);
    if (u(rng) < 0.95) r.set_downloads_all_time(static_cast<int64_t>(heavy * 7));
    r.set_likes(static_cast<int64_t>(std::pow(u(rng), -0.7)) - 1);
    r.set_pipeline_tag(tags[rng() % 6]);
    r.set_library_name(i % 2 ? "transformers" : "gguf");
    char sha[41];
    std::snprintf(sha, sizeof(sha), "%016llx%016llx%08x", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()), static_cast<unsigned>(rng()));
    r.set_sha(sha);
    if (!fp && i > 10 && u(rng) < 0.28) {
      double rel = u(rng);
      v1::Relation relation = rel < 0.43   ? v1::RELATION_ADAPTER
                              : rel < 0.79 ? v1::RELATION_FINETUNE
                              : rel < 0.98 ? v1::RELATION_QUANTIZED
                                           : v1::RELATION_MERGE;
      int parents = relation == v1::RELATION_MERGE ? 2 : 1;
      for (int k = 0; k < parents; ++k) {
        int64_t p = (!first_party.empty() && u(rng) < 0.5) ? first_party[rng() % first_party.size()]
                                                           : static_cast<int64_t>(rng() % i);
        auto* parent = r.add_parents();
        parent->set_id(repos[p].id());
        parent->set_relation(relation);
      }
    }
    if (fp) first_party.push_back(i);
  }
  return repos;
}

struct Flags {
  int64_t repos = 200000;
  int64_t crawls = 2;
  int64_t in_memory_repos = 2200000;
  std::string dir;
  bool load_only = false;  // reuse the store at --dir: time only load + metrics
};

bool InMemory(int64_t n) {
  std::printf("== in memory: %lld repos ==\n", static_cast<long long>(n));
  auto repos = SyntheticHub(n, 7);
  auto t = Clock::now();
  std::sort(repos.begin(), repos.end(),
            [](const auto& a, const auto& b) { return a.id() < b.id(); });
  store::CrawlSnapshot snap;
  snap.Reserve(repos.size());
  for (const auto& r : repos) snap.Add(r);
  repos.clear();
  repos.shrink_to_fit();
  std::printf("columnar snapshot built: %.3f s\n", Seconds(t));
  const auto& config = DefaultFamilyConfig();
  FamilyMatcher matcher(config);
  // Peers in this run: the graph pass on one thread, then on one thread per core.
  t = Clock::now();
  auto single = aggregator::BuildLineageGraph(snap, matcher, /*threads=*/1);
  double single_s = Seconds(t);
  t = Clock::now();
  auto graph = aggregator::BuildLineageGraph(snap, matcher);
  double graph_s = Seconds(t);
  std::printf("lineage graph: 1 thread %.3f s, %u threads %.3f s: %.2fx\n", single_s,
              std::thread::hardware_concurrency(), graph_s, single_s / graph_s);
  if (single.parent_node != graph.parent_node || single.first_party != graph.first_party) {
    std::printf("error: the threaded graph differs from the single-threaded one\n");
    return false;
  }
  for (auto policy : {v1::FIRST_PARENT, v1::SPLIT}) {
    for (auto attribution : {v1::NEAREST, v1::ROOT}) {
      v1::LineageOptions o = config.lineage();
      o.set_parent_policy(policy);
      o.set_attribution(attribution);
      aggregator::LineageResolver resolver(graph, o);
      t = Clock::now();
      resolver.ResolveAll();
      std::printf("lineage %s/%s: resolve %.3f s\n", policy == v1::SPLIT ? "SPLIT" : "FIRST_PARENT",
                  attribution == v1::ROOT ? "ROOT" : "NEAREST", Seconds(t));
    }
  }
  t = Clock::now();
  auto figures = aggregator::ComputeCensus(snap, config, "bench", "2025-10-31", 100);
  std::printf("every family metric (graph + lineage + figures + shares + top-100 lists): %.3f s\n",
              Seconds(t));
  if (!figures.ok()) {
    std::printf("error: %s\n", figures.status().ToString().c_str());
    return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      size_t len = std::strlen(name);
      return a.compare(0, len, name) == 0 ? a.c_str() + len : nullptr;
    };
    if (auto v = value("--repos="))
      flags.repos = std::atoll(v);
    else if (auto v = value("--crawls="))
      flags.crawls = std::atoll(v);
    else if (auto v = value("--in_memory_repos="))
      flags.in_memory_repos = std::atoll(v);
    else if (auto v = value("--dir="))
      flags.dir = v;
    else if (a == "--load_only")
      flags.load_only = true;
    else {
      std::fprintf(stderr,
                   "usage: store_bench [--repos=N] [--crawls=N] [--in_memory_repos=N] "
                   "[--dir=PATH] [--load_only]\n");
      return 2;
    }
  }
  if (flags.in_memory_repos > 0 && !InMemory(flags.in_memory_repos)) return 1;
  if (flags.repos <= 0) return 0;

  std::string dir =
      flags.dir.empty()
          ? (std::filesystem::temp_directory_path() / "hubcensus-store-bench").string()
          : flags.dir;
  if (!flags.load_only) std::filesystem::remove_all(dir);
  store::SnapshotStoreOptions so;
  so.path = dir;
  so.sync_writes = false;
  auto opened = store::SnapshotStore::Open(so);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    return 1;
  }
  auto& store = *opened;
  std::printf("== RocksDB store: %lld repos x %lld crawls in %s ==\n",
              static_cast<long long>(flags.repos), static_cast<long long>(flags.crawls),
              dir.c_str());
  auto repos = flags.load_only ? std::vector<v1::RepoSnapshot>() : SyntheticHub(flags.repos, 11);
  std::mt19937_64 rng(5);
  const auto& config = DefaultFamilyConfig();
  for (int64_t c = 0; c < flags.crawls && !flags.load_only; ++c) {
    std::string date = "2025-10-" + std::to_string(10 + c);
    std::string crawl_id = "crawl-" + date;
    // Counters move every day; metadata mostly does not.
    for (auto& r : repos) {
      r.set_downloads_30d(r.downloads_30d() + static_cast<int64_t>(rng() % 3));
      if (r.has_downloads_all_time()) r.set_downloads_all_time(r.downloads_all_time() + rng() % 5);
    }
    v1::CommitRequest commit;
    commit.set_crawl_id(crawl_id);
    commit.set_crawl_date(date);
    auto t = Clock::now();
    for (int64_t start = 0, item = 0; start < flags.repos; start += 1000, ++item) {
      v1::WriteBatch b;
      b.set_crawl_id(crawl_id);
      b.set_crawl_date(date);
      b.set_item_id("list/" + std::to_string(item));
      b.set_fence(1);
      for (int64_t i = start; i < flags.repos && i < start + 1000; ++i) *b.add_repos() = repos[i];
      auto w = store->Write(b);
      if (!w.ok()) {
        std::fprintf(stderr, "%s\n", w.status().ToString().c_str());
        return 1;
      }
      auto* e = commit.add_manifest();
      e->set_item_id(b.item_id());
      e->set_fence(1);
      e->set_repos(w->repos);
      e->set_id_checksum(w->id_checksum);
    }
    double ingest = Seconds(t);
    t = Clock::now();
    const double commit_cpu_start = CpuSeconds();
    const double rss_before_commit_mb = StatusMb("VmRSS");
    ResetPeakRss();
    double metrics_in_commit_s = 0;
    auto outcome =
        store->Commit(commit,
                      [&](const v1::StoredCrawl& crawl,
                          const store::CrawlSnapshot& snap) -> absl::StatusOr<store::Rollups> {
                        auto metrics_start = Clock::now();
                        auto figures = aggregator::ComputeCensus(snap, config, crawl.crawl_id(),
                                                                 crawl.date(), 100);
                        metrics_in_commit_s = Seconds(metrics_start);
                        if (!figures.ok()) return figures.status();
                        return store::Rollups{{"summary", figures->families.SerializeAsString()}};
                      });
    double commit_s = Seconds(t);
    const double commit_cpu_s = CpuSeconds() - commit_cpu_start;
    const double commit_peak_mb = StatusMb("VmHWM");
    if (!outcome.ok()) {
      std::fprintf(stderr, "%s\n", outcome.status().ToString().c_str());
      return 1;
    }
    t = Clock::now();
    auto compacted = store->CompactAll();
    double compact_s = Seconds(t);
    const double n = static_cast<double>(flags.repos) * (c + 1);
    const double snapshots_bytes = static_cast<double>(store->SnapshotBytesOnDisk());
    const double column_bytes = static_cast<double>(store->ColumnBytesOnDisk());
    std::printf(
        "crawl %lld: ingest %.2f s (%.0f repos/s), commit (verify + publish + every metric) "
        "%.2f s (every metric %.2f s, the rest %.2f s; CPU %.2f s), compaction %.2f s\n"
        "  peak RSS during the commit %.0f MB (%.0f MB before it)\n"
        "  on disk after %lld crawl(s): snapshots CF %.1f bytes/repo/crawl (rows %.1f, committed "
        "columns %.1f), repo_meta %.1f bytes/repo/crawl\n",
        static_cast<long long>(c + 1), ingest, flags.repos / ingest, commit_s, metrics_in_commit_s,
        commit_s - metrics_in_commit_s, commit_cpu_s, compact_s, commit_peak_mb,
        rss_before_commit_mb, static_cast<long long>(c + 1), snapshots_bytes / n,
        (snapshots_bytes - column_bytes) / n, column_bytes / n, store->RepoMetaBytesOnDisk() / n);
    if (!compacted.ok()) std::printf("  compaction: %s\n", compacted.ToString().c_str());
  }
  // Loading the last committed crawl into columns, three peers in this run: the message path
  // (every row parsed into a RepoSnapshot, then added), the columns decoded straight from the
  // stored bytes on one thread, and the same on key ranges with one thread per core.
  store.reset();
  auto reopen = [&](int scan_threads) {
    so.scan_threads = scan_threads;
    auto s = store::SnapshotStore::Open(so);
    if (!s.ok()) std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
    return s.ok() ? std::move(*s) : nullptr;
  };
  store = reopen(1);
  if (store == nullptr) return 1;
  auto view = store->View();
  auto crawls = (*view)->CommittedCrawls();
  if (crawls.empty()) {
    std::fprintf(stderr, "no committed crawl in %s\n", dir.c_str());
    return 1;
  }
  const auto& last = crawls.back();
  auto t = Clock::now();
  store::CrawlSnapshot parsed;
  auto streamed = (*view)->ForEachRepo(last, [&](const v1::RepoSnapshot& r) {
    parsed.Add(r);
    return absl::OkStatus();
  });
  double message_s = Seconds(t);
  // A record without column_parts is read from its rows (as a crawl committed before the
  // columnar form): the row path's peers.
  v1::StoredCrawl rows_only = last;
  rows_only.clear_column_parts();
  t = Clock::now();
  double cpu = CpuSeconds();
  auto columns = (*view)->LoadCrawl(rows_only);
  double columns_s = Seconds(t);
  const double rows_cpu_s = CpuSeconds() - cpu;
  t = Clock::now();
  cpu = CpuSeconds();
  auto parts_single = (*view)->LoadCrawl(last);
  double parts_single_s = Seconds(t);
  const double parts_cpu_s = CpuSeconds() - cpu;
  view->reset();
  store.reset();
  store = reopen(0);
  if (store == nullptr) return 1;
  view = store->View();
  t = Clock::now();
  auto threaded = (*view)->LoadCrawl(rows_only);
  double threaded_s = Seconds(t);
  view->reset();
  store.reset();
  // A fresh store again (as a fresh `hubcensus query` process opens it): the committed parts.
  store = reopen(0);
  if (store == nullptr) return 1;
  view = store->View();
  t = Clock::now();
  auto parts = (*view)->LoadCrawl(last);
  double parts_s = Seconds(t);
  auto same = [](const store::CrawlSnapshot& a, const store::CrawlSnapshot& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a.id(i) != b.id(i) || a.downloads_30d(i) != b.downloads_30d(i) ||
          a.downloads_all_time(i) != b.downloads_all_time(i) ||
          a.created_at(i) != b.created_at(i) || a.pipeline_tag(i) != b.pipeline_tag(i) ||
          a.parent_count(i) != b.parent_count(i)) {
        return false;
      }
    }
    return true;
  };
  if (!streamed.ok() || !columns.ok() || !threaded.ok() || !parts.ok() || !parts_single.ok() ||
      !same(parsed, *columns) || !same(*threaded, *columns) || !same(*parts, *columns) ||
      !same(*parts_single, *columns)) {
    std::fprintf(stderr, "error: the load peers disagree\n");
    return 1;
  }
  std::printf(
      "load %zu repos of one committed crawl: message path %.2f s, rows into columns 1 thread "
      "%.2f s (%.2fx), rows into columns %u threads %.2f s (%.2fx)\n",
      columns->size(), message_s, columns_s, message_s / columns_s,
      std::thread::hardware_concurrency(), threaded_s, message_s / threaded_s);
  std::printf(
      "load from the committed column parts: 1 thread %.2f s (%.2fx the rows on 1 thread; CPU "
      "%.2f s against %.2f s), %u threads %.2f s (%.2fx the rows on as many)\n",
      parts_single_s, columns_s / parts_single_s, parts_cpu_s, rows_cpu_s,
      std::thread::hardware_concurrency(), parts_s, threaded_s / parts_s);
  t = Clock::now();
  auto figures = aggregator::ComputeCensus(*parts, config, "x", "2025-10-31", 100);
  double metrics_s = Seconds(t);
  if (!figures.ok()) {
    std::fprintf(stderr, "error: %s\n", figures.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "metrics over it: %.2f s; load (column parts) + metrics %.2f s (rows + metrics %.2f s: "
      "%.2fx; message path + metrics %.2f s: %.2fx)\n",
      metrics_s, parts_s + metrics_s, threaded_s + metrics_s,
      (threaded_s + metrics_s) / (parts_s + metrics_s), message_s + metrics_s,
      (message_s + metrics_s) / (parts_s + metrics_s));
  view->reset();
  store.reset();
  if (flags.dir.empty() && !flags.load_only) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace hubcensus

int main(int argc, char** argv) { return hubcensus::Main(argc, argv); }
