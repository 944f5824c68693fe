#include "hub/headers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "hub/url.h"

namespace hubcensus::hub {
namespace {

using ::testing::ElementsAre;

constexpr char kPage1[] = "https://huggingface.co/api/models?limit=1000&sort=createdAt";

struct LinkCase {
  const char* name;
  const char* header;
  const char* request_url;
  std::vector<std::pair<std::string, std::vector<std::string>>> want;
};

class LinkHeaderTest : public ::testing::TestWithParam<LinkCase> {};

TEST_P(LinkHeaderTest, Parses) {
  const LinkCase& c = GetParam();
  std::vector<LinkValue> links = ParseLinkHeader(c.header, c.request_url);
  ASSERT_EQ(links.size(), c.want.size()) << c.header;
  for (size_t i = 0; i < links.size(); ++i) {
    EXPECT_EQ(links[i].url, c.want[i].first) << c.name;
    EXPECT_EQ(links[i].rels, c.want[i].second) << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, LinkHeaderTest,
    ::testing::Values(
        // What the Hub sends (hub-api.md), cursor kept verbatim (opaque, URL-encoded).
        LinkCase{"hub_absolute",
                 "<https://huggingface.co/api/models?limit=1000&sort=createdAt&cursor="
                 "eyIkb3IiOlt7Imxpa2VzIjoyOTR9XX0%3D>; rel=\"next\"",
                 kPage1,
                 {{"https://huggingface.co/api/models?limit=1000&sort=createdAt&cursor="
                   "eyIkb3IiOlt7Imxpa2VzIjoyOTR9XX0%3D",
                   {"next"}}}},
        LinkCase{"unquoted_rel",
                 "<https://h.example/api/models?cursor=2>;rel=next",
                 kPage1,
                 {{"https://h.example/api/models?cursor=2", {"next"}}}},
        LinkCase{"relative_path",
                 "</api/models?cursor=abc&limit=1000>; rel=\"next\"",
                 kPage1,
                 {{"https://huggingface.co/api/models?cursor=abc&limit=1000", {"next"}}}},
        LinkCase{"relative_query_only",
                 "<?cursor=abc>; rel=\"next\"",
                 "http://127.0.0.1:8080/api/models?limit=10",
                 {{"http://127.0.0.1:8080/api/models?cursor=abc", {"next"}}}},
        LinkCase{"relative_dot_segments",
                 "<../api/models?cursor=z>; rel=next",
                 "http://127.0.0.1:8080/x/y",
                 {{"http://127.0.0.1:8080/api/models?cursor=z", {"next"}}}},
        LinkCase{"several_links",
                 "<https://h.example/p1>; rel=\"first\", <https://h.example/p3>; rel=\"next\", "
                 "<https://h.example/p9>; rel=last",
                 kPage1,
                 {{"https://h.example/p1", {"first"}},
                  {"https://h.example/p3", {"next"}},
                  {"https://h.example/p9", {"last"}}}},
        LinkCase{"several_rel_values",
                 "<https://h.example/p2>; rel=\"next Prev\"",
                 kPage1,
                 {{"https://h.example/p2", {"next", "prev"}}}},
        LinkCase{"other_params_and_spaces",
                 "  <https://h.example/p2> ;  title=\"a; b, c\" ; REL = \"next\"  ",
                 kPage1,
                 {{"https://h.example/p2", {"next"}}}},
        LinkCase{"comma_inside_url",
                 "<https://h.example/p?a=1,2;3>; rel=next",
                 kPage1,
                 {{"https://h.example/p?a=1,2;3", {"next"}}}},
        LinkCase{"first_rel_wins",
                 "<https://h.example/p2>; rel=prev; rel=next",
                 kPage1,
                 {{"https://h.example/p2", {"prev"}}}},
        LinkCase{"no_rel", "<https://h.example/p2>", kPage1, {{"https://h.example/p2", {}}}},
        LinkCase{"malformed_skipped_rest_kept",
                 "https://bad.example/no-brackets; rel=next, <https://h.example/ok>; rel=next",
                 kPage1,
                 {{"https://h.example/ok", {"next"}}}},
        LinkCase{"unclosed_bracket", "<https://h.example/p2; rel=next", kPage1, {}},
        LinkCase{"non_http_scheme_skipped", "<ftp://h.example/p2>; rel=next", kPage1, {}},
        LinkCase{"empty", "", kPage1, {}}),
    [](const ::testing::TestParamInfo<LinkCase>& info) { return info.param.name; });

TEST(FindNextLink, SearchesEveryLinkFieldAndIgnoresOtherRels) {
  HttpHeaders headers;
  headers.Add("link", "<https://h.example/first>; rel=first");
  headers.Add("Link", "</api/models?cursor=c2>; rel=\"prev next\"");
  EXPECT_EQ(FindNextLink(headers, kPage1),
            std::optional<std::string>("https://huggingface.co/api/models?cursor=c2"));
  HttpHeaders last;
  last.Add("Link", "<https://h.example/first>; rel=\"first\"");
  EXPECT_EQ(FindNextLink(last, kPage1), std::nullopt);
  EXPECT_EQ(FindNextLink(HttpHeaders(), kPage1), std::nullopt);
}

struct RateLimitCase {
  const char* name;
  const char* header;
  bool ok;
  const char* want_name;
  int64_t remaining;
  int64_t reset;
};

class RateLimitTest : public ::testing::TestWithParam<RateLimitCase> {};

TEST_P(RateLimitTest, Parses) {
  const RateLimitCase& c = GetParam();
  std::optional<RateLimitState> state = ParseRateLimit(c.header);
  ASSERT_EQ(state.has_value(), c.ok) << c.header;
  if (!state) return;
  EXPECT_EQ(state->name, c.want_name);
  EXPECT_EQ(state->remaining, c.remaining);
  EXPECT_EQ(state->reset_s, c.reset);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RateLimitTest,
    ::testing::Values(RateLimitCase{"hub", "\"api\";r=42;t=120", true, "api", 42, 120},
                      RateLimitCase{"spent", "\"api\";r=0;t=7", true, "api", 0, 7},
                      RateLimitCase{"spaces", " \"api\" ; r = 5 ; t = 60 ", true, "api", 5, 60},
                      RateLimitCase{"order", "\"api\";t=9;r=3", true, "api", 3, 9},
                      RateLimitCase{"api_preferred", "\"resolvers\";r=1;t=2, \"api\";r=900;t=250",
                                    true, "api", 900, 250},
                      RateLimitCase{"first_without_api", "\"pages\";r=7;t=8, \"other\";r=1;t=1",
                                    true, "pages", 7, 8},
                      RateLimitCase{"token_name", "api;r=10;t=11", true, "api", 10, 11},
                      RateLimitCase{"no_reset", "\"api\";r=10", true, "api", 10, -1},
                      RateLimitCase{"old_draft_names", "remaining=10;reset=30", true, "", 10, 30},
                      RateLimitCase{"negative", "\"api\";r=-1;t=5", false, "", 0, 0},
                      RateLimitCase{"not_a_number", "\"api\";r=lots;t=5", false, "", 0, 0},
                      RateLimitCase{"too_many_digits", "\"api\";r=9999999999999999999;t=5", false,
                                    "", 0, 0},
                      RateLimitCase{"no_r", "\"api\";t=5", false, "", 0, 0},
                      RateLimitCase{"empty", "", false, "", 0, 0}),
    [](const ::testing::TestParamInfo<RateLimitCase>& info) { return info.param.name; });

struct PolicyCase {
  const char* name;
  const char* header;
  bool ok;
  std::vector<std::string> names;
  int64_t quota;
  int64_t window;
};

class RateLimitPolicyTest : public ::testing::TestWithParam<PolicyCase> {};

TEST_P(RateLimitPolicyTest, Parses) {
  const PolicyCase& c = GetParam();
  std::optional<RateLimitPolicy> policy = ParseRateLimitPolicy(c.header);
  ASSERT_EQ(policy.has_value(), c.ok) << c.header;
  if (!policy) return;
  EXPECT_EQ(policy->names, c.names);
  EXPECT_EQ(policy->quota, c.quota);
  EXPECT_EQ(policy->window_s, c.window);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RateLimitPolicyTest,
    ::testing::Values(
        PolicyCase{"hub",
                   "\"fixed window\";\"api\";q=1000;w=300",
                   true,
                   {"fixed window", "api"},
                   1000,
                   300},
        PolicyCase{"pro",
                   "\"fixed window\";\"api\";q=2500;w=300",
                   true,
                   {"fixed window", "api"},
                   2500,
                   300},
        PolicyCase{"structured_field_style", "\"api\";q=500;w=300", true, {"api"}, 500, 300},
        PolicyCase{"api_preferred",
                   "\"fixed window\";\"resolvers\";q=3000;w=300, \"fixed window\";\"api\";q=1000;"
                   "w=300",
                   true,
                   {"fixed window", "api"},
                   1000,
                   300},
        PolicyCase{"no_window", "\"api\";q=100", true, {"api"}, 100, -1},
        PolicyCase{"quoted_numbers", "\"api\";q=\"100\";w=\"60\"", true, {"api"}, 100, 60},
        PolicyCase{"no_quota", "\"fixed window\";\"api\";w=300", false, {}, 0, 0},
        PolicyCase{"garbage", ";;;,,,\"", false, {}, 0, 0}),
    [](const ::testing::TestParamInfo<PolicyCase>& info) { return info.param.name; });

TEST(RetryAfter, SecondsAndHttpDates) {
  absl::Time now = absl::FromUnixSeconds(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  EXPECT_EQ(ParseRetryAfter("120", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now), absl::Seconds(30));
  EXPECT_EQ(ParseRetryAfter("Wednesday, 21-Oct-15 07:29:00 GMT", now), absl::Seconds(60));
  EXPECT_EQ(ParseRetryAfter("Wed Oct 21 07:28:05 2015", now), absl::Seconds(5));
  // A date in the past means "now".
  EXPECT_EQ(ParseRetryAfter("Tue, 20 Oct 2015 07:28:00 GMT", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("-5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("1.5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999", now), std::nullopt);
}

TEST(Url, ResolvesReferences) {
  EXPECT_EQ(*ResolveUrl("http://127.0.0.1:9/api/models/old/name?expand=a", "/api/models/new/name"),
            "http://127.0.0.1:9/api/models/new/name");
  EXPECT_EQ(*ResolveUrl("http://a.example/x", "https://b.example/y?z=1"),
            "https://b.example/y?z=1");
  EXPECT_FALSE(ResolveUrl("http://a.example/x", "javascript:alert(1)").ok());
  EXPECT_FALSE(ResolveUrl("not a url", "/x").ok());
  EXPECT_FALSE(ResolveUrl("http://a.example/x", "").ok());
}

TEST(Url, RedactsCredentials) {
  EXPECT_EQ(RedactUrl("https://user:hf_secret@huggingface.co/api/models?limit=1"),
            "https://huggingface.co/api/models?limit=1");
  EXPECT_EQ(RedactUrl("https://h.example/api?token=hf_secret&limit=2&access_token=x#f"),
            "https://h.example/api?token=REDACTED&limit=2&access_token=REDACTED#f");
  EXPECT_EQ(RedactUrl("https://h.example/api/models/a@b"), "https://h.example/api/models/a@b");
}

TEST(Url, RepoDetailUrlEncodesSegments) {
  EXPECT_EQ(RepoDetailUrl("https://huggingface.co/", "deepset/roberta-base-squad2"),
            "https://huggingface.co/api/models/deepset/roberta-base-squad2");
  EXPECT_EQ(RepoDetailUrl("http://h", "gpt2"), "http://h/api/models/gpt2");
  EXPECT_EQ(RepoDetailUrl("http://h", "a b/c?d"), "http://h/api/models/a%20b/c%3Fd");
}

}  // namespace
}  // namespace hubcensus::hub
