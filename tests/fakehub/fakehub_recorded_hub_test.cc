// fakehub behaves as the recorded Hub (shared/hub-api.md, shared/data/real-hub), over real
// sockets with libcurl: three-branch cursors, `direction` ignored, private repos for token
// requests only, both placeholder dates, per-repo 401/403/404/307 answers, heavy pages that 504,
// page latency that holds no worker, and the hostile modes of issue 12.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "config/family_config.h"
#include "fakehub/fakehub.h"
#include "fakehub/http_server.h"
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

const std::vector<std::string> kToken = {"Authorization: Bearer hf_test_token"};
constexpr char kInvalidUserBody[] = R"({"error":"Invalid username or password."})";

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

// The cursor parameter of a next link, percent-decoded.
std::string CursorOf(const std::string& url) {
  auto at = url.find("cursor=");
  if (at == std::string::npos) return "";
  std::string raw = url.substr(at + 7);
  raw = raw.substr(0, raw.find('&'));
  return HttpServer::PercentDecode(raw, false);
}

std::string WithCursor(const std::string& url, const std::string& cursor) {
  return url.substr(0, url.find("cursor=")) + "cursor=" + hub::UrlEncode(cursor);
}

// The error message of a JSON error body ("" when the body is not one).
std::string ErrorOf(const HttpResult& r) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view message;
  if (parser.parse(r.body).get(doc) != simdjson::SUCCESS ||
      doc["error"].get(message) != simdjson::SUCCESS) {
    return "";
  }
  return std::string(message);
}

TEST(FakeHubCursor, ThreeBranchKeysetWithEncodedPaddingAcceptedBackExactly) {
  auto hub = StartHub(Small());
  HttpTestClient client;
  const std::string first = hub->url() + "/api/models?limit=1000&sort=createdAt";
  HttpResult page = client.Get(first);
  ASSERT_EQ(page.status, 200);
  std::optional<std::string> next = page.NextLink();
  ASSERT_TRUE(next.has_value());
  std::string cursor = CursorOf(*next);
  std::string json;
  ASSERT_TRUE(absl::Base64Unescape(cursor, &json)) << cursor;
  // {"$or":[{"createdAt":"...","_id":{"$gt":"<24 hex>"}},{"createdAt":{"$lt":"..."}},
  //         {"createdAt":null}]}
  std::regex shape(
      R"re(^\{"\$or":\[\{"createdAt":"(20[0-9-]+T[0-9:.]+Z)","_id":\{"\$gt":"[0-9a-f]{24}"\}\},)re"
      R"re(\{"createdAt":\{"\$lt":"\1"\}\},\{"createdAt":null\}\]\}$)re");
  EXPECT_TRUE(std::regex_match(json, shape)) << json;
  // A createdAt keyset is 159 bytes: no padding. Numeric keys vary in length; the Hub's base64
  // keeps its `=` padding there, sent as %3D (hub-api.md: `%3D%3D`).
  int padded = 0;
  for (int limit = 1; limit <= 30; ++limit) {
    HttpResult r =
        client.Get(absl::StrCat(hub->url(), "/api/models?sort=trendingScore&limit=", limit));
    ASSERT_TRUE(r.NextLink().has_value());
    std::string c = CursorOf(*r.NextLink());
    std::string link_cursor = r.NextLink()->substr(r.NextLink()->find("cursor=") + 7);
    EXPECT_EQ(link_cursor.find('='), std::string::npos) << link_cursor;
    if (c.back() != '=') continue;
    ++padded;
    EXPECT_TRUE(absl::EndsWith(link_cursor, c[c.size() - 2] == '=' ? "%3D%3D" : "%3D"))
        << link_cursor;
    EXPECT_EQ(client.Get(*r.NextLink()).status, 200);
  }
  EXPECT_GT(padded, 0);
  // Numeric keys too.
  HttpResult by_downloads = client.Get(hub->url() + "/api/models?limit=10&sort=downloads");
  ASSERT_TRUE(by_downloads.NextLink().has_value());
  ASSERT_TRUE(absl::Base64Unescape(CursorOf(*by_downloads.NextLink()), &json));
  EXPECT_TRUE(std::regex_match(
      json,
      std::regex(R"re(^\{"\$or":\[\{"downloads":([0-9]+),"_id":\{"\$gt":"[0-9a-f]{24}"\}\},)re"
                 R"re(\{"downloads":\{"\$lt":\1\}\},\{"downloads":null\}\]\}$)re")))
      << json;
  // A cursor in the shape hub-api.md quotes from the real Hub (the default sort) is accepted.
  const std::string real_shape =
      R"({"$or":[{"trendingScore":2,"_id":{"$gt":"6634a171e0c1a2b3c4d5e6f7"}},)"
      R"({"trendingScore":{"$lt":2}},{"trendingScore":null}]})";
  HttpResult real = client.Get(
      hub->url() + "/api/models?limit=10&cursor=" + hub::UrlEncode(absl::Base64Escape(real_shape)));
  EXPECT_EQ(real.status, 200) << real.body;
  // The cursor as sent comes back and is accepted; the page after it starts later.
  HttpResult second = client.Get(*next);
  EXPECT_EQ(second.status, 200) << second.body;
  std::vector<CrawledEntry> a, b;
  ASSERT_TRUE(testing::ParseEntries(page.body, &a));
  ASSERT_TRUE(testing::ParseEntries(second.body, &b));
  ASSERT_FALSE(b.empty());
  EXPECT_GE(a.back().created_at, b.front().created_at);
}

