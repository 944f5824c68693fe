#include "hub/entry_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hubcensus::hub {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

std::string ReadRealTree() {
  std::ifstream in(std::string(HUBCENSUS_SHARED_DIR) +
                   "/data/real-lineage/mistral-small-24b-base-2501-tree.json");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::pair<std::string, v1::Relation>> Parents(const v1::RepoSnapshot& repo) {
  std::vector<std::pair<std::string, v1::Relation>> out;
  for (const auto& p : repo.parents()) out.emplace_back(p.id(), p.relation());
  return out;
}

// The real listing entries recorded from the Hub (a Mistral Small 24B lineage tree).
TEST(EntryParser, RealMistralTree) {
  std::string body = ReadRealTree();
  ASSERT_FALSE(body.empty());
  EntryParser parser;
  ParsedEntries out;
  ASSERT_TRUE(parser.ParseListing(body, &out).ok());
  EXPECT_EQ(out.rejected(), 0);
  ASSERT_EQ(out.repos.size(), 67u);

  int with_finetune_parent = 0, gated_auto = 0, gated_manual = 0, with_pipeline = 0;
  int64_t downloads = 0, likes = 0;
  for (const auto& repo : out.repos) {
    downloads += repo.downloads_30d();
    likes += repo.likes();
    if (!repo.pipeline_tag().empty()) ++with_pipeline;
    if (repo.gated() == v1::GATED_AUTO) ++gated_auto;
    if (repo.gated() == v1::GATED_MANUAL) ++gated_manual;
    // Every entry tags each base twice (bare and finetune): one parent, finetune.
    if (!repo.parents().empty()) {
      ASSERT_EQ(repo.parents_size(), 1) << repo.id();
      EXPECT_EQ(repo.parents(0).relation(), v1::RELATION_FINETUNE) << repo.id();
      ++with_finetune_parent;
    }
    EXPECT_FALSE(repo.has_downloads_all_time()) << "not in this recording";
    EXPECT_FALSE(repo.created_at_placeholder());
  }
  EXPECT_EQ(with_finetune_parent, 66);
  EXPECT_EQ(gated_auto, 2);
  EXPECT_EQ(gated_manual, 2);
  EXPECT_EQ(with_pipeline, 47);
  EXPECT_EQ(downloads, 494326);
  EXPECT_EQ(likes, 1523);

  const v1::RepoSnapshot& base = out.repos[0];
  EXPECT_EQ(base.id(), "mistralai/Mistral-Small-24B-Base-2501");
  EXPECT_EQ(base.object_id(), "67924ea27166f1e56f452425");
  EXPECT_EQ(base.author(), "mistralai");
  EXPECT_EQ(base.created_at(), 1737641634);  // 2025-01-23T14:13:54.000Z
  EXPECT_EQ(base.last_modified(), 1738256421);
  EXPECT_EQ(base.downloads_30d(), 19970);
  EXPECT_EQ(base.likes(), 240);
  EXPECT_EQ(base.pipeline_tag(), "text-generation");
  EXPECT_EQ(base.library_name(), "vllm");
  EXPECT_EQ(base.gated(), v1::GATED_AUTO);
  EXPECT_EQ(base.sha(), "50a43a1f4488595def221f672346761c85ad90ea");
  EXPECT_TRUE(base.parents().empty());

  const v1::RepoSnapshot& child = out.repos[1];
  EXPECT_EQ(child.id(), "allura-org/Mistral-Small-24b-Sertraline-0304");
  EXPECT_THAT(Parents(child),
              ElementsAre(Pair("mistralai/Mistral-Small-24B-Base-2501", v1::RELATION_FINETUNE)));
  EXPECT_EQ(child.gated(), v1::GATED_NONE);
}

TEST(EntryParser, ReusesItsBuffersAcrossPages) {
  std::string real = ReadRealTree();
  EntryParser parser;
  ParsedEntries out;
  ASSERT_TRUE(parser.ParseListing(real, &out).ok());
  ASSERT_TRUE(parser.ParseListing(R"([{"id":"a/b"}])", &out).ok());
  ASSERT_TRUE(parser.ParseListing(real, &out).ok());
  EXPECT_EQ(out.repos.size(), 67u * 2 + 1);
  EXPECT_EQ(out.repos[67].id(), "a/b");
  EXPECT_EQ(out.repos[68].id(), out.repos[0].id());
}

TEST(EntryParser, EveryFieldTheMetricsNeed) {
  EntryParser parser;
  ParsedEntries out;
  ASSERT_TRUE(parser
                  .ParseListing(R"([{
    "_id":"621ffdc136468d709f17a5fd","id":"deepset/roberta-base-squad2","private":false,
    "pipeline_tag":"question-answering","library_name":"transformers",
    "tags":["transformers","dataset:squad_v2","base_model:FacebookAI/roberta-base",
            "base_model:finetune:FacebookAI/roberta-base","license:cc-by-4.0"],
    "downloads":1801802,"downloadsAllTime":98765432,"likes":842,"author":"deepset",
    "sha":"adc3b06f79f797d1c575d5479d6f5efe54a9e3b4","lastModified":"2024-09-24T15:48:47.000Z",
    "gated":false,"disabled":true,"trendingScore":12.75,"spaces":["x"],
    "cardData":{"base_model":["FacebookAI/roberta-base"],"license":"cc-by-4.0"},
    "createdAt":"2022-03-02T23:29:04.000Z","siblings":[{"rfilename":"a"}]}])",
                                &out)
                  .ok());
  ASSERT_EQ(out.repos.size(), 1u);
  const v1::RepoSnapshot& r = out.repos[0];
  EXPECT_EQ(r.id(), "deepset/roberta-base-squad2");
  EXPECT_EQ(r.downloads_30d(), 1801802);
  ASSERT_TRUE(r.has_downloads_all_time());
  EXPECT_EQ(r.downloads_all_time(), 98765432);
  EXPECT_DOUBLE_EQ(r.trending_score(), 12.75);
  EXPECT_TRUE(r.disabled());
  EXPECT_FALSE(r.is_private());
  EXPECT_TRUE(r.created_at_placeholder());
  EXPECT_EQ(r.created_at(), 1646263744);
  EXPECT_EQ(r.last_modified(), 1727192927);
  EXPECT_THAT(Parents(r), ElementsAre(Pair("FacebookAI/roberta-base", v1::RELATION_FINETUNE)));
}

