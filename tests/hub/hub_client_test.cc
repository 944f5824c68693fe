#include "hub/hub_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "hub/listing_query.h"
#include "hub/url.h"

namespace hubcensus::hub {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kHub[] = "http://hub.test";
constexpr char kToken[] = "hf_SecretTokenValue123";

// Log lines captured from the process-wide sink.
absl::Mutex g_log_mu;
std::vector<std::string>* g_log_lines ABSL_GUARDED_BY(g_log_mu) = nullptr;
void CaptureLine(const std::string& line) {
  absl::MutexLock lock(&g_log_mu);
  if (g_log_lines != nullptr) g_log_lines->push_back(line);
}

std::string Entry(int i) {
  return absl::StrFormat(
      R"({"_id":"%024x","id":"org%d/model-%05d","author":"org%d","downloads":%d,"likes":%d,)"
      R"("createdAt":"2024-01-01T00:00:00.000Z","tags":["base_model:finetune:org0/model-00000"]})",
      i, i % 7, i, i % 7, i * 3, i % 5);
}

// A listing of `total` repos served `page_size` at a time, with the cursor in the Link header.
struct ListingFixture {
  int total = 0;
  int page_size = 10;
  bool relative_links = false;
  HttpResponse Serve(const HttpRequest& request) const {
    int offset = 0;
    size_t at = request.url.find("cursor=");
    if (at != std::string::npos) {
      absl::SimpleAtoi(request.url.substr(at + 7), &offset);
    }
    std::string body = "[";
    for (int i = offset; i < std::min(total, offset + page_size); ++i) {
      if (i > offset) body += ",";
      body += Entry(i);
    }
    body += "]";
    HttpResponse response = MakeResponse(200, body);
    if (offset + page_size < total) {
      std::string next = absl::StrCat("/api/models?sort=createdAt&limit=", page_size,
                                      "&cursor=", offset + page_size);
      response.headers.Add("Link",
                           absl::StrCat("<", relative_links ? "" : kHub, next, ">; rel=\"next\""));
    }
    return response;
  }
};

class HubClientTest : public ::testing::Test {
 protected:
  HubClientOptions Options(std::shared_ptr<HttpTransport> transport) {
    HubClientOptions options;
    options.hub_url = kHub;
    options.token = kToken;
    options.clock = &clock_;
    options.transport = std::move(transport);
    options.random = [this] { return random_; };
    return options;
  }
  std::string FirstUrl() {
    v1::ListingOptions listing;
    listing.set_page_size(10);
    return FirstListingUrl(kHub, listing);
  }

  SimulatedClock clock_;
  double random_ = 0.0;
  FixedBudget budget_{1000000};
};

TEST_F(HubClientTest, FollowsLinkAcrossPagesAbsoluteAndRelative) {
  for (bool relative : {false, true}) {
    ListingFixture hub{95, 10, relative};
    auto transport =
        std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) { return hub.Serve(r); });
    HubClient client(Options(transport));
    FetchStats stats;
    std::vector<std::string> ids;
    std::vector<std::string> next_urls;
    ASSERT_TRUE(client
                    .ForEachListingPage(FirstUrl(), &budget_, &stats,
                                        [&](ListingPage& page) {
                                          for (auto& r : page.entries.repos) ids.push_back(r.id());
                                          next_urls.push_back(page.next_url);
                                          return true;
                                        })
                    .ok());
    ASSERT_EQ(ids.size(), 95u);
    EXPECT_EQ(ids[0], "org0/model-00000");
    EXPECT_EQ(ids[94], "org3/model-00094");
    ASSERT_EQ(next_urls.size(), 10u);
    EXPECT_EQ(next_urls[0], "http://hub.test/api/models?sort=createdAt&limit=10&cursor=10");
    EXPECT_EQ(next_urls.back(), "");
    EXPECT_EQ(stats.requests, 10);
    EXPECT_EQ(stats.retries, 0);
    EXPECT_GT(stats.bytes, 95 * 100);
    // The token goes only in the Authorization header.
    for (const HttpRequest& r : transport->requests()) {
      EXPECT_EQ(r.headers.Get("Authorization"), absl::StrCat("Bearer ", kToken));
      EXPECT_THAT(r.url, Not(HasSubstr(kToken)));
    }
  }
}

// The next URL is handed on from the head, before the page is parsed, and it is the page's own
// next_url. Links that the page would refuse or that lead nowhere new are not handed on.
TEST_F(HubClientTest, HandsTheNextUrlOnFromTheHead) {
  struct Case {
    const char* name;
    const char* link;  // nullptr: no Link header
    bool handed_on;
    absl::StatusCode page_code;
  };
  const std::string page_url = absl::StrCat(kHub, "/api/models?sort=createdAt&limit=10&cursor=A");
  for (const Case& c : std::vector<Case>{
           {"absolute", "<http://hub.test/api/models?cursor=B>; rel=\"next\"", true,
            absl::StatusCode::kOk},
           {"relative", "</api/models?cursor=B>; rel=\"next\"", true, absl::StatusCode::kOk},
           {"foreign", "<http://elsewhere.test/api/models?cursor=B>; rel=\"next\"", false,
            absl::StatusCode::kFailedPrecondition},
           {"malformed", "<http://hub.test/api/models?cursor=B; rel=next", false,
            absl::StatusCode::kOk},
           {"itself", "<http://hub.test/api/models?sort=createdAt&limit=10&cursor=A>; rel=\"next\"",
            false, absl::StatusCode::kOk},
           {"none", nullptr, false, absl::StatusCode::kOk},
       }) {
    SCOPED_TRACE(c.name);
    bool parsed_when_handed_on = false;
    bool body_parsed = false;
    auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest&) {
      HttpResponse response = MakeResponse(200, absl::StrCat("[", Entry(1), "]"));
      if (c.link != nullptr) response.headers.Add("Link", c.link);
      return response;
    });
    HubClient client(Options(transport));
    FetchStats stats;
    std::vector<std::string> handed;
    absl::StatusOr<ListingPage> page =
        client.FetchListingPage(page_url, &budget_, &stats, [&](const std::string& next) {
          handed.push_back(next);
          parsed_when_handed_on = body_parsed;
        });
    body_parsed = true;
    EXPECT_EQ(page.status().code(), c.page_code) << page.status();
    if (c.handed_on) {
      ASSERT_EQ(handed.size(), 1u);
      EXPECT_EQ(handed[0], "http://hub.test/api/models?cursor=B");
      ASSERT_TRUE(page.ok());
      EXPECT_EQ(page->next_url, handed[0]);
      EXPECT_FALSE(parsed_when_handed_on);
    } else {
      EXPECT_TRUE(handed.empty()) << handed[0];
    }
    EXPECT_EQ(transport->request_count(), 1) << "nothing else is requested by the client itself";
  }
}

