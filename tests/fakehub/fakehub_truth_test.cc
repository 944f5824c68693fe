// Ground truth: against a brute-force crawl-and-count over HTTP on small Hubs, the lineage rules
// on hand-built graphs (every policy), the article scenario's calibrated figures, the download
// curves, and the real Mistral-Small tree served as a fixture.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "config/family_config.h"
#include "fakehub/fakehub.h"
#include "fakehub/truth.h"
#include "simdjson.h"
#include "tests/fakehub/crawl_helpers.h"

namespace hubcensus::fakehub {
namespace {

using testing::Crawl;
using testing::CrawledEntry;
using testing::CrawlerFirstUrl;
using testing::HttpResult;
using testing::HttpTestClient;

std::unique_ptr<FakeHub> StartHub(int64_t repos, uint64_t seed = 1, std::string fixture = "") {
  FakeHubOptions o;
  o.repos = repos;
  o.seed = seed;
  o.rate_limit = "off";
  o.fixture_path = fixture;
  auto hub = FakeHub::Start(o);
  EXPECT_TRUE(hub.ok()) << hub.status();
  return hub.ok() ? *std::move(hub) : nullptr;
}

// The figures of one family or region as the truth JSON states them.
struct Figures {
  double repos = 0, fp_all = 0, fp_30d = 0, ecosystem = 0;
  std::map<std::string, double> derivatives;
  bool operator==(const Figures& o) const {
    return repos == o.repos && fp_all == o.fp_all && fp_30d == o.fp_30d &&
           ecosystem == o.ecosystem && derivatives == o.derivatives;
  }
};
struct MonthShares {
  double total = 0;
  std::map<std::string, double> counts;
};
struct ParsedTruth {
  std::vector<std::string> family_order;
  std::map<std::string, Figures> families;
  std::vector<std::string> region_order;
  std::map<std::string, Figures> regions;
  std::map<std::string, MonthShares> months;
  std::vector<std::string> month_order;
  std::string date;
  double placeholder_dated_left_out = 0;
};

double Number(simdjson::dom::element e) {
  double d = 0;
  int64_t i = 0;
  if (e.get(i) == simdjson::SUCCESS) return static_cast<double>(i);
  EXPECT_EQ(e.get(d), simdjson::SUCCESS);
  return d;
}

Figures ParseFigures(simdjson::dom::object o) {
  Figures f;
  f.repos = Number(o["first_party_repos"]);
  f.fp_all = Number(o["first_party_downloads_all_time"]);
  f.fp_30d = Number(o["first_party_downloads_30d"]);
  f.ecosystem = Number(o["ecosystem_downloads_all_time"]);
  for (auto field : simdjson::dom::object(o["derivatives"])) {
    f.derivatives[std::string(field.key)] = Number(field.value);
  }
  return f;
}

ParsedTruth ParseTruth(const std::string& json) {
  ParsedTruth t;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json.substr(0, 300);
  std::string_view s;
  EXPECT_EQ(doc["families"]["crawl_id"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(doc["families"]["date"].get(s), simdjson::SUCCESS);
  t.date = std::string(s);
  for (simdjson::dom::object f : simdjson::dom::array(doc["families"]["families"])) {
    std::string name{std::string_view(f["family"])};
    t.family_order.push_back(name);
    t.families[name] = ParseFigures(f);
  }
  for (simdjson::dom::object r : simdjson::dom::array(doc["families"]["regions"])) {
    std::string name{std::string_view(r["region"])};
    t.region_order.push_back(name);
    t.regions[name] = ParseFigures(r);
  }
  EXPECT_EQ(doc["shares"]["date"].get(s), simdjson::SUCCESS);
  t.placeholder_dated_left_out = Number(doc["shares"]["placeholder_dated_left_out"]);
  for (simdjson::dom::object m : simdjson::dom::array(doc["shares"]["months"])) {
    std::string month{std::string_view(m["month"])};
    t.month_order.push_back(month);
    MonthShares& ms = t.months[month];
    ms.total = Number(m["total"]);
    for (auto field : simdjson::dom::object(m["families"])) {
      double count = Number(field.value["count"]);
      double share = Number(field.value["share"]);
      EXPECT_GT(count, 0);
      EXPECT_NEAR(share, count / ms.total, 1e-12);
      ms.counts[std::string(field.key)] = count;
    }
  }
  return t;
}

// A brute-force aggregation of a crawl, written from shared/design.md for this test alone.
ParsedTruth BruteForce(const std::vector<CrawledEntry>& entries, const std::string& date) {
  const v1::FamilyConfig& config = DefaultFamilyConfig();
  FamilyMatcher matcher(config);
  absl::flat_hash_map<std::string, const CrawledEntry*> by_id;
  for (const auto& e : entries) by_id[e.id] = &e;
  // design.md: the ids of base_model:<relation>:<id> tags, in tag order, each id once at its
  // first such tag; only an entry with no relation tag at all is read from its bare
  // base_model:<id> tags (relation unknown).
  auto parents_of = [](const CrawledEntry& e, std::string* relation) {
    std::map<std::string, std::string> relation_of;  // id -> its first relation tag's relation
    for (const auto& t : e.tags) {
      if (!absl::StartsWith(t, "base_model:")) continue;
      std::string rest = t.substr(11);
      for (const char* r : {"finetune", "adapter", "quantized", "merge"}) {
        std::string p = std::string(r) + ":";
        if (absl::StartsWith(rest, p)) relation_of.emplace(rest.substr(p.size()), r);
      }
    }
    std::vector<std::string> ids;
    std::vector<std::string> relations;
    std::set<std::string> taken;
    for (const auto& t : e.tags) {
      if (!absl::StartsWith(t, "base_model:")) continue;
      std::string rest = t.substr(11), id = rest, r = "unknown";
      for (const char* name : {"finetune", "adapter", "quantized", "merge"}) {
        std::string p = std::string(name) + ":";
        if (absl::StartsWith(rest, p)) {
          id = rest.substr(p.size());
          r = name;
        }
      }
      bool bare_shadowed = r == "unknown" && !relation_of.empty();
      if (id.empty() || bare_shadowed || !taken.insert(id).second) continue;
      ids.push_back(id);
      relations.push_back(r);
    }
    if (relation) *relation = relations.empty() ? "unknown" : relations[0];
    return ids;
  };
  auto family_of = [&](const CrawledEntry& start) -> int {
    std::set<std::string> visited{start.id};
    const CrawledEntry* cur = &start;
    for (int steps = 0;;) {
      int fp = matcher.FirstPartyFamily(cur->id);
      if (fp >= 0) return fp;
      auto parents = parents_of(*cur, nullptr);
      if (parents.empty()) return -1;
      if (++steps > 64) return -1;
      auto it = by_id.find(parents[0]);
      if (it == by_id.end()) return matcher.FirstPartyFamily(parents[0]);
      if (!visited.insert(parents[0]).second) return -1;
      cur = it->second;
    }
  };
  ParsedTruth t;
  t.date = date;
  for (int f = 0; f < config.family_size(); ++f) {
    t.family_order.push_back(config.family(f).name());
    for (const char* r : {"finetune", "adapter", "quantized", "merge", "unknown"}) {
      t.families[config.family(f).name()].derivatives[r] = 0;
    }
  }
  std::string last_month = date.substr(0, 7);
  for (const auto& e : entries) {
    int fp = matcher.FirstPartyFamily(e.id);
    if (fp >= 0) {
      Figures& f = t.families[config.family(fp).name()];
      f.repos += 1;
      f.fp_all += e.all_time;
      f.fp_30d += e.downloads;
    }
    int family = family_of(e);
    if (family < 0) continue;
    Figures& f = t.families[config.family(family).name()];
    f.ecosystem += e.all_time;
    if (fp >= 0) continue;
    std::string relation;
    parents_of(e, &relation);
    f.derivatives[relation] += 1;
    bool pipeline = e.pipeline_tag == "text-generation" || e.pipeline_tag == "image-text-to-text";
    bool placeholder =
        e.created_at == "2022-03-02T23:29:04.000Z" || e.created_at == "2022-03-02T23:29:05.000Z";
    if (pipeline && (!e.has_all_time || e.all_time >= 5) && placeholder) {
      t.placeholder_dated_left_out += 1;  // created before March 2022: new in no month
    } else if (pipeline && (!e.has_all_time || e.all_time >= 5)) {
      std::string month = e.created_at.substr(0, 7);
      t.months[month].total += 1;
      t.months[month].counts[config.family(family).name()] += 1;
    }
  }
  for (const char* region : kRegions) {
    t.region_order.push_back(region);
    Figures& r = t.regions[region];
    for (const char* rel : {"finetune", "adapter", "quantized", "merge", "unknown"}) {
      r.derivatives[rel] = 0;
    }
    for (int f = 0; f < config.family_size(); ++f) {
      if (config.family(f).region() != region) continue;
      const Figures& x = t.families[config.family(f).name()];
      r.repos += x.repos;
      r.fp_all += x.fp_all;
      r.fp_30d += x.fp_30d;
      r.ecosystem += x.ecosystem;
      for (const auto& [k, v] : x.derivatives) r.derivatives[k] += v;
    }
  }
  if (!t.months.empty()) {
    // Every month from the first counted one to the date's, empty ones included.
    int y = std::stoi(t.months.begin()->first.substr(0, 4));
    int m = std::stoi(t.months.begin()->first.substr(5, 2));
    while (true) {
      char label[8];
      std::snprintf(label, sizeof(label), "%04d-%02d", y, m);
      t.month_order.push_back(label);
      t.months[label];
      if (label == last_month) break;
      if (++m == 13) {
        m = 1;
        ++y;
      }
    }
  }
  return t;
}

void ExpectSameTruth(const ParsedTruth& got, const ParsedTruth& want) {
  EXPECT_EQ(got.date, want.date);
  EXPECT_EQ(got.family_order, want.family_order);
  EXPECT_EQ(got.region_order, want.region_order);
  for (const auto& [name, f] : want.families) {
    EXPECT_TRUE(got.families.at(name) == f)
        << name << ": truth repos=" << got.families.at(name).repos
        << " eco=" << got.families.at(name).ecosystem << ", brute force repos=" << f.repos
        << " eco=" << f.ecosystem;
  }
  for (const auto& [name, r] : want.regions) EXPECT_TRUE(got.regions.at(name) == r) << name;
  EXPECT_EQ(got.month_order, want.month_order);
  EXPECT_EQ(got.placeholder_dated_left_out, want.placeholder_dated_left_out);
  for (const auto& [month, m] : want.months) {
    ASSERT_TRUE(got.months.count(month)) << month;
    EXPECT_EQ(got.months.at(month).total, m.total) << month;
    EXPECT_EQ(got.months.at(month).counts, m.counts) << month;
  }
}

TEST(FakeHubTruth, EqualsABruteForceCountOfTheCrawledListing) {
  for (uint64_t seed : {1, 2}) {
    auto hub = StartHub(4000, seed);
    HttpTestClient client;
    for (const char* date : {"2024-10-31", "2025-12-31"}) {
      ASSERT_TRUE(hub->SetDate(date).ok());
      auto crawl = Crawl(client, CrawlerFirstUrl(hub->url()));
      ASSERT_TRUE(crawl.ok) << crawl.error;
      auto truth = hub->TruthJson(date);
      ASSERT_TRUE(truth.ok()) << truth.status();
      SCOPED_TRACE(absl::StrCat("seed ", seed, " date ", date));
      ParsedTruth got = ParseTruth(*truth);
      ExpectSameTruth(got, BruteForce(crawl.entries, date));
      // The HTTP endpoint serves the same body.
      EXPECT_EQ(client.Get(hub->url() + "/_sim/truth?date=" + date).body, *truth);
      // Every family of the families file, zeros included, in file order.
      EXPECT_EQ(got.family_order.size(), 108u);
      EXPECT_EQ(got.family_order[0], "Qwen");
      EXPECT_EQ(got.region_order,
                (std::vector<std::string>{"china", "us", "eu", "other", "unknown"}));
    }
  }
}

// The census counts the public Hub: private repos listed to a token are never counted, and a
// private parent counts as missing (classified by its namespace).
TEST(FakeHubTruth, PrivateReposAreNeverCountedWithOrWithoutAToken) {
  FakeHubOptions o;
  o.repos = 5000;
  o.rate_limit = "off";
  o.private_repos = 0.05;
  auto started = FakeHub::Start(o);
  ASSERT_TRUE(started.ok()) << started.status();
  auto& hub = *started;
  HttpTestClient client;
  const std::string date = hub->date();
  const std::string url = CrawlerFirstUrl(hub->url()) + "&expand=private";
  auto anonymous = Crawl(client, url);
  auto with_token = Crawl(client, url, 100000, {"Authorization: Bearer hf_truth_test"});
  ASSERT_TRUE(anonymous.ok && with_token.ok);
  ASSERT_GT(with_token.entries.size(), anonymous.entries.size());
  std::vector<CrawledEntry> token_public;
  for (const auto& e : with_token.entries) {
    if (!e.is_private) token_public.push_back(e);
  }
  ParsedTruth truth = ParseTruth(hub->TruthJson(date).value());
  ExpectSameTruth(truth, BruteForce(anonymous.entries, date));
  ExpectSameTruth(truth, BruteForce(token_public, date));
  // Counting the private entries too would give another census: the test can fail.
  ParsedTruth wrong = BruteForce(with_token.entries, date);
  double truth_derivatives = 0, wrong_derivatives = 0;
  for (const auto& [name, f] : truth.families) {
    for (const auto& [r, v] : f.derivatives) truth_derivatives += v;
  }
  for (const auto& [name, f] : wrong.families) {
    for (const auto& [r, v] : f.derivatives) wrong_derivatives += v;
  }
  EXPECT_NE(truth_derivatives, wrong_derivatives);
}

// Both placeholder createdAt values: counted in every sum, new in no month; the shares say how
// many were left out.
TEST(FakeHubTruth, PlaceholderDatedReposAreNewInNoMonth) {
  auto hub = StartHub(20000);
  HttpTestClient client;
  auto crawl = Crawl(client, CrawlerFirstUrl(hub->url()));
  ASSERT_TRUE(crawl.ok);
  ParsedTruth truth = ParseTruth(hub->TruthJson(hub->date()).value());
  ParsedTruth brute = BruteForce(crawl.entries, hub->date());
  ExpectSameTruth(truth, brute);
  EXPECT_GT(truth.placeholder_dated_left_out, 10);
  // No spike in March 2022: its total is at most a few times its neighbours'.
  auto total = [&](const std::string& month) {
    return truth.months.count(month) ? truth.months.at(month).total : 0.0;
  };
  double march = total("2022-03"), april = total("2022-04");
  EXPECT_LT(march, 3 * std::max(1.0, april) + 3) << march << " vs " << april;
  EXPECT_LT(march, truth.placeholder_dated_left_out);
}

TEST(FakeHubTruth, TruthForAnotherDateDoesNotMoveTheClock) {
  auto hub = StartHub(2000);
  ASSERT_TRUE(hub->SetDate("2025-03-31").ok());
  auto early = hub->TruthJson("2024-03-31");
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(hub->date(), "2025-03-31");
  ParsedTruth t = ParseTruth(*early);
  EXPECT_EQ(t.date, "2024-03-31");
  EXPECT_EQ(t.month_order.back(), "2024-03");
  EXPECT_FALSE(hub->TruthJson("2024-13-01").ok());
  EXPECT_FALSE(hub->TruthJson("2024-03-31", "sideways").ok());
}

TEST(FakeHubTruth, ArticleScenarioCalibratedFiguresHoldAtEverySize) {
  for (int64_t repos : {1000, 20000}) {
    SCOPED_TRACE(absl::StrCat("repos ", repos));
    auto hub = StartHub(repos);
    ParsedTruth oct = ParseTruth(hub->TruthJson("2025-10-31").value());
    EXPECT_EQ(oct.families["Qwen"].fp_all, 385300000);
    EXPECT_EQ(oct.families["Llama"].fp_all, 346200000);
    ParsedTruth jan = ParseTruth(hub->TruthJson("2024-01-31").value());
    EXPECT_NEAR(jan.families["Llama"].fp_all, 10.6e6, 0.5e6);
    EXPECT_NEAR(jan.families["Qwen"].fp_all, 0.5e6, 0.05e6);
    // Qwen passes Llama in the autumn of 2025.
    ParsedTruth sep = ParseTruth(hub->TruthJson("2025-09-30").value());
    EXPECT_LT(sep.families["Qwen"].fp_all, sep.families["Llama"].fp_all);
    EXPECT_GT(oct.families["Qwen"].fp_all, oct.families["Llama"].fp_all);
    if (repos < 20000) continue;
    // New-derivative shares (the repo counts scale; the shares hold at this size and up).
    const MonthShares& m = oct.months.at("2025-10");
    EXPECT_GT(m.counts.at("Qwen") / m.total, 0.40);
    EXPECT_NEAR(m.counts.at("Llama") / m.total, 0.15, 0.03);
    double peak = 0;
    std::string peak_month;
    for (const auto& [month, ms] : oct.months) {
      double s = ms.counts.count("Llama") ? ms.counts.at("Llama") / ms.total : 0;
      if (s > peak) {
        peak = s;
        peak_month = month;
      }
    }
    EXPECT_NEAR(peak, 0.50, 0.04);
    EXPECT_GE(peak_month, "2024-08");
    EXPECT_LE(peak_month, "2024-11");
    // Derivatives and first-party repos are plentiful for the big families.
    EXPECT_GT(oct.families["Qwen"].derivatives["adapter"], 100);
    EXPECT_GT(oct.families["Llama"].derivatives["finetune"], 100);
    EXPECT_GT(oct.families["Qwen"].derivatives["merge"], 0);
  }
}

TEST(FakeHubTruth, DownloadsAllTimeIsMonotoneAndThirtyDayWindowsAgree) {
  auto hub = StartHub(3000);
  HttpTestClient client;
  std::map<std::string, std::pair<bool, int64_t>> before;
  ASSERT_TRUE(hub->SetDate("2025-05-01").ok());
  auto a = Crawl(client, CrawlerFirstUrl(hub->url()));
  ASSERT_TRUE(hub->SetDate("2025-05-31").ok());  // 30 days later
  auto b = Crawl(client, CrawlerFirstUrl(hub->url()));
  ASSERT_TRUE(a.ok && b.ok);
  for (const auto& e : a.entries) before[e.id] = {e.has_all_time, e.all_time};
  int checked = 0, missing = 0;
  for (const auto& e : b.entries) {
    if (!e.has_all_time) {
      ++missing;
      continue;
    }
    auto it = before.find(e.id);
    int64_t old = it == before.end() ? 0 : it->second.second;
    EXPECT_GE(e.all_time, old) << e.id;
    EXPECT_EQ(e.downloads, e.all_time - old) << e.id;
    ++checked;
  }
  EXPECT_GT(checked, 1500);
  EXPECT_GT(missing, 0);  // downloadsAllTime is absent on a few repos
  // Placeholder createdAt on legacy repos.
  int placeholder = 0;
  for (const auto& e : b.entries) {
    placeholder +=
        e.created_at == "2022-03-02T23:29:04.000Z" || e.created_at == "2022-03-02T23:29:05.000Z";
  }
  EXPECT_GT(placeholder, 100);
}

// Hand-built graphs: every lineage rule of shared/design.md, under each policy.
v1::FamilyConfig TwoFamilies() {
  v1::FamilyConfig c;
  auto* a = c.add_family();
  a->set_name("A");
  a->set_region("us");
  a->add_namespace_("a");
  auto* b = c.add_family();
  b->set_name("B");
  b->set_region("china");
  b->add_namespace_("b");
  return c;
}

struct Node {
  int fp = -1;
  std::vector<int32_t> parents;
  Relation relation = Relation::kFinetune;
};

// Ecosystem downloads per family with only `target` carrying downloads (1): its attribution.
std::map<std::string, double> AttributionOf(const std::vector<Node>& nodes, int target,
                                            TruthPolicy policy) {
  TruthGraph g;
  g.date = "2025-10-31";
  g.date_month = 2025 * 12 + 9;
  for (size_t k = 0; k < nodes.size(); ++k) {
    g.AddNode(static_cast<int16_t>(nodes[k].fp), true, static_cast<int>(k) == target ? 1 : 0, 0,
              g.date_month, true, nodes[k].relation);
    for (int32_t p : nodes[k].parents) g.AddParent(p);
    g.EndNode();
  }
  ParsedTruth t = ParseTruth(TruthJson(g, TwoFamilies(), policy));
  std::map<std::string, double> out;
  for (const auto& [name, f] : t.families) {
    if (f.ecosystem > 0) out[name] = f.ecosystem;
  }
  return out;
}

using Attribution = std::map<std::string, double>;

TEST(FakeHubTruth, LineageRulesOnHandBuiltGraphs) {
  const auto kNearest = TruthPolicy::kFirstParentNearest;
  const auto kSplit = TruthPolicy::kSplitNearest;
  const auto kRoot = TruthPolicy::kFirstParentRoot;
  // Chain: a/base <- u/1 <- u/2.
  std::vector<Node> chain = {{0, {}}, {-1, {0}}, {-1, {1}}};
  EXPECT_EQ(AttributionOf(chain, 2, kNearest), (Attribution{{"A", 1}}));
  // Self-loop and a two-cycle: no family.
  EXPECT_EQ(AttributionOf({{-1, {0}}}, 0, kNearest), Attribution{});
  EXPECT_EQ(AttributionOf({{-1, {1}}, {-1, {0}}}, 0, kNearest), Attribution{});
  EXPECT_EQ(AttributionOf({{-1, {1}}, {-1, {0}}, {-1, {0}}}, 2, kSplit), Attribution{});
  // Missing parents are classified by their namespace.
  EXPECT_EQ(AttributionOf({{-1, {TruthGraph::MissingParent(1)}}}, 0, kNearest),
            (Attribution{{"B", 1}}));
  EXPECT_EQ(AttributionOf({{-1, {TruthGraph::MissingParent(-1)}}}, 0, kNearest), Attribution{});
  // A merge of A and B: the first parent, or half each.
  std::vector<Node> merge = {{0, {}}, {1, {}}, {-1, {0, 1}, Relation::kMerge}};
  EXPECT_EQ(AttributionOf(merge, 2, kNearest), (Attribution{{"A", 1}}));
  EXPECT_EQ(AttributionOf(merge, 2, kSplit), (Attribution{{"A", 0.5}, {"B", 0.5}}));
  EXPECT_EQ(AttributionOf(merge, 2, kRoot), (Attribution{{"A", 1}}));
  // SPLIT: a branch into a cycle gives nothing; the other keeps its half.
  EXPECT_EQ(AttributionOf({{0, {}}, {-1, {0, 1}}}, 1, kSplit), (Attribution{{"A", 0.5}}));
  // A first-party repo of B built on A: B by itself; ROOT walks on to A.
  std::vector<Node> distill = {{0, {}}, {1, {0}}, {-1, {1}}};
  EXPECT_EQ(AttributionOf(distill, 1, kNearest), (Attribution{{"B", 1}}));
  EXPECT_EQ(AttributionOf(distill, 2, kNearest), (Attribution{{"B", 1}}));
  EXPECT_EQ(AttributionOf(distill, 2, kRoot), (Attribution{{"A", 1}}));
  EXPECT_EQ(AttributionOf(distill, 1, kRoot), (Attribution{{"A", 1}}));
  // 64 steps reach the family; 65 do not.
  std::vector<Node> long_chain = {{0, {}}};
  for (int k = 1; k <= 70; ++k) long_chain.push_back({-1, {k - 1}});
  EXPECT_EQ(AttributionOf(long_chain, 64, kNearest), (Attribution{{"A", 1}}));
  EXPECT_EQ(AttributionOf(long_chain, 65, kNearest), Attribution{});
  EXPECT_EQ(AttributionOf(long_chain, 64, kSplit), (Attribution{{"A", 1}}));
  EXPECT_EQ(AttributionOf(long_chain, 65, kRoot), Attribution{});
}

TEST(FakeHubTruth, DerivativesByFirstEdgeAndSharesUnderSplit) {
  std::vector<Node> nodes = {{0, {}},
                             {1, {}},
                             {-1, {0}, Relation::kAdapter},
                             {-1, {1, 0}, Relation::kMerge},
                             {-1, {0}, Relation::kUnknown}};
  TruthGraph g;
  g.date = "2025-10-31";
  g.date_month = 2025 * 12 + 9;
  for (const auto& n : nodes) {
    g.AddNode(static_cast<int16_t>(n.fp), true, 10, 1, g.date_month, true, n.relation);
    for (int32_t p : n.parents) g.AddParent(p);
    g.EndNode();
  }
  ParsedTruth nearest = ParseTruth(TruthJson(g, TwoFamilies(), TruthPolicy::kFirstParentNearest));
  EXPECT_EQ(nearest.families["A"].derivatives["adapter"], 1);
  EXPECT_EQ(nearest.families["A"].derivatives["unknown"], 1);
  EXPECT_EQ(nearest.families["B"].derivatives["merge"], 1);
  EXPECT_EQ(nearest.families["A"].repos, 1);
  EXPECT_EQ(nearest.families["A"].fp_all, 10);
  EXPECT_EQ(nearest.months["2025-10"].total, 3);
  EXPECT_EQ(nearest.regions["us"].ecosystem, 30);
  ParsedTruth split = ParseTruth(TruthJson(g, TwoFamilies(), TruthPolicy::kSplitNearest));
  EXPECT_EQ(split.families["B"].derivatives["merge"], 0.5);
  EXPECT_EQ(split.families["A"].derivatives["merge"], 0.5);
  EXPECT_EQ(split.months["2025-10"].counts["A"], 2.5);
  EXPECT_EQ(split.months["2025-10"].total, 3);
}

TEST(FakeHubFixture, ServesTheRealMistralTreeAndItsTruth) {
  auto hub = StartHub(1000, 1,
                      std::string(HUBCENSUS_SHARED_DIR) +
                          "/data/real-lineage/mistral-small-24b-base-2501-tree.json");
  ASSERT_NE(hub, nullptr);
  HttpTestClient client;
  auto crawl = Crawl(client, CrawlerFirstUrl(hub->url(), 10));
  ASSERT_TRUE(crawl.ok) << crawl.error;
  EXPECT_EQ(crawl.entries.size(), 67u);
  EXPECT_EQ(crawl.pages, 7);
  std::set<std::string> ids;
  for (const auto& e : crawl.entries) ids.insert(e.id);
  EXPECT_EQ(ids.size(), 67u);
  // Entries as recorded.
  auto detail = client.Get(hub->url() + "/api/models/mistralai/Mistral-Small-24B-Base-2501");
  EXPECT_EQ(detail.status, 200);
  EXPECT_NE(detail.body.find("\"_id\":\"67924ea27166f1e56f452425\""), std::string::npos);
  EXPECT_NE(detail.body.find("\"downloads\":19970"), std::string::npos);
  EXPECT_NE(detail.body.find("\"gated\":\"auto\""), std::string::npos);
  ParsedTruth t = ParseTruth(hub->TruthJson("2025-12-31").value());
  // Under the default families file NousResearch and arcee-ai are families of their own: their
  // three repos in the tree are first-party, and their descendants follow them. Every other
  // derivative lands in Mistral; all 65 land in a family.
  const Figures& mistral = t.families["Mistral"];
  EXPECT_EQ(mistral.repos, 2);
  EXPECT_EQ(t.families["NousResearch"].repos, 1);
  EXPECT_EQ(t.families["arcee-ai"].repos, 2);
  double in_mistral = 0, derivatives = 0;
  for (const auto& [k, v] : mistral.derivatives) in_mistral += v;
  for (const auto& [name, f] : t.families) {
    for (const auto& [k, v] : f.derivatives) derivatives += v;
  }
  EXPECT_EQ(in_mistral, 56);
  EXPECT_EQ(mistral.derivatives.at("finetune"), 56);
  EXPECT_EQ(derivatives + t.families["NousResearch"].repos + t.families["arcee-ai"].repos, 65);
  ExpectSameTruth(t, BruteForce(crawl.entries, "2025-12-31"));
  // Before the tree existed, nothing is listed.
  ASSERT_TRUE(hub->SetDate("2024-12-31").ok());
  EXPECT_TRUE(hub->RepoIdsAt("").empty());
}

// Tag lists that mix bare and relation tags: the fixture loader reads them by the one rule
// (hub::DeriveParents): the relation tags in tag order; bare tags only when an entry has no
// relation tag at all.
TEST(FakeHubFixture, MixedBareAndRelationTagsFollowTheOneRule) {
  std::string path = ::testing::TempDir() + "/mixed-tags-fixture.json";
  {
    std::ofstream out(path);
    out << R"([
      {"_id":"650000000000000000000001","id":"meta-llama/Llama-3.1-8B","createdAt":"2024-07-01T00:00:00.000Z",
       "downloads":10,"downloadsAllTime":100,"pipeline_tag":"text-generation","tags":[]},
      {"_id":"650000000000000000000002","id":"user/mixed","createdAt":"2024-08-01T00:00:00.000Z",
       "downloads":1,"downloadsAllTime":50,"pipeline_tag":"text-generation",
       "tags":["base_model:Qwen/Qwen2.5-7B","base_model:meta-llama/Llama-3.1-8B",
               "base_model:finetune:meta-llama/Llama-3.1-8B"]},
      {"_id":"650000000000000000000003","id":"user/typed-first","createdAt":"2024-08-02T00:00:00.000Z",
       "downloads":1,"downloadsAllTime":70,"pipeline_tag":"text-generation",
       "tags":["base_model:adapter:meta-llama/Llama-3.1-8B","base_model:Qwen/Qwen2.5-7B"]},
      {"_id":"650000000000000000000004","id":"user/bare-only","createdAt":"2024-08-03T00:00:00.000Z",
       "downloads":1,"downloadsAllTime":30,"pipeline_tag":"text-generation",
       "tags":["base_model:meta-llama/Llama-3.1-8B"]}
    ])";
  }
  auto hub = StartHub(1000, 1, path);
  ASSERT_NE(hub, nullptr);
  ParsedTruth t = ParseTruth(hub->TruthJson("2025-12-31").value());
  // user/mixed has a relation tag, so its bare tags are not read: a Llama finetune (reading the
  // bare Qwen/Qwen2.5-7B tag first would make it a Qwen derivative of unknown relation).
  EXPECT_EQ(t.families["Qwen"].derivatives["unknown"], 0);
  EXPECT_EQ(t.families["Qwen"].ecosystem, 0);
  // user/typed-first: Llama adapter; user/bare-only (bare tags only): Llama, unknown.
  EXPECT_EQ(t.families["Llama"].derivatives["adapter"], 1);
  EXPECT_EQ(t.families["Llama"].derivatives["unknown"], 1);
  EXPECT_EQ(t.families["Llama"].derivatives["finetune"], 1);
  EXPECT_EQ(t.families["Llama"].ecosystem, 100 + 50 + 70 + 30);
  // The brute force of the crawled listing agrees.
  HttpTestClient client;
  auto crawl = Crawl(client, CrawlerFirstUrl(hub->url(), 10));
  ASSERT_TRUE(crawl.ok) << crawl.error;
  ASSERT_EQ(crawl.entries.size(), 4u);
  ExpectSameTruth(t, BruteForce(crawl.entries, "2025-12-31"));
  // baseModels on the per-repo endpoint follow the same parents.
  HttpResult detail = client.Get(hub->url() + "/api/models/user/mixed?expand=baseModels");
  EXPECT_NE(detail.body.find(R"("relation":"finetune")"), std::string::npos) << detail.body;
  EXPECT_EQ(detail.body.find("Qwen"), std::string::npos) << detail.body;
}

}  // namespace
}  // namespace hubcensus::fakehub