TEST(FakeHubCursor, AnAlteredOrUndecodableCursorAnswers400WithAJsonError) {
  auto hub = StartHub(Small());
  HttpTestClient client;
  HttpResult page = client.Get(hub->url() + "/api/models?limit=100&sort=createdAt");
  ASSERT_TRUE(page.NextLink().has_value());
  const std::string next = *page.NextLink();
  const std::string cursor = CursorOf(next);
  std::string json;
  ASSERT_TRUE(absl::Base64Unescape(cursor, &json));
  ASSERT_EQ(client.Get(next).status, 200);
  std::vector<std::pair<std::string, std::string>> altered;
  // The old two-branch keyset (no null branch).
  std::string two = json;
  auto null_branch = two.find(",{\"createdAt\":null}");
  ASSERT_NE(null_branch, std::string::npos);
  two.erase(null_branch, strlen(",{\"createdAt\":null}"));
  altered.emplace_back("two branches", absl::Base64Escape(two));
  // Branches that disagree on the key.
  std::string lt = json;
  auto lt_at = lt.find("{\"$lt\":\"20");
  ASSERT_NE(lt_at, std::string::npos);
  lt[lt_at + 10] = '1';  // 20xx -> 21xx
  altered.emplace_back("inconsistent branches", absl::Base64Escape(lt));
  // A keyset for another sort key.
  altered.emplace_back("another sort key",
                       absl::Base64Escape(absl::StrReplaceAll(json, {{"createdAt", "likes"}})));
  // An _id that is not 24 hex digits.
  std::string bad_id = json;
  auto gt = bad_id.find("{\"$gt\":\"");
  ASSERT_NE(gt, std::string::npos);
  bad_id[gt + 8] = 'z';
  altered.emplace_back("bad _id", absl::Base64Escape(bad_id));
  altered.emplace_back("truncated", cursor.substr(0, cursor.size() / 2));
  altered.emplace_back("not base64", "!!not-a-cursor!!");
  altered.emplace_back("not JSON", absl::Base64Escape("not json at all"));
  for (const auto& [what, bad] : altered) {
    HttpResult r = client.Get(WithCursor(next, bad));
    EXPECT_EQ(r.status, 400) << what << ": " << r.body;
    EXPECT_EQ(r.Header("content-type"), "application/json; charset=utf-8") << what;
    EXPECT_TRUE(absl::StartsWith(ErrorOf(r), "Invalid cursor")) << what << ": " << r.body;
  }
}