// A page answered at a shrunk limit hands on a next URL with the page's own limit (as next_url
// reports it), and the next fetch, started before this page is complete, already asks for the
// shrunk size.
TEST_F(HubClientTest, HandedOnUrlKeepsThePagesLimitAndTheNextFetchStartsShrunk) {
  std::vector<std::string> limits;
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) {
    std::string limit = QueryParameter(r.url, "limit").value_or("");
    limits.push_back(limit);
    if (limit == "100") return MakeResponse(504, "timeout");
    HttpResponse response = MakeResponse(200, absl::StrCat("[", Entry(1), "]"));
    response.headers.Add("Link",
                         absl::StrCat("</api/models?limit=", limit, "&cursor=B>; rel=\"next\""));
    return response;
  });
  HubClientOptions options = Options(transport);
  options.retry.initial_backoff = absl::Milliseconds(1);
  HubClient client(options);
  FetchStats stats;
  std::string handed;
  absl::StatusOr<ListingPage> next_page;
  absl::StatusOr<ListingPage> page =
      client.FetchListingPage(absl::StrCat(kHub, "/api/models?limit=100&cursor=A"), &budget_,
                              &stats, [&](const std::string& next) {
                                handed = next;
                                FetchStats ahead;
                                next_page = client.FetchListingPage(next, &budget_, &ahead);
                              });
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(handed, "http://hub.test/api/models?limit=100&cursor=B");
  EXPECT_EQ(page->next_url, handed);
  ASSERT_TRUE(next_page.ok()) << next_page.status();
  EXPECT_THAT(limits, ::testing::ElementsAre("100", "50", "50"));
}

struct RetryCase {
  const char* name;
  std::function<HttpResponse()> fault;
  const char* cause;
};

class RetryTest : public HubClientTest, public ::testing::WithParamInterface<RetryCase> {};

TEST_P(RetryTest, RetriesOnceThenSucceeds) {
  ListingFixture hub{5, 10};
  int calls = 0;
  std::vector<absl::Time> sent;
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) {
    sent.push_back(clock_.Now());
    return calls++ == 0 ? GetParam().fault() : hub.Serve(r);
  });
  HubClient client(Options(transport));
  FetchStats stats;
  absl::StatusOr<ListingPage> page = client.FetchListingPage(FirstUrl(), &budget_, &stats);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->entries.repos.size(), 5u);
  EXPECT_EQ(stats.requests, 2);
  EXPECT_EQ(stats.retries, 1);
  EXPECT_EQ(stats.retries_by_cause[GetParam().cause], 1) << GetParam().cause;
  // random() = 0: half the 1 s initial backoff.
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1] - sent[0], absl::Milliseconds(500));
}

INSTANTIATE_TEST_SUITE_P(
    Table, RetryTest,
    ::testing::Values(
        RetryCase{"s408", [] { return MakeResponse(408, ""); }, "408"},
        RetryCase{"s429", [] { return MakeResponse(429, "slow down"); }, "429"},
        RetryCase{"s500", [] { return MakeResponse(500, ""); }, "500"},
        RetryCase{"s502", [] { return MakeResponse(502, "<html>"); }, "502"},
        RetryCase{"s503", [] { return MakeResponse(503, ""); }, "503"},
        RetryCase{"s504", [] { return MakeResponse(504, ""); }, "504"},
        RetryCase{"timeout",
                  [] { return MakeTransportError(absl::DeadlineExceededError("timed out")); },
                  "timeout"},
        RetryCase{
            "reset",
            [] { return MakeTransportError(absl::UnavailableError("connection reset by peer")); },
            "reset"},
        RetryCase{"truncated_transfer",
                  [] { return MakeTransportError(absl::UnavailableError("x: truncated body")); },
                  "truncated"},
        RetryCase{"cut_json", [] { return MakeResponse(200, R"([{"id":"a/b"},{"id":)"); },
                  "bad_body"},
        RetryCase{"not_json", [] { return MakeResponse(200, "<html>oops</html>"); }, "bad_body"}),
    [](const ::testing::TestParamInfo<RetryCase>& info) { return info.param.name; });

