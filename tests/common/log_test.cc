#include "common/log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hubcensus {
namespace {

std::vector<std::string>* captured = nullptr;
void Capture(const std::string& line) { captured->push_back(line); }

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    captured = &lines_;
    SetLogSink(&Capture);
    SetLogLevel(LogLevel::kInfo);
  }
  void TearDown() override {
    SetLogSink(nullptr);
    SetLogFormat(LogFormat::kText);
    captured = nullptr;
  }
  std::vector<std::string> lines_;
};

TEST_F(LogTest, TextIsOneLinePerEventWithQuotedValues) {
  SetLogFormat(LogFormat::kText);
  HC_LOG(kInfo, "lease_acquired")
      .Field("crawl", "crawl-2025-10-31")
      .Field("fence", 3)
      .Field("reason", "two words")
      .Field("ok", true);
  ASSERT_EQ(lines_.size(), 1u);
  const std::string& line = lines_[0];
  EXPECT_NE(line.find(" INFO lease_acquired crawl=crawl-2025-10-31 fence=3 reason=\"two words\" "
                      "ok=true"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST_F(LogTest, JsonEscapesAndTypes) {
  SetLogFormat(LogFormat::kJson);
  HC_LOG(kWarning, "entry_rejected")
      .Field("reason", "bad \"id\"\nline")
      .Field("count", 7)
      .Field("rate", 0.5);
  ASSERT_EQ(lines_.size(), 1u);
  const std::string& line = lines_[0];
  EXPECT_EQ(line.front(), '{');
  EXPECT_EQ(line.back(), '}');
  EXPECT_NE(line.find("\"level\":\"WARN\",\"event\":\"entry_rejected\""), std::string::npos);
  EXPECT_NE(line.find("\"reason\":\"bad \\\"id\\\"\\nline\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"count\":7"), std::string::npos);
  EXPECT_NE(line.find("\"rate\":0.5"), std::string::npos);
}

TEST_F(LogTest, LevelFilters) {
  HC_LOG(kDebug, "hidden");
  SetLogLevel(LogLevel::kError);
  HC_LOG(kWarning, "hidden_too");
  HC_LOG(kError, "shown");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_NE(lines_[0].find("shown"), std::string::npos);
}

}  // namespace
}  // namespace hubcensus
