#include "tests/coordinator/recording_store.h"

#include <set>

namespace hubcensus::testing {

grpc::Status RecordingStore::Write(grpc::ServerContext*, grpc::ServerReader<v1::WriteBatch>*,
                                   v1::WriteResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "recording store: no writes");
}

grpc::Status RecordingStore::Commit(grpc::ServerContext*, const v1::CommitRequest* request,
                                    v1::CommitResponse* response) {
  absl::MutexLock lock(&mu_);
  commits_.push_back(*request);
  if (refuse_ > 0) {
    --refuse_;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "manifest does not match the write markers of item createdAt/p000001");
  }
  int64_t repos = 0;
  for (const auto& e : request->manifest()) repos += e.repos();
  response->set_repos(repos);
  response->set_families(3);
  return grpc::Status::OK;
}

grpc::Status RecordingStore::Abort(grpc::ServerContext*, const v1::AbortRequest* request,
                                   v1::AbortResponse*) {
  absl::MutexLock lock(&mu_);
  aborts_.push_back(*request);
  return grpc::Status::OK;
}

void RecordingStore::RefuseNextCommits(int n) {
  absl::MutexLock lock(&mu_);
  refuse_ = n;
}

std::vector<v1::CommitRequest> RecordingStore::commits() {
  absl::MutexLock lock(&mu_);
  return commits_;
}

std::vector<v1::AbortRequest> RecordingStore::aborts() {
  absl::MutexLock lock(&mu_);
  return aborts_;
}

}  // namespace hubcensus::testing
