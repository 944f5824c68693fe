// docs/running.md's multi-process recipe, run as written: the block after the
// "<!-- recipe: ... -->" comment, one command a line, `&` lines in the background, in a fresh
// folder. The only change is the one the doc states: its ports (8080, 7001, 7003, 7004) become
// free loopback ports. Then the export it wrote is compared with `export --data_dir` of the same
// store: the same bytes either way.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using testing::FreeLoopbackPort;
using testing::HubcensusBinary;
using testing::MakeTempDir;
using testing::RunToCompletion;
using testing::Subprocess;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The command lines of the recipe block.
std::vector<std::string> RecipeLines(const std::string& doc) {
  std::vector<std::string> lines;
  size_t marker = doc.find("<!-- recipe:");
  if (marker == std::string::npos) return lines;
  size_t open = doc.find("```sh\n", marker);
  if (open == std::string::npos) return lines;
  open += 6;
  size_t close = doc.find("```", open);
  for (absl::string_view line : absl::StrSplit(doc.substr(open, close - open), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    lines.emplace_back(line);
  }
  return lines;
}

TEST(RunningRecipe, TheMultiProcessRecipeRunsAsWritten) {
  const std::string doc = ReadFile(HUBCENSUS_SOURCE_DIR "/docs/running.md");
  std::vector<std::string> lines = RecipeLines(doc);
  ASSERT_GE(lines.size(), 6u) << "no recipe block after <!-- recipe: in docs/running.md";

  // The documented substitution: each example port becomes a free one.
  std::vector<std::pair<std::string, std::string>> replacements;
  for (const char* port : {"8080", "7001", "7003", "7004"}) {
    const std::string free_port = std::to_string(FreeLoopbackPort());
    replacements.emplace_back(absl::StrCat(":", port), absl::StrCat(":", free_port));
    replacements.emplace_back(absl::StrCat("=", port), absl::StrCat("=", free_port));
  }
  const std::string folder = MakeTempDir("running-recipe");
  ASSERT_EQ(chdir(folder.c_str()), 0) << folder;

  std::vector<Subprocess> background;
  for (std::string line : lines) {
    SCOPED_TRACE(line);
    line = absl::StrReplaceAll(line, replacements);
    ASSERT_EQ(line.find_first_of("\"'\\|;<>$`"), std::string::npos)
        << "the recipe runner splits on spaces only: keep the recipe free of shell syntax";
    bool in_background = absl::EndsWith(line, "&");
    if (in_background)
      line = std::string(absl::StripAsciiWhitespace(line.substr(0, line.size() - 1)));
    std::vector<std::string> argv = absl::StrSplit(line, ' ', absl::SkipEmpty());
    ASSERT_EQ(argv[0], "hubcensus");
    argv[0] = HubcensusBinary();
    if (in_background) {
      auto process = Subprocess::Start(argv);
      ASSERT_TRUE(process.has_value());
      // Servers say when they serve; a crawler has no port and starts right away.
      if (argv[1] != "crawler") {
        ASSERT_TRUE(process->WaitForOutput("listening on ", absl::Seconds(60)))
            << process->Output();
      }
      background.push_back(std::move(*process));
      continue;
    }
    std::string out;
    ASSERT_EQ(RunToCompletion(argv, &out, absl::Seconds(300)), 0) << out;
    if (argv[1] == "crawl" && argv[2] == "start") {
      EXPECT_NE(out.find("COMMITTED"), std::string::npos) << out;
    }
    if (argv[1] == "query" && argv[2] == "families") {
      EXPECT_NE(out.find("Qwen"), std::string::npos) << out;
    }
  }

  // What the recipe's export wrote, against the store read directly.
  const std::string exported = ReadFile(folder + "/census-2025-10-31.csv");
  EXPECT_EQ(exported.rfind("id,object_id,", 0), 0u) << exported.substr(0, 200);
  EXPECT_GT(std::count(exported.begin(), exported.end(), '\n'), 1000);
  std::string out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "export", "--data_dir=census-data",
                             "--date=2025-10-31", "--format=csv", "--out=direct.csv"},
                            &out),
            0)
      << out;
  EXPECT_TRUE(ReadFile(folder + "/direct.csv") == exported)
      << "export --aggregator and export --data_dir differ";

  for (Subprocess& process : background) process.Signal(SIGTERM);
  for (Subprocess& process : background) {
    EXPECT_EQ(process.Wait(absl::Seconds(60)), 0) << process.Output();
  }
}

}  // namespace
}  // namespace hubcensus