TEST_F(HubClientTest, ExponentialBackoffWithJitterCappedAndBoundedByAttempts) {
  std::vector<absl::Time> sent;
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest&) {
    sent.push_back(clock_.Now());
    return MakeResponse(503, "");
  });
  HubClientOptions options = Options(transport);
  options.retry.max_attempts = 8;
  options.retry.max_backoff = absl::Seconds(16);
  random_ = 1.0;  // the top of the jitter range: the full exponential step
  HubClient client(options);
  FetchStats stats;
  absl::StatusOr<ListingPage> page = client.FetchListingPage(FirstUrl(), &budget_, &stats);
  EXPECT_TRUE(absl::IsUnavailable(page.status())) << page.status();
  EXPECT_THAT(page.status().message(), HasSubstr("gave up after 8 attempts; last: HTTP 503"));
  ASSERT_EQ(sent.size(), 8u);
  std::vector<int64_t> waits;
  for (size_t i = 1; i < sent.size(); ++i)
    waits.push_back(absl::ToInt64Seconds(sent[i] - sent[i - 1]));
  EXPECT_THAT(waits, ::testing::ElementsAre(1, 2, 4, 8, 16, 16, 16));
  EXPECT_EQ(stats.retries, 7);
  EXPECT_EQ(stats.retries_by_cause["503"], 7);
}

TEST_F(HubClientTest, JitterSpreadsWaits) {
  std::vector<absl::Time> sent;
  int calls = 0;
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest&) {
    sent.push_back(clock_.Now());
    return calls++ < 2 ? MakeResponse(500, "") : MakeResponse(200, "[]");
  });
  HubClientOptions options = Options(transport);
  std::vector<double> draws = {0.25, 0.75};
  size_t next = 0;
  options.random = [&] { return draws[next++ % draws.size()]; };
  HubClient client(options);
  FetchStats stats;
  ASSERT_TRUE(client.FetchListingPage(FirstUrl(), &budget_, &stats).ok());
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[1] - sent[0], absl::Milliseconds(625));   // 1 s * (0.5 + 0.5 * 0.25)
  EXPECT_EQ(sent[2] - sent[1], absl::Milliseconds(1750));  // 2 s * (0.5 + 0.5 * 0.75)
}

TEST_F(HubClientTest, HonoursRetryAfterSecondsAndHttpDate) {
  for (bool http_date : {false, true}) {
    std::string retry_after =
        http_date ? absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", clock_.Now() + absl::Seconds(30),
                                     absl::UTCTimeZone())
                  : "30";
    std::vector<absl::Time> sent;
    auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest&) {
      sent.push_back(clock_.Now());
      return sent.size() == 1 ? MakeResponse(429, "", {{"Retry-After", retry_after}})
                              : MakeResponse(200, "[]");
    });
    HubClient client(Options(transport));
    FetchStats stats;
    ASSERT_TRUE(client.FetchListingPage(FirstUrl(), &budget_, &stats).ok());
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[1] - sent[0], absl::Seconds(30)) << retry_after;
    EXPECT_EQ(stats.rate_limited, 1);
  }
}

TEST_F(HubClientTest, HonoursRateLimitResetOn429AndRecordsTheObservation) {
  std::vector<absl::Time> sent;
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest&) {
    sent.push_back(clock_.Now());
    if (sent.size() == 1) {
      return MakeResponse(429, "",
                          {{"RateLimit", "\"api\";r=0;t=120"},
                           {"RateLimit-Policy", "\"fixed window\";\"api\";q=1000;w=300"}});
    }
    return MakeResponse(200, "[]",
                        {{"RateLimit", "\"api\";r=999;t=300"},
                         {"RateLimit-Policy", "\"fixed window\";\"api\";q=1000;w=300"}});
  });
  HubClient client(Options(transport));
  FetchStats stats;
  ASSERT_TRUE(client.FetchListingPage(FirstUrl(), &budget_, &stats).ok());
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_GE(sent[1] - sent[0], absl::Seconds(120));
  EXPECT_LE(sent[1] - sent[0], absl::Seconds(121));
  ASSERT_TRUE(stats.rate_limit.has_value());
  EXPECT_EQ(stats.rate_limit->quota(), 1000);
  EXPECT_EQ(stats.rate_limit->window_s(), 300);
  EXPECT_EQ(stats.rate_limit->remaining(), 999);
  EXPECT_EQ(stats.rate_limit->reset_s(), 300);
  EXPECT_EQ(stats.rate_limit->observed_at_unix_ms(), absl::ToUnixMillis(sent[1]));
}

TEST_F(HubClientTest, PerRequestDeadlineBoundsRetries) {
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest&) {
    return MakeResponse(503, "", {{"Retry-After", "120"}});
  });
  HubClientOptions options = Options(transport);
  options.retry.per_request_deadline = absl::Seconds(60);
  HubClient client(options);
  FetchStats stats;
  absl::Time start = clock_.Now();
  absl::StatusOr<ListingPage> page = client.FetchListingPage(FirstUrl(), &budget_, &stats);
  EXPECT_TRUE(absl::IsDeadlineExceeded(page.status())) << page.status();
  EXPECT_EQ(transport->request_count(), 1);
  EXPECT_EQ(clock_.Now(), start) << "no sleep that would end past the deadline";
}

struct NonRetryableCase {
  int status;
  absl::StatusCode code;
};

class NonRetryableTest : public HubClientTest,
                         public ::testing::WithParamInterface<NonRetryableCase> {};