TEST(EntryParser, LegacyModelIdNullsAndIntegerTrendingScore) {
  EntryParser parser;
  ParsedEntries out;
  ASSERT_TRUE(parser
                  .ParseListing(R"([{"modelId":"gpt2","pipeline_tag":null,"library_name":null,
      "gated":"manual","trendingScore":7,"downloadsAllTime":null,"cardData":null,"tags":null},
      {"modelId":"old/name","id":"new/name"}])",
                                &out)
                  .ok());
  ASSERT_EQ(out.repos.size(), 2u);
  EXPECT_EQ(out.repos[0].id(), "gpt2");
  EXPECT_EQ(out.repos[0].author(), "");
  EXPECT_EQ(out.repos[0].gated(), v1::GATED_MANUAL);
  EXPECT_DOUBLE_EQ(out.repos[0].trending_score(), 7.0);
  EXPECT_FALSE(out.repos[0].has_downloads_all_time());
  EXPECT_EQ(out.repos[1].id(), "new/name");  // id wins over modelId
  EXPECT_EQ(out.repos[1].author(), "new");
}

TEST(DeriveParents, RelationTagsBareTagsAndCardData) {
  auto parents = [](std::vector<absl::string_view> tags, std::vector<absl::string_view> card) {
    std::vector<std::pair<std::string, v1::Relation>> out;
    for (const auto& p : DeriveParents(tags, card)) out.emplace_back(p.id(), p.relation());
    return out;
  };
  // A merge lists each parent; tag order kept.
  EXPECT_THAT(
      parents({"base_model:a/x", "base_model:b/y", "base_model:merge:a/x", "base_model:merge:b/y"},
              {}),
      ElementsAre(Pair("a/x", v1::RELATION_MERGE), Pair("b/y", v1::RELATION_MERGE)));
  // Bare tags count only when the entry has no relation tag at all (shared/design.md): beside
  // relation tags they add nothing, whatever their order.
  EXPECT_THAT(parents({"base_model:a/x", "base_model:c/z", "base_model:adapter:a/x"}, {}),
              ElementsAre(Pair("a/x", v1::RELATION_ADAPTER)));
  EXPECT_THAT(parents({"base_model:adapter:a/x", "base_model:c/z", "base_model:merge:d/w"}, {}),
              ElementsAre(Pair("a/x", v1::RELATION_ADAPTER), Pair("d/w", v1::RELATION_MERGE)));
  // Bare tags alone: their ids, in tag order, once each.
  EXPECT_THAT(parents({"base_model:c/z", "license:mit", "base_model:a/x", "base_model:c/z"}, {}),
              ElementsAre(Pair("c/z", v1::RELATION_UNKNOWN), Pair("a/x", v1::RELATION_UNKNOWN)));
  // Relation tags alone, each relation kind.
  EXPECT_THAT(parents({"base_model:quantized:q/1", "license:mit", "base_model:finetune:f/2"}, {}),
              ElementsAre(Pair("q/1", v1::RELATION_QUANTIZED), Pair("f/2", v1::RELATION_FINETUNE)));
  // cardData ids not already present come last, as unknown.
  EXPECT_THAT(parents({"base_model:finetune:f/2"}, {"f/2", " g/3 ", "", "g/3"}),
              ElementsAre(Pair("f/2", v1::RELATION_FINETUNE), Pair("g/3", v1::RELATION_UNKNOWN)));
  // Unknown relation words are part of a bare id (ids hold no ':'), so they count only without
  // relation tags; the first relation wins; self-loops are kept (the resolver handles them).
  EXPECT_THAT(parents({"base_model:distill:a/b", "base_model:finetune:s/self",
                       "base_model:adapter:s/self", "base_model:", "base_model:finetune:"},
                      {}),
              ElementsAre(Pair("s/self", v1::RELATION_FINETUNE)));
  EXPECT_THAT(parents({"base_model:distill:a/b", "base_model:"}, {}),
              ElementsAre(Pair("distill:a/b", v1::RELATION_UNKNOWN)));
  // A mixed list with cardData: relation tags, then card ids not yet present.
  EXPECT_THAT(
      parents({"base_model:b/bare", "base_model:quantized:q/1"}, {"b/bare", "q/1"}),
      ElementsAre(Pair("q/1", v1::RELATION_QUANTIZED), Pair("b/bare", v1::RELATION_UNKNOWN)));
}

