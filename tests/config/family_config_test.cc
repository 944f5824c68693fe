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

// An empty file, one of comments only, or one with only `lineage {}` used to abort the process
// (libprotobuf FATAL asking the parse tree for a repeated field's line at index -1).
TEST(FamilyConfig, NoFamilyIsAnErrorNamingTheFile) {
  for (const char* text :
       {"", "# only a comment\n\n# and another\n", "lineage {}\n",
        "lineage { parent_policy: SPLIT }\nnew_model_filter { min_downloads_all_time: 1 }\n"}) {
    auto config = ParseFamilyConfig(text, "/tmp/empty.textproto");
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(config.status().message().substr(0, 40), "/tmp/empty.textproto: no family defined ")
        << config.status();
  }
  // Over gRPC an ad-hoc config names the field instead.
  EXPECT_EQ(ValidateFamilyConfig(v1::FamilyConfig(), "families").message().substr(0, 34),
            "families.family: no family defined");
}

TEST(FamilyConfig, LoaderNamesTheEmptyFile) {
  std::string path = ::testing::TempDir() + "/no_family.textproto";
  {
    std::ofstream out(path);
    out << "# nothing but a comment\nlineage {}\n";
  }
  auto config = LoadFamilyConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find(path + ": no family defined"), std::string::npos)
      << config.status();
  EXPECT_EQ(LoadFamilyConfigOrDefault(path).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FamilyConfig, ANamespaceClaimedByTwoFamiliesNamesBoth) {
  auto twice = ParseFamilyConfig(
      "family { name: \"Qwen\" region: \"china\" namespace: \"Qwen\" }\n"
      "family { name: \"Other\" region: \"us\" namespace: \"x\" }\n"
      "family { name: \"Tongyi\" region: \"china\"\n  namespace: \"Qwen\" }\n",
      "f.textproto");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(twice.status().message().rfind(
                "f.textproto:4: namespace \"Qwen\" is claimed by family \"Qwen\" and by family "
                "\"Tongyi\"",
                0),
            0u)
      << twice.status();

  // A narrowed claim after a whole one can never match: refused too.
  auto dead_pattern = ParseFamilyConfig(
      "family { name: \"Meta\" region: \"us\" namespace: \"facebook\" }\n"
      "family { name: \"Llama\" region: \"us\" namespace_pattern { namespace: \"facebook\" "
      "name_regex: \"(?i)llama\" } }\n",
      "f.textproto");
  ASSERT_FALSE(dead_pattern.ok());
  EXPECT_NE(dead_pattern.status().message().find(
                "namespace \"facebook\" is claimed by family \"Meta\" and by family \"Llama\""),
            std::string::npos)
      << dead_pattern.status();

  // Over gRPC: the field path of the second claim.
  v1::FamilyConfig request;
  for (const char* name : {"A", "B"}) {
    auto* f = request.add_family();
    f->set_name(name);
    f->set_region("us");
    f->add_namespace_("shared");
  }
  EXPECT_EQ(ValidateFamilyConfig(request, "families")
                .message()
                .rfind("families.family[1].namespace[0]: namespace \"shared\" is claimed by family "
                       "\"A\" and by family \"B\"",
                       0),
            0u)
      << ValidateFamilyConfig(request, "families");

  // A carve-out before the whole claim (as the default file does for facebook) stays allowed,
  // and so do two families narrowing one namespace, and one family naming a namespace twice.
  auto carve_out = ParseFamilyConfig(
      "family { name: \"Llama\" region: \"us\" namespace_pattern { namespace: \"facebook\" "
      "name_regex: \"(?i)llama\" } }\n"
      "family { name: \"OPT\" region: \"us\" namespace_pattern { namespace: \"facebook\" "
      "name_regex: \"^opt\" } }\n"
      "family { name: \"Meta\" region: \"us\" namespace: \"facebook\" namespace: \"facebook\" }\n",
      "f.textproto");
  ASSERT_TRUE(carve_out.ok()) << carve_out.status();
  FamilyMatcher matcher(*carve_out);
  EXPECT_EQ(matcher.FirstPartyFamily("facebook/llama-7b"), 0);
  EXPECT_EQ(matcher.FirstPartyFamily("facebook/opt-125m"), 1);
  EXPECT_EQ(matcher.FirstPartyFamily("facebook/bart"), 2);
}

TEST(FamilyConfig, ErrorsQuoteAtMost200BytesOfTheInput) {
  const std::string long_region(5000, 'r');
  auto config = ParseFamilyConfig(
      "family { name: \"A\" region: \"" + long_region + "\" namespace: \"a\" }\n", "f.textproto");
  ASSERT_FALSE(config.ok());
  EXPECT_LT(config.status().message().size(), 400u) << config.status().message().size();
  EXPECT_NE(config.status().message().find("...(5000 bytes)"), std::string::npos);

  const std::string long_token(5000, 'z');
  auto syntax = ParseFamilyConfig("family { " + long_token + ": 1 }\n", "f.textproto");
  ASSERT_FALSE(syntax.ok());
  EXPECT_LT(syntax.status().message().size(), 400u);
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
