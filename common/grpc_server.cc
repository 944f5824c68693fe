#include "common/grpc_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>
#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/sync_stream.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/status.h"
#include "common/worker_token.h"
#include "google/protobuf/descriptor.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"

namespace hubcensus {
namespace {

prometheus::Family<prometheus::Counter>& HandledRpcs() {
  static auto* family = &prometheus::BuildCounter()
                             .Name("hubcensus_grpc_server_handled_total")
                             .Help(
                                 "RPCs answered by this process's gRPC servers, by method and "
                                 "status code (INVALID_ARGUMENT: a bad request)")
                             .Register(*MetricsRegistry());
  return *family;
}

// Counts every RPC a server answers by its status, so that refused requests (bad arguments, no
// token) are visible in Prometheus, whichever service refused them.
class CountingInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit CountingInterceptor(grpc::experimental::ServerRpcInfo* info) : method_(info->method()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      HandledRpcs()
          .Add({{"method", method_},
                {"code", std::string(absl::StatusCodeToString(FromGrpcStatus(status).code()))}})
          .Increment();
    }
    methods->Proceed();
  }

 private:
  std::string method_;
};

class CountingInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CountingInterceptor(info);
  }
};

// Records the names of the services a server registers: gRPC hands them only to builder plugins
// (as it does to the reflection plugin), and this option adds one to a single builder.
class ServiceNamesOption : public grpc::ServerBuilderOption {
 public:
  explicit ServiceNamesOption(std::vector<std::string>* names) : names_(names) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<Plugin>(names_));
  }

 private:
  class Plugin : public grpc::ServerBuilderPlugin {
   public:
    explicit Plugin(std::vector<std::string>* names) : names_(names) {}
    std::string name() override { return "hubcensus_service_names"; }
    void InitServer(grpc::ServerInitializer*) override {}
    void Finish(grpc::ServerInitializer* initializer) override {
      *names_ = *initializer->GetServiceList();
    }
    void ChangeArguments(const std::string&, void*) override {}
    bool has_sync_methods() const override { return false; }
    bool has_async_methods() const override { return false; }

   private:
    std::vector<std::string>* names_;
  };
  std::vector<std::string>* names_;
};

// Every series a server's RPCs count into, at 0 from the start (so rates and alerts see them):
// the OK answers of each method it serves, and the worker token's refusals of guarded ones.
void ExportServedMethodSeries(const std::vector<std::string>& services) {
  for (const std::string& service : services) {
    const auto* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    for (int k = 0; descriptor != nullptr && k < descriptor->method_count(); ++k) {
      std::string method = absl::StrCat("/", service, "/", descriptor->method(k)->name());
      HandledRpcs().Add({{"method", method}, {"code", "OK"}});
      ExportWorkerTokenRefusalSeries(method);
    }
  }
}