TEST_P(NonRetryableTest, ReportedOnceWithUrlAndStatusWithoutSecrets) {
  {
    absl::MutexLock lock(&g_log_mu);
    g_log_lines = new std::vector<std::string>();
  }
  SetLogSink(&CaptureLine);
  SetLogLevel(LogLevel::kDebug);
  int calls = 0;
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) {
    // The first answer is retryable so the retry path logs too.
    return calls++ == 0 ? MakeResponse(503, "") : MakeResponse(GetParam().status, "denied");
  });
  HubClient client(Options(transport));
  FetchStats stats;
  std::string url = "http://hub.test/api/models/private-org/secret-model";
  ParsedEntries out;
  absl::Status status = client.FetchRepoDetail("private-org/secret-model", &budget_, &stats, &out);
  SetLogSink(nullptr);
  SetLogLevel(LogLevel::kInfo);
  EXPECT_EQ(status.code(), GetParam().code) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(url));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("answered HTTP ", GetParam().status)));
  EXPECT_THAT(status.ToString(), Not(HasSubstr(kToken)));
  EXPECT_THAT(status.ToString(), Not(HasSubstr("Bearer")));
  EXPECT_FALSE(IsRetryableHubError(status));
  EXPECT_EQ(transport->request_count(), 2);
  absl::MutexLock lock(&g_log_mu);
  EXPECT_FALSE(g_log_lines->empty()) << "the retry was logged";
  for (const std::string& line : *g_log_lines) EXPECT_THAT(line, Not(HasSubstr(kToken)));
  delete g_log_lines;
  g_log_lines = nullptr;
}

INSTANTIATE_TEST_SUITE_P(
    Table, NonRetryableTest,
    ::testing::Values(NonRetryableCase{400, absl::StatusCode::kInvalidArgument},
                      NonRetryableCase{401, absl::StatusCode::kUnauthenticated},
                      NonRetryableCase{403, absl::StatusCode::kPermissionDenied},
                      NonRetryableCase{404, absl::StatusCode::kNotFound}),
    [](const ::testing::TestParamInfo<NonRetryableCase>& info) {
      return absl::StrCat("http", info.param.status);
    });

TEST_F(HubClientTest, BudgetIsAskedBeforeEveryAttempt) {
  auto transport = std::make_shared<FakeHttpTransport>(
      [&](const HttpRequest&) { return MakeResponse(503, ""); });
  HubClient client(Options(transport));
  FixedBudget budget(3);
  FetchStats stats;
  absl::StatusOr<ListingPage> page = client.FetchListingPage(FirstUrl(), &budget, &stats);
  EXPECT_TRUE(absl::IsResourceExhausted(page.status())) << page.status();
  EXPECT_EQ(transport->request_count(), 3);
  EXPECT_EQ(stats.requests, 3);
  EXPECT_EQ(budget.left(), 0);
}

// A Hub that enforces a fixed-window quota and says so in its headers.
struct QuotaHub {
  SimulatedClock* clock;
  int64_t quota;
  absl::Duration window;
  absl::Time window_start = absl::InfinitePast();
  int64_t used = 0;
  int64_t refused = 0;
  ListingFixture listing;
  HttpResponse Serve(const HttpRequest& r) {
    absl::Time now = clock->Now();
    if (now >= window_start + window) {
      window_start = now;
      used = 0;
    }
    int64_t reset = absl::ToInt64Seconds(window_start + window - now);
    std::vector<std::pair<std::string, std::string>> headers = {
        {"RateLimit-Policy",
         absl::StrCat("\"fixed window\";\"api\";q=", quota, ";w=", absl::ToInt64Seconds(window))}};
    if (used >= quota) {
      ++refused;
      headers.push_back({"RateLimit", absl::StrCat("\"api\";r=0;t=", reset)});
      return MakeResponse(429, "", headers);
    }
    ++used;
    HttpResponse response = listing.Serve(r);
    response.headers.Add("RateLimit", absl::StrCat("\"api\";r=", quota - used, ";t=", reset));
    for (auto& [k, v] : headers) response.headers.Add(k, v);
    return response;
  }
};

TEST_F(HubClientTest, LearnedQuotaBudgetNeverExceedsTheQuota) {
  QuotaHub hub{&clock_, 10, absl::Minutes(5), absl::InfinitePast(), 0, 0, ListingFixture{}};
  hub.listing = ListingFixture{500, 10};
  auto transport = std::make_shared<FakeHttpTransport>(
      [&](const HttpRequest& r) { return hub.Serve(r); }, &clock_, absl::Milliseconds(200));
  // Starts believing the anonymous quota (500): it must learn 10 from the first answer.
  LearnedQuotaBudget budget(LearnedQuotaBudget::Options{500, absl::Minutes(5), &clock_});
  HubClient client(Options(transport));
  FetchStats stats;
  int pages = 0;
  absl::Time start = clock_.Now();
  ASSERT_TRUE(client
                  .ForEachListingPage(FirstUrl(), &budget, &stats,
                                      [&](ListingPage&) {
                                        ++pages;
                                        return true;
                                      })
                  .ok());
  EXPECT_EQ(pages, 50);
  EXPECT_EQ(hub.refused, 0) << "a request went beyond the quota";
  EXPECT_EQ(stats.rate_limited, 0);
  EXPECT_EQ(stats.requests, 50);
  EXPECT_EQ(budget.quota(), 10);
  EXPECT_GE(clock_.Now() - start, absl::Minutes(5) * 4);  // 50 requests need 5 windows
}

TEST_F(HubClientTest, DetailFollows307RelativeLocationKeepingTheQuery) {
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) {
    if (r.url.rfind("http://hub.test/api/models/old-org/old-name?", 0) == 0) {
      return MakeResponse(307, "", {{"Location", "/api/models/new-org/new-name"}});
    }
    if (r.url.rfind("http://hub.test/api/models/new-org/new-name?expand=author&", 0) == 0) {
      return MakeResponse(200, R"({"id":"new-org/new-name","downloads":4})");
    }
    return MakeResponse(404, "");
  });
  HubClient client(Options(transport));
  FetchStats stats;
  ParsedEntries out;
  absl::Status status = client.FetchRepoDetail("old-org/old-name", &budget_, &stats, &out);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(out.repos.size(), 1u);
  EXPECT_EQ(out.repos[0].id(), "new-org/new-name");
  EXPECT_EQ(stats.requests, 2);
  EXPECT_EQ(stats.retries, 0);
}