// The parser derives parents through DeriveParents, the one reading: the same tags give the
// same parents whether parsed from a body or passed in.
TEST(EntryParser, ParentsAreDeriveParentsOfTheTags) {
  const std::vector<std::vector<absl::string_view>> tag_lists = {
      {"base_model:a/x", "base_model:c/z", "base_model:adapter:a/x"},
      {"base_model:c/z", "base_model:a/x"},
      {"base_model:merge:m/1", "base_model:m/1", "base_model:merge:m/2", "base_model:m/3"},
      {"license:mit"},
  };
  EntryParser parser;
  for (const auto& tags : tag_lists) {
    std::string body = R"([{"id":"o/r","tags":[)";
    for (size_t i = 0; i < tags.size(); ++i) {
      absl::StrAppend(&body, i ? "," : "", "\"", tags[i], "\"");
    }
    body += "]}]";
    ParsedEntries out;
    ASSERT_TRUE(parser.ParseListing(body, &out).ok()) << body;
    ASSERT_EQ(out.repos.size(), 1u);
    std::vector<std::pair<std::string, v1::Relation>> want;
    for (const auto& p : DeriveParents(tags, {})) want.emplace_back(p.id(), p.relation());
    EXPECT_EQ(Parents(out.repos[0]), want) << body;
  }
}

