// The worker token (--worker_token_file): crawler workers and the coordinator send
// `authorization: Bearer <token>` with worker RPCs (AcquireLease, RenewLease, CompleteLease,
// FailLease) and store ingest (Write, Commit, Abort); servers given the token refuse calls
// without it, so a client that can merely reach a port can neither fail a crawl nor forge its
// data. The token is never logged nor put in an error message.
#ifndef HUBCENSUS_COMMON_WORKER_TOKEN_H_
#define HUBCENSUS_COMMON_WORKER_TOKEN_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "hubcensus/v1/store.grpc.pb.h"

namespace hubcensus {

// Server side. OK when `expected` is empty (no token configured) or the call carries it;
// UNAUTHENTICATED otherwise, counted in hubcensus_worker_token_refused_total{method}, with a
// message that names neither the expected token nor the one sent.
absl::Status CheckWorkerToken(const grpc::ServerContextBase& context, absl::string_view expected,
                              absl::string_view method);

// The refusal series of `method` ("/package.Service/Method"), at 0, when it is one of the
// methods the worker token guards; GrpcServer::Start calls it for every method it serves, so the
// series exist from the start whether or not a token is configured.
void ExportWorkerTokenRefusalSeries(absl::string_view method);

// Client side: a channel like MakeChannel's (limits, quick reconnects) whose every call carries
// `authorization: Bearer <token>` (a client interceptor: unlike gRPC call credentials it works on
// a plaintext loopback channel as on TLS). Without a token: MakeChannel.
std::shared_ptr<grpc::Channel> MakeWorkerChannel(
    const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials,
    const std::string& worker_token);

// The snapshot store's ingest behind the worker token: Write, Commit and Abort are answered by
// `inner` only for calls that carry the token. `inner` must outlive the gate.
std::unique_ptr<v1::SnapshotStore::Service> GateSnapshotStore(v1::SnapshotStore::Service* inner,
                                                              std::string worker_token);

// For a process whose store server is built by code that does not know the token (the aggregator
// command: aggregator::ServeAggregator): every GrpcServer started afterwards serves each
// SnapshotStore service it is given behind GateSnapshotStore. Call once, before servers start.
void RequireWorkerTokenForSnapshotStores(std::string worker_token);
// Used by GrpcServer::Start: the services to register, with SnapshotStore services gated when
// RequireWorkerTokenForSnapshotStores was called; the gates made are added to `owned`.
std::vector<grpc::Service*> ApplyProcessWorkerToken(
    const std::vector<grpc::Service*>& services,
    std::vector<std::unique_ptr<grpc::Service>>* owned);

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_WORKER_TOKEN_H_
