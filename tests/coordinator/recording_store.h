// A real SnapshotStore gRPC service for coordinator tests that records the commits and aborts it
// receives and can refuse commits on demand (the real store is tested in tests/store).
#ifndef HUBCENSUS_TESTS_COORDINATOR_RECORDING_STORE_H_
#define HUBCENSUS_TESTS_COORDINATOR_RECORDING_STORE_H_

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "hubcensus/v1/store.grpc.pb.h"

namespace hubcensus::testing {

class RecordingStore final : public v1::SnapshotStore::Service {
 public:
  grpc::Status Write(grpc::ServerContext* context, grpc::ServerReader<v1::WriteBatch>* reader,
                     v1::WriteResponse* response) override;
  grpc::Status Commit(grpc::ServerContext* context, const v1::CommitRequest* request,
                      v1::CommitResponse* response) override;
  grpc::Status Abort(grpc::ServerContext* context, const v1::AbortRequest* request,
                     v1::AbortResponse* response) override;

  // The next `n` commits are refused with FAILED_PRECONDITION.
  void RefuseNextCommits(int n);
  std::vector<v1::CommitRequest> commits();
  std::vector<v1::AbortRequest> aborts();

 private:
  absl::Mutex mu_;
  int refuse_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::CommitRequest> commits_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::AbortRequest> aborts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hubcensus::testing

#endif  // HUBCENSUS_TESTS_COORDINATOR_RECORDING_STORE_H_
