// The libcurl transport and the Hub client over real loopback sockets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/version.h"
#include "hub/http_transport.h"
#include "hub/hub_client.h"
#include "tests/hub/http_test_server.h"

namespace hubcensus::hub {
namespace {

using ::hubcensus::testing::HttpTestServer;
using ::hubcensus::testing::ReceivedRequest;
using ::hubcensus::testing::ScriptedAnswer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "hf_CurlPathSecret987";

std::string Gzip(const std::string& text) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(compressBound(text.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

HttpRequest Get(const std::string& url) {
  HttpRequest request;
  request.url = url;
  request.timeouts.connect = absl::Seconds(5);
  request.timeouts.total = absl::Seconds(10);
  return request;
}

TEST(CurlTransport, HeadersCaseInsensitiveMultiValuedAndUserAgent) {
  HttpTestServer server([](const ReceivedRequest&) {
    return ScriptedAnswer{
        HttpTestServer::Response(200, "[]",
                                 {{"link", "<http://x/1>; rel=first"},
                                  {"LINK", "</api/models?cursor=2>; rel=\"next\""},
                                  {"RateLimit", "\"api\";r=9;t=30"}})};
  });
  auto transport = NewCurlTransport();
  HttpRequest request = Get(server.url("/api/models?limit=1"));
  request.headers.Add("Authorization", absl::StrCat("Bearer ", kToken));
  HttpResponse response = transport->Send(request);
  ASSERT_TRUE(response.transport_error.ok()) << response.transport_error;
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "[]");
  EXPECT_EQ(response.headers.GetAll("Link").size(), 2u);
  EXPECT_EQ(response.headers.Get("ratelimit"), "\"api\";r=9;t=30");
  std::vector<ReceivedRequest> seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/api/models?limit=1");
  EXPECT_EQ(seen[0].headers["user-agent"], kUserAgent);
  EXPECT_EQ(seen[0].headers["authorization"], absl::StrCat("Bearer ", kToken));
  EXPECT_THAT(seen[0].headers["accept-encoding"], HasSubstr("gzip"));
}

TEST(CurlTransport, DecodesGzip) {
  std::string body = R"([{"id":"a/b","tags":["x","y"]}])";
  for (int i = 0; i < 200; ++i) body += " ";
  HttpTestServer server([&](const ReceivedRequest&) {
    return ScriptedAnswer{
        HttpTestServer::Response(200, Gzip(body), {{"Content-Encoding", "gzip"}})};
  });
  HttpResponse response = NewCurlTransport()->Send(Get(server.url("/api/models")));
  ASSERT_TRUE(response.transport_error.ok()) << response.transport_error;
  EXPECT_EQ(response.body, body);
}

TEST(CurlTransport, ReusesTheConnection) {
  HttpTestServer server(
      [](const ReceivedRequest&) { return ScriptedAnswer{HttpTestServer::Response(200, "[]")}; });
  auto transport = NewCurlTransport();
  for (int i = 0; i < 5; ++i) {
    HttpResponse response = transport->Send(Get(server.url(absl::StrCat("/p", i))));
    ASSERT_EQ(response.status, 200);
  }
  EXPECT_EQ(server.requests().size(), 5u);
  EXPECT_EQ(server.connections(), 1);
}

TEST(CurlTransport, DoesNotFollowRedirects) {
  HttpTestServer server([](const ReceivedRequest&) {
    return ScriptedAnswer{HttpTestServer::Response(307, "", {{"Location", "/api/models/new/x"}})};
  });
  HttpResponse response = NewCurlTransport()->Send(Get(server.url("/api/models/old/x")));
  EXPECT_EQ(response.status, 307);
  EXPECT_EQ(response.headers.Get("Location"), "/api/models/new/x");
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(CurlTransport, TimeoutIsDeadlineExceeded) {
  HttpTestServer server([](const ReceivedRequest&) {
    return ScriptedAnswer{HttpTestServer::Response(200, "[]"), absl::Seconds(5)};
  });
  HttpRequest request = Get(server.url("/slow"));
  request.timeouts.total = absl::Milliseconds(300);
  HttpResponse response = NewCurlTransport()->Send(request);
  EXPECT_TRUE(absl::IsDeadlineExceeded(response.transport_error)) << response.transport_error;
  EXPECT_EQ(response.status, 0);
}

TEST(CurlTransport, TruncatedBodyIsUnavailable) {
  HttpTestServer server([](const ReceivedRequest&) {
    return ScriptedAnswer{"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n[{\"id\":\"a/b\"}",
                          absl::ZeroDuration(), true};
  });
  HttpResponse response = NewCurlTransport()->Send(Get(server.url("/cut")));
  EXPECT_TRUE(absl::IsUnavailable(response.transport_error)) << response.transport_error;
  EXPECT_THAT(response.transport_error.message(), HasSubstr("truncated"));
  EXPECT_TRUE(response.body.empty());
}

TEST(CurlTransport, DroppedConnectionAndRefusalAreUnavailable) {
  HttpTestServer server([](const ReceivedRequest&) {
    return ScriptedAnswer{"", absl::ZeroDuration(), true};
  });
  auto transport = NewCurlTransport();
  HttpResponse dropped = transport->Send(Get(server.url("/drop")));
  EXPECT_TRUE(absl::IsUnavailable(dropped.transport_error)) << dropped.transport_error;
  // Connected, then dropped: the server was reached, so not a connection-level failure.
  EXPECT_FALSE(dropped.connection_failure);
  int port = 0;
  {
    HttpTestServer closed([](const ReceivedRequest&) { return ScriptedAnswer{}; });
    port = closed.port();
  }
  HttpResponse refused = transport->Send(Get(absl::StrCat("http://127.0.0.1:", port, "/")));
  EXPECT_TRUE(absl::IsUnavailable(refused.transport_error)) << refused.transport_error;
  EXPECT_TRUE(refused.connection_failure);
  EXPECT_EQ(refused.connection_failure_cause, "connection refused");
}

TEST(CurlTransport, CancellationAbortsATransferInFlight) {
  HttpTestServer server([](const ReceivedRequest&) {
    return ScriptedAnswer{HttpTestServer::Response(200, "[]"), absl::Seconds(5)};
  });
  std::atomic<bool> cancelled{false};
  HttpRequest request = Get(server.url("/stall"));
  request.cancelled = &cancelled;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(100));
    cancelled = true;
  });
  HttpResponse response = NewCurlTransport()->Send(request);
  canceller.join();
  EXPECT_TRUE(absl::IsCancelled(response.transport_error)) << response.transport_error;
}

// The head as one write, the body later: how a server that answers a page's head first looks.
ScriptedAnswer HeadThenBody(const std::string& response, std::function<bool()> body_when,
                            std::atomic<bool>* body_when_met) {
  size_t cut = response.find("\r\n\r\n") + 4;
  ScriptedAnswer answer{response.substr(0, cut)};
  answer.then_raw = response.substr(cut);
  answer.then_delay = absl::Seconds(20);  // the body goes anyway after this, and the test fails
  answer.then_when = std::move(body_when);
  answer.then_when_met = body_when_met;
  return answer;
}

// on_head fires once, with the final status and the header fields, while the body is still on
// the server: the server sends the body only after the callback has run.
TEST(CurlTransport, OnHeadFiresBeforeTheBodyIsSent) {
  std::atomic<int> heads{0};
  std::atomic<bool> body_after_head{false};
  HttpTestServer server([&](const ReceivedRequest&) {
    return HeadThenBody(
        HttpTestServer::Response(200, R"([{"id":"a/1"}])", {{"Link", "</next>; rel=\"next\""}}),
        [&] { return heads.load() > 0; }, &body_after_head);
  });
  HttpRequest request = Get(server.url("/api/models"));
  request.timeouts.total = absl::Seconds(60);
  int head_status = 0;
  std::string head_link;
  request.on_head = [&](int status, const HttpHeaders& headers) {
    ++heads;
    head_status = status;
    head_link = headers.Get("link").value_or("");
  };
  HttpResponse response = NewCurlTransport()->Send(request);
  ASSERT_TRUE(response.transport_error.ok()) << response.transport_error;
  EXPECT_TRUE(body_after_head) << "the head was announced only with the body";
  EXPECT_EQ(heads, 1);
  EXPECT_EQ(head_status, 200);
  EXPECT_EQ(head_link, "</next>; rel=\"next\"");
  EXPECT_EQ(response.body, R"([{"id":"a/1"}])");
}

// A 1xx head is not the answer's: only the final head is announced.
TEST(CurlTransport, OnHeadSkipsInterimHeads) {
  HttpTestServer server([&](const ReceivedRequest&) {
    return ScriptedAnswer{
        absl::StrCat("HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n",
                     HttpTestServer::Response(404, "{}"))};
  });
  HttpRequest request = Get(server.url("/api/models/x"));
  std::vector<int> statuses;
  request.on_head = [&](int status, const HttpHeaders&) { statuses.push_back(status); };
  HttpResponse response = NewCurlTransport()->Send(request);
  ASSERT_TRUE(response.transport_error.ok()) << response.transport_error;
  EXPECT_EQ(response.status, 404);
  EXPECT_THAT(statuses, ::testing::ElementsAre(404));
}

TEST(CurlTransport, HubClientPaginatesRetriesAndKeepsTheTokenOutOfErrors) {
  std::atomic<int> calls{0};
  HttpTestServer server([&](const ReceivedRequest& r) {
    int n = calls++;
    if (n == 0) return ScriptedAnswer{HttpTestServer::Response(503, "busy")};
    if (r.target.find("cursor=2") != std::string::npos) {
      return ScriptedAnswer{HttpTestServer::Response(200, R"([{"id":"c/3"}])")};
    }
    if (r.target.find("/api/models/gated/repo") == 0) {
      return ScriptedAnswer{HttpTestServer::Response(401, "{\"error\":\"Invalid credentials\"}")};
    }
    return ScriptedAnswer{HttpTestServer::Response(
        200, R"([{"id":"a/1"},{"id":"b/2"}])",
        {{"Link", "</api/models?sort=createdAt&cursor=2>; rel=\"next\""}})};
  });
  HubClientOptions options;
  options.hub_url = server.url("");
  options.token = kToken;
  options.transport = NewCurlTransport();
  options.retry.initial_backoff = absl::Milliseconds(1);
  HubClient client(options);
  FixedBudget budget(100);
  FetchStats stats;
  std::vector<std::string> ids;
  ASSERT_TRUE(client
                  .ForEachListingPage(server.url("/api/models?sort=createdAt"), &budget, &stats,
                                      [&](ListingPage& page) {
                                        for (auto& r : page.entries.repos) ids.push_back(r.id());
                                        return true;
                                      })
                  .ok());
  EXPECT_THAT(ids, ::testing::ElementsAre("a/1", "b/2", "c/3"));
  EXPECT_EQ(stats.retries_by_cause["503"], 1);
  EXPECT_EQ(stats.requests, 3);

  ParsedEntries out;
  absl::Status status = client.FetchRepoDetail("gated/repo", &budget, &stats, &out);
  EXPECT_TRUE(absl::IsUnauthenticated(status)) << status;
  EXPECT_THAT(status.ToString(), HasSubstr(server.url("/api/models/gated/repo")));
  EXPECT_THAT(status.ToString(), HasSubstr("HTTP 401"));
  EXPECT_THAT(status.ToString(), Not(HasSubstr(kToken)));
  for (const ReceivedRequest& r : server.requests()) {
    EXPECT_THAT(r.target, Not(HasSubstr(kToken)));
  }
}

}  // namespace
}  // namespace hubcensus::hub
