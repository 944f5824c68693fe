#include "config/family_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_split.h"

namespace hubcensus {
namespace {

TEST(FamilyConfig, ParsesTheIssueExample) {
  auto config = ParseFamilyConfig(R"(
family { name: "Qwen" region: "china" namespace: "Qwen" namespace: "Alibaba-NLP" }
family { name: "Llama" region: "us" namespace: "meta-llama" namespace: "facebook" name_regex: "(?i)llama" }
lineage { parent_policy: SPLIT attribution: ROOT }
new_model_filter { pipeline_tag: "text-generation" min_downloads_all_time: 5 }
)",
                                  "example.textproto");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->family_size(), 2);
  EXPECT_EQ(config->lineage().parent_policy(), v1::SPLIT);
  FamilyMatcher matcher(*config);
  EXPECT_EQ(matcher.FirstPartyFamily("Qwen/Qwen2.5-7B"), 0);
  EXPECT_EQ(matcher.FirstPartyFamily("Alibaba-NLP/gte-large"), 0);
  EXPECT_EQ(matcher.FirstPartyFamily("facebook/opt-125m"), -1);  // narrowed by the regex
  EXPECT_EQ(matcher.FirstPartyFamily("facebook/MobileLLaMA"), 1);
  EXPECT_EQ(matcher.FirstPartyFamily("qwen/Qwen2.5-7B"), -1);  // namespaces are case-sensitive
  EXPECT_EQ(matcher.FirstPartyFamily("gpt2"), -1);             // legacy: no namespace
}

TEST(FamilyConfig, ErrorsNameFileLineAndProblem) {
  auto bad_region = ParseFamilyConfig(
      "family { name: \"Qwen\" region: \"china\" namespace: \"Qwen\" }\n"
      "family { name: \"Mistral\"\n  region: \"eu-west\" namespace: \"mistralai\" }\n",
      "families.textproto");
  ASSERT_FALSE(bad_region.ok());
  EXPECT_EQ(bad_region.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_region.status().message(),
            "families.textproto:3: unknown region \"eu-west\" for family \"Mistral\" (one of "
            "china, us, eu, other, unknown)");

  auto syntax = ParseFamilyConfig("family { name: \"Qwen\" regoin: \"china\" }\n", "f.textproto");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.status().message().substr(0, 14), "f.textproto:1:") << syntax.status();
  EXPECT_NE(syntax.status().message().find("regoin"), std::string::npos);

  auto dup = ParseFamilyConfig(
      "family { name: \"A\" region: \"us\" namespace: \"a\" }\n"
      "family { name: \"A\" region: \"us\" namespace: \"b\" }\n",
      "f.textproto");
  EXPECT_EQ(dup.status().message(), "f.textproto:2: family \"A\" is defined twice");

  auto regex = ParseFamilyConfig(
      "family { name: \"A\" region: \"us\" namespace: \"a\" name_regex: \"(unclosed\" }\n",
      "f.textproto");
  ASSERT_FALSE(regex.ok());
  EXPECT_NE(regex.status().message().find("f.textproto:1: bad name_regex \"(unclosed\""),
            std::string::npos)
      << regex.status();

  v1::FamilyConfig from_request;
  auto* f = from_request.add_family();
  f->set_name("X");
  f->set_region("mars");
  f->add_namespace_("x");
  EXPECT_EQ(ValidateFamilyConfig(from_request, "families").message(),
            "families.family[0].region: unknown region \"mars\" for family \"X\" (one of china, "
            "us, eu, other, unknown)");
  EXPECT_EQ(LoadFamilyConfig("/nonexistent/f.textproto").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(FamilyConfig, DefaultsFilledIn) {
  auto config =
      ParseFamilyConfig("family { name: \"A\" region: \"us\" namespace: \"a\" }", "f.textproto");
  ASSERT_TRUE(config.ok());
  v1::FamilyConfig full = WithDefaults(*config);
  EXPECT_EQ(full.lineage().max_steps(), 64);
  EXPECT_EQ(full.new_model_filter().min_downloads_all_time(), 5);
  ASSERT_EQ(full.new_model_filter().pipeline_tag_size(), 2);
  EXPECT_EQ(full.new_model_filter().pipeline_tag(1), "image-text-to-text");
}

// The default file must carry every organisation of the ATOM list, with that list's region.
TEST(DefaultFamilies, CoverTheAtomOrganisationList) {
  const v1::FamilyConfig& config = DefaultFamilyConfig();
  FamilyMatcher matcher(config);
  std::ifstream in(HUBCENSUS_SHARED_DIR "/data/atom/organization_regions.csv");
  ASSERT_TRUE(in) << "shared/data/atom/organization_regions.csv not found";
  std::string line;
  std::getline(in, line);  // header
  int orgs = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> cols = absl::StrSplit(line, ',');
    ASSERT_GE(cols.size(), 2u) << line;
    const std::string& org = cols[0];
    const std::string& region = cols[1];
    ++orgs;
    // A repo named like the family's models is first-party for the org's family.
    int family = matcher.FirstPartyFamily(org + "/Llama-model");
    ASSERT_GE(family, 0) << org << " is in no family";
    EXPECT_EQ(matcher.region(family), region) << org;
  }
  EXPECT_EQ(orgs, 118);
  EXPECT_EQ(matcher.name(matcher.FirstPartyFamily("Qwen/Qwen3-8B")), "Qwen");
  EXPECT_EQ(matcher.name(matcher.FirstPartyFamily("Alibaba-NLP/gte-Qwen2-7B-instruct")), "Qwen");
  EXPECT_EQ(matcher.name(matcher.FirstPartyFamily("meta-llama/Llama-3.1-8B")), "Llama");
  EXPECT_EQ(matcher.name(matcher.FirstPartyFamily("facebook/llama-7b")), "Llama");
  EXPECT_EQ(matcher.name(matcher.FirstPartyFamily("facebook/opt-125m")), "Meta");
  EXPECT_EQ(matcher.name(matcher.FirstPartyFamily("zai-org/GLM-4.6")), "GLM");
  EXPECT_EQ(matcher.name(matcher.FirstPartyFamily("THUDM/chatglm3-6b")), "GLM");
  EXPECT_EQ(matcher.name(matcher.FirstPartyFamily("mistralai/Mistral-Small-24B-Base-2501")),
            "Mistral");
  EXPECT_EQ(matcher.region(matcher.IndexOf("DeepSeek")), "china");
  EXPECT_EQ(config.new_model_filter().min_downloads_all_time(), 5);
}

}  // namespace
}  // namespace hubcensus