namespace hubcensus::fakehub {
namespace {

// The generated Hub holds every structure issue 3 lists.
TEST(FakeHubGenerated, HasTheStructuresTheIssueLists) {
  auto hub = StartHub(20000, 9);
  HttpTestClient client;
  auto crawl = Crawl(client, CrawlerFirstUrl(hub->url()));
  ASSERT_TRUE(crawl.ok) << crawl.error;
  FamilyMatcher matcher(DefaultFamilyConfig());
  absl::flat_hash_map<std::string, const CrawledEntry*> by_id;
  for (const auto& e : crawl.entries) by_id[e.id] = &e;
  auto parents = [](const CrawledEntry& e) {
    std::vector<std::string> out;
    for (const auto& t : e.tags) {
      for (const char* r : {"finetune:", "adapter:", "quantized:", "merge:"}) {
        std::string p = std::string("base_model:") + r;
        if (absl::StartsWith(t, p)) out.push_back(t.substr(p.size()));
      }
    }
    return out;
  };
  std::map<std::string, int> first_relation;
  std::set<std::string> pipelines, libraries;
  int no_base = 0, self_loops = 0, two_cycles = 0, wide_merges = 0, missing = 0,
      missing_in_family = 0, placeholder = 0, no_all_time = 0, mentions = 0, max_depth = 0;
  std::vector<int64_t> downloads;
  for (const auto& e : crawl.entries) {
    auto ps = parents(e);
    bool bare = false;
    for (const auto& t : e.tags) bare |= absl::StartsWith(t, "base_model:");
    if (!bare) ++no_base;
    for (const auto& t : e.tags) {
      for (const char* r : {"finetune", "adapter", "quantized", "merge"}) {
        if (absl::StartsWith(t, absl::StrCat("base_model:", r, ":"))) {
          first_relation[r]++;
          goto counted;
        }
      }
    }
  counted:
    if (ps.size() >= 3) ++wide_merges;
    if (!ps.empty() && ps[0] == e.id) ++self_loops;
    if (!ps.empty() && by_id.count(ps[0])) {
      auto grand = parents(*by_id[ps[0]]);
      if (!grand.empty() && grand[0] == e.id && ps[0] != e.id) ++two_cycles;
    }
    for (const auto& p : ps) {
      if (!by_id.count(p)) {
        ++missing;
        missing_in_family += matcher.FirstPartyFamily(p) >= 0;
      }
    }
    int depth = 0;
    const CrawledEntry* cur = &e;
    std::set<std::string> seen{e.id};
    while (true) {
      auto up = parents(*cur);
      if (up.empty() || !by_id.count(up[0]) || !seen.insert(up[0]).second) break;
      cur = by_id[up[0]];
      ++depth;
    }
    max_depth = std::max(max_depth, depth);
    placeholder +=
        e.created_at == "2022-03-02T23:29:04.000Z" || e.created_at == "2022-03-02T23:29:05.000Z";
    no_all_time += !e.has_all_time;
    downloads.push_back(e.all_time);
    std::string lower = absl::AsciiStrToLower(e.id);
    if (!bare && matcher.FirstPartyFamily(e.id) < 0 &&
        (lower.find("qwen") != std::string::npos || lower.find("llama") != std::string::npos)) {
      ++mentions;
    }
    if (!e.pipeline_tag.empty()) pipelines.insert(e.pipeline_tag);
    for (const char* lib : {"transformers", "peft", "gguf", "diffusers", "sentence-transformers",
                            "timm", "stable-baselines3", "mlx"}) {
      if (!e.tags.empty() && e.tags[0] == lib) libraries.insert(lib);
    }
  }
  double n = static_cast<double>(crawl.entries.size());
  EXPECT_NEAR(no_base / n, 0.72, 0.05);
  // Declared relations: adapter 43%, finetune 36%, quantized 19%, merge 2% (hub-api.md).
  double declared = 0;
  for (const auto& [r, c] : first_relation) declared += c;
  EXPECT_NEAR(first_relation["adapter"] / declared, 0.43, 0.05);
  EXPECT_NEAR(first_relation["finetune"] / declared, 0.36, 0.05);
  EXPECT_NEAR(first_relation["quantized"] / declared, 0.19, 0.05);
  EXPECT_GT(first_relation["merge"], 0);
  EXPECT_GT(wide_merges, 0);
  EXPECT_GE(self_loops, 1);
  EXPECT_GE(two_cycles, 2);
  EXPECT_GT(missing, 10);
  EXPECT_GT(missing_in_family, 0);
  EXPECT_GE(max_depth, 64);  // the long chain; ordinary chains run four and more deep too
  EXPECT_GT(placeholder, 1000);
  EXPECT_GT(no_all_time, 10);
  EXPECT_GT(mentions, 20);
  EXPECT_GE(pipelines.size(), 15u);
  EXPECT_GE(libraries.size(), 7u);
  // Power-law downloads: the top 1% of repos hold most of them.
  std::sort(downloads.rbegin(), downloads.rend());
  double total = 0, top = 0;
  for (size_t k = 0; k < downloads.size(); ++k) {
    total += static_cast<double>(downloads[k]);
    if (k < downloads.size() / 100) top += static_cast<double>(downloads[k]);
  }
  EXPECT_GT(top / total, 0.5);
}

}  // namespace
}  // namespace hubcensus::fakehub