// Every answer the real Hub gave its per-repo endpoint (../shared/data/real-hub): each 200 body
// parses without a rejection (both placeholder dates, gated "manual", fields to skip), and each
// 307 is followed by the client as a rename.
TEST(EntryParser, EveryRecordedRealHubAnswer) {
  std::ifstream in(std::string(HUBCENSUS_SHARED_DIR) + "/data/real-hub/model-answers.json");
  std::stringstream text;
  text << in.rdbuf();
  ASSERT_FALSE(text.str().empty());
  simdjson::dom::parser dom;
  simdjson::dom::element answers;
  ASSERT_EQ(dom.parse(text.str()).get(answers), simdjson::SUCCESS);
  EntryParser parser;
  int bodies = 0;
  int placeholders = 0;
  std::set<std::string> placeholder_texts;
  int manual = 0;
  for (simdjson::dom::element answer : answers.get_array()) {
    int64_t status = answer["status"].get_int64().value();
    if (status != 200) continue;
    std::string body = simdjson::minify(answer["body"]);
    ParsedEntries out;
    ASSERT_TRUE(parser.ParseDetail(body, &out).ok()) << body.substr(0, 200);
    EXPECT_EQ(out.rejected(), 0) << body.substr(0, 200);
    ASSERT_EQ(out.repos.size(), 1u);
    const v1::RepoSnapshot& repo = out.repos[0];
    std::string_view created = answer["body"]["createdAt"].get_string().value();
    EXPECT_EQ(repo.created_at_placeholder(),
              created == "2022-03-02T23:29:04.000Z" || created == "2022-03-02T23:29:05.000Z")
        << repo.id();
    if (repo.created_at_placeholder()) {
      ++placeholders;
      placeholder_texts.emplace(created);
    }
    if (repo.gated() == v1::GATED_MANUAL) ++manual;
    EXPECT_FALSE(repo.is_private());
    ++bodies;
  }
  EXPECT_EQ(bodies, 12);
  EXPECT_EQ(placeholders, 5);
  EXPECT_THAT(placeholder_texts,
              ElementsAre("2022-03-02T23:29:04.000Z", "2022-03-02T23:29:05.000Z"));
  EXPECT_EQ(manual, 2);
}

TEST(EntryParser, BothPlaceholderDates) {
  EntryParser parser;
  ParsedEntries out;
  ASSERT_TRUE(parser
                  .ParseListing(R"([
      {"id":"a/1","createdAt":"2022-03-02T23:29:04.000Z"},
      {"id":"a/2","createdAt":"2022-03-02T23:29:05.000Z"},
      {"id":"a/3","createdAt":"2022-03-02T23:29:06.000Z"}])",
                                &out)
                  .ok());
  ASSERT_EQ(out.repos.size(), 3u);
  EXPECT_TRUE(out.repos[0].created_at_placeholder());
  EXPECT_TRUE(out.repos[1].created_at_placeholder());
  EXPECT_FALSE(out.repos[2].created_at_placeholder());
  EXPECT_TRUE(IsCreatedAtPlaceholder("2022-03-02T23:29:05.000Z"));
  EXPECT_FALSE(IsCreatedAtPlaceholder("2022-03-02T23:29:05Z"));
}

TEST(EntryParser, CardDataBaseModelStringOrList) {
  EntryParser parser;
  ParsedEntries out;
  ASSERT_TRUE(parser
                  .ParseListing(R"([
      {"id":"a/1","cardData":{"base_model":"p/one"}},
      {"id":"a/2","cardData":{"base_model":["p/two",7,null,"p/three"]}},
      {"id":"a/3","cardData":{"base_model":{"odd":"yaml"}}},
      {"id":"a/4","tags":["base_model:p/bare"],"cardData":{"base_model":"p/bare"}}])",
                                &out)
                  .ok());
  ASSERT_EQ(out.repos.size(), 4u);
  EXPECT_THAT(Parents(out.repos[0]), ElementsAre(Pair("p/one", v1::RELATION_UNKNOWN)));
  EXPECT_THAT(Parents(out.repos[1]), ElementsAre(Pair("p/two", v1::RELATION_UNKNOWN),
                                                 Pair("p/three", v1::RELATION_UNKNOWN)));
  EXPECT_TRUE(out.repos[2].parents().empty());
  EXPECT_THAT(Parents(out.repos[3]), ElementsAre(Pair("p/bare", v1::RELATION_UNKNOWN)));
}

struct MalformedCase {
  const char* name;
  std::string entry;
  const char* reason;
};

class MalformedEntryTest : public ::testing::TestWithParam<MalformedCase> {};

// Each malformed entry is rejected with its reason, and the good entries around it are kept.
TEST_P(MalformedEntryTest, RejectedAndCountedRestKept) {
  const MalformedCase& c = GetParam();
  std::string body = absl::StrCat(R"([{"id":"good/first","downloads":1},)", c.entry,
                                  R"(,{"id":"good/last","downloads":2}])");
  EntryParser parser;
  ParsedEntries out;
  absl::Status status = parser.ParseListing(body, &out);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(out.repos.size(), 2u);
  EXPECT_EQ(out.repos[0].id(), "good/first");
  EXPECT_EQ(out.repos[1].id(), "good/last");
  EXPECT_THAT(out.rejected_by_reason, ElementsAre(Pair(c.reason, 1)));
}