TEST_F(HubClientTest, RedirectLoopsAreBounded) {
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) {
    return MakeResponse(307, "", {{"Location", "/api/models/a/loop"}});
  });
  HubClient client(Options(transport));
  FetchStats stats;
  ParsedEntries out;
  absl::Status status = client.FetchRepoDetail("a/loop", &budget_, &stats, &out);
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_EQ(transport->request_count(), 2);  // a rename is followed once
}

TEST_F(HubClientTest, CancelledFetchStopsAtOnce) {
  Cancellation cancellation;
  cancellation.Cancel();
  auto transport = std::make_shared<FakeHttpTransport>(
      [&](const HttpRequest&) { return MakeResponse(503, ""); });
  HubClientOptions options = Options(transport);
  options.cancellation = &cancellation;
  HubClient client(options);
  FetchStats stats;
  EXPECT_TRUE(absl::IsCancelled(client.FetchListingPage(FirstUrl(), &budget_, &stats).status()));
  EXPECT_EQ(transport->request_count(), 0);
}

TEST(ResolveHubEndpoint, FlagThenEnvironmentThenDefault) {
  unsetenv("HF_ENDPOINT");
  EXPECT_EQ(*ResolveHubEndpoint(""), "https://huggingface.co");
  setenv("HF_ENDPOINT", "http://127.0.0.1:8080/", 1);
  EXPECT_EQ(*ResolveHubEndpoint(""), "http://127.0.0.1:8080");
  EXPECT_EQ(*ResolveHubEndpoint("https://hub.internal/"), "https://hub.internal");
  setenv("HF_ENDPOINT", "ftp://x", 1);
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveHubEndpoint("").status()));
  unsetenv("HF_ENDPOINT");
}

TEST(ResolveHubToken, FileThenEnvironmentNeverEchoingTheToken) {
  unsetenv("HF_TOKEN");
  EXPECT_EQ(*ResolveHubToken(""), "");
  setenv("HF_TOKEN", " hf_fromenv \n", 1);
  EXPECT_EQ(*ResolveHubToken(""), "hf_fromenv");
  std::string path = ::testing::TempDir() + "/hf_token";
  {
    std::ofstream out(path);
    out << "hf_fromfile\n";
  }
  EXPECT_EQ(*ResolveHubToken(path), "hf_fromfile");
  {
    std::ofstream out(path);
    out << "hf_bad\r\nX-Injected: 1";
  }
  absl::StatusOr<std::string> bad = ResolveHubToken(path);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_THAT(bad.status().ToString(), Not(HasSubstr("hf_bad")));
  EXPECT_TRUE(absl::IsNotFound(ResolveHubToken(path + ".missing").status()));
  unsetenv("HF_TOKEN");
}

// A Hub whose heavy pages time out: any listing request with `limit` above `max_limit` answers
// 504 with an HTML body, as the real Hub did for hours. Entries are numbered by cursor.
struct HeavyPageHub {
  int total = 0;
  int max_limit = 100;
  std::vector<std::string> cursors_asked;  // the cursor of every request, as sent
  std::vector<int> limits_asked;
  HttpResponse Serve(const HttpRequest& r) {
    std::optional<std::string> cursor = QueryParameter(r.url, "cursor");
    std::optional<std::string> limit_text = QueryParameter(r.url, "limit");
    int offset = 0;
    int limit = 0;
    if (cursor) absl::SimpleAtoi(cursor->substr(1), &offset);  // "c<offset>"
    absl::SimpleAtoi(limit_text.value_or("0"), &limit);
    cursors_asked.push_back(cursor.value_or(""));
    limits_asked.push_back(limit);
    if (limit > max_limit) {
      return MakeResponse(504, "<html><body>504 Gateway Time-out</body></html>",
                          {{"Content-Type", "text/html"}});
    }
    std::string body = "[";
    for (int i = offset; i < std::min(total, offset + limit); ++i) {
      absl::StrAppend(&body, i > offset ? "," : "", Entry(i));
    }
    body += "]";
    HttpResponse response = MakeResponse(200, body);
    if (offset + limit < total) {
      // The Hub echoes the limit it was sent; the cursor keeps '=' padding percent-encoded.
      response.headers.Add(
          "Link", absl::StrCat("<", kHub, "/api/models?sort=createdAt&cursor=c", offset + limit,
                               "%3D&limit=", limit, ">; rel=\"next\""));
    }
    return response;
  }
};

