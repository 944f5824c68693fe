// The deadline of one outgoing gRPC call, set one way everywhere: from an absl::Duration, on the
// real clock (a call's deadline is about a socket, not a crawl's possibly simulated time).
#ifndef HUBCENSUS_COMMON_RPC_DEADLINE_H_
#define HUBCENSUS_COMMON_RPC_DEADLINE_H_

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/time/time.h"

namespace hubcensus {

enum class WaitForReady { kNo, kYes };

// `timeout` from now. WaitForReady::kYes: a channel that is (re)connecting is waited for up to
// the deadline instead of failing the call at once (a peer that is restarting).
inline void SetRpcDeadline(grpc::ClientContext* context, absl::Duration timeout,
                           WaitForReady wait = WaitForReady::kNo) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  if (wait == WaitForReady::kYes) context->set_wait_for_ready(true);
}

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_RPC_DEADLINE_H_
