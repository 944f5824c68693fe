#include "aggregator/lineage.h"

#include <simdjson.h>

#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "aggregator/census_metrics.h"
#include "config/family_config.h"
#include "gtest/gtest.h"
#include "tests/aggregator/crawl_builder.h"

namespace hubcensus::aggregator {
namespace {

using testing::kAdapter;
using testing::kFinetune;
using testing::kMerge;
using testing::kQuantized;
using testing::MakeSnapshot;
using testing::RepoSpec;

v1::FamilyConfig TwoFamilies() {
  auto config = ParseFamilyConfig(R"pb(
                                    family { name: "Qwen" region: "china" namespace: "Qwen" }
                                    family { name: "Llama" region: "us" namespace: "meta-llama" }
                                  )pb",
                                  "test.textproto");
  EXPECT_TRUE(config.ok()) << config.status();
  return WithDefaults(*config);
}

v1::LineageOptions Policy(v1::ParentPolicy p, v1::Attribution a, int max_steps = 64) {
  v1::LineageOptions o;
  o.set_parent_policy(p);
  o.set_attribution(a);
  o.set_max_steps(max_steps);
  return o;
}

// Resolves a crawl and returns repo id -> {family name -> weight}.
std::map<std::string, std::map<std::string, double>> Resolve(const store::CrawlSnapshot& snap,
                                                             const v1::FamilyConfig& config,
                                                             const v1::LineageOptions& options) {
  FamilyMatcher matcher(config);
  LineageGraph graph = BuildLineageGraph(snap, matcher);
  LineageResolver resolver(graph, options);
  resolver.ResolveAll();
  std::map<std::string, std::map<std::string, double>> out;
  for (int32_t i = 0; i < graph.repos; ++i) {
    auto& m = out[std::string(snap.id(i))];
    for (const FamilyShare& s : resolver.Attribution(i)) m[matcher.name(s.family)] += s.weight;
  }
  return out;
}

const v1::LineageOptions kNearest = Policy(v1::FIRST_PARENT, v1::NEAREST);

TEST(LineageTest, ChainReachesTheFirstPartyAncestor) {
  auto snap = MakeSnapshot({{"Qwen/Qwen2.5-7B"},
                            {"a/ft", {{"Qwen/Qwen2.5-7B", kFinetune}}},
                            {"b/ft-of-ft", {{"a/ft", kFinetune}}},
                            {"c/gguf", {{"b/ft-of-ft", kQuantized}}},
                            {"d/orphan"}});
  auto r = Resolve(snap, TwoFamilies(), kNearest);
  EXPECT_EQ(r["Qwen/Qwen2.5-7B"], (std::map<std::string, double>{{"Qwen", 1}}));
  EXPECT_EQ(r["a/ft"], (std::map<std::string, double>{{"Qwen", 1}}));
  EXPECT_EQ(r["c/gguf"], (std::map<std::string, double>{{"Qwen", 1}}));
  EXPECT_TRUE(r["d/orphan"].empty());
}

TEST(LineageTest, NearestStopsAtTheFirstFirstPartyRepoAndRootGoesToTheFarthest) {
  // A Qwen repo fine-tuned from a Llama one: NEAREST says Qwen, ROOT says Llama.
  auto snap = MakeSnapshot({{"meta-llama/Llama-3-8B"},
                            {"Qwen/odd", {{"meta-llama/Llama-3-8B", kFinetune}}},
                            {"x/ft", {{"Qwen/odd", kFinetune}}},
                            {"y/ft", {{"x/ft", kFinetune}}}});
  auto nearest = Resolve(snap, TwoFamilies(), kNearest);
  EXPECT_EQ(nearest["y/ft"], (std::map<std::string, double>{{"Qwen", 1}}));
  EXPECT_EQ(nearest["Qwen/odd"], (std::map<std::string, double>{{"Qwen", 1}}));
  auto root = Resolve(snap, TwoFamilies(), Policy(v1::FIRST_PARENT, v1::ROOT));
  EXPECT_EQ(root["y/ft"], (std::map<std::string, double>{{"Llama", 1}}));
  EXPECT_EQ(root["Qwen/odd"], (std::map<std::string, double>{{"Llama", 1}}));
  EXPECT_EQ(root["meta-llama/Llama-3-8B"], (std::map<std::string, double>{{"Llama", 1}}));
}

TEST(LineageTest, MergeFollowsTheFirstParentOrSplitsEvenly) {
  auto snap =
      MakeSnapshot({{"meta-llama/L"},
                    {"Qwen/Q"},
                    {"m/merge", {{"meta-llama/L", kMerge}, {"Qwen/Q", kMerge}}},
                    {"n/three", {{"m/merge", kMerge}, {"Qwen/Q", kMerge}, {"z/none", kMerge}}}});
  auto first = Resolve(snap, TwoFamilies(), kNearest);
  EXPECT_EQ(first["m/merge"], (std::map<std::string, double>{{"Llama", 1}}));
  EXPECT_EQ(first["n/three"], (std::map<std::string, double>{{"Llama", 1}}));
  auto split = Resolve(snap, TwoFamilies(), Policy(v1::SPLIT, v1::NEAREST));
  EXPECT_EQ(split["m/merge"], (std::map<std::string, double>{{"Llama", 0.5}, {"Qwen", 0.5}}));
  // 1/3 of m/merge (half Llama, half Qwen), 1/3 Qwen, 1/3 a missing repo of no family.
  ASSERT_EQ(split["n/three"].size(), 2u);
  EXPECT_NEAR(split["n/three"]["Llama"], 1.0 / 6, 1e-12);
  EXPECT_NEAR(split["n/three"]["Qwen"], 0.5, 1e-12);
}

TEST(LineageTest, CyclesAndSelfLoopsEndWithoutAFamily) {
  auto snap = MakeSnapshot({{"a/one", {{"b/two", kFinetune}}},
                            {"b/two", {{"a/one", kFinetune}}},
                            {"c/child", {{"a/one", kAdapter}}},
                            {"s/self", {{"s/self", kFinetune}}},
                            {"t/into-self", {{"s/self", kFinetune}}},
                            // A cycle through a first-party repo still resolves to it.
                            {"Qwen/Q", {{"q/back", kFinetune}}},
                            {"q/back", {{"Qwen/Q", kFinetune}}}});
  auto r = Resolve(snap, TwoFamilies(), kNearest);
  EXPECT_TRUE(r["a/one"].empty());
  EXPECT_TRUE(r["b/two"].empty());
  EXPECT_TRUE(r["c/child"].empty());
  EXPECT_TRUE(r["s/self"].empty());
  EXPECT_TRUE(r["t/into-self"].empty());
  EXPECT_EQ(r["q/back"], (std::map<std::string, double>{{"Qwen", 1}}));
  EXPECT_EQ(r["Qwen/Q"], (std::map<std::string, double>{{"Qwen", 1}}));
  // ROOT walks past first-party repos, so it goes round the cycle: no family at all.
  auto root = Resolve(snap, TwoFamilies(), Policy(v1::FIRST_PARENT, v1::ROOT));
  EXPECT_TRUE(root["q/back"].empty());
  EXPECT_TRUE(root["Qwen/Q"].empty());
  EXPECT_TRUE(root["a/one"].empty());
}

TEST(LineageTest, MissingParentsAreClassifiedByNamespaceAndEndTheWalk) {
  auto snap = MakeSnapshot({{"a/ft", {{"Qwen/NotCrawled", kFinetune}}},
                            {"b/ft", {{"someone/NotCrawled", kFinetune}}},
                            {"c/ft", {{"a/ft", kAdapter}}}});
  auto r = Resolve(snap, TwoFamilies(), kNearest);
  EXPECT_EQ(r["a/ft"], (std::map<std::string, double>{{"Qwen", 1}}));
  EXPECT_EQ(r["c/ft"], (std::map<std::string, double>{{"Qwen", 1}}));
  EXPECT_TRUE(r["b/ft"].empty());
}

TEST(LineageTest, AChainOf65GoesOverTheStepLimit) {
  // r0 -> r1 -> ... -> r64 -> Qwen/base: r0 is 65 edges away, r1 exactly 64.
  std::vector<RepoSpec> specs = {{"Qwen/base"}};
  for (int i = 0; i <= 64; ++i) {
    std::string parent = i == 64 ? "Qwen/base" : "r/" + std::to_string(i + 1);
    specs.push_back({"r/" + std::to_string(i), {{parent, kFinetune}}});
  }
  auto snap = MakeSnapshot(specs);
  auto r = Resolve(snap, TwoFamilies(), kNearest);
  EXPECT_TRUE(r["r/0"].empty()) << "65 steps is over the limit of 64";
  EXPECT_EQ(r["r/1"], (std::map<std::string, double>{{"Qwen", 1}}));
  EXPECT_EQ(r["r/64"], (std::map<std::string, double>{{"Qwen", 1}}));
  auto split = Resolve(snap, TwoFamilies(), Policy(v1::SPLIT, v1::NEAREST));
  EXPECT_TRUE(split["r/0"].empty());
  EXPECT_EQ(split["r/1"], (std::map<std::string, double>{{"Qwen", 1}}));
  // ROOT: r0's walk is cut after 64 steps; a first-party repo passed on the way does not
  // rescue it (an over-long walk has no family).
  specs[5].id = "meta-llama/r4-renamed";
  for (auto& s : specs) {
    for (auto& p : s.parents) {
      if (p.first == "r/4") p.first = "meta-llama/r4-renamed";
    }
  }
  auto rooted = MakeSnapshot(specs);
  auto root = Resolve(rooted, TwoFamilies(), Policy(v1::FIRST_PARENT, v1::ROOT));
  EXPECT_TRUE(root["r/0"].empty());
  EXPECT_EQ(root["r/1"], (std::map<std::string, double>{{"Qwen", 1}}));
  EXPECT_EQ(root["r/3"], (std::map<std::string, double>{{"Qwen", 1}}));
  auto nearest = Resolve(rooted, TwoFamilies(), kNearest);
  EXPECT_EQ(nearest["r/0"], (std::map<std::string, double>{{"Llama", 1}}));
}

// The definition, walked literally (no memo): the reference the resolver must equal.
std::map<int, double> Reference(const LineageGraph& g, int32_t x, std::set<int32_t>* path,
                                int depth, bool split, bool root, int max_steps) {
  std::map<int, double> out;
  // Under ROOT a cycle or an over-long walk has no family at all: its weight is lost (-2).
  if (path->count(x) || depth > max_steps) {
    if (root) out[-2] = 1.0;
    return out;
  }
  int fp = g.first_party[x];
  if (!root && fp >= 0) return {{fp, 1.0}};
  int k = g.parent_count(x);
  int follow = split ? k : std::min(k, 1);
  path->insert(x);
  for (int j = 0; j < follow; ++j) {
    for (auto [f, w] : Reference(g, g.parent(x, j), path, depth + 1, split, root, max_steps)) {
      out[f] += w / follow;
    }
  }
  path->erase(x);
  if (root && fp >= 0) {
    double mass = 0;
    for (auto& [f, w] : out) mass += w;
    if (1 - mass > 1e-12) out[fp] += 1 - mass;
  }
  return out;
}

TEST(LineageTest, EqualsTheLiteralDefinitionOnRandomGraphsWithCycles) {
  std::mt19937 rng(12345);
  auto config = TwoFamilies();
  FamilyMatcher matcher(config);
  const char* namespaces[] = {"Qwen", "meta-llama", "u1", "u2", "u3", "u4"};
  for (int round = 0; round < 60; ++round) {
    const int n = 8 + round % 17;
    std::vector<RepoSpec> specs;
    for (int i = 0; i < n; ++i) {
      RepoSpec s;
      s.id = std::string(namespaces[rng() % 6]) + "/m" + std::to_string(i);
      specs.push_back(s);
    }
    for (int i = 0; i < n; ++i) {
      int k = static_cast<int>(rng() % 4);
      for (int j = 0; j < k; ++j) {
        std::string parent =
            rng() % 7 == 0 ? "Qwen/missing" + std::to_string(rng() % 3) : specs[rng() % n].id;
        specs[i].parents.push_back({parent, kFinetune});
      }
    }
    auto snap = MakeSnapshot(specs);
    LineageGraph graph = BuildLineageGraph(snap, matcher);
    for (int policy = 0; policy < 4; ++policy) {
      const bool split = policy & 1, root = policy & 2;
      const int max_steps = 2 + round % 6;
      LineageResolver resolver(graph, Policy(split ? v1::SPLIT : v1::FIRST_PARENT,
                                             root ? v1::ROOT : v1::NEAREST, max_steps));
      resolver.ResolveAll();
      for (int32_t i = 0; i < graph.repos; ++i) {
        std::set<int32_t> path;
        auto want = Reference(graph, i, &path, 0, split, root, max_steps);
        want.erase(-2);
        for (auto it = want.begin(); it != want.end();) {
          it = it->second > 0 ? std::next(it) : want.erase(it);
        }
        std::map<int, double> got;
        for (const FamilyShare& s : resolver.Attribution(i)) got[s.family] += s.weight;
        ASSERT_EQ(got.size(), want.size())
            << "round " << round << " policy " << policy << " repo " << snap.id(i);
        for (auto [f, w] : want) {
          ASSERT_NEAR(got[f], w, 1e-9)
              << "round " << round << " policy " << policy << " repo " << snap.id(i);
        }
      }
    }
  }
}

// The real tree of mistralai/Mistral-Small-24B-Base-2501, as the Hub listed it (67 repos).
std::vector<RepoSpec> LoadMistralTree() {
  std::string path = std::string(HUBCENSUS_SHARED_DIR) +
                     "/data/real-lineage/mistral-small-24b-base-2501-tree.json";
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  auto error = parser.load(path).get(doc);
  EXPECT_FALSE(error) << path << ": " << simdjson::error_message(error);
  std::vector<RepoSpec> specs;
  if (error) return specs;
  for (simdjson::dom::element entry : doc.get_array()) {
    RepoSpec s;
    s.id = std::string(std::string_view(entry["id"].get_string()));
    // base_model:<relation>:<id> tags, in tag order; a bare base_model:<id> when no relation.
    std::vector<std::pair<std::string, v1::Relation>> with_relation;
    std::vector<std::string> bare;
    for (simdjson::dom::element tag : entry["tags"].get_array()) {
      std::string t(std::string_view(tag.get_string()));
      if (t.rfind("base_model:", 0) != 0) continue;
      std::string rest = t.substr(11);
      static const std::pair<const char*, v1::Relation> kRelations[] = {{"finetune:", kFinetune},
                                                                        {"adapter:", kAdapter},
                                                                        {"quantized:", kQuantized},
                                                                        {"merge:", kMerge}};
      bool matched = false;
      for (auto [prefix, relation] : kRelations) {
        if (rest.rfind(prefix, 0) == 0) {
          with_relation.push_back({rest.substr(std::strlen(prefix)), relation});
          matched = true;
        }
      }
      if (!matched) bare.push_back(rest);
    }
    s.parents = with_relation;
    if (s.parents.empty()) {
      for (auto& b : bare) s.parents.push_back({b, testing::kUnknown});
    }
    specs.push_back(s);
  }
  return specs;
}

TEST(LineageTest, RealMistralSmallTreeLandsInMistral) {
  auto specs = LoadMistralTree();
  ASSERT_EQ(specs.size(), 67u);
  auto config = ParseFamilyConfig(
      R"pb(family { name: "Mistral" region: "eu" namespace: "mistralai" })pb", "mistral");
  ASSERT_TRUE(config.ok());
  auto snap = MakeSnapshot(specs);
  auto figures = ComputeCensus(snap, *config, "crawl-2025-03-31", "2025-03-31", 10);
  ASSERT_TRUE(figures.ok()) << figures.status();
  const auto& mistral = figures->families.families(0).figures();
  EXPECT_EQ(mistral.first_party_repos(), 2);
  EXPECT_EQ(mistral.derivatives().finetune(), 65);
  EXPECT_EQ(mistral.derivatives().adapter() + mistral.derivatives().quantized() +
                mistral.derivatives().merge() + mistral.derivatives().unknown(),
            0);
  // Every non-first-party repo of the tree resolves to Mistral under every policy.
  for (auto p : {v1::FIRST_PARENT, v1::SPLIT}) {
    for (auto a : {v1::NEAREST, v1::ROOT}) {
      auto r = Resolve(snap, *config, Policy(p, a));
      for (const auto& s : specs) {
        EXPECT_EQ(r[s.id], (std::map<std::string, double>{{"Mistral", 1}})) << s.id;
      }
    }
  }
}

TEST(LineageTest, RealMistralSmallTreeWithTheDefaultFamilies) {
  // The default families also track NousResearch and arcee-ai, which fine-tuned Mistral-Small:
  // their own subtrees (4 and 2 repos, read off the file) go to them under NEAREST.
  auto snap = MakeSnapshot(LoadMistralTree());
  auto figures = ComputeCensus(snap, DefaultFamilyConfig(), "c", "2025-03-31", 10);
  ASSERT_TRUE(figures.ok()) << figures.status();
  std::map<std::string, v1::Figures> by_name;
  for (const auto& f : figures->families.families()) by_name[f.family()] = f.figures();
  EXPECT_EQ(by_name["Mistral"].first_party_repos(), 2);
  EXPECT_EQ(by_name["Mistral"].derivatives().finetune(), 56);
  EXPECT_EQ(by_name["NousResearch"].first_party_repos(), 1);
  EXPECT_EQ(by_name["NousResearch"].derivatives().finetune(), 4);
  EXPECT_EQ(by_name["arcee-ai"].first_party_repos(), 2);
  EXPECT_EQ(by_name["arcee-ai"].derivatives().finetune(), 2);
  // ROOT attribution walks past them to Mistral: all 62 non-first-party repos.
  v1::FamilyConfig root = DefaultFamilyConfig();
  root.mutable_lineage()->set_attribution(v1::ROOT);
  auto rooted = ComputeCensus(snap, root, "c", "2025-03-31", 10);
  ASSERT_TRUE(rooted.ok());
  for (const auto& f : rooted->families.families()) {
    if (f.family() == "Mistral") {
      EXPECT_EQ(f.figures().derivatives().finetune(), 62);
    }
    if (f.family() == "NousResearch") {
      EXPECT_EQ(f.figures().derivatives().finetune(), 0);
    }
  }
}

TEST(LineageTest, ExplainsTheWalkAndWhyItStopped) {
  auto snap = MakeSnapshot({{"Qwen/Q"},
                            {"a/ft", {{"Qwen/Q", kFinetune}}},
                            {"b/gguf", {{"a/ft", kQuantized}}},
                            {"c/loop", {{"c/loop", kFinetune}}},
                            {"d/lost", {{"gone/x", kAdapter}}}});
  auto config = TwoFamilies();
  FamilyMatcher matcher(config);
  LineageGraph graph = BuildLineageGraph(snap, matcher);
  LineageResolver resolver(graph, kNearest);
  resolver.ResolveAll();
  auto explain = [&](const std::string& id) {
    return ExplainLineage(snap, graph, resolver, matcher, kNearest,
                          static_cast<int32_t>(snap.Find(id)));
  };
  auto b = explain("b/gguf");
  ASSERT_EQ(b.walk_size(), 3);
  EXPECT_EQ(b.walk(1).repo_id(), "a/ft");
  EXPECT_EQ(b.walk(1).relation(), "quantized");
  EXPECT_EQ(b.walk(2).relation(), "finetune");
  EXPECT_EQ(b.walk(2).first_party_family(), "Qwen");
  EXPECT_EQ(b.stop(), v1::LINEAGE_STOP_FIRST_PARTY);
  EXPECT_EQ(b.family(), "Qwen");
  auto c = explain("c/loop");
  EXPECT_EQ(c.stop(), v1::LINEAGE_STOP_CYCLE);
  EXPECT_EQ(c.family(), "");
  auto d = explain("d/lost");
  EXPECT_EQ(d.stop(), v1::LINEAGE_STOP_NO_PARENT);
  ASSERT_EQ(d.walk_size(), 2);
  EXPECT_FALSE(d.walk(1).in_crawl());
}

}  // namespace
}  // namespace hubcensus::aggregator
