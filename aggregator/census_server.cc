#include "aggregator/census_server.h"

#include <cstdio>
#include <optional>
#include <streambuf>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown.h"
#include "common/status.h"
#include "config/family_config.h"

namespace hubcensus::aggregator {
namespace {

// An ostream's buffer that sends what is written as ExportChunks: Aggregator::Export writes to a
// stream, the RPC sends messages.
class ExportChunkBuffer final : public std::streambuf {
 public:
  static constexpr size_t kChunkBytes = 1 << 20;
  explicit ExportChunkBuffer(grpc::ServerWriterInterface<v1::ExportChunk>* writer)
      : writer_(writer) {
    buffer_.resize(kChunkBytes);
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }
  // Sends the last chunk: what is still buffered, the count, and the end mark.
  bool Finish(int64_t repos) {
    v1::ExportChunk chunk;
    chunk.set_data(pbase(), pptr() - pbase());
    chunk.set_repos(repos);
    chunk.set_last(true);
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return !failed_ && writer_->Write(chunk);
  }

 protected:
  int_type overflow(int_type c) override {
    if (!SendBuffered()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override { return SendBuffered() ? 0 : -1; }

 private:
  bool SendBuffered() {
    if (failed_) return false;
    if (pptr() > pbase()) {
      v1::ExportChunk chunk;
      chunk.set_data(pbase(), pptr() - pbase());
      // The client went away (or the call was cancelled): stop writing.
      if (!writer_->Write(chunk)) failed_ = true;
    }
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return !failed_;
  }

  grpc::ServerWriterInterface<v1::ExportChunk>* writer_;
  std::vector<char> buffer_;
  bool failed_ = false;
};

}  // namespace

grpc::Status StreamExport(Aggregator* aggregator, const v1::ExportRequest& request,
                          grpc::ServerWriterInterface<v1::ExportChunk>* writer) {
  ExportFormat format;
  switch (request.format()) {
    case v1::EXPORT_FORMAT_UNSPECIFIED:
    case v1::EXPORT_FORMAT_JSON_LINES:
      format = ExportFormat::kJsonLines;
      break;
    case v1::EXPORT_FORMAT_CSV:
      format = ExportFormat::kCsv;
      break;
    default:
      return ToGrpcStatus(
          absl::InvalidArgumentError(absl::StrCat("format: ", static_cast<int>(request.format()),
                                                  " is not an ExportFormat (JSON_LINES or CSV)")));
  }
  ExportChunkBuffer chunks(writer);
  std::ostream out(&chunks);
  absl::StatusOr<int64_t> repos = aggregator->Export(request.crawl(), format, out);
  if (!repos.ok()) return ToGrpcStatus(repos.status());
  if (!chunks.Finish(*repos)) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "export: the client stopped reading");
  }
  return grpc::Status::OK;
}

absl::StatusOr<std::unique_ptr<InProcessCensusServer>> InProcessCensusServer::Start(
    std::unique_ptr<Aggregator> aggregator) {
  std::unique_ptr<InProcessCensusServer> server(new InProcessCensusServer());
  server->aggregator_ = std::move(aggregator);
  grpc::ServerBuilder builder;
  builder.RegisterService(server->aggregator_->census_service());
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::InternalError("the in-process Census server did not start");
  }
  return server;
}

InProcessCensusServer::~InProcessCensusServer() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

std::shared_ptr<grpc::Channel> InProcessCensusServer::channel() {
  return server_->InProcessChannel(ClientChannelArguments());
}

namespace {

// The port of a host:port address, or nullopt when it has none.
std::optional<int> PortOf(const std::string& address) {
  auto colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return std::nullopt;
  }
  return port;
}

std::string HostOf(const std::string& address) { return address.substr(0, address.rfind(':')); }

}  // namespace

absl::Status ServeAggregator(const AggregatorServerOptions& o) {
  if (o.data_dir.empty()) return absl::InvalidArgumentError("--data_dir: required");
  const bool split = !o.ingest_listen.empty();
  if (split) {
    std::optional<int> ingest_port = PortOf(o.ingest_listen);
    if (!ingest_port) {
      return absl::InvalidArgumentError(
          absl::StrCat("--ingest_listen: \"", o.ingest_listen, "\" is not HOST:PORT"));
    }
    // Caught here with a message that names both flags (the second bind would fail anyway:
    // common/grpc_server.cc turns SO_REUSEPORT off).
    if (*ingest_port != 0 && PortOf(o.listen) == ingest_port) {
      return absl::InvalidArgumentError(absl::StrCat("--ingest_listen: port ", *ingest_port,
                                                     " is the --listen port; give another"));
    }
  }
  ASSIGN_OR_RETURN(v1::FamilyConfig families, LoadFamilyConfigOrDefault(o.families_file));
  AggregatorOptions ao;
  ao.data_dir = o.data_dir;
  ao.families = families;
  ASSIGN_OR_RETURN(auto agg, Aggregator::Open(ao));
  ASSIGN_OR_RETURN(auto metrics, StartMetricsIfRequested(o.metrics_port));
  ASSIGN_OR_RETURN(auto credentials, MakeServerCredentials(o.tls));
  ASSIGN_OR_RETURN(auto health, StartHealthProbeIfRequested(o.tls.health_port));

  std::unique_ptr<GrpcServer> ingest;
  std::vector<grpc::Service*> query_services = {agg->census_service()};
  if (split) {
    GrpcServerOptions io;
    io.listen_address = o.ingest_listen;
    io.credentials = credentials;
    ASSIGN_OR_RETURN(ingest, GrpcServer::Start(io, {agg->snapshot_store_service()}));
  } else {
    query_services.insert(query_services.begin(), agg->snapshot_store_service());
  }
  GrpcServerOptions so;
  so.listen_address = o.listen;
  so.credentials = credentials;
  ASSIGN_OR_RETURN(auto server, GrpcServer::Start(so, query_services));
  if (ingest) {
    std::printf("aggregator ingest listening on %s:%d\n", HostOf(o.ingest_listen).c_str(),
                ingest->port());
  }
  std::printf("aggregator listening on %s:%d\n", HostOf(o.listen).c_str(), server->port());
  std::fflush(stdout);
  HC_LOG(kInfo, "aggregator_started")
      .Field("data_dir", o.data_dir)
      .Field("port", server->port())
      .Field("ingest_port", ingest ? ingest->port() : server->port())
      .Field("families", families.family_size())
      .Field("metrics_port", metrics ? metrics->port() : 0)
      .Field("tls", !o.tls.cert_file.empty())
      .Field("mtls", o.tls.require_client_cert)
      .Field("health_port", health ? health->port() : 0);
  server->SetServing(true);
  if (ingest) ingest->SetServing(true);
  WaitForShutdown();
  HC_LOG(kInfo, "grpc_server_stopping")
      .Field("port", server->port())
      .Field("ingest_port", ingest ? ingest->port() : server->port());
  // Both listeners drain in the same grace period: a crawler's batch in flight and a query in
  // flight each get to finish.
  std::thread ingest_shutdown([&ingest] {
    if (ingest) ingest->Shutdown();
  });
  server->Shutdown();
  ingest_shutdown.join();
  if (health) health->Shutdown();
  HC_LOG(kInfo, "aggregator_stopped");
  return absl::OkStatus();
}

}  // namespace hubcensus::aggregator
