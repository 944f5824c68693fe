#include "common/tls.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "common/grpc_server.h"
#include "common/status.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "hubcensus/v1/coordinator.grpc.pb.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// A CA, a server certificate and a client certificate signed by it, and a second CA ("rogue")
// with its own client certificate, all made by the openssl CLI the way an operator would.
class Pki {
 public:
  static Pki& Get() {
    static Pki* pki = new Pki();
    return *pki;
  }
  std::string dir;
  bool ok = false;
  std::string Path(const std::string& name) const { return dir + "/" + name; }

 private:
  Pki() {
    if (std::system("openssl version >/dev/null 2>&1") != 0) return;
    dir = testing::MakeTempDir("tls_pki");
    WriteFile(Path("leaf.ext"),
              "basicConstraints=critical,CA:FALSE\n"
              "keyUsage=critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage=serverAuth,clientAuth\n"
              "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string script =
        absl::StrCat("set -e; cd '", dir, "';", MakeCa("ca", key), MakeCa("rogue-ca", key),
                     MakeLeaf("server", "ca", key), MakeLeaf("client", "ca", key),
                     MakeLeaf("rogue-client", "rogue-ca", key));
    ok = std::system(
             absl::StrCat("bash -c \"", script, "\" >'", dir, "/openssl.log' 2>&1").c_str()) == 0;
  }
  static std::string MakeCa(const std::string& name, const std::string& key) {
    return absl::StrCat("openssl req -x509 ", key, " -days 2 -subj /CN=", name, " -keyout ", name,
                        ".key -out ", name,
                        ".crt -addext basicConstraints=critical,CA:TRUE"
                        " -addext keyUsage=critical,keyCertSign,cRLSign;");
  }
  static std::string MakeLeaf(const std::string& name, const std::string& ca,
                              const std::string& key) {
    return absl::StrCat("openssl req ", key, " -subj /CN=", name, " -keyout ", name, ".key -out ",
                        name, ".csr;", "openssl x509 -req -in ", name, ".csr -CA ", ca,
                        ".crt -CAkey ", ca, ".key -CAcreateserial -days 2 -extfile leaf.ext -out ",
                        name, ".crt;");
  }
};

class GuardedCoordinatorForProbe : public v1::Coordinator::Service {};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Pki::Get().ok) << "openssl could not make the test certificates in "
                               << Pki::Get().dir << " (is the openssl CLI installed?)";
  }
  std::string P(const std::string& name) { return Pki::Get().Path(name); }

  TlsOptions ServerTls(bool require_client_cert) {
    TlsOptions o;
    o.cert_file = P("server.crt");
    o.key_file = P("server.key");
    o.ca_file = P("ca.crt");
    o.require_client_cert = require_client_cert;
    return o;
  }

  std::unique_ptr<GrpcServer> StartServer(const TlsOptions& tls) {
    auto creds = MakeServerCredentials(tls);
    EXPECT_TRUE(creds.ok()) << creds.status();
    if (!creds.ok()) return nullptr;
    GrpcServerOptions options;
    options.credentials = *creds;
    auto server = GrpcServer::Start(options, {});
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  // The health status the client gets, or the gRPC error.
  absl::StatusOr<HealthCheckResponse::ServingStatus> CheckHealth(const GrpcServer& server,
                                                                 const TlsOptions& client) {
    auto creds = MakeChannelCredentials(client);
    if (!creds.ok()) return creds.status();
    auto stub = Health::NewStub(MakeChannel(absl::StrCat("localhost:", server.port()), *creds));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, HealthCheckRequest(), &resp);
    if (!s.ok()) return FromGrpcStatus(s);
    return resp.status();
  }
};

TEST_F(TlsTest, NoCertificateMeansInsecure) {
  auto server = StartServer(TlsOptions{});
  ASSERT_NE(server, nullptr);
  auto status = CheckHealth(*server, TlsOptions{});
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, HealthCheckResponse::SERVING);
}

TEST_F(TlsTest, TlsClientTrustingTheCaGetsServing) {
  auto server = StartServer(ServerTls(/*require_client_cert=*/false));
  ASSERT_NE(server, nullptr);
  TlsOptions client;
  client.ca_file = P("ca.crt");
  auto status = CheckHealth(*server, client);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, HealthCheckResponse::SERVING);
}

TEST_F(TlsTest, PlaintextClientIsRefusedByTlsServer) {
  auto server = StartServer(ServerTls(false));
  ASSERT_NE(server, nullptr);
  auto status = CheckHealth(*server, TlsOptions{});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable) << status.status();
}

TEST_F(TlsTest, ClientTrustingTheWrongCaIsRefused) {
  auto server = StartServer(ServerTls(false));
  ASSERT_NE(server, nullptr);
  TlsOptions client;
  client.ca_file = P("rogue-ca.crt");
  auto status = CheckHealth(*server, client);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable) << status.status();
}

TEST_F(TlsTest, MutualTlsRefusesClientWithoutCertificate) {
  auto server = StartServer(ServerTls(/*require_client_cert=*/true));
  ASSERT_NE(server, nullptr);
  TlsOptions client;
  client.ca_file = P("ca.crt");
  auto status = CheckHealth(*server, client);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable) << status.status();
}