INSTANTIATE_TEST_SUITE_P(
    Table, MalformedEntryTest,
    ::testing::Values(
        MalformedCase{"missing_id", R"({"downloads":5,"tags":[]})", "missing_id"},
        MalformedCase{"id_number", R"({"id":12})", "wrong_type:id"},
        MalformedCase{"id_null", R"({"id":null})", "wrong_type:id"},
        MalformedCase{"id_empty", R"({"id":""})", "bad_id"},
        MalformedCase{"id_spaces", R"({"id":"a b/c"})", "bad_id"},
        MalformedCase{"id_two_slashes", R"({"id":"a/b/c"})", "bad_id"},
        MalformedCase{"id_leading_slash", R"({"id":"/abc"})", "bad_id"},
        MalformedCase{"id_control_char", R"({"id":"a\u0001b"})", "bad_id"},
        MalformedCase{"id_huge", absl::StrCat(R"({"id":")", std::string(1025, 'x'), R"("})"),
                      "id_too_long:id"},
        MalformedCase{"id_lone_surrogate", R"({"id":"a\ud800b"})", "invalid_string:id"},
        MalformedCase{"not_an_object", R"(["a/b"])", "not_an_object"},
        MalformedCase{"number_entry", "42", "not_an_object"},
        MalformedCase{"downloads_string", R"({"id":"x/y","downloads":"12"})",
                      "wrong_type:downloads"},
        MalformedCase{"downloads_fraction", R"({"id":"x/y","downloads":1.5})",
                      "wrong_type:downloads"},
        MalformedCase{"downloads_negative", R"({"id":"x/y","downloads":-3})", "negative:downloads"},
        MalformedCase{"downloads_huge", R"({"id":"x/y","downloads":99999999999999999999})",
                      "wrong_type:downloads"},
        MalformedCase{"all_time_bool", R"({"id":"x/y","downloadsAllTime":true})",
                      "wrong_type:downloadsAllTime"},
        MalformedCase{"likes_object", R"({"id":"x/y","likes":{}})", "wrong_type:likes"},
        MalformedCase{"trending_string", R"({"id":"x/y","trendingScore":"hot"})",
                      "wrong_type:trendingScore"},
        MalformedCase{"tags_string", R"({"id":"x/y","tags":"a,b"})", "wrong_type:tags"},
        MalformedCase{"tags_number_item", R"({"id":"x/y","tags":["a",3]})", "wrong_type:tags"},
        MalformedCase{"private_string", R"({"id":"x/y","private":"no"})", "wrong_type:private"},
        MalformedCase{"gated_number", R"({"id":"x/y","gated":1})", "wrong_type:gated"},
        MalformedCase{"gated_unknown_mode", R"({"id":"x/y","gated":"sometimes"})",
                      "bad_value:gated"},
        MalformedCase{"created_garbage", R"({"id":"x/y","createdAt":"yesterday"})",
                      "bad_timestamp:createdAt"},
        MalformedCase{"modified_number", R"({"id":"x/y","lastModified":1700000000})",
                      "wrong_type:lastModified"},
        MalformedCase{"card_data_list", R"({"id":"x/y","cardData":[1]})", "wrong_type:cardData"},
        MalformedCase{
            "pipeline_huge",
            absl::StrCat(R"({"id":"x/y","pipeline_tag":")", std::string(70000, 'p'), R"("})"),
            "oversized:pipeline_tag"},
        MalformedCase{"wrong_type_after_id", R"({"id":"x/y","sha":["nested",{"a":[1]}]})",
                      "wrong_type:sha"}),
    [](const ::testing::TestParamInfo<MalformedCase>& info) { return info.param.name; });

TEST(EntryParser, InvalidUtf8EntryRejectedRestKept) {
  std::string body =
      "[{\"id\":\"good/one\"},{\"id\":\"bad/\xff\xfe\"},{\"id\":\"good/two\",\"tags\":[\"t\"]}]";
  EntryParser parser;
  ParsedEntries out;
  ASSERT_TRUE(parser.ParseListing(body, &out).ok());
  ASSERT_EQ(out.repos.size(), 2u);
  EXPECT_EQ(out.repos[0].id(), "good/one");
  EXPECT_EQ(out.repos[1].id(), "good/two");
  EXPECT_THAT(out.rejected_by_reason, ElementsAre(Pair("invalid_utf8", 1)));
}

