// Every hubcensus gRPC server is built the same way: grpc.health.v1, reflection (v1 and
// v1alpha), message size limits, keepalive, port 0 in tests, graceful shutdown.
#ifndef HUBCENSUS_COMMON_GRPC_SERVER_H_
#define HUBCENSUS_COMMON_GRPC_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace hubcensus {

struct GrpcServerOptions {
  // host:port; port 0 picks a free port (see GrpcServer::port()).
  std::string listen_address = "127.0.0.1:0";
  int max_message_bytes = 64 << 20;
  absl::Duration keepalive_time = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
  // Default: insecure (loopback and tests); TLS/mTLS credentials otherwise.
  std::shared_ptr<grpc::ServerCredentials> credentials;
};

class GrpcServer {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const GrpcServerOptions& options, const std::vector<grpc::Service*>& services);
  ~GrpcServer();

  int port() const { return port_; }
  // "127.0.0.1:<port>" when listening on loopback or all addresses: what a local client dials.
  std::string dial_address() const;
  // Sets the health status of the whole server ("" service) and of each named service.
  void SetServing(bool serving);
  // Stops accepting, lets in-flight calls finish for up to `grace`, then cancels them.
  void Shutdown(absl::Duration grace = absl::Seconds(5));
  void Wait();
  // Blocks until SIGTERM/SIGINT (see common/shutdown.h), then shuts down gracefully.
  void ServeUntilShutdownRequested(absl::Duration grace = absl::Seconds(5));

 private:
  GrpcServer() = default;
  // Services this server made itself (worker-token gates, common/worker_token.h; reflection
  // v1); declared before server_ so that they outlive it.
  std::vector<std::unique_ptr<grpc::Service>> owned_services_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> service_names_;  // as registered (reflection lists the same)
  std::string host_;
  int port_ = 0;
  bool shut_down_ = false;
};

// The channel arguments of every hubcensus client channel: message limits, keepalive, and a
// reconnect backoff of 0.25 to 2 s.
grpc::ChannelArguments ClientChannelArguments(int max_message_bytes = 64 << 20);

// Client channel with the same limits; `target` is host:port.
std::shared_ptr<grpc::Channel> MakeChannel(
    const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr,
    int max_message_bytes = 64 << 20);

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_GRPC_SERVER_H_
