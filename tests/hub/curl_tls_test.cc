// The libcurl transport and the Hub client over TLS against real servers on 127.0.0.1: HTTP/2 by
// ALPN (nghttpd), HTTP/1.1 where the server offers no ALPN (openssl s_server), a CA file in
// place of the system store, and certificate failures that fail once, name the host and the
// reason, and never show the token or the query.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "hub/http_transport.h"
#include "hub/hub_client.h"
#include "tests/hub/tls_servers.h"
#include "tests/testing/metrics.h"

namespace hubcensus::hub {
namespace {

using ::hubcensus::testing::GetTestPki;
using ::hubcensus::testing::TestPki;
using ::hubcensus::testing::TlsTestServer;
using ::hubcensus::testing::WriteTestFile;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "hf_TESTSECRETtls4f7a9c2e";
// A repo recorded from the real Hub (../shared/data/real-lineage), served as its detail.
constexpr char kRepo[] = "mistralai/Mistral-Small-24B-Base-2501";
constexpr char kLineageFile[] =
    HUBCENSUS_SHARED_DIR "/data/real-lineage/mistral-small-24b-base-2501-tree.json";

// Log lines captured from the process-wide sink.
absl::Mutex g_log_mu;
std::vector<std::string>* g_log_lines ABSL_GUARDED_BY(g_log_mu) = nullptr;
void CaptureLine(const std::string& line) {
  absl::MutexLock lock(&g_log_mu);
  if (g_log_lines != nullptr) g_log_lines->push_back(line);
}

// The recorded listing entry of kRepo, as the detail endpoint answers it.
std::string RecordedDetail() {
  simdjson::dom::parser parser;
  simdjson::dom::array listing;
  if (parser.load(kLineageFile).get(listing)) return "";
  for (simdjson::dom::element entry : listing) {
    std::string_view id;
    if (!entry["id"].get(id) && id == kRepo) return simdjson::minify(entry);
  }
  return "";
}

// The response of each request, for the HTTP version the caller does not otherwise see.
class RecordingTransport : public HttpTransport {
 public:
  explicit RecordingTransport(std::shared_ptr<HttpTransport> inner) : inner_(std::move(inner)) {}
  HttpResponse Send(const HttpRequest& request) override {
    HttpResponse response = inner_->Send(request);
    absl::MutexLock lock(&mu_);
    versions_.push_back(response.http_version);
    return response;
  }
  std::vector<HttpVersion> versions() {
    absl::MutexLock lock(&mu_);
    return versions_;
  }

 private:
  std::shared_ptr<HttpTransport> inner_;
  absl::Mutex mu_;
  std::vector<HttpVersion> versions_ ABSL_GUARDED_BY(mu_);
};

// Answers the first request with a 503 itself, so the client's retry path (which logs) runs
// before the real transport is reached.
class BusyOnceTransport : public HttpTransport {
 public:
  explicit BusyOnceTransport(std::shared_ptr<HttpTransport> inner) : inner_(std::move(inner)) {}
  HttpResponse Send(const HttpRequest& request) override {
    if (!answered_.exchange(true)) return MakeResponse(503, "busy");
    return inner_->Send(request);
  }

 private:
  std::shared_ptr<HttpTransport> inner_;
  std::atomic<bool> answered_{false};
};

double ResponsesByVersion(const std::string& version) {
  return testing::CounterValue("hubcensus_hub_responses_total", {{"http_version", version}});
}

// nghttpd -v numbers its sessions [id=1], [id=2], ... and logs each one's end. Session 1 is
// TlsTestServer's readiness probe (a bare TCP connect); the client's connections follow. Waits
// until the client's first connection has ended, so the count is complete (the client has
// already returned).
int ClientSessions(const TlsTestServer& server) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline && !absl::StrContains(server.Log(), "[id=2]")) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  const std::string log = server.Log();
  int sessions = 0;
  while (absl::StrContains(log, absl::StrCat("[id=", sessions + 2, "]"))) ++sessions;
  return sessions;
}

class CurlTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = GetTestPki();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *pki;
    detail_ = RecordedDetail();
    ASSERT_FALSE(detail_.empty()) << "no entry for " << kRepo << " in " << kLineageFile;
    {
      absl::MutexLock lock(&g_log_mu);
      g_log_lines = new std::vector<std::string>();
    }
    SetLogSink(&CaptureLine);
    SetLogLevel(LogLevel::kDebug);
  }

  void TearDown() override {
    SetLogSink(nullptr);
    SetLogLevel(LogLevel::kInfo);
    absl::MutexLock lock(&g_log_mu);
    for (const std::string& line : *g_log_lines) {
      EXPECT_THAT(line, Not(HasSubstr(kToken)));
      EXPECT_THAT(line, Not(HasSubstr("Bearer")));
    }
    delete g_log_lines;
    g_log_lines = nullptr;
  }

  std::vector<std::string> LogLines() {
    absl::MutexLock lock(&g_log_mu);
    return *g_log_lines;
  }

  // An nghttpd serving kRepo's detail at /api/models/<repo> (it ignores the query).
  std::unique_ptr<TlsTestServer> StartHttp2(const std::string& cert, const std::string& key,
                                            bool verbose = false) {
    std::string docroot = ::hubcensus::testing::MakeTempDir("h2-docroot");
    WriteTestFile(absl::StrCat(docroot, "/api/models/", kRepo), detail_);
    TlsTestServer::Options options;
    options.kind = TlsTestServer::Kind::kNghttpd;
    options.docroot = docroot;
    options.cert = cert;
    options.key = key;
    options.verbose = verbose;
    absl::StatusOr<std::unique_ptr<TlsTestServer>> server = TlsTestServer::Start(options);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  HubClientOptions ClientOptions(const std::string& hub_url,
                                 std::shared_ptr<HttpTransport> transport) {
    HubClientOptions options;
    options.hub_url = hub_url;
    options.token = kToken;
    options.transport = std::move(transport);
    options.retry.initial_backoff = absl::Milliseconds(1);
    options.timeouts.connect = absl::Seconds(5);
    options.timeouts.total = absl::Seconds(10);
    return options;
  }

  static std::shared_ptr<HttpTransport> Curl(const std::string& ca_file) {
    CurlTransportOptions options;
    options.ca_file = ca_file;
    return NewCurlTransport(options);
  }

  TestPki pki_;
  std::string detail_;
  FixedBudget budget_{1000};
};

TEST_F(CurlTlsTest, Http2WithTheCaFileFetchesAndParsesTheDetail) {
  auto server = StartHttp2(pki_.server_cert, pki_.server_key);
  ASSERT_NE(server, nullptr);
  const double h2_before = ResponsesByVersion("2");
  // By IP (SAN IP:127.0.0.1) and by name (SAN DNS:localhost).
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    auto recording = std::make_shared<RecordingTransport>(Curl(pki_.ca_cert));
    HubClient client(ClientOptions(absl::StrCat("https://", host, ":", server->port()), recording));
    FetchStats stats;
    ParsedEntries out;
    absl::Status status = client.FetchRepoDetail(kRepo, &budget_, &stats, &out);
    ASSERT_TRUE(status.ok()) << host << ": " << status;
    ASSERT_EQ(out.repos.size(), 1u);
    EXPECT_EQ(out.repos[0].id(), kRepo);
    EXPECT_EQ(out.repos[0].downloads_30d(), 19970);
    EXPECT_EQ(out.repos[0].sha(), "50a43a1f4488595def221f672346761c85ad90ea");
    EXPECT_EQ(stats.requests, 1);
    EXPECT_THAT(recording->versions(), ::testing::ElementsAre(HttpVersion::kHttp2)) << host;
  }
  EXPECT_EQ(ResponsesByVersion("2"), h2_before + 2);
}

TEST_F(CurlTlsTest, Http2ReusesOneConnectionAcrossRequests) {
  auto server = StartHttp2(pki_.server_cert, pki_.server_key, /*verbose=*/true);
  ASSERT_NE(server, nullptr);
  auto transport = Curl(pki_.ca_cert);
  for (int i = 0; i < 3; ++i) {
    HttpRequest request;
    request.url = server->url(absl::StrCat("/api/models/", kRepo));
    HttpResponse response = transport->Send(request);
    ASSERT_TRUE(response.transport_error.ok()) << response.transport_error;
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.http_version, HttpVersion::kHttp2);
    EXPECT_EQ(response.body, detail_);
  }
  std::string log = server->Log();
  EXPECT_EQ(::hubcensus::testing::CountOf(log, ":path: /api/models/"), 3) << log;
  EXPECT_EQ(::hubcensus::testing::CountOf(log, "SSL/TLS handshake completed"), 1) << log;
}

