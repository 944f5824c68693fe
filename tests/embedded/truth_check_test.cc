#include "embedded/truth_check.h"

#include <gtest/gtest.h>

namespace hubcensus {
namespace {

TEST(JsonDifferences, EqualDocumentsHaveNone) {
  auto d =
      JsonDifferences(R"({"crawl_id":"crawl-2025-10-31","families":[{"family":"Qwen","n":3}]})",
                      R"({"crawl_id":"","families":[{"n":3.0,"family":"Qwen"}]})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->empty()) << (*d)[0];
}

TEST(JsonDifferences, NamesThePathAndBothValues) {
  auto d = JsonDifferences(
      R"({"families":[{"family":"Qwen","first_party_downloads_all_time":385300000},{"family":"Llama","x":1}],"months":[{"month":"2025-10","share":0.41}]})",
      R"({"families":[{"family":"Qwen","first_party_downloads_all_time":385300001},{"family":"Llama"}],"months":[{"month":"2025-10","share":0.4100000000001}]})");
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0], "families[Qwen].first_party_downloads_all_time: 385300000 vs 385300001");
  EXPECT_EQ((*d)[1], "families[Llama].x: 1 vs (absent)");
}

TEST(JsonDifferences, LengthsTypesAndBadJson) {
  auto d = JsonDifferences(R"({"a":[1,2,3],"b":"x"})", R"({"a":[1,2],"b":5})");
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0], "a.length: 3 vs 2");
  EXPECT_EQ((*d)[1], "b: \"x\" vs 5");
  EXPECT_FALSE(JsonDifferences("{", "{}").ok());
  EXPECT_NE(JsonDifferences("{}", "[1,").status().message().find("ground-truth"),
            std::string::npos);
}

}  // namespace
}  // namespace hubcensus
