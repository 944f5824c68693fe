#include "common/tls.h"

#include <grpcpp/health_check_service_interface.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace hubcensus {
namespace {

// Reads a whole file; `what` names the flag the path came from, for the error.
absl::StatusOr<std::string> ReadFileNamed(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(what, ": cannot read file ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat(what, ": error while reading file ", path));
  }
  return content.str();
}

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  ASSIGN_OR_RETURN(std::string pem, ReadFileNamed(path, flag));
  if (!absl::StrContains(pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": file ", path, " holds no PEM block (-----BEGIN ...)"));
  }
  return pem;
}

}  // namespace

void RegisterServerTlsFlags(FlagSet& flags, TlsOptions* options) {
  flags.String("tls_cert", &options->cert_file,
               "PEM certificate chain of this server; turns TLS on (with --tls_key)");
  flags.String("tls_key", &options->key_file, "PEM private key of --tls_cert");
  flags.String("tls_ca", &options->ca_file,
               "PEM CA bundle that signs client certificates (mTLS) and, for this process's own "
               "calls, the servers it dials");
  flags.Bool("tls_require_client_cert", &options->require_client_cert,
             "refuse clients without a certificate signed by --tls_ca (mTLS)");
  flags.Int("health_port", &options->health_port,
            "plaintext port serving only grpc.health.v1, for kubelet probes (0: off)");
}

void RegisterClientTlsFlags(FlagSet& flags, TlsOptions* options) {
  flags.String("tls_ca", &options->ca_file,
               "PEM CA bundle that signs the server's certificate; turns TLS on");
  flags.String("tls_cert", &options->cert_file,
               "PEM client certificate presented to servers that require one (mTLS)");
  flags.String("tls_key", &options->key_file, "PEM private key of --tls_cert");
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options) {
  if (options.cert_file.empty()) {
    if (!options.key_file.empty()) {
      return absl::InvalidArgumentError("--tls_key is set without --tls_cert");
    }
    if (options.require_client_cert) {
      return absl::InvalidArgumentError(
          "--tls_require_client_cert needs TLS: set --tls_cert, --tls_key and --tls_ca");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert is set without --tls_key");
  }
  if (options.require_client_cert && options.ca_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_require_client_cert needs --tls_ca (the CA that signs client certificates)");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(options.cert_file, "--tls_cert"));
  ASSIGN_OR_RETURN(pair.private_key, ReadPem(options.key_file, "--tls_key"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.ca_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(options.ca_file, "--tls_ca"));
  }
  if (options.require_client_cert) {
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  } else if (!options.ca_file.empty()) {
    // A CA without the requirement: verify a certificate when a client offers one.
    ssl.client_certificate_request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  } else {
    ssl.client_certificate_request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  }
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsOptions& options) {
  if (options.ca_file.empty() && options.cert_file.empty()) {
    if (!options.key_file.empty()) {
      return absl::InvalidArgumentError("--tls_key is set without --tls_cert");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(options.cert_file.empty()
                                          ? "--tls_key is set without --tls_cert"
                                          : "--tls_cert is set without --tls_key");
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(options.ca_file, "--tls_ca"));
  }
  if (!options.cert_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPem(options.cert_file, "--tls_cert"));
    ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPem(options.key_file, "--tls_key"));
  }
  return grpc::SslCredentials(ssl);
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("secret file: no path given");
  ASSIGN_OR_RETURN(std::string content, ReadFileNamed(path, "secret"));
  std::string secret(absl::StripAsciiWhitespace(content));
  if (secret.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("secret file ", path, " is empty"));
  }
  return secret;
}

bool SecretsEqual(absl::string_view expected, absl::string_view actual) {
  // Touch every byte of `expected` whatever `actual` holds, and fold the length difference in,
  // so the time taken says nothing about how many leading bytes matched.
  unsigned char diff = expected.size() == actual.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    unsigned char a = static_cast<unsigned char>(expected[i]);
    unsigned char b = actual.empty() ? 0 : static_cast<unsigned char>(actual[i % actual.size()]);
    diff |= a ^ b;
  }
  return diff == 0 && !expected.empty();
}

absl::Status CheckBearerToken(const grpc::ServerContextBase& context, absl::string_view expected) {
  if (expected.empty()) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "this RPC needs an admin token: authorization metadata missing");
  }
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kScheme = "Bearer ";
  if (value.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError("authorization metadata is not a Bearer token");
  }
  if (!SecretsEqual(expected, absl::StripAsciiWhitespace(value.substr(kScheme.size())))) {
    return absl::UnauthenticatedError("the bearer token is not the admin token");
  }
  return absl::OkStatus();
}

grpc::Status CheckBearerTokenGrpc(const grpc::ServerContextBase& context,
                                  absl::string_view expected) {
  return ToGrpcStatus(CheckBearerToken(context, expected));
}

absl::StatusOr<std::unique_ptr<HealthProbeServer>> HealthProbeServer::Start(
    const std::string& listen_address) {
  // The default health service is process-wide: every server built after this has it, and a
  // server with no other service exposes nothing but health (and reflection of it).
  grpc::EnableDefaultHealthCheckService(true);
  std::unique_ptr<HealthProbeServer> out(new HealthProbeServer());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen_address, grpc::InsecureServerCredentials(), &out->port_);
  out->server_ = builder.BuildAndStart();
  if (out->server_ == nullptr || out->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("health probe server: cannot listen on ", listen_address));
  }
  out->SetServing(true);
  return out;
}

HealthProbeServer::~HealthProbeServer() { Shutdown(); }

void HealthProbeServer::SetServing(bool serving) {
  if (server_ == nullptr) return;
  if (auto* health = server_->GetHealthCheckService(); health != nullptr) {
    health->SetServingStatus(serving);
  }
}

void HealthProbeServer::Shutdown() {
  if (server_ == nullptr) return;
  SetServing(false);
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
}

absl::StatusOr<std::unique_ptr<HealthProbeServer>> StartHealthProbeIfRequested(
    int64_t health_port) {
  if (health_port == 0) return std::unique_ptr<HealthProbeServer>();
  if (health_port < 0 || health_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--health_port: ", health_port, " is not a port"));
  }
  return HealthProbeServer::Start(absl::StrCat("0.0.0.0:", health_port));
}

void AttachBearerToken(grpc::ClientContext* context, absl::string_view token) {
  if (token.empty()) return;
  context->AddMetadata("authorization", absl::StrCat("Bearer ", token));
}

}  // namespace hubcensus