TEST_F(CurlTlsTest, SystemStoreRejectsTheTestCaOnceWithoutRetryOrToken) {
  auto server = StartHttp2(pki_.server_cert, pki_.server_key, /*verbose=*/true);
  ASSERT_NE(server, nullptr);
  auto recording = std::make_shared<RecordingTransport>(Curl(""));
  HubClient client(ClientOptions(server->url(""), recording));
  FetchStats stats;
  ParsedEntries out;
  absl::Status status = client.FetchRepoDetail(kRepo, &budget_, &stats, &out);
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_FALSE(IsRetryableHubError(status));
  // A connection-level failure: the worker reports it as FailLease.connection_failure.
  EXPECT_TRUE(IsConnectionFailure(status)) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("TLS certificate verification failed for 127.0.0.1: "));
  // curl's reason.
  EXPECT_THAT(std::string(status.message()), HasSubstr("unable to get local issuer certificate"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat(server->url("/api/models/"), kRepo)));
  // The query (here expand=..., which could as well be a cursor) is left out.
  EXPECT_THAT(status.ToString(), Not(HasSubstr("expand=")));
  EXPECT_THAT(status.ToString(), Not(HasSubstr(kToken)));
  EXPECT_THAT(status.ToString(), Not(HasSubstr("Bearer")));
  EXPECT_TRUE(out.repos.empty());
  // One attempt: no retry, and the server saw one TLS connection and no request (so neither
  // the token nor any header reached a server that failed verification).
  EXPECT_EQ(stats.requests, 1);
  EXPECT_EQ(stats.retries, 0);
  EXPECT_EQ(recording->versions().size(), 1u);
  EXPECT_EQ(ClientSessions(*server), 1) << server->Log();
  std::string log = server->Log();
  EXPECT_EQ(::hubcensus::testing::CountOf(log, ":path:"), 0) << log;
  EXPECT_THAT(log, Not(HasSubstr(kToken)));
}

TEST_F(CurlTlsTest, WrongNameCertificateFailsTheHostNameCheck) {
  auto server = StartHttp2(pki_.wrong_name_cert, pki_.wrong_name_key, /*verbose=*/true);
  ASSERT_NE(server, nullptr);
  HubClient client(ClientOptions(server->url(""), Curl(pki_.ca_cert)));
  FetchStats stats;
  ParsedEntries out;
  absl::Status status = client.FetchRepoDetail(kRepo, &budget_, &stats, &out);
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("TLS certificate verification failed for 127.0.0.1: "));
  // The chain is trusted (the CA file); the name is what fails.
  EXPECT_THAT(std::string(status.message()), HasSubstr("target host name '127.0.0.1'"));
  EXPECT_THAT(status.ToString(), Not(HasSubstr(kToken)));
  EXPECT_EQ(stats.requests, 1);
  EXPECT_EQ(stats.retries, 0);
  EXPECT_EQ(ClientSessions(*server), 1) << server->Log();
  EXPECT_EQ(::hubcensus::testing::CountOf(server->Log(), ":path:"), 0) << server->Log();
}

TEST_F(CurlTlsTest, Http11WhenTheServerOffersNoAlpn) {
  // s_server maps the whole target to a file name: ask for one expand value to know it.
  std::string docroot = ::hubcensus::testing::MakeTempDir("h1-docroot");
  WriteTestFile(
      absl::StrCat(docroot, "/api/models/", kRepo, "?expand=downloads"),
      absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
                   "Content-Length: ", detail_.size(), "\r\nConnection: close\r\n\r\n", detail_));
  TlsTestServer::Options options;
  options.kind = TlsTestServer::Kind::kOpensslHttp;
  options.docroot = docroot;
  options.cert = pki_.server_cert;
  options.key = pki_.server_key;
  absl::StatusOr<std::unique_ptr<TlsTestServer>> server = TlsTestServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();

  const double h11_before = ResponsesByVersion("1.1");
  auto recording = std::make_shared<RecordingTransport>(Curl(pki_.ca_cert));
  HubClientOptions client_options = ClientOptions((*server)->url(""), recording);
  client_options.detail_expand = {"downloads"};
  HubClient client(client_options);
  FetchStats stats;
  ParsedEntries out;
  absl::Status status = client.FetchRepoDetail(kRepo, &budget_, &stats, &out);
  ASSERT_TRUE(status.ok()) << status << "\n" << (*server)->Log();
  ASSERT_EQ(out.repos.size(), 1u);
  EXPECT_EQ(out.repos[0].id(), kRepo);
  EXPECT_EQ(out.repos[0].downloads_30d(), 19970);
  EXPECT_THAT(recording->versions(), ::testing::ElementsAre(HttpVersion::kHttp11));
  EXPECT_EQ(ResponsesByVersion("1.1"), h11_before + 1);
}