TEST_F(HubClientTest, HeavyPagesShrinkTheLimitForTheSameCursorAndGrowBack) {
  HeavyPageHub hub;
  hub.total = 100000;
  hub.max_limit = 100;
  auto transport =
      std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) { return hub.Serve(r); });
  HubClientOptions options = Options(transport);
  options.retry.initial_backoff = absl::Milliseconds(10);
  HubClient client(options);
  FetchStats stats;
  const std::string first =
      absl::StrCat(kHub, "/api/models?sort=createdAt&cursor=c0%3D&limit=1000");
  absl::StatusOr<ListingPage> page = client.FetchListingPage(first, &budget_, &stats);
  ASSERT_TRUE(page.ok()) << page.status();
  // 1000 -> 500 -> 250 -> 125 -> 62: four shrinks, each the same cursor.
  EXPECT_EQ(stats.limit_shrinks, 4);
  EXPECT_THAT(hub.limits_asked, ::testing::ElementsAre(1000, 500, 250, 125, 62));
  EXPECT_THAT(hub.cursors_asked, ::testing::Each(std::string("c0%3D")));
  EXPECT_EQ(page->entries.repos.size(), 62u);
  EXPECT_EQ(QueryParameter(page->url, "limit"), "62");
  // The next URL is the Hub's cursor with the page's own limit (the configured page size).
  EXPECT_EQ(page->next_url,
            absl::StrCat(kHub, "/api/models?sort=createdAt&cursor=c62%3D&limit=1000"));

  // The next pages start at the shrunk size (no 504 again), and after three in a row at it (the
  // first page included) it doubles: 124 is still too heavy and shrinks back to 62.
  hub.limits_asked.clear();
  std::string url = page->next_url;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<ListingPage> next = client.FetchListingPage(url, &budget_, &stats);
    ASSERT_TRUE(next.ok()) << next.status();
    url = next->next_url;
  }
  EXPECT_THAT(hub.limits_asked, ::testing::ElementsAre(62, 62, 124, 62, 62));
  EXPECT_EQ(stats.limit_shrinks, 5);

  // A Hub that recovers: the limit grows back to the configured size, doubling.
  hub.max_limit = 100000;
  hub.limits_asked.clear();
  for (int i = 0; i < 12; ++i) {
    absl::StatusOr<ListingPage> next = client.FetchListingPage(url, &budget_, &stats);
    ASSERT_TRUE(next.ok()) << next.status();
    url = next->next_url;
  }
  EXPECT_THAT(hub.limits_asked,
              ::testing::ElementsAre(62, 124, 124, 124, 248, 248, 248, 496, 496, 496, 992, 992));
  // Three pages at 992 double it past the page's own limit: back to 1000, no shrunk size.
  absl::StatusOr<ListingPage> next = client.FetchListingPage(url, &budget_, &stats);
  ASSERT_TRUE(next.ok());
  next = client.FetchListingPage(next->next_url, &budget_, &stats);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(hub.limits_asked.back(), 1000);
  EXPECT_EQ(stats.limit_shrinks, 5);
}

TEST_F(HubClientTest, SmallPagesDoNotShrinkBelowTheFloor) {
  HeavyPageHub hub;
  hub.total = 100;
  hub.max_limit = 10;
  auto transport =
      std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) { return hub.Serve(r); });
  HubClientOptions options = Options(transport);
  options.retry.initial_backoff = absl::Milliseconds(10);
  options.retry.max_attempts = 3;
  HubClient client(options);
  FetchStats stats;
  absl::StatusOr<ListingPage> page = client.FetchListingPage(
      absl::StrCat(kHub, "/api/models?sort=createdAt&limit=50"), &budget_, &stats);
  EXPECT_TRUE(absl::IsUnavailable(page.status())) << page.status();
  EXPECT_EQ(stats.limit_shrinks, 0);
  EXPECT_THAT(hub.limits_asked, ::testing::ElementsAre(50, 50, 50));
}

TEST_F(HubClientTest, TheTokenNeverLeavesTheHubOrigin) {
  struct Case {
    const char* name;
    std::vector<std::pair<std::string, std::string>> headers;
    int status;
  };
  for (const Case& c : std::vector<Case>{
           {"next link to another host",
            {{"Link", "<http://evil.test/api/models?cursor=x>; rel=\"next\""}},
            200},
           {"next link to another port",
            {{"Link", "<http://hub.test:8080/api/models?cursor=x>; rel=\"next\""}},
            200},
           {"next link to https",
            {{"Link", "<https://hub.test/api/models?cursor=x>; rel=\"next\""}},
            200},
           {"redirect to another host", {{"Location", "http://evil.test/api/models"}}, 302},
           {"redirect to another port", {{"Location", "//hub.test:81/api/models"}}, 307}}) {
    auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) {
      if (r.url.rfind(absl::StrCat(kHub, "/"), 0) != 0) return MakeResponse(200, "[]");
      return MakeResponse(c.status, c.status == 200 ? "[]" : "", c.headers);
    });
    HubClient client(Options(transport));
    FetchStats stats;
    absl::StatusOr<ListingPage> page = client.FetchListingPage(FirstUrl(), &budget_, &stats);
    EXPECT_TRUE(absl::IsFailedPrecondition(page.status())) << c.name << ": " << page.status();
    EXPECT_FALSE(IsRetryableHubError(page.status())) << c.name;
    EXPECT_THAT(std::string(page.status().message()), HasSubstr("hub.test")) << c.name;
    EXPECT_THAT(page.status().ToString(), Not(HasSubstr(kToken)));
    ASSERT_EQ(transport->request_count(), 1) << c.name << ": a request left the Hub's origin";
    EXPECT_EQ(transport->requests()[0].url.rfind(absl::StrCat(kHub, "/"), 0), 0u);
  }
  // A detail redirect too.
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) {
    return MakeResponse(307, "", {{"Location", "http://127.0.0.2:9/api/models/x/y"}});
  });
  HubClient client(Options(transport));
  FetchStats stats;
  ParsedEntries out;
  std::string unreadable;
  absl::Status status = client.FetchRepoDetail("a/b", &budget_, &stats, &out, &unreadable);
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("127.0.0.2:9"));
  EXPECT_EQ(transport->request_count(), 1);
  // And a work item URL that is not the Hub's is refused before anything is sent.
  absl::StatusOr<ListingPage> page =
      client.FetchListingPage("http://other.test/api/models?limit=10", &budget_, &stats);
  EXPECT_TRUE(absl::IsFailedPrecondition(page.status())) << page.status();
  EXPECT_EQ(transport->request_count(), 1);
}