TEST(FakeHubCursor, DirectionIsIgnoredAndAJsClientStyleCrawlListsEveryIdOnce) {
  auto hub = StartHub(Small());
  HttpTestClient client;
  const std::string base = hub->url() + "/api/models?limit=500&sort=createdAt&expand=createdAt";
  auto plain = Crawl(client, base);
  auto ascending = Crawl(client, base + "&direction=1");
  auto descending = Crawl(client, base + "&direction=-1");
  ASSERT_TRUE(plain.ok && ascending.ok && descending.ok) << ascending.error;
  ASSERT_EQ(plain.entries.size(), ascending.entries.size());
  ASSERT_EQ(plain.entries.size(), descending.entries.size());
  for (size_t k = 0; k < plain.entries.size(); ++k) {
    EXPECT_EQ(plain.entries[k].id, ascending.entries[k].id) << k;
    EXPECT_EQ(plain.entries[k].id, descending.entries[k].id) << k;
  }
  // Always descending, every public id exactly once.
  for (size_t k = 1; k < ascending.entries.size(); ++k) {
    EXPECT_GE(ascending.entries[k - 1].created_at, ascending.entries[k].created_at);
  }
  std::vector<std::string> expected = hub->RepoIdsAt("");
  std::multiset<std::string> seen;
  for (const auto& e : ascending.entries) seen.insert(e.id);
  EXPECT_EQ(seen.size(), expected.size());
  for (const auto& id : expected) EXPECT_EQ(seen.count(id), 1u) << id;
}

TEST(FakeHubPrivate, TokenListingsShowPrivateReposAndAnonymousOnesNever) {
  FakeHubOptions o = Small(20000);
  o.private_repos = 0.05;
  FamilyMatcher matcher(DefaultFamilyConfig());
  auto hub = StartHub(o);
  HttpTestClient client;
  const std::string url = CrawlerFirstUrl(hub->url()) + "&expand=private";
  auto anonymous = Crawl(client, url);
  auto with_token = Crawl(client, url, 100000, kToken);
  ASSERT_TRUE(anonymous.ok && with_token.ok) << anonymous.error << with_token.error;
  std::vector<std::string> public_ids = hub->RepoIdsAt("");
  absl::flat_hash_set<std::string> public_set(public_ids.begin(), public_ids.end());
  // Anonymous: exactly the public Hub, none private.
  EXPECT_EQ(anonymous.entries.size(), public_ids.size());
  for (const auto& e : anonymous.entries) {
    EXPECT_FALSE(e.is_private) << e.id;
    EXPECT_TRUE(public_set.contains(e.id)) << e.id;
  }
  // With a token: the public Hub plus the private repos, marked, none of them in /_sim/ids.
  std::vector<std::string> private_ids;
  absl::flat_hash_set<std::string> token_public;
  for (const auto& e : with_token.entries) {
    if (e.is_private) {
      private_ids.push_back(e.id);
      EXPECT_FALSE(public_set.contains(e.id)) << e.id;
    } else {
      token_public.insert(e.id);
    }
  }
  EXPECT_EQ(token_public, public_set);
  EXPECT_GT(private_ids.size(), 20000 * 0.05 * 0.5);
  EXPECT_LT(private_ids.size(), 20000 * 0.05 * 1.5);
  // Some private repos are parents of public ones: a private parent must count as missing.
  absl::flat_hash_set<std::string> private_set(private_ids.begin(), private_ids.end());
  int private_parents = 0;
  for (const auto& e : anonymous.entries) {
    for (const auto& t : e.tags) {
      if (absl::StartsWith(t, "base_model:") && private_set.contains(t.substr(t.rfind(':') + 1))) {
        ++private_parents;
      }
    }
  }
  EXPECT_GT(private_parents, 0);
  // Some private parents are in a family's namespace (a missing parent classified by it).
  int private_family_parents = 0;
  for (const auto& e : anonymous.entries) {
    for (const auto& t : e.tags) {
      if (!absl::StartsWith(t, "base_model:")) continue;
      std::string parent = t.substr(t.rfind(':') + 1);
      private_family_parents +=
          private_set.contains(parent) && matcher.FirstPartyFamily(parent) >= 0;
    }
  }
  EXPECT_GT(private_family_parents, 0);
  // Per repo: anonymous 401 as recorded; a token reads it, private: true.
  ASSERT_FALSE(private_ids.empty());
  HttpResult anon = client.Get(hub->url() + "/api/models/" + private_ids[0]);
  EXPECT_EQ(anon.status, 401);
  EXPECT_EQ(anon.body, kInvalidUserBody);
  HttpResult token = client.Get(hub->url() + "/api/models/" + private_ids[0], kToken);
  EXPECT_EQ(token.status, 200) << token.body;
  EXPECT_NE(token.body.find("\"private\":true"), std::string::npos) << token.body;
  // /_sim/ids lists the public Hub only, and a Hub without --private_repos lists nothing more
  // to a token.
  HttpResult ids = client.Get(hub->url() + "/_sim/ids");
  for (const auto& id : private_ids) {
    EXPECT_EQ(ids.body.find(absl::StrCat("\"", id, "\"")), std::string::npos) << id;
  }
  auto plain_hub = StartHub(Small(5000));  // no --private_repos
  auto plain_token = Crawl(client, CrawlerFirstUrl(plain_hub->url()), 100000, kToken);
  ASSERT_TRUE(plain_token.ok);
  EXPECT_EQ(plain_token.entries.size(), plain_hub->RepoIdsAt("").size());
}

