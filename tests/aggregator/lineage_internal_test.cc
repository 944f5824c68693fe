// The pieces that make a census of 2.2M repos fast, each against a plain definition: the id table
// (against a std::map), the lineage graph (against the string-keyed construction it replaced),
// FIRST_PARENT chain resolution (against the memoised walk it replaced, which still serves
// SPLIT), and the month arithmetic (against absl's civil time).
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "aggregator/census_metrics.h"
#include "aggregator/internal/id_table.h"
#include "aggregator/internal/month_index.h"
#include "aggregator/lineage.h"
#include "config/family_config.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/aggregator/crawl_builder.h"

namespace hubcensus::aggregator {
namespace {

using testing::kFinetune;
using testing::kMerge;
using testing::RepoSpec;

TEST(IdTableTest, FindsEveryInsertedIdFromSeveralThreadsAndNoOther) {
  std::mt19937 rng(7);
  // 20,000 names with many repeats, as parent edges repeat popular bases.
  std::vector<std::string> names;
  for (int i = 0; i < 20000; ++i) {
    names.push_back("ns" + std::to_string(rng() % 300) + "/m" + std::to_string(rng() % 5000));
  }
  internal::IdTable table(names.size());
  auto id_of = [&names](uint32_t number) { return absl::string_view(names[number]); };
  std::vector<uint32_t> slot_of(names.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < names.size(); i += 4) {
        slot_of[i] = table.Insert(names[i], static_cast<uint32_t>(i), id_of);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::map<std::string, uint32_t> slot_of_name;
  for (size_t i = 0; i < names.size(); ++i) {
    auto [it, inserted] = slot_of_name.emplace(names[i], slot_of[i]);
    ASSERT_EQ(it->second, slot_of[i]) << "one id, one slot: " << names[i];
    EXPECT_EQ(names[table.number(slot_of[i])], names[i]);
    EXPECT_EQ(table.Find(names[i], id_of), static_cast<int64_t>(slot_of[i]));
  }
  std::map<uint32_t, std::string> name_of_slot;
  for (const auto& [name, slot] : slot_of_name) {
    ASSERT_TRUE(name_of_slot.emplace(slot, name).second) << "two ids in slot " << slot;
  }
  for (int i = 0; i < 20000; ++i) {
    std::string absent = "absent" + std::to_string(i) + "/m";
    EXPECT_EQ(table.Find(absent, id_of), -1) << absent;
  }
  EXPECT_EQ(table.Find("", id_of), -1);
  internal::IdTable empty(0);
  EXPECT_EQ(empty.Find("a/b", id_of), -1);
}

TEST(MonthIndexTest, AgreesWithAbslCivilTime) {
  auto absl_month = [](int64_t t) {
    absl::CivilMonth m = absl::ToCivilMonth(absl::FromUnixSeconds(t), absl::UTCTimeZone());
    return static_cast<int>(m.year() * 12 + (m.month() - 1));
  };
  std::vector<int64_t> times = {0,
                                -1,
                                1,
                                86399,
                                86400,
                                -86400,
                                -86401,
                                951782400 - 1,  // 2000-02-29 leap day's eve
                                951782400,
                                951868800,   // 2000-03-01
                                4107542400,  // 2100-03-01 (no leap day)
                                4107542400 - 1,
                                1646263744,    // the Hub's placeholder, 2022-03-02T23:29:04Z
                                -62135596800,  // 0001-01-01
                                -62135596801,
                                (int64_t{1} << 40) - 1,
                                -(int64_t{1} << 40) + 1,
                                int64_t{1} << 40,
                                -(int64_t{1} << 40),
                                int64_t{1} << 45};
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200000; ++i) {
    times.push_back(static_cast<int64_t>(rng() % 8'000'000'000ull) - 2'000'000'000ll);
  }
  for (int i = 0; i < 20000; ++i) {
    times.push_back(static_cast<int64_t>(rng() % (uint64_t{1} << 42)) - (int64_t{1} << 41));
  }
  for (int64_t t : times) ASSERT_EQ(internal::MonthIndex(t), absl_month(t)) << t;
}

v1::FamilyConfig TwoFamilies() {
  auto config = ParseFamilyConfig(R"pb(
                                    family { name: "Qwen" region: "china" namespace: "Qwen" }
                                    family { name: "Llama" region: "us" namespace: "meta-llama" }
                                  )pb",
                                  "test.textproto");
  EXPECT_TRUE(config.ok()) << config.status();
  return WithDefaults(*config);
}

// The graph as it was built before the id table: a map from id to node, the last repo of an id
// winning, missing parents numbered in edge order.
struct ReferenceGraph {
  std::vector<int32_t> first_party;
  std::vector<int32_t> parent_node;
  std::vector<std::string> missing_ids;
};
ReferenceGraph BuildReference(const store::CrawlSnapshot& snap, const FamilyMatcher& matcher) {
  ReferenceGraph g;
  std::map<std::string, int32_t> node;
  for (size_t i = 0; i < snap.size(); ++i) {
    node[std::string(snap.id(i))] = static_cast<int32_t>(i);
    g.first_party.push_back(matcher.FirstPartyFamily(snap.id(i)));
  }
  for (size_t i = 0; i < snap.size(); ++i) {
    for (int k = 0; k < snap.parent_count(i); ++k) {
      std::string id(snap.parent_id(i, k));
      auto it = node.find(id);
      if (it == node.end()) {
        it = node.emplace(id, static_cast<int32_t>(g.first_party.size())).first;
        g.missing_ids.push_back(id);
        g.first_party.push_back(matcher.FirstPartyFamily(id));
      }
      g.parent_node.push_back(it->second);
    }
  }
  return g;
}

// Random crawls with what real ones hold and worse: parents named by many repos, missing parents
// (of tracked and untracked namespaces), self-parents, a parent named twice by one repo, cycles,
// chains longer than the step limit, and (unless `sorted`) ids out of order.
std::vector<RepoSpec> RandomCrawl(std::mt19937* rng, int n, bool chains) {
  const char* namespaces[] = {"Qwen", "meta-llama", "u1", "u2", "u3", "u4", "u5"};
  std::vector<RepoSpec> specs(n);
  for (int i = 0; i < n; ++i) {
    specs[i].id = std::string(namespaces[(*rng)() % 7]) + "/m" + std::to_string(i);
  }
  for (int i = 0; i < n; ++i) {
    const int kind = static_cast<int>((*rng)() % 10);
    int parents = kind < 5 ? 0 : kind < 8 ? 1 : static_cast<int>((*rng)() % 4);
    for (int k = 0; k < parents; ++k) {
      const int pick = static_cast<int>((*rng)() % 20);
      std::string parent = pick == 0   ? "Qwen/missing" + std::to_string((*rng)() % 5)
                           : pick == 1 ? "gone" + std::to_string((*rng)() % 5) + "/x"
                           : pick == 2 ? specs[i].id
                           : pick == 3 ? specs[(*rng)() % std::min(n, 5)].id
                                       : specs[(*rng)() % n].id;
      specs[i].parents.push_back({parent, pick % 2 ? kFinetune : kMerge});
    }
  }
  if (chains) {
    // Chains of up to 80 first parents (over the default limit of 64), some ending first-party.
    for (int c = 0; c < 3; ++c) {
      const int len = 20 + static_cast<int>((*rng)() % 61);
      int at = static_cast<int>((*rng)() % n);
      for (int k = 0; k < len; ++k) {
        const int next = static_cast<int>((*rng)() % n);
        specs[at].parents.insert(specs[at].parents.begin(), {specs[next].id, kFinetune});
        at = next;
      }
    }
  }
  return specs;
}

store::CrawlSnapshot Unsorted(const std::vector<RepoSpec>& specs) {
  store::CrawlSnapshot snap;
  for (const auto& s : specs) snap.Add(testing::MakeRepo(s));
  return snap;
}

TEST(LineageGraphTest, SameGraphAsTheStringMapConstruction) {
  std::mt19937 rng(99);
  auto config = TwoFamilies();
  FamilyMatcher matcher(config);
  for (int round = 0; round < 40; ++round) {
    auto specs = RandomCrawl(&rng, 5 + round * 37, round % 2 == 0);
    if (round % 5 == 4) specs.push_back(specs[1]);  // an id twice: the last repo of it wins
    for (bool sorted : {true, false}) {
      store::CrawlSnapshot snap = sorted ? testing::MakeSnapshot(specs) : Unsorted(specs);
      ReferenceGraph want = BuildReference(snap, matcher);
      for (int threads : {1, 2, 3, 0}) {
        LineageGraph got = BuildLineageGraph(snap, matcher, threads);
        ASSERT_EQ(got.repos, static_cast<int32_t>(snap.size()));
        ASSERT_EQ(got.first_party, want.first_party) << "round " << round << " threads " << threads;
        ASSERT_EQ(got.parent_node, want.parent_node) << "round " << round << " threads " << threads;
        ASSERT_EQ(got.missing_ids, want.missing_ids) << "round " << round;
        for (int32_t x = 0; x < got.repos; ++x) {
          ASSERT_EQ(got.parent_count(x), snap.parent_count(x));
        }
      }
    }
  }
  store::CrawlSnapshot empty;
  LineageGraph none = BuildLineageGraph(empty, matcher);
  EXPECT_EQ(none.nodes(), 0);
}

// FIRST_PARENT follows one parent a step, and so does SPLIT on a crawl whose repos keep only their
// first parent: the chain resolution must give, repo for repo, what the memoised walk gives.
void ExpectChainsEqualTheWalk(const std::vector<RepoSpec>& specs, const v1::FamilyConfig& config,
                              const std::string& what) {
  std::vector<RepoSpec> first_only = specs;
  for (auto& s : first_only) {
    if (s.parents.size() > 1) s.parents.resize(1);
  }
  store::CrawlSnapshot snap = testing::MakeSnapshot(specs);
  store::CrawlSnapshot walked = testing::MakeSnapshot(first_only);
  FamilyMatcher matcher(config);
  LineageGraph graph = BuildLineageGraph(snap, matcher);
  LineageGraph walk_graph = BuildLineageGraph(walked, matcher);
  for (auto attribution : {v1::NEAREST, v1::ROOT}) {
    for (int max_steps : {1, 2, 3, 7, 20, 64, 0}) {
      v1::LineageOptions chain_options;
      chain_options.set_parent_policy(v1::FIRST_PARENT);
      chain_options.set_attribution(attribution);
      chain_options.set_max_steps(max_steps);
      v1::LineageOptions walk_options = chain_options;
      walk_options.set_parent_policy(v1::SPLIT);
      LineageResolver chains(graph, chain_options);
      chains.ResolveAll();
      LineageResolver walk(walk_graph, walk_options);
      walk.ResolveAll();
      EXPECT_EQ(chains.over_budget(), 0);
      ASSERT_EQ(walk.over_budget(), 0);
      for (int32_t i = 0; i < graph.repos; ++i) {
        ASSERT_EQ(snap.id(i), walked.id(i));
        auto got = chains.Attribution(i);
        auto want = walk.Attribution(i);
        ASSERT_EQ(got.size(), want.size()) << what << ": " << snap.id(i) << " max_steps "
                                           << max_steps << " attribution " << attribution;
        for (size_t k = 0; k < got.size(); ++k) {
          ASSERT_EQ(got[k].family, want[k].family) << what << ": " << snap.id(i);
          ASSERT_EQ(got[k].weight, want[k].weight) << what << ": " << snap.id(i);
        }
      }
    }
  }
}

// Over 2^19 repos the figures' pass runs in ranges on threads under FIRST_PARENT; SPLIT always
// runs it in one range. On a crawl where every repo keeps only its first parent the two policies
// define the same figures, so the threaded census must equal the single-range one exactly.
TEST(CensusPassTest, ThreadedRangesGiveTheFiguresOfOneRange) {
  auto config = DefaultFamilyConfig();
  std::vector<std::string> tracked;
  for (const auto& f : config.family()) {
    for (const auto& ns : f.namespace_()) tracked.push_back(ns);
  }
  std::mt19937_64 rng(11);
  const int n = 600000;
  std::vector<std::string> ids(n);
  for (int i = 0; i < n; ++i) {
    ids[i] =
        (rng() % 50 == 0 ? tracked[rng() % tracked.size()] : "u" + std::to_string(rng() % 90000)) +
        "/m" + std::to_string(i);
  }
  std::sort(ids.begin(), ids.end());
  const char* tags[] = {"text-generation", "image-text-to-text", "text-to-image", ""};
  store::CrawlSnapshot snap;
  snap.Reserve(n);
  for (int i = 0; i < n; ++i) {
    v1::RepoSnapshot r;
    r.set_id(ids[i]);
    r.set_created_at(1640995200 + static_cast<int64_t>(rng() % 120'000'000));
    r.set_created_at_placeholder(rng() % 100 == 0);
    r.set_downloads_30d(static_cast<int64_t>(rng() % 1000));
    if (rng() % 20) r.set_downloads_all_time(static_cast<int64_t>(rng() % 100000));
    r.set_pipeline_tag(tags[rng() % 4]);
    if (rng() % 10 < 3) {
      auto* p = r.add_parents();
      p->set_id(rng() % 50 == 0 ? "gone/x" + std::to_string(rng() % 100) : ids[rng() % n]);
      p->set_relation(static_cast<v1::Relation>(rng() % 5));
    }
    snap.Add(r);
  }
  auto threaded = ComputeCensus(snap, config, "c", "2025-10-31", 20);
  v1::FamilyConfig split = config;
  split.mutable_lineage()->set_parent_policy(v1::SPLIT);
  auto one_range = ComputeCensus(snap, split, "c", "2025-10-31", 20);
  ASSERT_TRUE(threaded.ok() && one_range.ok());
  google::protobuf::util::MessageDifferencer exact;  // doubles compared bit for bit
  EXPECT_TRUE(exact.Compare(threaded->families, one_range->families));
  EXPECT_TRUE(exact.Compare(threaded->shares, one_range->shares));
  ASSERT_EQ(threaded->top.size(), one_range->top.size());
  for (size_t f = 0; f < threaded->top.size(); ++f) {
    EXPECT_TRUE(exact.Compare(threaded->top[f], one_range->top[f])) << f;
  }
  int64_t ecosystem = 0;
  for (const auto& f : threaded->families.families()) {
    ecosystem += f.figures().first_party_repos();
  }
  EXPECT_GT(ecosystem, 1000) << "the crawl must hold first-party repos to test anything";
}

TEST(FirstParentChainsTest, EqualTheMemoisedWalkOnRandomCrawls) {
  std::mt19937 rng(2024);
  for (int round = 0; round < 30; ++round) {
    ExpectChainsEqualTheWalk(RandomCrawl(&rng, 10 + round * 53, true), TwoFamilies(),
                             "round " + std::to_string(round));
  }
}

TEST(FirstParentChainsTest, EqualTheMemoisedWalkOnCyclesSelfParentsAndMissingParents) {
  ExpectChainsEqualTheWalk({{"a/one", {{"b/two", kFinetune}}},
                            {"b/two", {{"a/one", kFinetune}}},
                            {"c/child", {{"a/one", kFinetune}}},
                            {"s/self", {{"s/self", kFinetune}}},
                            {"t/into-self", {{"s/self", kFinetune}}},
                            {"Qwen/Q", {{"q/back", kFinetune}}},
                            {"q/back", {{"Qwen/Q", kFinetune}}},
                            {"m/ft", {{"Qwen/NotCrawled", kFinetune}}},
                            {"n/ft", {{"someone/NotCrawled", kFinetune}}},
                            {"meta-llama/L", {{"Qwen/Q2", kFinetune}}},
                            {"Qwen/Q2"},
                            {"r/over-llama", {{"meta-llama/L", kFinetune}}}},
                           TwoFamilies(), "hand-made");
}

// The real tree of mistralai/Mistral-Small-24B-Base-2501 (tests/aggregator/lineage_test.cc reads
// it the same way): every repo's first base_model tag.
TEST(FirstParentChainsTest, EqualTheMemoisedWalkOnTheRealMistralTree) {
  std::string path = std::string(HUBCENSUS_SHARED_DIR) +
                     "/data/real-lineage/mistral-small-24b-base-2501-tree.json";
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_FALSE(parser.load(path).get(doc)) << path;
  std::vector<RepoSpec> specs;
  for (simdjson::dom::element entry : doc.get_array()) {
    RepoSpec s;
    s.id = std::string(std::string_view(entry["id"].get_string()));
    for (simdjson::dom::element tag : entry["tags"].get_array()) {
      std::string t(std::string_view(tag.get_string()));
      if (t.rfind("base_model:", 0) != 0) continue;
      std::string rest = t.substr(11);
      for (const char* relation : {"finetune:", "adapter:", "quantized:", "merge:"}) {
        if (rest.rfind(relation, 0) == 0) rest = rest.substr(std::strlen(relation));
      }
      s.parents.push_back({rest, kFinetune});
    }
    specs.push_back(s);
  }
  ASSERT_EQ(specs.size(), 67u);
  ExpectChainsEqualTheWalk(specs, DefaultFamilyConfig(), "mistral tree, default families");
  auto mistral = ParseFamilyConfig(
      R"pb(family { name: "Mistral" region: "eu" namespace: "mistralai" })pb", "mistral");
  ASSERT_TRUE(mistral.ok());
  ExpectChainsEqualTheWalk(specs, WithDefaults(*mistral), "mistral tree, Mistral only");
}

}  // namespace
}  // namespace hubcensus::aggregator
