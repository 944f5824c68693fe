#include "common/worker_token.h"

#include <grpcpp/support/client_interceptor.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_server.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/tls.h"

namespace hubcensus {
namespace {

prometheus::Family<prometheus::Counter>& RefusedCalls() {
  static auto* family = &prometheus::BuildCounter()
                             .Name("hubcensus_worker_token_refused_total")
                             .Help(
                                 "Worker and ingest RPCs refused for a missing or wrong worker "
                                 "token, by method")
                             .Register(*MetricsRegistry());
  return *family;
}

class BearerInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit BearerInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *header_});
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class BearerInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerInterceptorFactory(const std::string& token)
      : header_(absl::StrCat("Bearer ", token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* /*info*/) override {
    return new BearerInterceptor(&header_);
  }

 private:
  const std::string header_;  // lives as long as the channel that owns this factory
};

class SnapshotStoreGate final : public v1::SnapshotStore::Service {
 public:
  SnapshotStoreGate(v1::SnapshotStore::Service* inner, std::string token)
      : inner_(inner), token_(std::move(token)) {}

  grpc::Status Write(grpc::ServerContext* context, grpc::ServerReader<v1::WriteBatch>* reader,
                     v1::WriteResponse* response) override {
    absl::Status s = CheckWorkerToken(*context, token_, "/hubcensus.v1.SnapshotStore/Write");
    if (!s.ok()) return ToGrpcStatus(s);
    return inner_->Write(context, reader, response);
  }
  grpc::Status Commit(grpc::ServerContext* context, const v1::CommitRequest* request,
                      v1::CommitResponse* response) override {
    absl::Status s = CheckWorkerToken(*context, token_, "/hubcensus.v1.SnapshotStore/Commit");
    if (!s.ok()) return ToGrpcStatus(s);
    return inner_->Commit(context, request, response);
  }
  grpc::Status Abort(grpc::ServerContext* context, const v1::AbortRequest* request,
                     v1::AbortResponse* response) override {
    absl::Status s = CheckWorkerToken(*context, token_, "/hubcensus.v1.SnapshotStore/Abort");
    if (!s.ok()) return ToGrpcStatus(s);
    return inner_->Abort(context, request, response);
  }

 private:
  v1::SnapshotStore::Service* const inner_;
  const std::string token_;
};

absl::Mutex g_mu;
std::string* g_store_token ABSL_GUARDED_BY(g_mu) = nullptr;

}  // namespace

absl::Status CheckWorkerToken(const grpc::ServerContextBase& context, absl::string_view expected,
                              absl::string_view method) {
  if (expected.empty()) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  const char* why = nullptr;
  if (it == metadata.end()) {
    why = "no authorization metadata";
  } else {
    absl::string_view value(it->second.data(), it->second.size());
    constexpr absl::string_view kScheme = "Bearer ";
    if (value.size() < kScheme.size() ||
        !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
      why = "the authorization metadata is not a Bearer token";
    } else if (!SecretsEqual(expected, absl::StripAsciiWhitespace(value.substr(kScheme.size())))) {
      why = "the bearer token is not the worker token";
    }
  }
  if (why == nullptr) return absl::OkStatus();
  RefusedCalls().Add({{"method", std::string(method)}}).Increment();
  return absl::UnauthenticatedError(
      absl::StrCat(method, " needs the worker token (--worker_token_file on both sides): ", why));
}

void ExportWorkerTokenRefusalSeries(absl::string_view method) {
  static constexpr absl::string_view kGuarded[] = {
      "/hubcensus.v1.Coordinator/AcquireLease",  "/hubcensus.v1.Coordinator/RenewLease",
      "/hubcensus.v1.Coordinator/CompleteLease", "/hubcensus.v1.Coordinator/FailLease",
      "/hubcensus.v1.SnapshotStore/Write",       "/hubcensus.v1.SnapshotStore/Commit",
      "/hubcensus.v1.SnapshotStore/Abort"};
  for (absl::string_view guarded : kGuarded) {
    if (method == guarded) RefusedCalls().Add({{"method", std::string(method)}});
  }
}

std::shared_ptr<grpc::Channel> MakeWorkerChannel(
    const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials,
    const std::string& worker_token) {
  if (worker_token.empty()) return MakeChannel(target, std::move(credentials));
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> creators;
  creators.push_back(std::make_unique<BearerInterceptorFactory>(worker_token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      target, credentials ? credentials : grpc::InsecureChannelCredentials(),
      ClientChannelArguments(), std::move(creators));
}

std::unique_ptr<v1::SnapshotStore::Service> GateSnapshotStore(v1::SnapshotStore::Service* inner,
                                                              std::string worker_token) {
  return std::make_unique<SnapshotStoreGate>(inner, std::move(worker_token));
}

void RequireWorkerTokenForSnapshotStores(std::string worker_token) {
  absl::MutexLock lock(&g_mu);
  delete g_store_token;
  g_store_token = worker_token.empty() ? nullptr : new std::string(std::move(worker_token));
}

std::vector<grpc::Service*> ApplyProcessWorkerToken(
    const std::vector<grpc::Service*>& services,
    std::vector<std::unique_ptr<grpc::Service>>* owned) {
  std::string token;
  {
    absl::MutexLock lock(&g_mu);
    if (g_store_token == nullptr) return services;
    token = *g_store_token;
  }
  std::vector<grpc::Service*> out;
  for (grpc::Service* service : services) {
    auto* store = dynamic_cast<v1::SnapshotStore::Service*>(service);
    if (store == nullptr || dynamic_cast<SnapshotStoreGate*>(service) != nullptr) {
      out.push_back(service);
      continue;
    }
    owned->push_back(GateSnapshotStore(store, token));
    out.push_back(owned->back().get());
  }
  return out;
}

}  // namespace hubcensus