TEST_F(HubClientTest, NonJsonOkBodyFailsAfterAFewAttemptsNamingTypeAndFirstBytes) {
  std::string html = "<!DOCTYPE html><html><head><title>Captive portal</title></head><body>" +
                     std::string(5000, 'x') + "</body></html>";
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest&) {
    return MakeResponse(200, html, {{"Content-Type", "text/html; charset=utf-8"}});
  });
  HubClientOptions options = Options(transport);
  HubClient client(options);
  FetchStats stats;
  absl::Time start = clock_.Now();
  absl::StatusOr<ListingPage> page = client.FetchListingPage(FirstUrl(), &budget_, &stats);
  EXPECT_TRUE(absl::IsFailedPrecondition(page.status())) << page.status();
  EXPECT_FALSE(IsRetryableHubError(page.status()));
  std::string message(page.status().message());
  EXPECT_THAT(message, HasSubstr("text/html"));
  EXPECT_THAT(message, HasSubstr("<!DOCTYPE html><html>"));
  EXPECT_THAT(message, Not(HasSubstr(std::string(300, 'x'))));
  EXPECT_LT(message.size(), 700u);
  EXPECT_EQ(transport->request_count(), 3);
  EXPECT_EQ(stats.retries_by_cause["bad_body"], 2);
  EXPECT_LT(clock_.Now() - start, absl::Minutes(1));
}

TEST_F(HubClientTest, CutJsonIsStillRetriedAsATransportFault) {
  int calls = 0;
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) {
    if (++calls < 5)
      return MakeResponse(200, "[{\"id\":\"a/b\"", {{"Content-Type", "application/json"}});
    return MakeResponse(200, "[{\"id\":\"a/b\"}]", {{"Content-Type", "application/json"}});
  });
  HubClient client(Options(transport));
  FetchStats stats;
  absl::StatusOr<ListingPage> page = client.FetchListingPage(FirstUrl(), &budget_, &stats);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->entries.repos.size(), 1u);
  EXPECT_EQ(stats.retries_by_cause["bad_body"], 4);
}

TEST_F(HubClientTest, ConnectionFailuresEndInSecondsWithOneShortLine) {
  auto transport = std::make_shared<FakeHttpTransport>(
      [&](const HttpRequest&) {
        return MakeConnectionFailure(absl::UnavailableError(absl::StrCat(
                                         "GET http://hub.test/api/models?", std::string(900, 'q'),
                                         ": Couldn't connect to server")),
                                     "connection refused");
      },
      &clock_, absl::Milliseconds(1));
  HubClient client(Options(transport));
  FetchStats stats;
  absl::Time start = clock_.Now();
  absl::StatusOr<ListingPage> page = client.FetchListingPage(FirstUrl(), &budget_, &stats);
  EXPECT_TRUE(IsConnectionFailure(page.status())) << page.status();
  EXPECT_TRUE(IsRetryableHubError(page.status()));
  std::string message(page.status().message());
  EXPECT_THAT(message, ::testing::StartsWith("cannot reach hub.test: connection refused"));
  EXPECT_LT(message.size(), 120u) << message;
  EXPECT_LE(clock_.Now() - start, absl::Seconds(15));
  EXPECT_GE(transport->request_count(), 3);
  // A failure after the Hub answered once is not a connection failure.
  int calls = 0;
  transport->set_handler([&](const HttpRequest&) {
    return calls++ == 0
               ? MakeResponse(503, "")
               : MakeConnectionFailure(absl::UnavailableError("refused"), "connection refused");
  });
  HubClientOptions options = Options(transport);
  options.retry.max_attempts = 3;
  HubClient second(options);
  page = second.FetchListingPage(FirstUrl(), &budget_, &stats);
  EXPECT_TRUE(absl::IsUnavailable(page.status())) << page.status();
  EXPECT_FALSE(IsConnectionFailure(page.status()));
}

// Per-repo answers as the real Hub gives them (../shared/hub-api.md): unreadable, not failures.
TEST_F(HubClientTest, DetailUnreadableAnswersAreReasonsNotErrors) {
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) {
    auto is = [&](const char* id) {
      return r.url.rfind(absl::StrCat(kHub, "/api/models/", id, "?"), 0) == 0;
    };
    if (is("missing/x")) return MakeResponse(401, R"({"error":"Invalid username or password."})");
    if (is("gated/x")) {
      return MakeResponse(401, R"({"error":"Access restricted"})", {{"X-Error-Code", "GatedRepo"}});
    }
    if (is("disabled/x")) return MakeResponse(403, "Access to this resource is disabled.");
    if (is("gone/x")) return MakeResponse(404, R"({"error":"Repository not found"})");
    if (is("twice/a")) return MakeResponse(307, "", {{"Location", "/api/models/twice/b"}});
    if (is("twice/b")) return MakeResponse(307, "", {{"Location", "/api/models/twice/c"}});
    if (is("loop/a")) return MakeResponse(307, "", {{"Location", "/api/models/loop/b"}});
    if (is("loop/b")) return MakeResponse(307, "", {{"Location", "/api/models/loop/a"}});
    return MakeResponse(200, R"({"id":"ok/x"})");
  });
  HubClient client(Options(transport));
  for (const auto& [id, reason] :
       std::vector<std::pair<std::string, std::string>>{{"missing/x", "401"},
                                                        {"gated/x", "401_gated"},
                                                        {"disabled/x", "403"},
                                                        {"gone/x", "404"},
                                                        {"twice/a", "second_redirect"},
                                                        {"loop/a", "redirect_loop"},
                                                        {"ok/x", ""}}) {
    FetchStats stats;
    ParsedEntries out;
    std::string unreadable;
    absl::Status status = client.FetchRepoDetail(id, &budget_, &stats, &out, &unreadable);
    ASSERT_TRUE(status.ok()) << id << ": " << status;
    EXPECT_EQ(unreadable, reason) << id;
    EXPECT_EQ(out.repos.size(), reason.empty() ? 1u : 0u) << id;
    EXPECT_EQ(stats.retries, 0) << id;
  }
}

