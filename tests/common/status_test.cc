#include "common/status.h"

#include <gtest/gtest.h>

namespace hubcensus {
namespace {

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::Status CheckEven(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return absl::OkStatus();
}

absl::StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status BothEven(int a, int b, int* calls) {
  ++*calls;
  RETURN_IF_ERROR(CheckEven(a));
  ++*calls;
  RETURN_IF_ERROR(CheckEven(b));
  ++*calls;
  return absl::OkStatus();
}

TEST(StatusMacros, AssignOrReturnPassesValuesAndErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), absl::StatusCode::kInvalidArgument);  // 6/2 = 3 is odd
  EXPECT_EQ(Quarter(5).status().message(), "odd");
}

TEST(StatusMacros, ReturnIfErrorStopsAtFirstError) {
  int calls = 0;
  EXPECT_TRUE(BothEven(2, 4, &calls).ok());
  EXPECT_EQ(calls, 3);
  calls = 0;
  EXPECT_FALSE(BothEven(1, 4, &calls).ok());
  EXPECT_EQ(calls, 1);
  calls = 0;
  EXPECT_FALSE(BothEven(2, 3, &calls).ok());
  EXPECT_EQ(calls, 2);
}

TEST(StatusConversion, KeepsCodeAndMessageBothWays) {
  for (auto code : {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
                    absl::StatusCode::kFailedPrecondition, absl::StatusCode::kUnavailable,
                    absl::StatusCode::kResourceExhausted, absl::StatusCode::kAborted}) {
    absl::Status s(code, "field crawl_id: empty");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), static_cast<int>(code));
    EXPECT_EQ(g.error_message(), "field crawl_id: empty");
    EXPECT_EQ(FromGrpcStatus(g), s);
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_EQ(Annotate(absl::NotFoundError("no such file"), "families.textproto").message(),
            "families.textproto: no such file");
}

}  // namespace
}  // namespace hubcensus
