// Security between services: TLS and mutual TLS for every gRPC server and channel, chosen by
// flags, and bearer tokens for operator RPCs. Insecure only when no certificate is given.
#ifndef HUBCENSUS_COMMON_TLS_H_
#define HUBCENSUS_COMMON_TLS_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/flags.h"

namespace hubcensus {

// Paths to PEM files (a Kubernetes Secret mounted as files), and whether a server demands a
// client certificate. Empty paths mean "not given".
struct TlsOptions {
  // This process's certificate chain and private key: a server's identity, and a client's when
  // it presents one for mTLS.
  std::string cert_file;
  std::string key_file;
  // The CA bundle that signs the peer: a client verifies the server with it; a server verifies
  // client certificates with it.
  std::string ca_file;
  // Server only: refuse every client that does not present a certificate signed by ca_file.
  bool require_client_cert = false;
  // Server only: a plaintext port that serves grpc.health.v1 and nothing else, for kubelet's
  // native gRPC probes, which cannot speak TLS. 0: none (probe the serving port instead).
  int64_t health_port = 0;
};

// Servers: --tls_cert, --tls_key, --tls_ca, --tls_require_client_cert, --health_port. A process
// that is both a server and a client (the coordinator calls the store) registers these only and
// passes the same TlsOptions to MakeChannelCredentials, so one certificate serves both directions.
void RegisterServerTlsFlags(FlagSet& flags, TlsOptions* options);
// Clients: --tls_ca (turns TLS on), --tls_cert and --tls_key (a client certificate for mTLS).
void RegisterClientTlsFlags(FlagSet& flags, TlsOptions* options);

// Insecure credentials when no cert_file is given; TLS with cert_file + key_file; mTLS when
// require_client_cert (which needs ca_file). An error names the file that could not be read or
// the flag that is missing.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options);
// Insecure when neither ca_file nor cert_file is given; otherwise TLS that verifies the server
// against ca_file (the system roots when ca_file is empty) and presents cert_file/key_file when
// given.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsOptions& options);

// Reads a secret (token) file and strips surrounding whitespace (Kubernetes Secrets often end in
// a newline). Errors name the path, never the content; an empty secret is an error.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

// Server side of a bearer token: OK when the call carries `authorization: Bearer <expected>`,
// compared in constant time. UNAUTHENTICATED otherwise, with a message that contains neither the
// expected token nor the one sent. An empty `expected` means no token is configured: every call
// passes (ReadSecretFile never returns an empty token).
absl::Status CheckBearerToken(const grpc::ServerContextBase& context, absl::string_view expected);
// grpc::Status form for service handlers: `if (auto s = CheckBearerTokenGrpc(*ctx, token_);
// !s.ok()) return s;`.
grpc::Status CheckBearerTokenGrpc(const grpc::ServerContextBase& context,
                                  absl::string_view expected);
// Client side: adds `authorization: Bearer <token>` to the call (nothing when token is empty).
void AttachBearerToken(grpc::ClientContext* context, absl::string_view token);

// Kubelet's gRPC probes speak plaintext only, so a TLS server answers them on a second port that
// serves grpc.health.v1 and nothing else (no RPC of the product is reachable there).
class HealthProbeServer {
 public:
  // Listens on 0.0.0.0:<port> (port 0 picks a free one; see port()). SERVING at start.
  static absl::StatusOr<std::unique_ptr<HealthProbeServer>> Start(
      const std::string& listen_address);
  ~HealthProbeServer();
  int port() const { return port_; }
  // Mirror the main server: call with the same value as GrpcServer::SetServing.
  void SetServing(bool serving);
  void Shutdown();

 private:
  HealthProbeServer() = default;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// nullptr when health_port is 0 (TlsOptions::health_port); otherwise a HealthProbeServer on
// 0.0.0.0:health_port.
absl::StatusOr<std::unique_ptr<HealthProbeServer>> StartHealthProbeIfRequested(int64_t health_port);

// Constant-time equality of two secrets (time depends only on the length of `expected`).
bool SecretsEqual(absl::string_view expected, absl::string_view actual);

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_TLS_H_
