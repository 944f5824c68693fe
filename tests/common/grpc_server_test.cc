#include "common/grpc_server.h"

#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/shutdown.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/testing/metrics.h"

namespace hubcensus {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

HealthCheckResponse::ServingStatus Check(const std::string& target) {
  auto stub = Health::NewStub(MakeChannel(target));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  HealthCheckRequest req;
  HealthCheckResponse resp;
  grpc::Status s = stub->Check(&ctx, req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.status();
}

TEST(GrpcServer, ListensOnPortZeroAndAnswersHealth) {
  auto server = GrpcServer::Start(GrpcServerOptions{}, {});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT((*server)->port(), 0);
  std::string target = (*server)->dial_address();
  EXPECT_EQ(target, "127.0.0.1:" + std::to_string((*server)->port()));
  EXPECT_EQ(Check(target), HealthCheckResponse::SERVING);
  (*server)->SetServing(false);
  EXPECT_EQ(Check(target), HealthCheckResponse::NOT_SERVING);
  (*server)->Shutdown(absl::Seconds(1));
}

TEST(GrpcServer, TwoServersGetDifferentPorts) {
  auto a = GrpcServer::Start(GrpcServerOptions{}, {});
  auto b = GrpcServer::Start(GrpcServerOptions{}, {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->port(), (*b)->port());
}

double Handled(const std::string& method, const std::string& code) {
  return testing::CounterValue("hubcensus_grpc_server_handled_total",
                               {{"method", method}, {"code", code}});
}

TEST(GrpcServer, CountsEveryAnsweredRpcByMethodAndCode) {
  auto server = GrpcServer::Start(GrpcServerOptions{}, {});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string method = "/grpc.health.v1.Health/Check";
  const double ok_before = Handled(method, "OK");
  const double not_found_before = Handled(method, "NOT_FOUND");
  EXPECT_EQ(Check((*server)->dial_address()), HealthCheckResponse::SERVING);
  // A request naming a service nobody registered is refused, and counted as such.
  auto stub = Health::NewStub(MakeChannel((*server)->dial_address()));
  grpc::ClientContext ctx;
  HealthCheckRequest req;
  req.set_service("no.such.Service");
  HealthCheckResponse resp;
  EXPECT_EQ(stub->Check(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Handled(method, "OK"), ok_before + 1);
  EXPECT_EQ(Handled(method, "NOT_FOUND"), not_found_before + 1);
  (*server)->Shutdown(absl::Seconds(1));
}

TEST(GrpcServer, APortInUseIsAnErrorNotASharedPort) {
  auto a = GrpcServer::Start(GrpcServerOptions{}, {});
  ASSERT_TRUE(a.ok()) << a.status();
  GrpcServerOptions same;
  same.listen_address = absl::StrCat("127.0.0.1:", (*a)->port());
  auto b = GrpcServer::Start(same, {});
  ASSERT_FALSE(b.ok()) << "a second server bound port " << (*a)->port();
  EXPECT_NE(b.status().message().find(same.listen_address), std::string::npos) << b.status();
  EXPECT_NE(b.status().message().find("another process"), std::string::npos) << b.status();
}

TEST(GrpcServer, BadAddressIsAClearError) {
  GrpcServerOptions options;
  options.listen_address = "256.1.1.1:0";
  auto server = GrpcServer::Start(options, {});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("256.1.1.1:0"), std::string::npos);
}

TEST(GrpcServer, ShutdownRequestStopsServe) {
  ResetShutdownForTesting();
  auto server = GrpcServer::Start(GrpcServerOptions{}, {});
  ASSERT_TRUE(server.ok());
  std::thread stopper([] { RequestShutdown(); });
  (*server)->ServeUntilShutdownRequested(absl::Seconds(1));
  stopper.join();
  EXPECT_TRUE(ShutdownRequested());
  ResetShutdownForTesting();
}

}  // namespace
}  // namespace hubcensus