TEST(EntryParser, CountsSeveralReasons) {
  EntryParser parser;
  ParsedEntries out;
  ASSERT_TRUE(
      parser.ParseListing(R"([{"downloads":1},{"downloads":2},{"id":3},{"id":"ok/1"}])", &out)
          .ok());
  EXPECT_EQ(out.repos.size(), 1u);
  EXPECT_EQ(out.rejected(), 3);
  EXPECT_THAT(out.rejected_by_reason, ElementsAre(Pair("missing_id", 2), Pair("wrong_type:id", 1)));
}

class BrokenPageTest : public ::testing::TestWithParam<std::string> {};

// Not JSON, truncated, or not an array: an error the client retries, and nothing appended.
TEST_P(BrokenPageTest, IsDataLossAndAppendsNothing) {
  EntryParser parser;
  ParsedEntries out;
  absl::Status status = parser.ParseListing(GetParam(), &out);
  EXPECT_TRUE(absl::IsDataLoss(status)) << status << " for " << GetParam();
  EXPECT_TRUE(out.repos.empty());
  EXPECT_TRUE(out.rejected_by_reason.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Table, BrokenPageTest,
    ::testing::Values("", "   ", "<html><body>502 Bad Gateway</body></html>",
                      R"({"error":"Invalid expand"})", R"([{"id":"a/b"},{"id":"c/d")",
                      R"([{"id":"a/b"},{"id":"c/)", R"([{"id":"a/b"},)", R"([{"id":"a/b"})",
                      R"([{"id":"a/b","tags":["x"}])", R"([{"id":"a/b"} {"id":"c/d"}])",
                      R"([{"id":"a/b"},])", "[{\"id\":\"a\xff\"},{\"id\":\"c/d\"",
                      R"("just a string")", "null"),
    [](const ::testing::TestParamInfo<std::string>& info) {
      // The page's letters and digits, after its index: 03_error_Invalid_expand.
      std::string name = absl::StrCat(info.index < 10 ? "0" : "", info.index, "_");
      for (char c : info.param.substr(0, 40)) {
        bool word = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        if (word || name.back() != '_') name += word ? c : '_';
      }
      if (name.size() == 3) name += info.param.empty() ? "empty" : "blank";
      if (name.back() == '_') name.pop_back();
      return name;
    });

TEST(EntryParser, TruncationAtEveryByteOfARealPageIsNeverAcceptedWhole) {
  std::string body = ReadRealTree();
  EntryParser parser;
  // Every proper prefix that ends inside the top-level array is an error, never a short page.
  for (size_t cut = 0; cut + 1 < body.size(); cut += 97) {
    ParsedEntries out;
    absl::Status status = parser.ParseListing(absl::string_view(body).substr(0, cut), &out);
    EXPECT_TRUE(absl::IsDataLoss(status)) << "cut at " << cut << ": " << status;
    EXPECT_TRUE(out.repos.empty());
  }
}

TEST(EntryParser, Detail) {
  EntryParser parser;
  ParsedEntries out;
  ASSERT_TRUE(parser
                  .ParseDetail(R"({"_id":"621f","id":"deepset/roberta-base-squad2",
                   "tags":["base_model:finetune:FacebookAI/roberta-base"],"downloads":3,
                   "baseModels":{"relation":"finetune","models":[{"id":"FacebookAI/roberta-base"}]}})",
                               &out)
                  .ok());
  ASSERT_EQ(out.repos.size(), 1u);
  EXPECT_THAT(Parents(out.repos[0]),
              ElementsAre(Pair("FacebookAI/roberta-base", v1::RELATION_FINETUNE)));
  ASSERT_TRUE(parser.ParseDetail(R"({"id":7})", &out).ok());
  ASSERT_TRUE(parser.ParseDetail("{\"id\":\"x\xff\"}", &out).ok());
  EXPECT_THAT(out.rejected_by_reason,
              ElementsAre(Pair("invalid_utf8", 1), Pair("wrong_type:id", 1)));
  EXPECT_TRUE(absl::IsDataLoss(parser.ParseDetail(R"({"id":"a/b")", &out)));
  EXPECT_TRUE(absl::IsDataLoss(parser.ParseDetail(R"([{"id":"a/b"}])", &out)));
  EXPECT_TRUE(absl::IsDataLoss(parser.ParseDetail("{\"id\":\"x\xff\"", &out)));
  EXPECT_EQ(out.repos.size(), 1u);
}

}  // namespace
}  // namespace hubcensus::hub