// Serves grpc.reflection.v1 (what current clients such as grpcurl ask first) by forwarding each
// stream to the same server's grpc.reflection.v1alpha service, which gRPC 1.51's grpc++_reflection
// provides and which holds the descriptor logic: the two versions are the same messages on the
// wire, so requests and responses pass through unchanged and the answers cannot differ.
class ReflectionV1Forwarder final : public grpc::reflection::v1::ServerReflection::Service {
 public:
  // The in-process channel to the server this service is registered on, once it has started.
  void SetServer(std::shared_ptr<grpc::Channel> channel) {
    absl::MutexLock lock(&mu_);
    channel_ = std::move(channel);
  }

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<grpc::reflection::v1::ServerReflectionResponse,
                               grpc::reflection::v1::ServerReflectionRequest>* stream) override {
    std::shared_ptr<grpc::Channel> channel;
    {
      absl::MutexLock lock(&mu_);
      channel = channel_;
    }
    if (channel == nullptr) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "reflection v1: the server is starting");
    }
    static const grpc::internal::RpcMethod kV1Alpha(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        grpc::internal::RpcMethod::BIDI_STREAMING);
    grpc::ClientContext v1alpha_context;
    v1alpha_context.set_deadline(context->deadline());
    std::unique_ptr<grpc::ClientReaderWriter<grpc::reflection::v1::ServerReflectionRequest,
                                             grpc::reflection::v1::ServerReflectionResponse>>
        v1alpha(grpc::internal::ClientReaderWriterFactory<
                grpc::reflection::v1::ServerReflectionRequest,
                grpc::reflection::v1::ServerReflectionResponse>::Create(channel.get(), kV1Alpha,
                                                                        &v1alpha_context));
    grpc::reflection::v1::ServerReflectionRequest request;
    grpc::reflection::v1::ServerReflectionResponse response;
    // v1alpha answers each request with exactly one response, in order.
    while (stream->Read(&request)) {
      if (context->IsCancelled() || !v1alpha->Write(request) || !v1alpha->Read(&response)) break;
      if (!stream->Write(response)) break;
    }
    if (context->IsCancelled()) v1alpha_context.TryCancel();
    v1alpha->WritesDone();
    grpc::Status status = v1alpha->Finish();
    // A client that simply closed its side ends v1alpha's stream OK; pass on anything else.
    return status;
  }

 private:
  absl::Mutex mu_;
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(
    const GrpcServerOptions& options, const std::vector<grpc::Service*>& services) {
  static const bool once = [] {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    return true;
  }();
  (void)once;

  std::unique_ptr<GrpcServer> out(new GrpcServer());
  grpc::ServerBuilder builder;
  auto creds = options.credentials ? options.credentials : grpc::InsecureServerCredentials();
  builder.AddListeningPort(options.listen_address, creds, &out->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time)));
  builder.AddChannelArgument(
      GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
      static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // gRPC sets SO_REUSEPORT by default, which lets a second server bind a port another process
  // serves and silently split its connections: a taken port must be an error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> counting;
  counting.push_back(std::make_unique<CountingInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(counting));
  builder.SetOption(std::make_unique<ServiceNamesOption>(&out->service_names_));
  for (grpc::Service* s : ApplyProcessWorkerToken(services, &out->owned_services_)) {
    builder.RegisterService(s);
  }
  // Reflection v1 beside the plugin's v1alpha, ungated like it.
  auto reflection_v1 = std::make_unique<ReflectionV1Forwarder>();
  ReflectionV1Forwarder* reflection_v1_service = reflection_v1.get();
  builder.RegisterService(reflection_v1_service);
  out->owned_services_.push_back(std::move(reflection_v1));
  out->server_ = builder.BuildAndStart();
  if (out->server_ == nullptr || out->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("gRPC server: cannot listen on ", options.listen_address,
                     " (a bad address, or a port another process is using)"));
  }
  reflection_v1_service->SetServer(out->server_->InProcessChannel(grpc::ChannelArguments()));
  ExportServedMethodSeries(out->service_names_);
  auto colon = options.listen_address.rfind(':');
  out->host_ = options.listen_address.substr(0, colon);
  out->SetServing(true);
  return out;
}

GrpcServer::~GrpcServer() {
  if (server_ != nullptr && !shut_down_) Shutdown(absl::ZeroDuration());
}

std::string GrpcServer::dial_address() const {
  std::string host = host_;
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "localhost") {
    host = "127.0.0.1";
  }
  return absl::StrCat(host, ":", port_);
}

void GrpcServer::SetServing(bool serving) {
  if (server_ == nullptr) return;
  auto* health = server_->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(serving);
}

void GrpcServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  SetServing(false);
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
  server_->Wait();
}

void GrpcServer::Wait() { server_->Wait(); }

void GrpcServer::ServeUntilShutdownRequested(absl::Duration grace) {
  WaitForShutdown();
  HC_LOG(kInfo, "grpc_server_stopping").Field("port", port_);
  Shutdown(grace);
}

grpc::ChannelArguments ClientChannelArguments(int max_message_bytes) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_message_bytes);
  args.SetMaxSendMessageSize(max_message_bytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // gRPC's default reconnect backoff grows to 120 s, so a peer restarted after a minute's
  // outage was reached only a minute later. Peers here restart in seconds: retry every 0.25 to
  // 2 s (with gRPC's jitter) instead.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return args;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           std::shared_ptr<grpc::ChannelCredentials> credentials,
                                           int max_message_bytes) {
  grpc::ChannelArguments args = ClientChannelArguments(max_message_bytes);
  return grpc::CreateCustomChannel(
      target, credentials ? credentials : grpc::InsecureChannelCredentials(), args);
}

}  // namespace hubcensus
