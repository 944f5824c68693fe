// The repo_meta value of a repo (a serialised v1::RepoMeta) and the protobuf wire reader that
// takes single fields out of it without a message object: a commit reads 2.2M of them.
#ifndef HUBCENSUS_STORE_INTERNAL_REPO_META_H_
#define HUBCENSUS_STORE_INTERNAL_REPO_META_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "hubcensus/v1/repo.pb.h"

namespace hubcensus::store {

// The slowly changing part of `repo`: every field but the id and the daily counters.
v1::RepoMeta MetaOf(const v1::RepoSnapshot& repo);
// MetaOf(repo), serialised: what column family repo_meta holds.
std::string MetaBytes(const v1::RepoSnapshot& repo);
// Sets the fields of `repo` that `meta` holds (the id and counters are left as they are).
void ApplyMeta(const v1::RepoMeta& meta, v1::RepoSnapshot* repo);

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// One field of a protobuf message in wire format: its number, its wire type and its payload (the
// value of a varint, or the bytes of a length-delimited field).
struct WireField {
  uint32_t number = 0;
  int type = 0;
  uint64_t varint = 0;
  absl::string_view bytes;
};

// Reads the next field from the front of `in`; false on a malformed or truncated encoding.
bool NextWireField(absl::string_view* in, WireField* f);

// The sha of a serialised RepoMeta (empty when it has none), without parsing the rest. DataLoss
// when `meta` is malformed.
absl::StatusOr<absl::string_view> ShaOfMeta(absl::string_view meta);

}  // namespace hubcensus::store

#endif  // HUBCENSUS_STORE_INTERNAL_REPO_META_H_
