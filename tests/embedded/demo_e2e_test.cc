// `hubcensus demo` at a small size, checked against the simulator's ground truth, and its report
// opened in headless Chromium.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/testing/png.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using testing::HubcensusBinary;
using testing::MakeTempDir;
using testing::RunToCompletion;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::vector<std::string> Chromium(const std::string& profile) {
  return {"/usr/bin/chromium",
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--user-data-dir=" + profile};
}

class DemoE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    out_dir_ = new std::string(MakeTempDir("demo-e2e") + "/report");
    output_ = new std::string();
    exit_code_ = RunToCompletion({HubcensusBinary(), "demo", "--repos=4000", "--out=" + *out_dir_},
                                 output_, absl::Minutes(10));
  }
  static std::string* out_dir_;
  static std::string* output_;
  static int exit_code_;
};
std::string* DemoE2E::out_dir_ = nullptr;
std::string* DemoE2E::output_ = nullptr;
int DemoE2E::exit_code_ = -1;

TEST_F(DemoE2E, EveryFigureEqualsGroundTruth) {
  ASSERT_EQ(exit_code_, 0) << *output_;
  EXPECT_NE(output_->find("23 monthly censuses"), std::string::npos) << *output_;
  EXPECT_NE(output_->find("ground truth: every figure of all 23 censuses equals"),
            std::string::npos)
      << *output_;
  EXPECT_NE(output_->find("Qwen passed Llama in the census of 2025-"), std::string::npos)
      << *output_;
  EXPECT_NE(output_->find("new derivative models in 2025-10: Qwen "), std::string::npos);
  for (const char* csv :
       {"cumulative_downloads.csv", "new_derivative_share.csv", "regions.csv", "families.csv"}) {
    std::string text = ReadFile(*out_dir_ + "/" + csv);
    EXPECT_GT(std::count(text.begin(), text.end(), '\n'), 3) << csv;
  }
  std::string cumulative = ReadFile(*out_dir_ + "/cumulative_downloads.csv");
  EXPECT_NE(cumulative.find("2025-10-31,crawl-2025-10-31,Qwen,china,385300000,"),
            std::string::npos);
  EXPECT_NE(cumulative.find("2025-10-31,crawl-2025-10-31,Llama,us,346200000,"), std::string::npos);
}

TEST_F(DemoE2E, ReportRendersInHeadlessChromium) {
  ASSERT_EQ(exit_code_, 0) << *output_;
  if (access("/usr/bin/chromium", X_OK) != 0) {
    GTEST_FAIL() << "/usr/bin/chromium is missing: scripts/setup-test-tools installs it";
  }
  std::string page = "file://" + *out_dir_ + "/index.html";
  std::string profile = MakeTempDir("chromium-profile");
  std::string dom;
  auto argv = Chromium(profile);
  argv.push_back("--dump-dom");
  argv.push_back(page);
  ASSERT_EQ(RunToCompletion(argv, &dom, absl::Minutes(2)), 0) << dom;
  EXPECT_NE(dom.find("id=\"chart-cumulative\""), std::string::npos);
  EXPECT_NE(dom.find("class=\"series\" data-series=\"Qwen\""), std::string::npos);
  EXPECT_NE(dom.find("class=\"series\" data-series=\"Llama\""), std::string::npos);
  EXPECT_NE(dom.find("id=\"crossover-marker\""), std::string::npos);
  EXPECT_NE(dom.find("data-series=\"Qwen\" data-month=\"2025-10\""), std::string::npos);
  EXPECT_NE(dom.find("id=\"family-table\""), std::string::npos);

  std::string shot = MakeTempDir("chromium-shot") + "/report.png";
  argv = Chromium(profile);
  argv.push_back("--window-size=1000,1600");
  argv.push_back("--screenshot=" + shot);
  argv.push_back(page);
  std::string log;
  ASSERT_EQ(RunToCompletion(argv, &log, absl::Minutes(2)), 0) << log;
  auto image = testing::DecodePng(ReadFile(shot));
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->width, 1000);
  testing::ImageStats stats = testing::Analyse(*image);
  // Charts and text cover far more than a few stray pixels, in many colours.
  EXPECT_GT(stats.non_background_pixels, image->width * image->height / 50);
  EXPECT_GT(stats.distinct_colours, 20);
}

TEST_F(DemoE2E, ReportCommandRewritesTheReportFromTheStore) {
  ASSERT_EQ(exit_code_, 0) << *output_;
  std::string again = MakeTempDir("report-again") + "/r";
  std::string out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "report", "--data_dir=" + *out_dir_ + "/data/store",
                             "--out=" + again},
                            &out),
            0)
      << out;
  EXPECT_NE(out.find("(23 crawls)"), std::string::npos) << out;
  // The same store gives the same figures (the demo adds only its ground-truth sentence).
  for (const char* csv :
       {"cumulative_downloads.csv", "new_derivative_share.csv", "regions.csv", "families.csv"}) {
    EXPECT_EQ(ReadFile(again + "/" + csv), ReadFile(*out_dir_ + "/" + csv)) << csv;
  }
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "report", "--out=" + again}, &out), 2);
  EXPECT_NE(out.find("one of --data_dir or --aggregator"), std::string::npos) << out;
  EXPECT_EQ(
      RunToCompletion(
          {HubcensusBinary(), "report", "--data_dir=/nonexistent/store", "--out=" + again}, &out),
      1);
}

}  // namespace
}  // namespace hubcensus
