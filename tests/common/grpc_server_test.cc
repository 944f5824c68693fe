#include "common/grpc_server.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/shutdown.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "hubcensus/v1/census.grpc.pb.h"
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

// Reflection over a real loopback connection, as grpcurl uses it: v1 through its generated stub,
// v1alpha through the same messages on v1alpha's method (the two are identical on the wire).
using grpc::reflection::v1::ServerReflectionRequest;
using grpc::reflection::v1::ServerReflectionResponse;

std::vector<ServerReflectionResponse> Reflect(const std::string& target, bool v1alpha,
                                              const std::vector<ServerReflectionRequest>& requests,
                                              grpc::Status* status) {
  auto channel = MakeChannel(target);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  std::unique_ptr<grpc::ClientReaderWriter<ServerReflectionRequest, ServerReflectionResponse>>
      stream;
  std::unique_ptr<grpc::reflection::v1::ServerReflection::Stub> stub;
  if (v1alpha) {
    static const grpc::internal::RpcMethod kV1Alpha(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        grpc::internal::RpcMethod::BIDI_STREAMING);
    stream.reset(grpc::internal::ClientReaderWriterFactory<
                 ServerReflectionRequest, ServerReflectionResponse>::Create(channel.get(), kV1Alpha,
                                                                            &ctx));
  } else {
    stub = grpc::reflection::v1::ServerReflection::NewStub(channel);
    stream = stub->ServerReflectionInfo(&ctx);
  }
  std::vector<ServerReflectionResponse> responses;
  for (const auto& request : requests) {
    EXPECT_TRUE(stream->Write(request));
    ServerReflectionResponse response;
    if (!stream->Read(&response)) break;
    responses.push_back(response);
  }
  stream->WritesDone();
  *status = stream->Finish();
  return responses;
}

TEST(GrpcServer, ReflectionAnswersV1AndV1AlphaAlike) {
  hubcensus::v1::Census::Service census;  // any hubcensus service: reflection must describe it
  auto server = GrpcServer::Start(GrpcServerOptions{}, {&census});
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<ServerReflectionRequest> requests(4);
  requests[0].set_list_services("");
  requests[1].set_file_containing_symbol("hubcensus.v1.Census");
  requests[2].set_file_containing_symbol("grpc.reflection.v1.ServerReflection");
  requests[3].set_file_containing_symbol("no.such.Symbol");
  std::vector<ServerReflectionResponse> answers[2];
  for (bool v1alpha : {false, true}) {
    SCOPED_TRACE(v1alpha ? "v1alpha" : "v1");
    grpc::Status status;
    auto responses = Reflect((*server)->dial_address(), v1alpha, requests, &status);
    ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
    ASSERT_EQ(responses.size(), requests.size());
    std::set<std::string> services;
    for (const auto& s : responses[0].list_services_response().service()) services.insert(s.name());
    EXPECT_EQ(services, (std::set<std::string>{
                            "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                            "grpc.reflection.v1alpha.ServerReflection", "hubcensus.v1.Census"}));
    for (int k : {1, 2}) {
      ASSERT_TRUE(responses[k].has_file_descriptor_response()) << responses[k].DebugString();
      // gRPC 1.51's v1alpha does not clear a stream's response between requests, so a later
      // answer repeats earlier files: look for the one asked for among them.
      std::set<std::string> files;
      for (const auto& bytes : responses[k].file_descriptor_response().file_descriptor_proto()) {
        google::protobuf::FileDescriptorProto file;
        ASSERT_TRUE(file.ParseFromString(bytes));
        files.insert(file.name());
      }
      EXPECT_TRUE(
          files.count(k == 1 ? "hubcensus/v1/census.proto" : "grpc/reflection/v1/reflection.proto"))
          << responses[k].DebugString();
    }
    ASSERT_TRUE(responses[3].has_error_response()) << responses[3].DebugString();
    EXPECT_EQ(responses[3].error_response().error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(responses[1].original_request().file_containing_symbol(), "hubcensus.v1.Census");
    answers[v1alpha] = std::move(responses);
  }
  for (size_t k = 0; k < requests.size(); ++k) {
    EXPECT_EQ(answers[0][k].SerializeAsString(), answers[1][k].SerializeAsString()) << k;
  }
  (*server)->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace hubcensus