TEST(FakeHubPlaceholders, BothPlaceholderDatesOccur) {
  auto hub = StartHub(Small());
  HttpTestClient client;
  auto crawl = Crawl(client, CrawlerFirstUrl(hub->url()));
  ASSERT_TRUE(crawl.ok);
  int at_04 = 0, at_05 = 0;
  for (const auto& e : crawl.entries) {
    at_04 += e.created_at == "2022-03-02T23:29:04.000Z";
    at_05 += e.created_at == "2022-03-02T23:29:05.000Z";
  }
  EXPECT_GT(at_04, 30);
  EXPECT_GT(at_05, 30);
}

// An entry of the listing with the fields the per-repo tests pick repos by.
struct Flagged {
  std::string id;
  std::string gated;  // "false", "auto", "manual"
  bool disabled = false;
  std::string sha;
};

std::vector<Flagged> ListFlags(HttpTestClient& client, const std::string& hub_url) {
  std::vector<Flagged> out;
  std::optional<std::string> url =
      hub_url + "/api/models?limit=1000&sort=createdAt&expand=gated&expand=disabled&expand=sha";
  simdjson::dom::parser parser;
  while (url) {
    HttpResult page = client.Get(*url);
    EXPECT_EQ(page.status, 200);
    simdjson::dom::element doc;
    if (parser.parse(page.body).get(doc) != simdjson::SUCCESS) break;
    for (simdjson::dom::object e : doc.get_array()) {
      Flagged f;
      f.id = std::string(std::string_view(e["id"]));
      std::string_view gated;
      f.gated = e["gated"].get(gated) == simdjson::SUCCESS ? std::string(gated) : "false";
      f.disabled = bool(e["disabled"]);
      f.sha = std::string(std::string_view(e["sha"]));
      out.push_back(f);
    }
    url = page.NextLink();
  }
  return out;
}