TEST_F(CurlTlsTest, TokenIsInNoErrorAndNoLogLineWhenVerificationFailsAfterARetry) {
  auto server = StartHttp2(pki_.server_cert, pki_.server_key);
  ASSERT_NE(server, nullptr);
  auto transport = std::make_shared<BusyOnceTransport>(Curl(""));
  HubClient client(ClientOptions(server->url(""), transport));
  FetchStats stats;
  ParsedEntries out;
  absl::Status status = client.FetchRepoDetail(kRepo, &budget_, &stats, &out);
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("TLS certificate verification failed"));
  EXPECT_THAT(status.ToString(), Not(HasSubstr(kToken)));
  // The 503 was retried; the verification failure ended it.
  EXPECT_EQ(stats.requests, 2);
  EXPECT_EQ(stats.retries, 1);
  std::vector<std::string> lines = LogLines();
  EXPECT_FALSE(lines.empty()) << "the retry was logged";
  // TearDown checks every captured line for the token.
}

TEST_F(CurlTlsTest, SecretQueryValuesStayOutOfTheTlsError) {
  auto server = StartHttp2(pki_.server_cert, pki_.server_key);
  ASSERT_NE(server, nullptr);
  HttpRequest request;
  request.url = server->url("/api/models?cursor=hf_TESTSECRETcursor&token=hf_TESTSECRETparam");
  request.headers.Add("Authorization", absl::StrCat("Bearer ", kToken));
  HttpResponse response = Curl("")->Send(request);
  EXPECT_TRUE(absl::IsFailedPrecondition(response.transport_error)) << response.transport_error;
  const std::string text = response.transport_error.ToString();
  EXPECT_THAT(text, HasSubstr(absl::StrCat("GET ", server->url("/api/models"), ": ")));
  EXPECT_THAT(text, Not(HasSubstr("hf_TESTSECRET")));
  EXPECT_THAT(text, Not(HasSubstr("Bearer")));
  EXPECT_EQ(response.status, 0);
  EXPECT_EQ(response.http_version, HttpVersion::kUnknown);
}

TEST_F(CurlTlsTest, UnusableCaFileFailsOnceAsAVerificationFailure) {
  // CheckCaFile refuses this at startup; a file that changes afterwards still fails cleanly.
  std::string dir = ::hubcensus::testing::MakeTempDir("bad-ca");
  WriteTestFile(dir + "/ca.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
  auto server = StartHttp2(pki_.server_cert, pki_.server_key);
  ASSERT_NE(server, nullptr);
  HubClient client(ClientOptions(server->url(""), Curl(dir + "/ca.pem")));
  FetchStats stats;
  ParsedEntries out;
  absl::Status status = client.FetchRepoDetail(kRepo, &budget_, &stats, &out);
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("TLS certificate verification failed"));
  EXPECT_EQ(stats.requests, 1);
}

TEST(CurlCaFile, CheckCaFileNamesThePathAndWhatIsWrong) {
  absl::StatusOr<TestPki> pki = GetTestPki();
  ASSERT_TRUE(pki.ok()) << pki.status();
  EXPECT_TRUE(CheckCaFile(pki->ca_cert).ok());

  absl::Status missing = CheckCaFile("/nonexistent/proxy-ca.pem");
  EXPECT_TRUE(absl::IsFailedPrecondition(missing)) << missing;
  EXPECT_THAT(std::string(missing.message()), HasSubstr("/nonexistent/proxy-ca.pem"));
  EXPECT_THAT(std::string(missing.message()), HasSubstr("No such file or directory"));

  absl::Status folder = CheckCaFile(pki->dir);
  EXPECT_FALSE(folder.ok());
  EXPECT_THAT(std::string(folder.message()), HasSubstr(pki->dir));

  // A private key is not a CA bundle.
  absl::Status key = CheckCaFile(pki->server_key);
  EXPECT_FALSE(key.ok());
  EXPECT_THAT(std::string(key.message()), HasSubstr("no PEM certificate"));
}

}  // namespace
}  // namespace hubcensus::hub