TEST_F(TlsTest, MutualTlsRefusesCertificateFromAnotherCa) {
  auto server = StartServer(ServerTls(true));
  ASSERT_NE(server, nullptr);
  TlsOptions client;
  client.ca_file = P("ca.crt");
  client.cert_file = P("rogue-client.crt");
  client.key_file = P("rogue-client.key");
  auto status = CheckHealth(*server, client);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable) << status.status();
}

TEST_F(TlsTest, MutualTlsWithTheRightCertificateGetsServing) {
  auto server = StartServer(ServerTls(true));
  ASSERT_NE(server, nullptr);
  TlsOptions client;
  client.ca_file = P("ca.crt");
  client.cert_file = P("client.crt");
  client.key_file = P("client.key");
  auto status = CheckHealth(*server, client);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, HealthCheckResponse::SERVING);
}

// kubelet's native gRPC probe speaks plaintext: a mTLS server answers it on --health_port, and
// nothing but health is reachable there.
TEST_F(TlsTest, HealthProbePortAnswersPlaintextBesideAMutualTlsServer) {
  GuardedCoordinatorForProbe coordinator;
  auto creds = MakeServerCredentials(ServerTls(true));
  ASSERT_TRUE(creds.ok()) << creds.status();
  GrpcServerOptions options;
  options.credentials = *creds;
  auto server = GrpcServer::Start(options, {&coordinator});
  ASSERT_TRUE(server.ok()) << server.status();

  auto none = StartHealthProbeIfRequested(0);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  auto probe = HealthProbeServer::Start("127.0.0.1:0");
  ASSERT_TRUE(probe.ok()) << probe.status();
  const std::string target = absl::StrCat("127.0.0.1:", (*probe)->port());

  auto check = [&]() -> absl::StatusOr<HealthCheckResponse::ServingStatus> {
    auto stub = Health::NewStub(MakeChannel(target));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, HealthCheckRequest(), &resp);
    if (!s.ok()) return FromGrpcStatus(s);
    return resp.status();
  };
  auto status = check();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, HealthCheckResponse::SERVING);
  (*probe)->SetServing(false);
  status = check();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, HealthCheckResponse::NOT_SERVING);

  // The product's RPCs are not on the probe port.
  auto stub = v1::Coordinator::NewStub(MakeChannel(target));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListCrawlsResponse resp;
  EXPECT_EQ(stub->ListCrawls(&ctx, v1::ListCrawlsRequest(), &resp).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  // And the plaintext probe does not reach the mTLS port.
  EXPECT_FALSE(CheckHealth(**server, TlsOptions{}).ok());

  EXPECT_FALSE(StartHealthProbeIfRequested(70000).ok());
  EXPECT_FALSE(StartHealthProbeIfRequested(-1).ok());
}

TEST_F(TlsTest, UnreadableFilesAreNamed) {
  TlsOptions o = ServerTls(false);
  o.key_file = P("no-such.key");
  auto creds = MakeServerCredentials(o);
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.status().message().find(o.key_file), std::string::npos) << creds.status();
  EXPECT_NE(creds.status().message().find("--tls_key"), std::string::npos) << creds.status();

  TlsOptions client;
  client.ca_file = P("missing-ca.crt");
  auto channel = MakeChannelCredentials(client);
  ASSERT_FALSE(channel.ok());
  EXPECT_NE(channel.status().message().find(client.ca_file), std::string::npos);

  // A file that exists but holds no PEM.
  WriteFile(P("garbage.crt"), "not a certificate\n");
  o = ServerTls(false);
  o.cert_file = P("garbage.crt");
  creds = MakeServerCredentials(o);
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.status().message().find("garbage.crt"), std::string::npos) << creds.status();
}