TEST(FakeHubRepoAnswers, MissingGatedDisabledRenamedAndBadRevisionAsRecorded) {
  FakeHubOptions o = Small(20000);
  o.gated_no_access = 1;
  auto hub = StartHub(o);
  HttpTestClient client;
  std::vector<Flagged> listed = ListFlags(client, hub->url());
  ASSERT_GT(listed.size(), 15000u);
  // Missing: anonymous 401 as recorded (not 404); with a token 404 RepoNotFound.
  HttpResult missing = client.Get(hub->url() + "/api/models/nobody/nothing-here");
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.body, kInvalidUserBody);
  EXPECT_EQ(missing.Header("content-type"), "application/json; charset=utf-8");
  HttpResult missing_token = client.Get(hub->url() + "/api/models/nobody/nothing-here", kToken);
  EXPECT_EQ(missing_token.status, 404);
  EXPECT_EQ(missing_token.Header("x-error-code"), "RepoNotFound");
  // Gated without access: 401 GatedRepo; a token has access.
  int gated = 0, disabled = 0;
  for (const Flagged& f : listed) {
    if (f.gated == "false" || f.disabled) continue;
    HttpResult r = client.Get(hub->url() + "/api/models/" + f.id);
    EXPECT_EQ(r.status, 401) << f.id;
    EXPECT_EQ(r.Header("x-error-code"), "GatedRepo") << f.id;
    EXPECT_NE(ErrorOf(r).find(f.id), std::string::npos) << r.body;
    EXPECT_EQ(client.Get(hub->url() + "/api/models/" + f.id, kToken).status, 200) << f.id;
    if (++gated == 5) break;
  }
  EXPECT_EQ(gated, 5);
  // Disabled: listed with "disabled": true, 403 per repo, token or not.
  for (const Flagged& f : listed) {
    if (!f.disabled) continue;
    for (const auto& headers : {std::vector<std::string>{}, kToken}) {
      HttpResult r = client.Get(hub->url() + "/api/models/" + f.id, headers);
      EXPECT_EQ(r.status, 403) << f.id;
      EXPECT_EQ(r.body, R"({"error":"Access to this resource is disabled."})");
    }
    ++disabled;
  }
  EXPECT_GT(disabled, 3);
  // Revisions: main, HEAD and the head commit exist; anything else is RevisionNotFound.
  const Flagged* plain = nullptr;
  for (const Flagged& f : listed) {
    if (f.gated == "false" && !f.disabled) {
      plain = &f;
      break;
    }
  }
  ASSERT_NE(plain, nullptr);
  for (const std::string& rev : {std::string("main"), std::string("HEAD"), plain->sha}) {
    EXPECT_EQ(client.Get(hub->url() + "/api/models/" + plain->id + "/revision/" + rev).status, 200)
        << rev;
  }
  HttpResult bad_rev =
      client.Get(hub->url() + "/api/models/" + plain->id + "/revision/no-such-branch");
  EXPECT_EQ(bad_rev.status, 404);
  EXPECT_EQ(bad_rev.Header("x-error-code"), "RevisionNotFound");
  EXPECT_EQ(ErrorOf(bad_rev), "Invalid rev id: no-such-branch");
  // Without --gated_no_access, gated repos answer 200 as the 2024-25 recordings show.
  auto open_hub = StartHub(Small(20000));
  for (const Flagged& f : listed) {
    if (f.gated == "manual" && !f.disabled) {
      HttpResult r = client.Get(open_hub->url() + "/api/models/" + f.id);
      EXPECT_EQ(r.status, 200) << f.id;
      EXPECT_NE(r.body.find("\"gated\":\"manual\""), std::string::npos);
      break;
    }
  }
}

TEST(FakeHubHeavyPages, LimitAboveTheBoundAnswers504WithAnHtmlBody) {
  FakeHubOptions o = Small();
  o.heavy_page_limit = 100;
  auto hub = StartHub(o);
  HttpTestClient client;
  for (const char* limit : {"101", "1000", ""}) {
    std::string url = hub->url() + "/api/models?sort=createdAt";
    if (*limit) absl::StrAppend(&url, "&limit=", limit);
    HttpResult r = client.Get(url);
    EXPECT_EQ(r.status, 504) << limit;
    EXPECT_EQ(r.Header("content-type"), "text/html") << limit;
    EXPECT_TRUE(absl::StrContains(r.body, "<h1>504 Gateway Time-out</h1>")) << r.body;
  }
  // At or below the bound every page answers, and a crawl completes.
  HttpResult ok = client.Get(hub->url() + "/api/models?sort=createdAt&limit=100");
  EXPECT_EQ(ok.status, 200);
  auto crawl = Crawl(client, CrawlerFirstUrl(hub->url(), 100));
  ASSERT_TRUE(crawl.ok) << crawl.error;
  EXPECT_EQ(crawl.entries.size(), hub->RepoIdsAt("").size());
  // The per-repo endpoint is not a listing.
  EXPECT_EQ(client.Get(hub->url() + "/api/models/" + crawl.entries[0].id).status, 200);
}

