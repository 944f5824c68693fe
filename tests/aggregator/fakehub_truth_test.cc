// The done-when of the aggregator: on generated Hubs of three seeds, crawled over real HTTP,
// every family, region and month figure equals fakehub's ground truth, under each policy.
#include <simdjson.h>

#include <cmath>
#include <map>

#include "aggregator/aggregator.h"
#include "aggregator/census_format.h"
#include "config/family_config.h"
#include "fakehub/fakehub.h"
#include "gtest/gtest.h"
#include "hub/hub_client.h"
#include "hub/listing_query.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::aggregator {
namespace {

class Unlimited : public hub::RequestBudget {
 public:
  absl::Status Acquire(absl::Time) override { return absl::OkStatus(); }
};

// Flattens a JSON document to "path -> number" (arrays of named objects keyed by their name),
// so two documents compare figure by figure.
void Flatten(simdjson::dom::element e, const std::string& path,
             std::map<std::string, double>* out) {
  switch (e.type()) {
    case simdjson::dom::element_type::OBJECT:
      for (auto [key, value] : e.get_object()) {
        Flatten(value, path + "/" + std::string(key), out);
      }
      break;
    case simdjson::dom::element_type::ARRAY: {
      int i = 0;
      for (auto item : e.get_array()) {
        std::string name = std::to_string(i++);
        for (const char* k : {"family", "region", "month"}) {
          std::string_view v;
          if (item.is_object() && !item[k].get_string().get(v)) {
            name = std::string(v);
            break;
          }
        }
        Flatten(item, path + "[" + name + "]", out);
      }
      break;
    }
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      (*out)[path] = double(e.get_double());
      break;
    default:
      break;  // strings (names, dates) are keys here, not figures
  }
}

std::map<std::string, double> Figures(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  auto error = parser.parse(json).get(doc);
  EXPECT_FALSE(error) << json.substr(0, 200);
  std::map<std::string, double> out;
  if (!error) Flatten(doc, "", &out);
  return out;
}

struct Crawled {
  std::string dir;
  std::unique_ptr<fakehub::FakeHub> hub;
  std::unique_ptr<Aggregator> agg;
};

// Crawls the fakehub's whole listing (sort=createdAt, 1,000 a page) into a store and commits.
void CrawlInto(uint64_t seed, const std::string& date, Crawled* out) {
  fakehub::FakeHubOptions fo;
  fo.repos = 20000;
  fo.seed = seed;
  fo.date = date;
  fo.rate_limit = "off";
  fo.threads = 4;
  auto hub = fakehub::FakeHub::Start(fo);
  ASSERT_TRUE(hub.ok()) << hub.status();
  out->hub = std::move(*hub);
  out->dir = hubcensus::testing::MakeTempDir("truth-" + std::to_string(seed));
  AggregatorOptions ao;
  ao.data_dir = out->dir;
  ao.sync_writes = false;
  auto agg = Aggregator::Open(ao);
  ASSERT_TRUE(agg.ok()) << agg.status();
  out->agg = std::move(*agg);

  hub::HubClientOptions ho;
  ho.hub_url = out->hub->url();
  hub::HubClient client(ho);
  Unlimited budget;
  hub::FetchStats stats;
  const std::string crawl_id = "crawl-" + date;
  v1::CommitRequest commit;
  commit.set_crawl_id(crawl_id);
  commit.set_crawl_date(date);
  int page_number = 0;
  int64_t rejected = 0;
  absl::Status s = client.ForEachListingPage(
      hub::FirstListingUrl(out->hub->url(), hub::WithListingDefaults(v1::ListingOptions())),
      &budget, &stats, [&](hub::ListingPage& page) {
        v1::WriteBatch batch;
        batch.set_crawl_id(crawl_id);
        batch.set_crawl_date(date);
        batch.set_item_id("list/" + std::to_string(page_number++));
        batch.set_fence(1);
        for (auto& repo : page.entries.repos) *batch.add_repos() = std::move(repo);
        rejected += page.entries.rejected();
        auto written = out->agg->Write(batch);
        EXPECT_TRUE(written.ok()) << written.status();
        auto* e = commit.add_manifest();
        e->set_item_id(batch.item_id());
        e->set_fence(1);
        e->set_repos(written->repos);
        e->set_id_checksum(written->id_checksum);
        return true;
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(rejected, 0);
  auto committed = out->agg->Commit(commit);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->repos(), static_cast<int64_t>(out->hub->RepoIdsAt(date).size()));
}

int CountMismatches(const std::map<std::string, double>& truth,
                    const std::map<std::string, double>& ours) {
  int mismatches = 0;
  for (const auto& [path, value] : truth) {
    auto it = ours.find(path);
    if (it == ours.end() ||
        std::fabs(it->second - value) > 1e-9 * std::max(1.0, std::fabs(value))) {
      ++mismatches;
    }
  }
  return mismatches;
}

void ExpectSameFigures(const std::string& what, const std::string& truth_json,
                       const std::string& ours_json) {
  auto truth = Figures(truth_json);
  auto ours = Figures(ours_json);
  // 108 families and 5 regions of 9 figures each, plus the months: a real comparison.
  ASSERT_GT(truth.size(), 1000u);
  int mismatches = 0;
  for (const auto& [path, value] : truth) {
    auto it = ours.find(path);
    double got = it == ours.end() ? NAN : it->second;
    bool same =
        it != ours.end() && std::fabs(got - value) <= 1e-9 * std::max(1.0, std::fabs(value));
    if (!same && ++mismatches <= 10) {
      ADD_FAILURE() << what << " " << path << ": truth " << value << ", aggregator " << got;
    }
  }
  for (const auto& [path, value] : ours) {
    if (!truth.count(path) && ++mismatches <= 10) {
      ADD_FAILURE() << what << " " << path << ": aggregator has " << value << ", truth has none";
    }
  }
  EXPECT_EQ(mismatches, 0) << what;
}

class FakehubTruthTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(FakehubTruthTest, EveryFigureEqualsTheGroundTruthUnderEachPolicy) {
  const std::string date = "2025-10-31";
  Crawled crawled;
  ASSERT_NO_FATAL_FAILURE(CrawlInto(GetParam(), date, &crawled));
  struct Policy {
    const char* name;
    v1::ParentPolicy parent;
    v1::Attribution attribution;
  };
  std::string first_parent_json;
  for (Policy p :
       {Policy{"", v1::FIRST_PARENT, v1::NEAREST}, Policy{"split", v1::SPLIT, v1::NEAREST},
        Policy{"root", v1::FIRST_PARENT, v1::ROOT}}) {
    SCOPED_TRACE(std::string("policy ") + (p.name[0] ? p.name : "first_parent"));
    auto truth = crawled.hub->TruthJson(date, p.name);
    ASSERT_TRUE(truth.ok()) << truth.status();
    v1::FamilyConfig config = DefaultFamilyConfig();
    config.mutable_lineage()->set_parent_policy(p.parent);
    config.mutable_lineage()->set_attribution(p.attribution);
    v1::FamiliesRequest fr;
    fr.mutable_crawl()->set_date(date);
    v1::SharesRequest sr;
    sr.mutable_crawl()->set_date(date);
    if (p.name[0] != '\0') {
      *fr.mutable_families() = config;
      *sr.mutable_families() = config;
    }
    auto families = crawled.agg->Families(fr);
    ASSERT_TRUE(families.ok()) << families.status();
    auto shares = crawled.agg->Shares(sr);
    ASSERT_TRUE(shares.ok()) << shares.status();
    ASSERT_GT(shares->months_size(), 0);
    std::string ours = "{\"families\": " + FamiliesToJson(*families) +
                       ", \"shares\": " + SharesToJson(*shares) + "}";
    ExpectSameFigures(std::string("seed ") + std::to_string(GetParam()), *truth, ours);
    if (p.name[0] == '\0') first_parent_json = ours;
  }
  // The comparison can fail: first-parent figures are not the SPLIT truth.
  auto split_truth = crawled.hub->TruthJson(date, "split");
  ASSERT_TRUE(split_truth.ok());
  EXPECT_GT(CountMismatches(Figures(*split_truth), Figures(first_parent_json)), 0);
}

INSTANTIATE_TEST_SUITE_P(Seeds, FakehubTruthTest, ::testing::Values(1, 2, 3),
                         [](const ::testing::TestParamInfo<uint64_t>& info) {
                           return "seed" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace hubcensus::aggregator
