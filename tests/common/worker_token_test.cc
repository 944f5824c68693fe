// The worker token on a real loopback gRPC server: the store's ingest behind GateSnapshotStore,
// a client channel that sends the token, and the process-wide gate the aggregator command uses.
#include "common/worker_token.h"

#include <gtest/gtest.h>

#include "common/grpc_server.h"
#include "tests/testing/metrics.h"

namespace hubcensus {
namespace {

// Answers Abort with OK and counts the calls that got through.
class CountingStore final : public v1::SnapshotStore::Service {
 public:
  grpc::Status Abort(grpc::ServerContext*, const v1::AbortRequest*, v1::AbortResponse*) override {
    ++aborts;
    return grpc::Status::OK;
  }
  int aborts = 0;
};

grpc::Status CallAbort(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::SnapshotStore::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::AbortRequest request;
  request.set_crawl_id("crawl-2025-10-31");
  v1::AbortResponse response;
  return stub->Abort(&context, request, &response);
}

TEST(WorkerToken, TheStoreAnswersOnlyCallsThatCarryTheToken) {
  CountingStore store;
  auto gate = GateSnapshotStore(&store, "w0rker-token");
  auto server = GrpcServer::Start({}, {gate.get()});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->dial_address();
  const double refused_before = testing::CounterValue(
      "hubcensus_worker_token_refused_total", {{"method", "/hubcensus.v1.SnapshotStore/Abort"}});
  for (const auto& channel : {MakeChannel(address), MakeWorkerChannel(address, nullptr, "wrong")}) {
    grpc::Status s = CallAbort(channel);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
    EXPECT_NE(s.error_message().find("worker token"), std::string::npos) << s.error_message();
    EXPECT_EQ(s.error_message().find("w0rker"), std::string::npos) << s.error_message();
    EXPECT_EQ(s.error_message().find("wrong"), std::string::npos) << s.error_message();
  }
  EXPECT_EQ(store.aborts, 0);
  EXPECT_EQ(testing::CounterValue("hubcensus_worker_token_refused_total",
                                  {{"method", "/hubcensus.v1.SnapshotStore/Abort"}}),
            refused_before + 2);
  // Plaintext loopback, as `local` runs: the interceptor sends the token without TLS.
  EXPECT_TRUE(CallAbort(MakeWorkerChannel(address, nullptr, "w0rker-token")).ok());
  EXPECT_EQ(store.aborts, 1);
}

TEST(WorkerToken, WithoutATokenNothingIsChecked) {
  EXPECT_TRUE(CheckWorkerToken(grpc::ServerContext(), "", "/x/Y").ok());
}

TEST(WorkerToken, TheProcessWideGateCoversStoresStartedAfterIt) {
  CountingStore store;
  RequireWorkerTokenForSnapshotStores("process-token");
  auto server = GrpcServer::Start({}, {&store});
  RequireWorkerTokenForSnapshotStores("");
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->dial_address();
  EXPECT_EQ(CallAbort(MakeChannel(address)).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(CallAbort(MakeWorkerChannel(address, nullptr, "process-token")).ok());
  EXPECT_EQ(store.aborts, 1);
  // A server started after the gate was lifted serves the store as it is.
  CountingStore open_store;
  auto open_server = GrpcServer::Start({}, {&open_store});
  ASSERT_TRUE(open_server.ok());
  EXPECT_TRUE(CallAbort(MakeChannel((*open_server)->dial_address())).ok());
}

}  // namespace
}  // namespace hubcensus