TEST(FakeHubLatency, APageIsAnsweredNoSoonerThanItsLatency) {
  FakeHubOptions o = Small();
  o.page_latency_ms = 1000;  // a 500-entry page waits 500 ms
  auto hub = StartHub(o);
  HttpTestClient client;
  absl::Time start = absl::Now();
  HttpResult page = client.Get(hub->url() + "/api/models?sort=createdAt&limit=500");
  absl::Duration took = absl::Now() - start;
  ASSERT_EQ(page.status, 200);
  std::vector<CrawledEntry> entries;
  ASSERT_TRUE(testing::ParseEntries(page.body, &entries));
  EXPECT_EQ(entries.size(), 500u);
  EXPECT_GE(took, absl::Milliseconds(500));
  // Keep-alive survives the deferred answer, and the next page waits again.
  start = absl::Now();
  HttpResult next = client.Get(*page.NextLink());
  EXPECT_EQ(next.status, 200);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_EQ(next.new_connections, 0);
  // Not a listing: no latency (no lower bound asserted, only that it answers).
  EXPECT_EQ(client.Get(hub->url() + "/api/models/" + entries[0].id).status, 200);
}

// With one worker thread, a page waiting out its latency does not hold the worker: another
// request is answered while the page is still pending.
TEST(FakeHubLatency, AWaitingPageHoldsNoWorker) {
  FakeHubOptions o = Small();
  o.page_latency_ms = 4000;
  o.threads = 1;
  auto hub = StartHub(o);
  std::atomic<bool> page_done{false};
  HttpResult page;
  std::thread slow([&] {
    HttpTestClient client;
    page = client.Get(hub->url() + "/api/models?sort=createdAt&limit=1000", {}, 60000);
    page_done = true;
  });
  absl::SleepFor(absl::Milliseconds(300));
  HttpTestClient client;
  HttpResult health = client.Get(hub->url() + "/_sim/health", {}, 60000);
  EXPECT_EQ(health.status, 200);
  EXPECT_FALSE(page_done.load()) << "the health check waited for the slow page";
  slow.join();
  EXPECT_EQ(page.status, 200);
}

FakeHubOptions Hostile(const std::string& modes, const std::string& origin = "") {
  FakeHubOptions o = Small();
  o.hostile = modes;
  o.foreign_origin = origin;
  return o;
}

TEST(FakeHubHostile, LinkCycleLeadsBackToTheFirstPage) {
  auto hub = StartHub(Hostile("link_cycle"));
  HttpTestClient client;
  const std::string first = hub->url() + "/api/models?limit=100&sort=createdAt";
  HttpResult a = client.Get(first);
  ASSERT_EQ(a.status, 200);
  ASSERT_TRUE(a.NextLink().has_value());
  EXPECT_NE(*a.NextLink(), first);
  HttpResult b = client.Get(*a.NextLink());
  ASSERT_EQ(b.status, 200);
  std::vector<CrawledEntry> entries;
  ASSERT_TRUE(testing::ParseEntries(b.body, &entries));
  EXPECT_EQ(entries.size(), 100u);
  ASSERT_TRUE(b.NextLink().has_value());
  EXPECT_EQ(*b.NextLink(), first);  // A -> B -> A
}

TEST(FakeHubHostile, EmptyPagesForeverEachWithANewNextLink) {
  auto hub = StartHub(Hostile("empty_pages"));
  HttpTestClient client;
  HttpResult page = client.Get(hub->url() + "/api/models?limit=100&sort=createdAt");
  EXPECT_NE(page.body, "[]");
  std::set<std::string> seen;
  for (int k = 0; k < 20; ++k) {
    ASSERT_TRUE(page.NextLink().has_value()) << k;
    std::string next = *page.NextLink();
    EXPECT_TRUE(seen.insert(next).second) << "repeated " << next;
    page = client.Get(next);
    ASSERT_EQ(page.status, 200);
    EXPECT_EQ(page.body, "[]");
  }
}