TEST_F(TlsTest, IncompleteFlagCombinationsAreErrors) {
  TlsOptions o;
  o.cert_file = P("server.crt");
  EXPECT_EQ(MakeServerCredentials(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = TlsOptions{};
  o.key_file = P("server.key");
  EXPECT_EQ(MakeServerCredentials(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = TlsOptions{};
  o.require_client_cert = true;
  EXPECT_EQ(MakeServerCredentials(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = ServerTls(true);
  o.ca_file.clear();
  auto s = MakeServerCredentials(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("--tls_ca"), std::string::npos);
  TlsOptions client;
  client.ca_file = P("ca.crt");
  client.cert_file = P("client.crt");
  EXPECT_EQ(MakeChannelCredentials(client).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TlsFlags, ServerAndClientFlagsParse) {
  TlsOptions server;
  FlagSet sflags("test server", "");
  RegisterServerTlsFlags(sflags, &server);
  ASSERT_TRUE(sflags
                  .Parse({"--tls_cert=/c.pem", "--tls_key=/k.pem", "--tls_ca=/ca.pem",
                          "--tls_require_client_cert", "--health_port=7101"})
                  .ok());
  EXPECT_EQ(server.cert_file, "/c.pem");
  EXPECT_EQ(server.key_file, "/k.pem");
  EXPECT_EQ(server.ca_file, "/ca.pem");
  EXPECT_TRUE(server.require_client_cert);
  EXPECT_EQ(server.health_port, 7101);
  // The form tests/deploy reads from `--help`: `  --name=VALUE` for values, `  --name` for bools.
  EXPECT_NE(sflags.Help().find("  --tls_require_client_cert\n"), std::string::npos);
  EXPECT_NE(sflags.Help().find("  --tls_cert=VALUE "), std::string::npos);
  EXPECT_NE(sflags.Help().find("  --health_port=VALUE "), std::string::npos);

  TlsOptions client;
  FlagSet cflags("test client", "");
  RegisterClientTlsFlags(cflags, &client);
  ASSERT_TRUE(cflags.Parse({"--tls_ca", "/ca.pem", "--tls_cert=/c.pem", "--tls_key=/k.pem"}).ok());
  EXPECT_EQ(client.ca_file, "/ca.pem");
  EXPECT_EQ(client.cert_file, "/c.pem");
  EXPECT_EQ(client.key_file, "/k.pem");
  EXPECT_FALSE(cflags.Parse({"--tls_require_client_cert"}).ok());
}

TEST(SecretFile, TrimsAndNamesThePathNeverTheContent) {
  std::string dir = testing::MakeTempDir("secrets");
  WriteFile(dir + "/token", "  hf_secret_value_123\n\n");
  auto token = ReadSecretFile(dir + "/token");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "hf_secret_value_123");

  WriteFile(dir + "/empty", " \n");
  auto empty = ReadSecretFile(dir + "/empty");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find(dir + "/empty"), std::string::npos);

  auto missing = ReadSecretFile(dir + "/missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(dir + "/missing"), std::string::npos);
  EXPECT_FALSE(ReadSecretFile("").ok());
}

TEST(SecretsEqual, ComparesWholeValues) {
  EXPECT_TRUE(SecretsEqual("abc123", "abc123"));
  EXPECT_FALSE(SecretsEqual("abc123", "abc12"));
  EXPECT_FALSE(SecretsEqual("abc123", "abc1234"));
  EXPECT_FALSE(SecretsEqual("abc123", "abc124"));
  EXPECT_FALSE(SecretsEqual("abc123", ""));
  EXPECT_FALSE(SecretsEqual("", ""));           // an empty expected token never matches
  EXPECT_FALSE(SecretsEqual("abcabc", "abc"));  // repeating a prefix is not a match
}

// An operator RPC guarded by the admin token, as the coordinator guards StartCrawl.
class GuardedCoordinator : public v1::Coordinator::Service {
 public:
  explicit GuardedCoordinator(std::string token) : token_(std::move(token)) {}
  grpc::Status ListCrawls(grpc::ServerContext* context, const v1::ListCrawlsRequest*,
                          v1::ListCrawlsResponse*) override {
    if (grpc::Status s = CheckBearerTokenGrpc(*context, token_); !s.ok()) return s;
    return grpc::Status::OK;
  }

 private:
  std::string token_;
};

grpc::Status CallListCrawls(const std::string& target, const std::string& token,
                            const std::string& raw_authorization = "") {
  auto stub = v1::Coordinator::NewStub(MakeChannel(target));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!raw_authorization.empty()) {
    ctx.AddMetadata("authorization", raw_authorization);
  } else {
    AttachBearerToken(&ctx, token);
  }
  v1::ListCrawlsResponse resp;
  return stub->ListCrawls(&ctx, v1::ListCrawlsRequest(), &resp);
}

TEST(BearerToken, OperatorRpcNeedsTheAdminToken) {
  const std::string admin = "admin-7f3c9e1d2b";
  GuardedCoordinator service(admin);
  auto server = GrpcServer::Start(GrpcServerOptions{}, {&service});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string target = (*server)->dial_address();

  EXPECT_TRUE(CallListCrawls(target, admin).ok());

  const std::string wrong = "admin-7f3c9e1d2c";
  for (const grpc::Status& s :
       {CallListCrawls(target, ""), CallListCrawls(target, wrong),
        CallListCrawls(target, admin.substr(0, 8)), CallListCrawls(target, "", "Basic " + admin),
        CallListCrawls(target, "", admin)}) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
    EXPECT_EQ(s.error_message().find(admin), std::string::npos) << s.error_message();
    EXPECT_EQ(s.error_message().find(wrong), std::string::npos) << s.error_message();
    EXPECT_EQ(s.error_message().find(admin.substr(0, 8)), std::string::npos);
  }
  (*server)->Shutdown(absl::Seconds(1));
}

TEST(BearerToken, NoTokenConfiguredLetsEveryCallThrough) {
  GuardedCoordinator service("");
  auto server = GrpcServer::Start(GrpcServerOptions{}, {&service});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(CallListCrawls((*server)->dial_address(), "").ok());
  EXPECT_TRUE(CallListCrawls((*server)->dial_address(), "anything").ok());
}

}  // namespace
}  // namespace hubcensus
