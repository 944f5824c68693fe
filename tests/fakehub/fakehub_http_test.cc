// fakehub over real sockets with libcurl: the listing, pagination, expand validation, the
// per-repo endpoint, renames, rate limits, every fault kind, and a Hub that mutates mid-crawl.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "fakehub/catalog.h"
#include "fakehub/fakehub.h"
#include "fakehub/faults.h"
#include "fakehub/rate_limiter.h"
#include "hub/listing_query.h"
#include "simdjson.h"
#include "tests/fakehub/crawl_helpers.h"
#include "tests/fakehub/http_test_client.h"

namespace hubcensus::fakehub {
namespace {

using testing::Crawl;
using testing::CrawledEntry;
using testing::CrawlerFirstUrl;
using testing::HttpResult;
using testing::HttpTestClient;

std::unique_ptr<FakeHub> StartHub(FakeHubOptions options) {
  auto hub = FakeHub::Start(options);
  EXPECT_TRUE(hub.ok()) << hub.status();
  return hub.ok() ? *std::move(hub) : nullptr;
}

FakeHubOptions Small(int64_t repos = 3000) {
  FakeHubOptions o;
  o.repos = repos;
  o.rate_limit = "off";
  return o;
}

// A shared 3,000-repo Hub for the read-only tests.
FakeHub* SharedHub() {
  static FakeHub* hub = StartHub(Small()).release();
  return hub;
}

std::multiset<std::string> Ids(const std::vector<CrawledEntry>& entries) {
  std::multiset<std::string> ids;
  for (const auto& e : entries) ids.insert(e.id);
  return ids;
}

void ExpectExactlyOnce(const std::vector<CrawledEntry>& entries,
                       const std::vector<std::string>& expected) {
  std::multiset<std::string> seen = Ids(entries);
  EXPECT_EQ(seen.size(), expected.size());
  for (const auto& id : expected) EXPECT_EQ(seen.count(id), 1u) << id;
  std::set<std::string> expected_set(expected.begin(), expected.end());
  for (const auto& id : seen) EXPECT_TRUE(expected_set.count(id)) << "unexpected " << id;
}

TEST(FakeHubListing, CreatedAtCrawlSeesEveryListedRepoExactlyOnce) {
  FakeHub* hub = SharedHub();
  HttpTestClient client;
  auto crawl = Crawl(client, CrawlerFirstUrl(hub->url(), 1000));
  ASSERT_TRUE(crawl.ok) << crawl.error;
  std::vector<std::string> expected = hub->RepoIdsAt(hub->date());
  EXPECT_GT(expected.size(), 2800u);
  EXPECT_LT(expected.size(), 3000u);  // private and deleted repos are not listed
  EXPECT_EQ(crawl.pages, static_cast<int>((expected.size() + 999) / 1000));
  ExpectExactlyOnce(crawl.entries, expected);
  // Descending createdAt.
  for (size_t k = 1; k < crawl.entries.size(); ++k) {
    EXPECT_GE(crawl.entries[k - 1].created_at, crawl.entries[k].created_at);
  }
}

TEST(FakeHubListing, EverySortOrderPagesEveryRepoOnceOnAStillHub) {
  FakeHub* hub = SharedHub();
  HttpTestClient client;
  std::vector<std::string> expected = hub->RepoIdsAt("");
  for (const char* sort : {"downloads", "likes", "trendingScore", "lastModified", "createdAt"}) {
    auto crawl = Crawl(client, absl::StrCat(hub->url(), "/api/models?sort=", sort,
                                            "&limit=700&expand[]=downloads"));
    ASSERT_TRUE(crawl.ok) << sort << ": " << crawl.error;
    ExpectExactlyOnce(crawl.entries, expected);
    if (std::string(sort) == "downloads") {
      for (size_t k = 1; k < crawl.entries.size(); ++k) {
        EXPECT_GE(crawl.entries[k - 1].downloads, crawl.entries[k].downloads);
      }
    }
  }
  // No sort: trendingScore, the Hub's default.
  auto crawl = Crawl(client, hub->url() + "/api/models?limit=1000");
  ASSERT_TRUE(crawl.ok) << crawl.error;
  ExpectExactlyOnce(crawl.entries, expected);
}

TEST(FakeHubListing, LinkHeaderIsAbsoluteWithRelNextAndLastPageHasNone) {
  FakeHub* hub = SharedHub();
  HttpTestClient client;
  HttpResult first = client.Get(hub->url() + "/api/models?limit=1000&sort=createdAt");
  ASSERT_EQ(first.status, 200);
  std::string link = first.Header("link");
  std::regex shape(
      "^<http://127\\.0\\.0\\.1:[0-9]+/api/models\\?limit=1000&sort=createdAt&"
      "cursor=[A-Za-z0-9%]+>; rel=\"next\"$");
  EXPECT_TRUE(std::regex_match(link, shape)) << link;
  // (A createdAt keyset is 159 bytes, so its base64 has no padding; FakeHubCursor tests the
  // %3D of padded cursors.)
  std::optional<std::string> url = first.NextLink();
  HttpResult page;
  int pages = 1;
  while (url) {
    page = client.Get(*url);
    ASSERT_EQ(page.status, 200);
    url = page.NextLink();
    ++pages;
  }
  EXPECT_FALSE(page.HasHeader("link"));
  EXPECT_EQ(pages, 3);
}

TEST(FakeHubListing, LimitIsCappedAtOneThousand) {
  HttpTestClient client;
  HttpResult page = client.Get(SharedHub()->url() + "/api/models?limit=5000&sort=createdAt");
  std::vector<CrawledEntry> entries;
  ASSERT_TRUE(testing::ParseEntries(page.body, &entries));
  EXPECT_EQ(entries.size(), 1000u);
  EXPECT_EQ(client.Get(SharedHub()->url() + "/api/models?limit=0").status, 400);
  EXPECT_EQ(client.Get(SharedHub()->url() + "/api/models?limit=ten").status, 400);
}

TEST(FakeHubListing, ExpandIsValidatedAndShapesEntries) {
  const std::string base = SharedHub()->url() + "/api/models?limit=5&sort=createdAt";
  HttpTestClient client;
  HttpResult bad = client.Get(base + "&expand=downloads&expand=bogus");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.Header("content-type"), "application/json; charset=utf-8");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(bad.body).get(doc), simdjson::SUCCESS) << bad.body;
  std::string_view message;
  ASSERT_EQ(doc["error"].get(message), simdjson::SUCCESS);
  EXPECT_NE(message.find("bogus"), std::string_view::npos);
  EXPECT_NE(message.find("downloadsAllTime"), std::string_view::npos);
  // Per-repo-only values and expand with full are refused on the listing.
  EXPECT_EQ(client.Get(base + "&expand=baseModels").status, 400);
  EXPECT_EQ(client.Get(base + "&expand=childrenModelCount").status, 400);
  EXPECT_EQ(client.Get(base + "&expand=downloads&full=true").status, 400);
  // Every value the Hub accepts works, in both spellings, and fakehub accepts no other.
  std::vector<std::string> accepted = hub::HubListingExpandValues();
  std::vector<std::string> served = ExpandNames(/*per_repo=*/false);
  std::sort(accepted.begin(), accepted.end());
  std::sort(served.begin(), served.end());
  EXPECT_EQ(served, accepted);
  for (const std::string& e : hub::HubListingExpandValues()) {
    EXPECT_EQ(client.Get(base + "&expand=" + e).status, 200) << e;
    EXPECT_EQ(client.Get(base + "&expand%5B%5D=" + e).status, 200) << e;
  }
  // With expand, an entry holds _id, id and exactly what was asked for.
  HttpResult page = client.Get(base + "&expand[]=downloads&expand[]=likes");
  ASSERT_EQ(parser.parse(page.body).get(doc), simdjson::SUCCESS);
  for (simdjson::dom::object entry : doc.get_array()) {
    std::vector<std::string> keys;
    for (auto field : entry) keys.emplace_back(field.key);
    EXPECT_EQ(keys, (std::vector<std::string>{"_id", "id", "downloads", "likes"}));
  }
  // full=true carries author, sha and siblings; the default does not.
  HttpResult full = client.Get(base + "&full=true");
  EXPECT_NE(full.body.find("\"siblings\":[{\"rfilename\""), std::string::npos);
  EXPECT_NE(full.body.find("\"sha\":\""), std::string::npos);
  HttpResult plain = client.Get(base);
  EXPECT_EQ(plain.body.find("\"siblings\""), std::string::npos);
  EXPECT_NE(plain.body.find("\"modelId\""), std::string::npos);
  EXPECT_EQ(client.Get(base + "&cursor=bm90LWEta2V5c2V0").status, 400);
}