TEST(FakeHubHostile, ForeignNextAndForeignRedirectPointAtTheForeignOrigin) {
  const std::string foreign = "http://127.0.0.1:9";
  auto next_hub = StartHub(Hostile("foreign_next", foreign));
  HttpTestClient client;
  HttpResult first = client.Get(next_hub->url() + "/api/models?limit=100&sort=createdAt");
  ASSERT_TRUE(first.NextLink().has_value());
  EXPECT_TRUE(absl::StartsWith(*first.NextLink(), next_hub->url() + "/")) << *first.NextLink();
  HttpResult second = client.Get(*first.NextLink());
  ASSERT_EQ(second.status, 200);
  ASSERT_TRUE(second.NextLink().has_value());
  EXPECT_TRUE(
      absl::StartsWith(*second.NextLink(), foreign + "/api/models?limit=100&sort=createdAt"))
      << *second.NextLink();

  auto redirect_hub = StartHub(Hostile("foreign_redirect", foreign));
  first = client.Get(redirect_hub->url() + "/api/models?limit=100&sort=createdAt");
  ASSERT_EQ(first.status, 200);
  ASSERT_TRUE(first.NextLink().has_value());
  HttpResult moved = client.Get(*first.NextLink());
  EXPECT_EQ(moved.status, 302);
  std::string target = first.NextLink()->substr(redirect_hub->url().size());
  EXPECT_EQ(moved.Header("location"), foreign + target);

  // Both need --foreign_origin; unknown modes are refused by name.
  for (const auto& [modes, origin] :
       std::vector<std::pair<std::string, std::string>>{{"foreign_next", ""},
                                                        {"foreign_redirect", "ftp://x"},
                                                        {"gremlins", ""},
                                                        {"garbage_entries=2", ""},
                                                        {"link_cycle,empty_pages", ""}}) {
    auto refused = FakeHub::Start(Hostile(modes, origin));
    EXPECT_FALSE(refused.ok()) << modes;
    if (!refused.ok()) EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(FakeHubHostile, Html200AnswersListingsWithAnHtmlPage) {
  auto hub = StartHub(Hostile("html_200"));
  HttpTestClient client;
  HttpResult r = client.Get(hub->url() + "/api/models?limit=100&sort=createdAt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/html; charset=utf-8");
  std::vector<CrawledEntry> entries;
  EXPECT_FALSE(testing::ParseEntries(r.body, &entries)) << r.body;
}

// The ids of garbage entries in a crawl (entries whose downloads is not a number).
std::set<std::string> GarbageIds(HttpTestClient& client, const std::string& hub_url,
                                 int64_t* entries) {
  std::set<std::string> out;
  *entries = 0;
  std::optional<std::string> url = CrawlerFirstUrl(hub_url);
  simdjson::dom::parser parser;
  while (url) {
    HttpResult page = client.Get(*url);
    simdjson::dom::element doc;
    EXPECT_EQ(parser.parse(page.body).get(doc), simdjson::SUCCESS);
    for (simdjson::dom::object e : doc.get_array()) {
      ++*entries;
      int64_t downloads = 0;
      if (e["downloads"].get(downloads) != simdjson::SUCCESS) {
        out.insert(std::string(std::string_view(e["id"])));
        simdjson::dom::array tags;
        EXPECT_NE(e["tags"].get(tags), simdjson::SUCCESS);
      }
    }
    url = page.NextLink();
  }
  return out;
}

TEST(FakeHubHostile, GarbageEntriesAreAFractionOfReposChosenBySeed) {
  auto a = StartHub(Hostile("garbage_entries=0.3"));
  auto b = StartHub(Hostile("garbage_entries=0.3"));
  FakeHubOptions other = Hostile("garbage_entries=0.3");
  other.seed = 2;
  auto c = StartHub(other);
  HttpTestClient client;
  int64_t entries = 0, entries_c = 0;
  std::set<std::string> garbage_a = GarbageIds(client, a->url(), &entries);
  std::set<std::string> garbage_b = GarbageIds(client, b->url(), &entries);
  std::set<std::string> garbage_c = GarbageIds(client, c->url(), &entries_c);
  EXPECT_EQ(entries, static_cast<int64_t>(a->RepoIdsAt("").size()));  // replaced, not added
  EXPECT_EQ(garbage_a, garbage_b);
  EXPECT_NE(garbage_a, garbage_c);
  EXPECT_GT(garbage_a.size(), entries * 0.25);
  EXPECT_LT(garbage_a.size(), entries * 0.35);
  std::vector<std::string> ids = a->RepoIdsAt("");
  std::set<std::string> listed(ids.begin(), ids.end());
  for (const auto& id : garbage_a) EXPECT_TRUE(listed.count(id)) << id;
}

}  // namespace
}  // namespace hubcensus::fakehub
