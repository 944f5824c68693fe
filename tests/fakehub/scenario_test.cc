// The scenario textproto: the embedded `article` parses and passes its checks, and a scenario
// that would make the generator index an empty list or misread a date is refused with the
// field named.
#include "fakehub/scenario.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "google/protobuf/text_format.h"

namespace hubcensus::fakehub {
namespace {

std::string ArticleText() {
  auto article = FindScenario("article");
  EXPECT_TRUE(article.ok()) << article.status();
  std::string text;
  google::protobuf::TextFormat::PrintToString(**article, &text);
  return text;
}

TEST(FakeHubScenario, ArticleIsEmbeddedAndNamesItsFamilies) {
  auto article = FindScenario("article");
  ASSERT_TRUE(article.ok()) << article.status();
  EXPECT_EQ((*article)->name(), "article");
  const ScenarioFamily* qwen = FindScenarioFamily(**article, "Qwen");
  ASSERT_NE(qwen, nullptr);
  EXPECT_EQ(qwen->anchor(qwen->anchor_size() - 1).date(), "2025-12-31");
  EXPECT_EQ(qwen->anchor(qwen->anchor_size() - 1).downloads(), 515000000);
  EXPECT_EQ(FindScenarioFamily(**article, "Cohere"), nullptr);  // defaults from its name
  EXPECT_EQ((*article)->names().variant(0), "");                // the plain variant
}

TEST(FakeHubScenario, UnknownScenarioListsTheKnownOnes) {
  auto s = FindScenario("paper");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "--scenario: unknown scenario \"paper\" (known: article)");
}

TEST(FakeHubScenario, RefusesWhatTheGeneratorCannotUse) {
  std::string text = ArticleText();
  ASSERT_TRUE(ParseScenario(text, "s.textproto").ok());

  auto syntax = ParseScenario("family { name: \"Qwen\" start: }", "s.textproto");
  ASSERT_FALSE(syntax.ok());
  EXPECT_TRUE(absl::StartsWith(syntax.status().message(), "s.textproto:1:")) << syntax.status();

  auto bad_date = ParseScenario(text + "family { name: \"X\" start: \"2023-13-01\" stem: \"x\" }",
                                "s.textproto");
  ASSERT_FALSE(bad_date.ok());
  EXPECT_TRUE(absl::StrContains(bad_date.status().message(), "\"X\".start: \"2023-13-01\""))
      << bad_date.status();

  auto twice = ParseScenario(text + "family { name: \"Qwen\" start: \"legacy\" stem: \"q\" }",
                             "s.textproto");
  ASSERT_FALSE(twice.ok());
  EXPECT_TRUE(absl::StrContains(twice.status().message(), "\"Qwen\" twice")) << twice.status();

  Scenario no_words;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &no_words));
  no_words.mutable_names()->clear_missing_parent_suffix();
  std::string printed;
  google::protobuf::TextFormat::PrintToString(no_words, &printed);
  auto empty = ParseScenario(printed, "s.textproto");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(),
            "s.textproto: names.missing_parent_suffix is empty (names are picked from it)");

  auto unordered = ParseScenario(
      text +
          "family { name: \"Y\" start: \"legacy\" stem: \"y\" anchor { date: \"2024-01-01\" } "
          "anchor { date: \"2023-01-01\" } }",
      "s.textproto");
  ASSERT_FALSE(unordered.ok());
  EXPECT_TRUE(absl::StrContains(unordered.status().message(), "anchors must be in date order"))
      << unordered.status();
}

}  // namespace
}  // namespace hubcensus::fakehub
