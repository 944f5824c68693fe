// --hub_ca_file as a user runs it: the hubcensus binary against nghttpd (HTTP/2 over TLS) on
// 127.0.0.1, with a CA that is not in the system store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/hub/tls_servers.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using ::hubcensus::testing::GetTestPki;
using ::hubcensus::testing::HubcensusBinary;
using ::hubcensus::testing::MakeTempDir;
using ::hubcensus::testing::RunToCompletion;
using ::hubcensus::testing::TestPki;
using ::hubcensus::testing::TlsTestServer;
using ::hubcensus::testing::WriteTestFile;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "hf_TESTSECRETprocess8b1d3e";
// 67 repos recorded from the real Hub: the Mistral-Small-24B-Base-2501 lineage.
constexpr char kLineageFile[] =
    HUBCENSUS_SHARED_DIR "/data/real-lineage/mistral-small-24b-base-2501-tree.json";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(HubCaFileFlag, MissingOrUnusableFileIsAStartupErrorNamingTheFlagAndPath) {
  std::string dir = MakeTempDir("ca-flag");
  WriteTestFile(dir + "/not-a-ca.pem", "just text\n");
  for (const std::string& bad : {dir + "/missing.pem", dir + "/not-a-ca.pem"}) {
    const std::string flag = "--hub_ca_file=" + bad;
    std::string out;
    EXPECT_EQ(RunToCompletion({HubcensusBinary(), "crawler", "--coordinator=127.0.0.1:1",
                               "--store=127.0.0.1:1", flag},
                              &out, absl::Seconds(30)),
              2)
        << out;
    EXPECT_THAT(out, HasSubstr("hubcensus crawler: " + flag + ": ")) << out;
    EXPECT_EQ(RunToCompletion({HubcensusBinary(), "local", "--data_dir=" + dir + "/data",
                               "--hub_url=https://127.0.0.1:1", flag},
                              &out, absl::Seconds(30)),
              2)
        << out;
    EXPECT_THAT(out, HasSubstr("hubcensus local: " + flag + ": ")) << out;
  }
}

TEST(HubCaFileFlag, HelpExplainsIt) {
  for (const std::string command : {"crawler", "local"}) {
    std::string out;
    EXPECT_EQ(RunToCompletion({HubcensusBinary(), command, "--help"}, &out, absl::Seconds(30)), 0);
    EXPECT_THAT(out, HasSubstr("--hub_ca_file=VALUE")) << command;
    EXPECT_THAT(out, HasSubstr("corporate TLS proxy")) << command;
    EXPECT_THAT(out, HasSubstr("the system store")) << command;
  }
}

TEST(LocalOverTls, CrawlsAnHttp2HubTrustedThroughTheCaFileAndFailsWithoutIt) {
  absl::StatusOr<TestPki> pki = GetTestPki();
  ASSERT_TRUE(pki.ok()) << pki.status();
  const std::string listing = ReadFile(kLineageFile);
  ASSERT_FALSE(listing.empty()) << kLineageFile;
  // nghttpd ignores the query: every listing URL gets the one recorded page (no Link: the last).
  std::string docroot = MakeTempDir("local-tls-docroot");
  WriteTestFile(docroot + "/api/models", listing);
  TlsTestServer::Options options;
  options.docroot = docroot;
  options.cert = pki->server_cert;
  options.key = pki->server_key;
  absl::StatusOr<std::unique_ptr<TlsTestServer>> server = TlsTestServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  std::string dir = MakeTempDir("local-tls");
  WriteTestFile(dir + "/token", std::string(kToken) + "\n");
  auto local = [&](const std::string& data, const std::vector<std::string>& extra,
                   std::string* out) {
    std::vector<std::string> argv = {HubcensusBinary(),
                                     "local",
                                     "--hub_url=" + (*server)->url(""),
                                     "--data_dir=" + dir + "/" + data,
                                     "--date=2025-10-31",
                                     "--workers=1",
                                     "--hub_quota=off",
                                     "--hf_token_file=" + dir + "/token",
                                     "--format=json",
                                     "--log_level=debug"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunToCompletion(argv, out, absl::Seconds(120));
  };

  std::string out;
  ASSERT_EQ(local("trusted", {"--hub_ca_file=" + pki->ca_cert}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("\"crawl_id\"")) << out;
  EXPECT_THAT(out, HasSubstr("\"Mistral\"")) << out;
  EXPECT_THAT(out, HasSubstr("67 repos")) << out;
  EXPECT_THAT(out, Not(HasSubstr(kToken)));

  // The system store does not know the test CA: the crawl fails on the certificate, saying so.
  EXPECT_EQ(local("untrusted", {}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("TLS certificate verification failed for 127.0.0.1: "
                             "SSL certificate problem: unable to get local issuer certificate"))
      << out;
  EXPECT_THAT(out, HasSubstr("(non-retryable)")) << out;
  EXPECT_THAT(out, Not(HasSubstr(kToken)));
  EXPECT_THAT(out, Not(HasSubstr("Bearer")));
}

}  // namespace
}  // namespace hubcensus