TEST(FakeHubListing, SameSeedGivesByteIdenticalPages) {
  FakeHubOptions a = Small(2000), b = Small(2000), c = Small(2000);
  a.seed = b.seed = 3;
  c.seed = 4;
  auto hub_a = StartHub(a), hub_b = StartHub(b), hub_c = StartHub(c);
  HttpTestClient client;
  const std::string query =
      "/api/models?sort=createdAt&limit=500&expand=tags&expand=downloads"
      "&expand=downloadsAllTime&expand=createdAt&expand=cardData";
  std::optional<std::string> ua = hub_a->url() + query, ub = hub_b->url() + query;
  int pages = 0;
  while (ua && ub) {
    HttpResult pa = client.Get(*ua), pb = client.Get(*ub);
    EXPECT_EQ(pa.body, pb.body) << "page " << pages;
    ua = pa.NextLink();
    ub = pb.NextLink();
    ++pages;
  }
  EXPECT_FALSE(ua || ub);
  EXPECT_EQ(pages, 4);
  EXPECT_NE(client.Get(hub_a->url() + query).body, client.Get(hub_c->url() + query).body);
  EXPECT_EQ(hub_a->TruthJson("2025-06-30").value(), hub_b->TruthJson("2025-06-30").value());
}

TEST(FakeHubListing, SearchAuthorFilterAndPipelineTag) {
  FakeHub* hub = SharedHub();
  HttpTestClient client;
  auto all = Crawl(client, CrawlerFirstUrl(hub->url()));
  ASSERT_TRUE(all.ok);
  // A derivative's first parent: filter by its lineage tag.
  const CrawledEntry* child = nullptr;
  std::string tag;
  for (const auto& e : all.entries) {
    for (const auto& t : e.tags) {
      if (absl::StartsWith(t, "base_model:finetune:")) {
        child = &e;
        tag = t;
        break;
      }
    }
    if (child) break;
  }
  ASSERT_NE(child, nullptr);
  auto filtered = Crawl(
      client, hub->url() + "/api/models?sort=createdAt&expand=tags&filter=" + hub::UrlEncode(tag));
  ASSERT_TRUE(filtered.ok);
  size_t expected = 0;
  for (const auto& e : all.entries) {
    expected += std::count(e.tags.begin(), e.tags.end(), tag) > 0;
  }
  EXPECT_EQ(filtered.entries.size(), expected);
  EXPECT_GE(expected, 1u);
  // author= is the exact namespace.
  std::string author = child->id.substr(0, child->id.find('/'));
  auto by_author = Crawl(client, hub->url() + "/api/models?sort=createdAt&author=" + author);
  ASSERT_TRUE(by_author.ok);
  size_t owned = 0;
  for (const auto& e : all.entries) owned += absl::StartsWith(e.id, author + "/");
  EXPECT_EQ(by_author.entries.size(), owned);
  // search= is a case-insensitive substring of the id.
  auto search = Crawl(client, hub->url() + "/api/models?sort=createdAt&search=QWEN");
  ASSERT_TRUE(search.ok);
  size_t mentions = 0;
  for (const auto& e : all.entries) {
    std::string lower = absl::AsciiStrToLower(e.id);
    mentions += lower.find("qwen") != std::string::npos;
  }
  EXPECT_EQ(search.entries.size(), mentions);
  EXPECT_GT(mentions, 10u);
  auto by_task = Crawl(client, hub->url() +
                                   "/api/models?sort=createdAt&expand=pipeline_tag&pipeline_tag="
                                   "text-generation");
  ASSERT_TRUE(by_task.ok);
  for (const auto& e : by_task.entries) EXPECT_EQ(e.pipeline_tag, "text-generation");
  size_t text_generation = 0;
  for (const auto& e : all.entries) text_generation += e.pipeline_tag == "text-generation";
  EXPECT_EQ(by_task.entries.size(), text_generation);
}

