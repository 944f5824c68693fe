// fakehub's throughput, so it is known never to be a benchmark's bottleneck: pages per second of
// the crawler's listing (sort=createdAt, limit=1000, the default expand list) over keep-alive
// connections, plain and gzip, with 1..N concurrent crawls.
//   fakehub_bench [--repos=200000] [--clients=1,2,4] [--gzip=no,yes] [--url=http://HOST:PORT]
// With --url it measures a running `hubcensus fakehub` (started with --rate_limit=off).
#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "fakehub/fakehub.h"
#include "hub/listing_query.h"

namespace {

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}
size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  if (line.size() > 5 && strncasecmp(line.c_str(), "link:", 5) == 0) {
    *static_cast<std::string*>(user) = line;
  }
  return size * n;
}

struct CrawlStats {
  int64_t pages = 0;
  int64_t bytes = 0;
  int64_t entries = 0;
};

// One full crawl of the listing chain on one keep-alive connection.
CrawlStats CrawlOnce(const std::string& first, bool gzip) {
  CrawlStats stats;
  CURL* curl = curl_easy_init();
  static const std::regex next("<(https?://[^>]+)>;\\s+rel=\"next\"");
  std::string url = first;
  while (!url.empty()) {
    std::string body, link;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &link);
    if (gzip) curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "gzip");
    if (curl_easy_perform(curl) != CURLE_OK) break;
    ++stats.pages;
    stats.bytes += static_cast<int64_t>(body.size());
    for (size_t at = body.find("\"_id\""); at != std::string::npos;
         at = body.find("\"_id\"", at + 1)) {
      ++stats.entries;
    }
    std::smatch m;
    url = std::regex_search(link, m, next) ? m[1].str() : "";
  }
  curl_easy_cleanup(curl);
  return stats;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t repos = 200000;
  std::string url, clients_text = "1,2,4", gzip_text = "no,yes";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--repos=", 0) == 0) absl::SimpleAtoi(a.substr(8), &repos);
    if (a.rfind("--url=", 0) == 0) url = a.substr(6);
    if (a.rfind("--clients=", 0) == 0) clients_text = a.substr(10);
    if (a.rfind("--gzip=", 0) == 0) gzip_text = a.substr(7);
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::unique_ptr<hubcensus::fakehub::FakeHub> hub;
  if (url.empty()) {
    hubcensus::fakehub::FakeHubOptions o;
    o.repos = repos;
    o.rate_limit = "off";
    auto start = std::chrono::steady_clock::now();
    auto started = hubcensus::fakehub::FakeHub::Start(o);
    if (!started.ok()) {
      std::fprintf(stderr, "%s\n", std::string(started.status().message()).c_str());
      return 1;
    }
    hub = *std::move(started);
    url = hub->url();
    std::printf("generated %lld repos in %.2f s (%zu bytes of Hub state, %.0f bytes/repo)\n",
                static_cast<long long>(repos),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                hub->memory_bytes(), static_cast<double>(hub->memory_bytes()) / repos);
  }
  hubcensus::v1::ListingOptions options;
  const std::string first = hubcensus::hub::FirstListingUrl(url, options);
  CrawlOnce(first, false);  // warm the sort order
  // Every row is also given as a ratio to the first one (its peer in this run).
  std::printf("%-6s %-8s %10s %12s %12s %12s %12s %12s\n", "gzip", "clients", "pages", "entries",
              "seconds", "pages/s", "entries/s", "vs row 1");
  double baseline_pages_per_s = 0;
  for (absl::string_view g : absl::StrSplit(gzip_text, ',')) {
    bool gzip = g == "yes";
    for (absl::string_view c : absl::StrSplit(clients_text, ',')) {
      int clients = 1;
      absl::SimpleAtoi(c, &clients);
      std::vector<std::thread> threads;
      std::vector<CrawlStats> stats(static_cast<size_t>(clients));
      auto start = std::chrono::steady_clock::now();
      for (int k = 0; k < clients; ++k) {
        threads.emplace_back([&, k] { stats[k] = CrawlOnce(first, gzip); });
      }
      for (auto& t : threads) t.join();
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      CrawlStats total;
      for (const auto& s : stats) {
        total.pages += s.pages;
        total.entries += s.entries;
        total.bytes += s.bytes;
      }
      const double pages_per_s = total.pages / seconds;
      if (baseline_pages_per_s == 0) baseline_pages_per_s = pages_per_s;
      std::printf("%-6s %-8d %10lld %12lld %12.2f %12.1f %12.0f %11.2fx\n", gzip ? "yes" : "no",
                  clients, static_cast<long long>(total.pages),
                  static_cast<long long>(total.entries), seconds, pages_per_s,
                  total.entries / seconds, pages_per_s / baseline_pages_per_s);
    }
  }
  if (hub) hub->Stop();
  return 0;
}
