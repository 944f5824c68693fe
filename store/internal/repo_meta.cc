#include "store/internal/repo_meta.h"

#include "store/internal/store_encoding.h"

namespace hubcensus::store {

v1::RepoMeta MetaOf(const v1::RepoSnapshot& repo) {
  v1::RepoMeta meta;
  meta.set_object_id(repo.object_id());
  meta.set_author(repo.author());
  meta.set_created_at(repo.created_at());
  meta.set_created_at_placeholder(repo.created_at_placeholder());
  meta.set_last_modified(repo.last_modified());
  meta.set_pipeline_tag(repo.pipeline_tag());
  meta.set_library_name(repo.library_name());
  meta.set_is_private(repo.is_private());
  meta.set_disabled(repo.disabled());
  meta.set_gated(repo.gated());
  meta.set_sha(repo.sha());
  *meta.mutable_parents() = repo.parents();
  return meta;
}

std::string MetaBytes(const v1::RepoSnapshot& repo) {
  std::string out;
  MetaOf(repo).SerializeToString(&out);
  return out;
}

void ApplyMeta(const v1::RepoMeta& meta, v1::RepoSnapshot* repo) {
  repo->set_object_id(meta.object_id());
  repo->set_author(meta.author());
  repo->set_created_at(meta.created_at());
  repo->set_created_at_placeholder(meta.created_at_placeholder());
  repo->set_last_modified(meta.last_modified());
  repo->set_pipeline_tag(meta.pipeline_tag());
  repo->set_library_name(meta.library_name());
  repo->set_is_private(meta.is_private());
  repo->set_disabled(meta.disabled());
  repo->set_gated(meta.gated());
  repo->set_sha(meta.sha());
  *repo->mutable_parents() = meta.parents();
}

bool NextWireField(absl::string_view* in, WireField* f) {
  uint64_t key;
  if (!GetVarint(in, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return false;
  f->number = static_cast<uint32_t>(key >> 3);
  f->type = static_cast<int>(key & 7);
  switch (f->type) {
    case kVarint:
      return GetVarint(in, &f->varint);
    case kFixed64:
    case kFixed32: {
      size_t n = f->type == kFixed64 ? 8 : 4;
      if (in->size() < n) return false;
      in->remove_prefix(n);
      return true;
    }
    case kLengthDelimited: {
      uint64_t len;
      if (!GetVarint(in, &len) || len > in->size()) return false;
      f->bytes = in->substr(0, static_cast<size_t>(len));
      in->remove_prefix(static_cast<size_t>(len));
      return true;
    }
    default:  // groups (3, 4) are not used by these messages; 6 and 7 do not exist
      return false;
  }
}

absl::StatusOr<absl::string_view> ShaOfMeta(absl::string_view meta) {
  // Protobuf's rules: the last occurrence of a scalar wins.
  absl::string_view sha;
  WireField f;
  while (!meta.empty()) {
    if (!NextWireField(&meta, &f)) {
      return absl::DataLossError("repo_meta is corrupt: a malformed field");
    }
    if (f.number == v1::RepoMeta::kShaFieldNumber && f.type == kLengthDelimited) sha = f.bytes;
  }
  return sha;
}

}  // namespace hubcensus::store
