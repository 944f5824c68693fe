// Error plumbing shared by every module: absl::Status inside, grpc::Status at service edges.
#ifndef HUBCENSUS_COMMON_STATUS_H_
#define HUBCENSUS_COMMON_STATUS_H_

#include <grpcpp/support/status.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#define HC_STATUS_CONCAT_INNER_(a, b) a##b
#define HC_STATUS_CONCAT_(a, b) HC_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                \
  do {                                       \
    ::absl::Status hc_status_ = (expr);      \
    if (!hc_status_.ok()) return hc_status_; \
  } while (0)

// ASSIGN_OR_RETURN(auto x, StatusOrExpr()); returns the error, or moves the value into `lhs`.
#define ASSIGN_OR_RETURN(lhs, expr) \
  HC_ASSIGN_OR_RETURN_IMPL_(HC_STATUS_CONCAT_(hc_statusor_, __LINE__), lhs, expr)

#define HC_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                              \
  if (!statusor.ok()) return statusor.status();        \
  lhs = std::move(statusor).value()

namespace hubcensus {

// Keeps the code and the message; absl and gRPC share the canonical code numbering.
grpc::Status ToGrpcStatus(const absl::Status& status);

// A service method's answer: the value into `response`, or the error as a grpc::Status.
template <typename T>
grpc::Status ToGrpcReply(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}
absl::Status FromGrpcStatus(const grpc::Status& status);

// Prefixes the message with context ("families.textproto: ..."), keeping the code.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_STATUS_H_