// The recorded 307s of the real Hub, served by an in-memory transport from model-answers.json:
// each old id's detail is the renamed repo's.
TEST_F(HubClientTest, RecordedRealHubRenamesAreFollowed) {
  std::ifstream in(std::string(HUBCENSUS_SHARED_DIR) + "/data/real-hub/model-answers.json");
  std::stringstream text;
  text << in.rdbuf();
  simdjson::dom::parser dom;
  simdjson::dom::element answers;
  ASSERT_EQ(dom.parse(text.str()).get(answers), simdjson::SUCCESS);
  std::map<std::string, HttpResponse> by_path;               // "/api/models/..." -> recorded answer
  std::vector<std::pair<std::string, std::string>> renames;  // old id, Location
  for (simdjson::dom::element answer : answers.get_array()) {
    std::string uri(answer["uri"].get_string().value());
    std::string path = uri.substr(uri.find("/api/models/"));
    HttpResponse response;
    response.status = static_cast<int>(answer["status"].get_int64().value());
    for (auto [name, value] : answer["headers"].get_object()) {
      response.headers.Add(std::string(name), std::string(value.get_string().value()));
    }
    if (!answer["body"].is_null()) response.body = simdjson::minify(answer["body"]);
    if (response.status == 307) {
      renames.emplace_back(path.substr(strlen("/api/models/")), *response.headers.Get("Location"));
    }
    by_path[path] = std::move(response);
  }
  ASSERT_EQ(renames.size(), 2u);
  auto transport = std::make_shared<FakeHttpTransport>([&](const HttpRequest& r) {
    std::string path = r.url.substr(strlen(kHub));
    path = path.substr(0, path.find('?'));
    auto it = by_path.find(path);
    return it == by_path.end() ? MakeResponse(404, "") : it->second;
  });
  HubClient client(Options(transport));
  for (const auto& [old_id, location] : renames) {
    FetchStats stats;
    ParsedEntries out;
    std::string unreadable;
    ASSERT_TRUE(client.FetchRepoDetail(old_id, &budget_, &stats, &out, &unreadable).ok());
    EXPECT_EQ(unreadable, "");
    ASSERT_EQ(out.repos.size(), 1u) << old_id;
    EXPECT_EQ(absl::StrCat("/api/models/", out.repos[0].id()), location);
    EXPECT_EQ(out.rejected(), 0);
    EXPECT_TRUE(out.repos[0].created_at_placeholder()) << out.repos[0].id();
    EXPECT_EQ(stats.requests, 2);
  }
}

// Light pages: the default listing asks only what the census reads; cardData, the heaviest
// field, is not requested (lineage comes from `tags`), yet still parsed when a crawl asks.
TEST(DefaultListing, AsksOnlyWhatTheCensusReads) {
  EXPECT_THAT(DefaultListingExpand(), Not(::testing::Contains("cardData")));
  for (const std::string& e : DefaultListingExpand()) {
    EXPECT_THAT(HubListingExpandValues(), ::testing::Contains(e));
  }
  for (const char* needed : {"createdAt", "downloads", "downloadsAllTime", "tags", "private"}) {
    EXPECT_THAT(DefaultListingExpand(), ::testing::Contains(needed));
  }
  const std::string url = FirstListingUrl(kHub, v1::ListingOptions());
  EXPECT_THAT(url, Not(HasSubstr("cardData")));
  EXPECT_THAT(url, HasSubstr("&expand=tags"));
}

TEST(Url, OriginsQueryParametersAndQuotes) {
  EXPECT_EQ(*OriginOf("https://HuggingFace.co/api/models?x=1"), "https://huggingface.co:443");
  EXPECT_EQ(*OriginOf("http://127.0.0.1/x"), "http://127.0.0.1:80");
  EXPECT_EQ(*OriginOf("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_NE(*OriginOf("http://hub.test"), *OriginOf("https://hub.test"));
  EXPECT_FALSE(OriginOf("/relative").ok());
  EXPECT_EQ(HostForMessage("http://user:pw@h.test:81/p?token=x"), "h.test:81");
  const std::string url = "http://h/api/models?sort=createdAt&limit=1000&cursor=ab%3D&limit=7#f";
  EXPECT_EQ(QueryParameter(url, "limit"), "1000");
  EXPECT_EQ(QueryParameter(url, "cursor"), "ab%3D");
  EXPECT_EQ(QueryParameter(url, "nolimit"), std::nullopt);
  EXPECT_EQ(WithQueryParameter(url, "limit", "500"),
            "http://h/api/models?sort=createdAt&limit=500&cursor=ab%3D#f");
  EXPECT_EQ(WithQueryParameter("http://h/api/models", "limit", "5"), "http://h/api/models?limit=5");
  EXPECT_EQ(QuoteInput("ab\ncd"), "ab\\x0Acd");
  EXPECT_EQ(QuoteInput(std::string(300, 'z')), std::string(200, 'z') + "...");
  std::string long_url = "http://h/api/models?cursor=" + std::string(1000, 'c');
  EXPECT_LE(RedactUrl(long_url).size(), 203u);
}

}  // namespace
}  // namespace hubcensus::hub