std::string Gunzip(const std::string& in) {
  z_stream zs{};
  inflateInit2(&zs, 15 + 16);
  std::string out(in.size() * 20 + 1024, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  inflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

TEST(FakeHubHttp, GzipWhenAskedAndKeepAlive) {
  const std::string url = SharedHub()->url() + "/api/models?sort=createdAt&limit=1000";
  HttpTestClient client;
  HttpResult plain = client.Get(url);
  HttpResult gz = client.Get(url, {}, 30000, /*gzip=*/true);  // curl decodes it
  EXPECT_EQ(gz.Header("content-encoding"), "gzip");
  EXPECT_EQ(plain.Header("content-encoding"), "");
  EXPECT_EQ(gz.body, plain.body);
  EXPECT_LT(std::stol(gz.Header("content-length")), static_cast<long>(plain.body.size()) / 3);
  // The second request reused the first connection.
  EXPECT_EQ(gz.new_connections, 0);
  EXPECT_EQ(gz.Header("connection"), "keep-alive");
  // Raw bytes: gunzip by hand (no decoding in curl).
  HttpResult raw = client.Get(url, {"Accept-Encoding: gzip"});
  EXPECT_EQ(Gunzip(raw.body), plain.body);
}

TEST(FakeHubRepo, DetailExpandNotFoundPrivateAndRevision) {
  FakeHub* hub = SharedHub();
  HttpTestClient client;
  auto all = Crawl(client, CrawlerFirstUrl(hub->url()));
  ASSERT_TRUE(all.ok);
  absl::flat_hash_set<std::string> listed;
  for (const auto& e : all.entries) listed.insert(e.id);
  // A first-party parent and its children.
  std::string parent;
  for (const auto& e : all.entries) {
    for (const auto& t : e.tags) {
      if (absl::StartsWith(t, "base_model:finetune:Qwen/")) parent = t.substr(20);
    }
  }
  ASSERT_FALSE(parent.empty());
  HttpResult detail = client.Get(hub->url() + "/api/models/" + parent +
                                 "?expand=childrenModelCount&expand=downloads&expand=baseModels");
  ASSERT_EQ(detail.status, 200) << detail.body;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(detail.body).get(doc), simdjson::SUCCESS);
  int64_t children = 0;
  ASSERT_EQ(doc["childrenModelCount"].get(children), simdjson::SUCCESS);
  EXPECT_GE(children, 1);
  std::string_view id;
  ASSERT_EQ(doc["id"].get(id), simdjson::SUCCESS);
  EXPECT_EQ(id, parent);
  // A derivative's baseModels name its first parent and relation.
  for (const auto& e : all.entries) {
    if (e.tags.empty()) continue;
    bool derivative = false;
    for (const auto& t : e.tags) derivative |= absl::StartsWith(t, "base_model:adapter:");
    if (!derivative) continue;
    HttpResult d = client.Get(hub->url() + "/api/models/" + e.id + "?expand=baseModels");
    ASSERT_EQ(d.status, 200);
    if (d.body.find("baseModels") == std::string::npos) continue;  // parent not listed
    EXPECT_NE(d.body.find("\"relation\":\"adapter\""), std::string::npos) << d.body;
    break;
  }
  // huggingface.js modelInfo's URL.
  HttpResult info = client.Get(hub->url() + "/api/models/" + parent +
                               "/revision/HEAD?expand=pipeline_tag&expand=private&expand=gated"
                               "&expand=downloads&expand=likes&expand=lastModified");
  EXPECT_EQ(info.status, 200);
  EXPECT_NE(info.body.find("\"lastModified\":\""), std::string::npos);
  HttpResult plain = client.Get(hub->url() + "/api/models/" + parent);
  EXPECT_NE(plain.body.find("\"siblings\""), std::string::npos);
  EXPECT_EQ(client.Get(hub->url() + "/api/models/nobody/nothing-here").status, 401);
  EXPECT_EQ(client.Get(hub->url() + "/api/models/" + parent + "?expand=bogus").status, 400);
  // Parents that are not listed are private, deleted or never existed: anonymous requests get
  // 401 for each (as recorded), token requests 404.
  int unauthorized = 0, not_found = 0;
  for (const auto& e : all.entries) {
    for (const auto& t : e.tags) {
      if (!absl::StartsWith(t, "base_model:") || std::count(t.begin(), t.end(), ':') != 1) continue;
      std::string pid = t.substr(11);
      if (listed.contains(pid)) continue;
      long status = client.Get(hub->url() + "/api/models/" + pid).status;
      EXPECT_EQ(status, 401) << pid;
      unauthorized += status == 401;
      long with_token =
          client.Get(hub->url() + "/api/models/" + pid, {"Authorization: Bearer hf_x"}).status;
      EXPECT_EQ(with_token, 404) << pid;
      not_found += with_token == 404;
    }
  }
  EXPECT_GT(not_found, 0);
  EXPECT_GT(unauthorized + not_found, 5);
}

TEST(FakeHubRepo, RenamedRepoAnswers307WithRelativeLocation) {
  FakeHubOptions o = Small(20000);
  auto hub = StartHub(o);
  HttpTestClient client;
  const std::string url = CrawlerFirstUrl(hub->url());
  ASSERT_TRUE(hub->SetDate("2024-06-30").ok());
  auto before = Crawl(client, url);
  ASSERT_TRUE(hub->SetDate("2025-12-31").ok());
  auto after = Crawl(client, url);
  ASSERT_TRUE(before.ok && after.ok);
  std::map<std::string, std::string> id_by_oid;
  for (const auto& e : after.entries) id_by_oid[e.oid] = e.id;
  int renamed = 0;
  for (const auto& e : before.entries) {
    auto it = id_by_oid.find(e.oid);
    if (it == id_by_oid.end() || it->second == e.id) continue;
    ++renamed;
    // data/real-hub: 307, text/plain, no body, Location relative to the origin.
    HttpResult plain = client.Get(hub->url() + "/api/models/" + e.id);
    EXPECT_EQ(plain.status, 307);
    EXPECT_EQ(plain.Header("content-type"), "text/plain; charset=utf-8");
    EXPECT_EQ(plain.Header("location"), "/api/models/" + it->second);
    EXPECT_TRUE(plain.body.empty()) << plain.body;
    HttpResult r = client.Get(hub->url() + "/api/models/" + e.id + "?expand=downloads");
    EXPECT_EQ(r.status, 307);
    EXPECT_EQ(r.Header("location"), "/api/models/" + it->second + "?expand=downloads");
    HttpResult rev = client.Get(hub->url() + "/api/models/" + e.id + "/revision/main");
    EXPECT_EQ(rev.Header("location"), "/api/models/" + it->second + "/revision/main");
    EXPECT_EQ(client.Get(hub->url() + "/api/models/" + it->second).status, 200);
  }
  EXPECT_GT(renamed, 3);
  // Before the rename, the new name does not exist yet.
  ASSERT_TRUE(hub->SetDate("2024-06-30").ok());
  for (const auto& e : before.entries) {
    auto it = id_by_oid.find(e.oid);
    if (it != id_by_oid.end() && it->second != e.id) {
      EXPECT_EQ(client.Get(hub->url() + "/api/models/" + it->second).status, 401);
      break;
    }
  }
}

TEST(FakeHubRateLimit, HeadersOnEveryResponseAnd429WhenOverQuota) {
  SimulatedClock clock(absl::FromUnixSeconds(1700000080));  // 40 s into a 60 s window
  FakeHubOptions o = Small(1000);
  o.rate_limit = "5/60";
  o.clock = &clock;
  auto hub = StartHub(o);
  HttpTestClient client;
  const std::string url = hub->url() + "/api/models?limit=1";
  for (int k = 0; k < 5; ++k) {
    HttpResult r = client.Get(k == 4 ? hub->url() + "/api/models/no/such" : url);
    EXPECT_EQ(r.status, k == 4 ? 401 : 200);
    EXPECT_EQ(r.Header("ratelimit"), absl::StrCat("\"api\";r=", 4 - k, ";t=20"));
    EXPECT_EQ(r.Header("ratelimit-policy"), "\"fixed window\";\"api\";q=5;w=60");
  }
  HttpResult over = client.Get(url);
  EXPECT_EQ(over.status, 429);
  EXPECT_EQ(over.Header("retry-after"), "20");
  EXPECT_EQ(over.Header("ratelimit"), "\"api\";r=0;t=20");
  // Another token has its own budget; the anonymous address stays limited.
  HttpResult token = client.Get(url, {"Authorization: Bearer hf_test_token_a"});
  EXPECT_EQ(token.status, 200);
  EXPECT_EQ(token.Header("ratelimit"), "\"api\";r=4;t=20");
  // The control endpoints are outside the API and its quota.
  EXPECT_EQ(client.Get(hub->url() + "/_sim/clock").status, 200);
  // A new window.
  clock.Advance(absl::Seconds(20));
  HttpResult fresh = client.Get(url);
  EXPECT_EQ(fresh.status, 200);
  EXPECT_EQ(fresh.Header("ratelimit"), "\"api\";r=4;t=60");
}

TEST(FakeHubRateLimit, OffSendsNoHeadersAndBadSpecsAreRefused) {
  HttpTestClient client;
  HttpResult r = client.Get(SharedHub()->url() + "/api/models?limit=1");
  EXPECT_FALSE(r.HasHeader("ratelimit"));
  for (const char* bad : {"1000", "x/300", "0/300", "10/0", ""}) {
    EXPECT_FALSE(ParseRateLimit(bad).ok()) << bad;
  }
  auto def = ParseRateLimit("1000/300");
  ASSERT_TRUE(def.ok() && def->has_value());
  EXPECT_EQ((*def)->quota, 1000);
  EXPECT_EQ((*def)->window_seconds, 300);
}

std::unique_ptr<FakeHub> FaultHub(const std::string& faults) {
  FakeHubOptions o = Small(1000);
  o.faults = faults;
  o.stall_seconds = 3;
  return StartHub(o);
}

TEST(FakeHubFaults, ServerErrorsAndThrottling) {
  HttpTestClient client;
  for (auto [kind, status] : std::vector<std::pair<std::string, long>>{
           {"http500", 500}, {"http502", 502}, {"http503", 503}, {"http429", 429}}) {
    auto hub = FaultHub(kind + "=1");
    HttpResult r = client.Get(hub->url() + "/api/models?limit=10");
    EXPECT_EQ(r.status, status) << kind;
    EXPECT_NE(r.body.find("\"error\""), std::string::npos);
    if (status == 429) {
      EXPECT_EQ(r.Header("retry-after"), "1");
    }
    // Per-repo requests fail the same way.
    EXPECT_EQ(client.Get(hub->url() + "/api/models/a/b").status, status) << kind;
  }
}

TEST(FakeHubFaults, ResetMidBodyTruncatedJsonAndStall) {
  HttpTestClient client;
  {
    auto hub = FaultHub("reset=1");
    HttpResult r = client.Get(hub->url() + "/api/models?limit=1000");
    EXPECT_NE(r.code, CURLE_OK) << "a reset connection is an error, got " << r.body.size();
    EXPECT_GT(r.body.size(), 0u);  // part of the body arrived first
  }
  {
    auto hub = FaultHub("truncate=1");
    HttpResult r = client.Get(hub->url() + "/api/models?limit=100");
    EXPECT_EQ(r.code, CURLE_OK);
    EXPECT_EQ(r.status, 200);
    std::vector<CrawledEntry> entries;
    EXPECT_FALSE(testing::ParseEntries(r.body, &entries));
    EXPECT_EQ(std::stoul(r.Header("content-length")), r.body.size());
  }
  {
    auto hub = FaultHub("stall=1");
    HttpResult r = client.Get(hub->url() + "/api/models?limit=10", {}, /*timeout_ms=*/500);
    EXPECT_EQ(r.code, CURLE_OPERATION_TIMEDOUT);
  }
}

// A stalled request holds its connection, not a server thread: with one worker thread, other
// requests are answered while a client waits on a stall, and the server closes the stalled
// connection when the stall ends.
TEST(FakeHubFaults, AStallHoldsItsConnectionNotAWorker) {
  FakeHubOptions o = Small(1000);
  o.faults = "stall=1";
  o.stall_seconds = 2;
  o.threads = 1;
  auto hub = StartHub(o);
  HttpResult stalled, outlasted;
  std::thread waiting([&] {
    HttpTestClient client;
    stalled = client.Get(hub->url() + "/api/models?limit=10", {}, /*timeout_ms=*/1500);
  });
  std::thread patient([&] {
    HttpTestClient client;
    outlasted = client.Get(hub->url() + "/api/models?limit=10", {}, /*timeout_ms=*/10000);
  });
  absl::SleepFor(absl::Milliseconds(300));  // both requests are stalled by now
  HttpTestClient client;
  HttpResult answered = client.Get(hub->url() + "/_sim/ids", {}, /*timeout_ms=*/1000);
  EXPECT_EQ(answered.code, CURLE_OK) << "the only worker thread was held by a stall";
  EXPECT_EQ(answered.status, 200);
  waiting.join();
  patient.join();
  EXPECT_EQ(stalled.code, CURLE_OPERATION_TIMEDOUT);
  // The client that waited longer than the stall sees the connection closed with no answer.
  EXPECT_EQ(outlasted.code, CURLE_GOT_NOTHING) << curl_easy_strerror(outlasted.code);
}

TEST(FakeHubFaults, MalformedEntriesAreExtraAndRepeatedEntriesCrossPages) {
  HttpTestClient client;
  auto clean = FaultHub("");
  auto malformed = FaultHub("malformed=1");
  const std::string query = "/api/models?sort=createdAt&limit=100&expand=downloads";
  int invalid_documents = 0;
  std::optional<std::string> url = malformed->url() + query;
  std::optional<std::string> clean_url = clean->url() + query;
  for (int page = 0; page < 8 && url; ++page) {
    HttpResult bad = client.Get(*url);
    HttpResult good = client.Get(*clean_url);
    ASSERT_EQ(bad.status, 200);
    // Exactly one extra entry, marked by its _id, never a real repo.
    size_t marks = 0;
    for (size_t at = bad.body.find("\"_id\":\"ffffffff"); at != std::string::npos;
         at = bad.body.find("\"_id\":\"ffffffff", at + 1)) {
      ++marks;
    }
    EXPECT_EQ(marks, 1u);
    std::vector<CrawledEntry> entries, expected;
    ASSERT_TRUE(testing::ParseEntries(good.body, &expected));
    if (!testing::ParseEntries(bad.body, &entries)) {
      ++invalid_documents;  // invalid UTF-8 spoils the whole document for a validating parser
    } else {
      EXPECT_EQ(entries.size(), expected.size() + 1);
      std::multiset<std::string> real;
      for (const auto& e : entries) {
        if (e.oid.rfind("ffffffff", 0) != 0) real.insert(e.id);
      }
      EXPECT_EQ(real, Ids(expected));
    }
    url = bad.NextLink();
    clean_url = good.NextLink();
  }
  EXPECT_LE(invalid_documents, 8);

  auto repeat = FaultHub("repeat=1");
  HttpResult first = client.Get(repeat->url() + query);
  HttpResult second = client.Get(*first.NextLink());
  std::vector<CrawledEntry> a, b;
  ASSERT_TRUE(testing::ParseEntries(first.body, &a));
  ASSERT_TRUE(testing::ParseEntries(second.body, &b));
  ASSERT_EQ(a.size(), 100u);
  ASSERT_EQ(b.size(), 101u);
  EXPECT_EQ(b.front().id, a.back().id);
}

TEST(FakeHubFaults, PlanParsesSpreadsAndRefuses) {
  auto plan = FaultPlan::Parse(0.5, "");
  ASSERT_TRUE(plan.ok());
  EXPECT_DOUBLE_EQ(plan->rate(FaultKind::kHttp503), 0.05);
  EXPECT_DOUBLE_EQ(plan->rate(FaultKind::kMutate), 0.05);
  auto mixed = FaultPlan::Parse(0.1, "reset=0.2, http503=0");
  ASSERT_TRUE(mixed.ok());
  EXPECT_DOUBLE_EQ(mixed->rate(FaultKind::kReset), 0.2);
  EXPECT_DOUBLE_EQ(mixed->rate(FaultKind::kHttp503), 0);
  EXPECT_DOUBLE_EQ(mixed->rate(FaultKind::kStall), 0.01);
  EXPECT_FALSE(FaultPlan::Parse(0, "gremlins=0.1").ok());
  EXPECT_FALSE(FaultPlan::Parse(0, "reset").ok());
  EXPECT_FALSE(FaultPlan::Parse(0, "reset=0.7,stall=0.7").ok());
  EXPECT_FALSE(FaultPlan::Parse(1.5, "").ok());
  // Seeded: the same sequence gives the same faults; rates are honoured.
  int faults = 0;
  for (uint64_t k = 0; k < 20000; ++k) {
    auto f = plan->Draw(7, k, true);
    EXPECT_EQ(f, plan->Draw(7, k, true));
    faults += f.has_value();
  }
  EXPECT_NEAR(faults / 20000.0, 0.5, 0.03);
  for (int k = 0; k < kFaultKinds; ++k) {
    EXPECT_NE(FaultKindsHelp().find(FaultKindName(static_cast<FaultKind>(k))), std::string::npos);
  }
}

TEST(FakeHubFaults, ASpreadFaultRateStillLetsARetryingCrawlFinish) {
  FakeHubOptions o = Small(2000);
  o.fault_rate = 0.3;
  o.faults = "stall=0,mutate=0";
  auto hub = StartHub(o);
  HttpTestClient client;
  std::optional<std::string> url = CrawlerFirstUrl(hub->url(), 50);
  std::map<std::string, int> seen;
  int retries = 0;
  while (url) {
    HttpResult page = client.Get(*url, {}, 5000);
    std::vector<CrawledEntry> entries;
    if (page.code != CURLE_OK || page.status != 200 ||
        !testing::ParseEntries(page.body, &entries)) {
      ASSERT_LT(++retries, 500);
      continue;
    }
    for (const auto& e : entries) {
      if (e.oid.rfind("ffffffff", 0) != 0) seen[e.id]++;
    }
    url = page.NextLink();
  }
  EXPECT_GT(retries, 3);
  for (const auto& id : hub->RepoIdsAt("")) EXPECT_GE(seen[id], 1) << id;
  EXPECT_EQ(seen.size(), hub->RepoIdsAt("").size());
}

TEST(FakeHubMutation, CreatedAtCrawlSeesEveryStableRepoOnceWhileTheHubChanges) {
  FakeHubOptions o = Small(5000);
  o.faults = "mutate=0.5";
  auto hub = StartHub(o);
  std::vector<std::string> before = hub->RepoIdsAt("");
  HttpTestClient client;
  auto crawl = Crawl(client, CrawlerFirstUrl(hub->url(), 100));
  ASSERT_TRUE(crawl.ok) << crawl.error;
  std::vector<std::string> after = hub->RepoIdsAt("");
  std::set<std::string> after_set(after.begin(), after.end());
  std::multiset<std::string> seen = Ids(crawl.entries);
  std::set<std::string> oids;
  for (const auto& e : crawl.entries) EXPECT_TRUE(oids.insert(e.oid).second) << e.id;
  int stable = 0;
  for (const auto& id : before) {
    if (!after_set.count(id)) continue;
    ++stable;
    EXPECT_EQ(seen.count(id), 1u) << id;
  }
  // The Hub did change: repos were created, deleted and renamed during the crawl.
  EXPECT_NE(before.size(), after.size());
  EXPECT_LT(stable, static_cast<int>(before.size()));
  EXPECT_GT(stable, static_cast<int>(before.size()) - 200);
}

TEST(FakeHubMutation, DownloadsSortedPagesShiftWhenTheDateMovesButCreatedAtDoNot) {
  FakeHubOptions o = Small(5000);
  auto hub = StartHub(o);
  HttpTestClient client;
  for (const char* sort : {"downloads", "createdAt"}) {
    ASSERT_TRUE(hub->SetDate("2025-05-31").ok());
    std::vector<std::string> start = hub->RepoIdsAt("");
    const std::string first_url =
        absl::StrCat(hub->url(), "/api/models?limit=500&expand=downloads&sort=", sort);
    HttpResult page = client.Get(first_url);
    std::vector<CrawledEntry> entries;
    ASSERT_TRUE(testing::ParseEntries(page.body, &entries));
    ASSERT_TRUE(hub->SetDate("2025-06-30").ok());  // downloads move, repos come and go
    std::vector<std::string> end = hub->RepoIdsAt("");
    auto rest = Crawl(client, *page.NextLink());
    ASSERT_TRUE(rest.ok);
    entries.insert(entries.end(), rest.entries.begin(), rest.entries.end());
    std::multiset<std::string> seen = Ids(entries);
    std::set<std::string> end_set(end.begin(), end.end());
    int skipped = 0, repeated = 0;
    for (const auto& id : start) {
      if (!end_set.count(id)) continue;
      skipped += seen.count(id) == 0;
      repeated += seen.count(id) > 1;
    }
    if (std::string(sort) == "createdAt") {
      EXPECT_EQ(skipped + repeated, 0);
    } else {
      EXPECT_GT(skipped + repeated, 0) << "keyset pages must shift when downloads change";
    }
  }
}

TEST(FakeHubClock, ControlEndpointMovesTheDate) {
  FakeHubOptions o = Small(2000);
  auto hub = StartHub(o);
  HttpTestClient client;
  EXPECT_EQ(client.Get(hub->url() + "/_sim/clock").body, "{\"date\":\"2025-12-31\"}");
  HttpResult moved = client.Post(hub->url() + "/_sim/clock?date=2024-01-31");
  EXPECT_EQ(moved.status, 200);
  EXPECT_EQ(moved.body, "{\"date\":\"2024-01-31\"}");
  EXPECT_EQ(hub->date(), "2024-01-31");
  auto crawl = Crawl(client, CrawlerFirstUrl(hub->url()));
  ASSERT_TRUE(crawl.ok);
  EXPECT_EQ(crawl.entries.size(), hub->RepoIdsAt("2024-01-31").size());
  EXPECT_LT(crawl.entries.size(), hub->RepoIdsAt("2025-12-31").size());
  for (const auto& e : crawl.entries) EXPECT_LE(e.created_at, "2024-01-31T23:59:59.000Z");
  EXPECT_EQ(client.Post(hub->url() + "/_sim/clock?date=2024-02-30").status, 400);
  EXPECT_EQ(client.Post(hub->url() + "/_sim/clock?date=2030-01-01").status, 400);
  EXPECT_EQ(client.Get(hub->url() + "/_sim/truth?date=yesterday").status, 400);
  EXPECT_EQ(client.Get(hub->url() + "/_sim/truth?policy=bogus").status, 400);
  EXPECT_EQ(client.Get(hub->url() + "/nothing").status, 404);
  EXPECT_FALSE(hub->SetDate("2021-01-01").ok());
}

}  // namespace
}  // namespace hubcensus::fakehub
