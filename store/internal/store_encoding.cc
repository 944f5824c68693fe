#include "store/internal/store_encoding.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace hubcensus::store {

void PutBigEndian32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}

void PutBigEndian64(std::string* out, uint64_t v) {
  PutBigEndian32(out, static_cast<uint32_t>(v >> 32));
  PutBigEndian32(out, static_cast<uint32_t>(v));
}

uint32_t GetBigEndian32(absl::string_view in) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

uint64_t GetBigEndian64(absl::string_view in) {
  return (uint64_t{GetBigEndian32(in)} << 32) | GetBigEndian32(in.substr(4));
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(absl::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0, i = 0; i < 10; ++i, shift += 7) {
    if (static_cast<size_t>(i) >= in->size()) return false;
    auto byte = static_cast<unsigned char>((*in)[i]);
    result |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) {
      in->remove_prefix(i + 1);
      *v = result;
      return true;
    }
  }
  return false;
}

std::string CrawlPrefix(uint32_t crawl_number) {
  std::string k;
  PutBigEndian32(&k, crawl_number);
  return k;
}

std::string SnapshotKey(uint32_t crawl_number, absl::string_view repo_id) {
  std::string k = CrawlPrefix(crawl_number);
  k.append(repo_id.data(), repo_id.size());
  return k;
}

std::string RepoMetaKey(absl::string_view repo_id, uint32_t crawl_number) {
  std::string k(repo_id.data(), repo_id.size());
  k.push_back('\0');
  PutBigEndian32(&k, crawl_number);
  return k;
}

std::string MarkerItemPrefix(uint32_t crawl_number, absl::string_view item_id) {
  std::string k = CrawlPrefix(crawl_number);
  k.push_back('m');
  k.append(item_id.data(), item_id.size());
  k.push_back('\0');
  return k;
}

std::string MarkerKey(uint32_t crawl_number, absl::string_view item_id, uint64_t fence) {
  std::string k = MarkerItemPrefix(crawl_number, item_id);
  PutBigEndian64(&k, fence);
  return k;
}

std::string CrawlRecordKey(absl::string_view crawl_id) {
  return absl::StrCat(kCrawlRecordPrefix, crawl_id);
}

std::string RollupKey(uint32_t crawl_number, absl::string_view name) {
  std::string k = CrawlPrefix(crawl_number);
  k.append(name.data(), name.size());
  return k;
}

namespace {
constexpr uint64_t kHasDownloadsAllTime = 1;
constexpr uint64_t kTrendingIsDouble = 2;
constexpr uint64_t kHasSeenSequence = 4;  // a varint after the writers
}  // namespace

std::string EncodeSnapshotCounters(const SnapshotCounters& c, uint32_t crawl_number) {
  std::string out;
  out.reserve(16);
  uint64_t flags = 0;
  if (c.has_downloads_all_time) flags |= kHasDownloadsAllTime;
  // Trending scores are mostly small integers; keep the exact double only when they are not.
  double integral = std::nearbyint(c.trending_score);
  bool trending_integral = integral == c.trending_score && std::fabs(integral) < 9e15;
  if (!trending_integral) flags |= kTrendingIsDouble;
  if (c.seen_sequence != 0) flags |= kHasSeenSequence;
  PutVarint(&out, flags);
  PutVarint(&out, ZigZag(static_cast<int64_t>(crawl_number) - c.meta_crawl_number));
  PutVarint(&out, ZigZag(c.downloads_30d));
  if (c.has_downloads_all_time) PutVarint(&out, ZigZag(c.downloads_all_time));
  PutVarint(&out, ZigZag(c.likes));
  if (trending_integral) {
    PutVarint(&out, ZigZag(static_cast<int64_t>(integral)));
  } else {
    uint64_t bits;
    std::memcpy(&bits, &c.trending_score, 8);
    PutBigEndian64(&out, bits);
  }
  PutVarint(&out, c.writers.size());
  for (const SnapshotWriter& w : c.writers) {
    PutVarint(&out, w.item_number);
    PutVarint(&out, w.fence);
  }
  if (c.seen_sequence != 0) PutVarint(&out, c.seen_sequence);
  return out;
}

absl::StatusOr<SnapshotCounters> DecodeSnapshotCounters(absl::string_view value,
                                                        uint32_t crawl_number) {
  SnapshotCounters c;
  uint64_t flags, v;
  auto bad = [] { return absl::DataLossError("snapshot value is truncated or corrupt"); };
  if (!GetVarint(&value, &flags)) return bad();
  if (!GetVarint(&value, &v)) return bad();
  c.meta_crawl_number = static_cast<uint32_t>(static_cast<int64_t>(crawl_number) - UnZigZag(v));
  if (!GetVarint(&value, &v)) return bad();
  c.downloads_30d = UnZigZag(v);
  if (flags & kHasDownloadsAllTime) {
    if (!GetVarint(&value, &v)) return bad();
    c.has_downloads_all_time = true;
    c.downloads_all_time = UnZigZag(v);
  }
  if (!GetVarint(&value, &v)) return bad();
  c.likes = UnZigZag(v);
  if (flags & kTrendingIsDouble) {
    if (value.size() < 8) return bad();
    uint64_t bits = GetBigEndian64(value);
    std::memcpy(&c.trending_score, &bits, 8);
    value.remove_prefix(8);
  } else {
    if (!GetVarint(&value, &v)) return bad();
    c.trending_score = static_cast<double>(UnZigZag(v));
  }
  uint64_t n;
  if (!GetVarint(&value, &n) || n > 1024) return bad();
  c.writers.resize(n);
  for (auto& w : c.writers) {
    if (!GetVarint(&value, &v)) return bad();
    w.item_number = static_cast<uint32_t>(v);
    if (!GetVarint(&value, &w.fence)) return bad();
  }
  if (flags & kHasSeenSequence) {
    if (!GetVarint(&value, &c.seen_sequence)) return bad();
  }
  return c;
}

}  // namespace hubcensus::store
