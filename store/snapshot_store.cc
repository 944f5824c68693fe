#include "store/snapshot_store.h"

#include <malloc.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/checksum.h"
#include "common/dates.h"
#include "common/huge_pages.h"
#include "common/log.h"
#include "common/parallel.h"
#include "common/status.h"
#include "config/input_quote.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "store/internal/crawl_columns.h"
#include "store/internal/repo_meta.h"
#include "store/internal/store_encoding.h"

namespace hubcensus::store {
namespace {

constexpr absl::string_view kSchemaVersionKey = "schema_version";
constexpr const char* kCrawlsCf = "crawls";
constexpr const char* kSnapshotsCf = "snapshots";
constexpr const char* kRepoMetaCf = "repo_meta";
constexpr const char* kMarkersCf = "markers";
constexpr const char* kRollupsCf = "rollups";

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = absl::StrCat(context, ": ", s.ToString());
  if (s.IsNotFound()) return absl::NotFoundError(msg);
  // ENOSPC, or RocksDB's SstFileManager space limit: the store is full, not broken.
  if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit) {
    return absl::ResourceExhaustedError(absl::StrCat("disk full: ", msg));
  }
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return absl::UnavailableError(msg);
  }
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(msg);
  return absl::InternalError(msg);
}

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
absl::string_view ToView(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

bool StartsWith(absl::string_view s, absl::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

// What a column family holds decides its table format.
enum class CfKind {
  kSmall,      // crawl records, markers, rollups: few keys
  kDailyRows,  // the daily counters of every repo of every crawl: most of the bytes on disk
  kRepoMeta,   // repo metadata versions: looked up for every repo a crawl ingests
};

// `reader`: a query's read-only or secondary open. It keeps index blocks in the block cache and
// reads them when first needed, and has no bloom filters (below), so an open reads none of the
// filters of millions of keys (a fifth of a query's time otherwise). The writer holds its index
// and filter blocks in its table readers, as RocksDB does by default: ingest looks up every repo
// of a page, and filters in a small cache are evicted and read back, checksum and all, on most
// look-ups (a 2.2M-repo crawl ran 4x slower a page than a 0.5M one that way, with XXH3 of filter
// blocks 11% of its profile).
rocksdb::ColumnFamilyOptions CfOptions(CfKind kind, const std::shared_ptr<rocksdb::Cache>& cache,
                                       bool reader) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = reader;
  // A reader uses no table bloom filter: its queries scan ranges and look up a few keys, while
  // RocksDB reads the filter of every level-0 table at open (those of the daily rows cover
  // every repo).
  if (!reader) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  switch (kind) {
    case CfKind::kSmall:
      table.block_size = 4 * 1024;
      cf.compression = rocksdb::kLZ4Compression;
      break;
    case CfKind::kDailyRows:
      // 2.2M repos a night: 32 KB zstd blocks on every level keep a row under 40 bytes. Ingest
      // reads these only through the bloom filter (a repo written twice in one crawl).
      table.block_size = 32 * 1024;
      cf.compression = rocksdb::kZSTD;
      cf.bottommost_compression = rocksdb::kZSTD;
      cf.compression_opts.level = 3;
      break;
    case CfKind::kRepoMeta:
      // Ingest seeks every repo's versions: a block the cache misses is read and decompressed
      // for one repo, so the blocks are small and LZ4 (a few microseconds), and a small cache
      // does not turn a daily crawl into millions of 32 KB zstd decompressions.
      table.block_size = 4 * 1024;
      cf.compression = rocksdb::kLZ4Compression;
      cf.bottommost_compression = rocksdb::kZSTD;
      cf.compression_opts.level = 3;
      break;
  }
  if (kind != CfKind::kSmall) {
    // Small memtables, flushed as the crawl goes: they bound the memory a crawl holds, and what
    // the flush at commit (and an open after a crash) has left to write or replay.
    cf.write_buffer_size = 16 << 20;
    // A commit writes its column parts in 8 MB batches: with room for three memtables being
    // flushed, it does not wait on each flush (db_write_buffer_size still bounds them all).
    cf.max_write_buffer_number = 4;
    // Ingest looks up every repo of a page (earlier writers, the meta version in effect). A
    // reader's memtables hold only what it replays of the writer's log, and it looks up few keys
    // there: each memtable bloom filter (0.8 MB, zeroed when the memtable is made: six at open,
    // more at each catch-up) would cost it more than it saves.
    if (!reader) {
      cf.memtable_prefix_bloom_size_ratio = 0.05;
      cf.memtable_whole_key_filtering = true;
    }
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

std::vector<rocksdb::ColumnFamilyDescriptor> Descriptors(
    const std::shared_ptr<rocksdb::Cache>& cache, bool reader) {
  return {
      {rocksdb::kDefaultColumnFamilyName, CfOptions(CfKind::kSmall, cache, reader)},
      {kCrawlsCf, CfOptions(CfKind::kSmall, cache, reader)},
      {kSnapshotsCf, CfOptions(CfKind::kDailyRows, cache, reader)},
      {kRepoMetaCf, CfOptions(CfKind::kRepoMeta, cache, reader)},
      {kMarkersCf, CfOptions(CfKind::kSmall, cache, reader)},
      {kRollupsCf, CfOptions(CfKind::kSmall, cache, reader)},
  };
}

// Longer than any id the Hub or the coordinator makes (repo ids are at most 96 + 96 bytes).
constexpr size_t kMaxIdBytes = 1024;

absl::Status CheckId(absl::string_view field, absl::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty"));
  if (value.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", QuoteInput(value), " contains a NUL byte"));
  }
  if (value.size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", QuoteInput(value), " is over ", kMaxIdBytes, " bytes"));
  }
  return absl::OkStatus();
}

// Keeps RocksDB from resuming by itself after a background error: the store resumes on the next
// write (SnapshotStore::EnsureWritable), so that what happens when is one code path.
// It also marks the instance failed: one that failed a write is not flushed at close.
class ManualRecoveryOnly : public rocksdb::EventListener {
 public:
  explicit ManualRecoveryOnly(std::shared_ptr<std::atomic<bool>> failed)
      : failed_(std::move(failed)) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* bg_error) override {
    failed_->store(true);
    HC_LOG(kWarning, "store_background_error").Field("error", bg_error->ToString());
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }

 private:
  std::shared_ptr<std::atomic<bool>> failed_;
};

void ApplyCounters(const SnapshotCounters& c, v1::RepoSnapshot* repo) {
  repo->set_downloads_30d(c.downloads_30d);
  if (c.has_downloads_all_time) {
    repo->set_downloads_all_time(c.downloads_all_time);
  } else {
    repo->clear_downloads_all_time();
  }
  repo->set_likes(c.likes);
  repo->set_trending_score(c.trending_score);
}

// The row of `id` in `sorted` (sorted by repo id), by binary search: no index built.
std::optional<size_t> FindSorted(const CrawlSnapshot& sorted, absl::string_view id) {
  size_t lo = 0, hi = sorted.size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (sorted.id(mid) < id) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == sorted.size() || sorted.id(lo) != id) return std::nullopt;
  return lo;
}

// The stored counters of row `i` of a committed part (its writers and seen sequence are not
// kept after a commit).
SnapshotCounters StoredCounters(const CrawlSnapshot& rows, size_t i, const RowMeta& row_meta) {
  SnapshotCounters c;
  c.downloads_30d = rows.downloads_30d(i);
  c.has_downloads_all_time = rows.has_downloads_all_time(i);
  c.downloads_all_time = rows.downloads_all_time(i);
  c.likes = rows.likes(i);
  c.trending_score = row_meta.trending_score;
  c.meta_crawl_number = row_meta.meta_version;
  return c;
}

CrawlSnapshot::Counters ColumnCounters(const SnapshotCounters& c) {
  CrawlSnapshot::Counters out;
  out.downloads_30d = c.downloads_30d;
  out.has_downloads_all_time = c.has_downloads_all_time;
  out.downloads_all_time = c.downloads_all_time;
  out.likes = c.likes;
  return out;
}

std::string TempSecondaryPath() {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "hubcensus-secondary-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

// Walks one crawl's snapshot rows in repo-id order, joined with their repo_meta versions.
// Rows that `keep` refuses go to `dropped` (their keys) without a meta lookup.
// The snapshot rows of one crawl between two keys: [lower, upper).
struct RowRange {
  std::string lower;
  std::string upper;
};

RowRange WholeCrawl(uint32_t crawl_number) {
  return {CrawlPrefix(crawl_number), CrawlPrefix(crawl_number + 1)};
}

// Finds the repo_meta versions of repos visited in repo-id order (a crawl's rows or parts): one
// iterator steps forward, and seeks only when far behind.
class MetaJoin {
 public:
  MetaJoin(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta_cf,
           const rocksdb::Snapshot* snapshot) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    ro.fill_cache = false;
    it_.reset(db->NewIterator(ro, meta_cf));
  }
  // The serialised RepoMeta of `repo_id`'s version `version`; DataLoss when it is missing.
  absl::StatusOr<absl::string_view> Find(absl::string_view repo_id, uint32_t version,
                                         uint32_t crawl_number) {
    target_.assign(repo_id.data(), repo_id.size());
    target_.push_back('\0');
    PutBigEndian32(&target_, version);
    rocksdb::Slice target_slice(target_);
    int steps = 0;
    while (positioned_ && it_->Valid() && it_->key().compare(target_slice) < 0 && steps < 4) {
      it_->Next();
      ++steps;
    }
    if (!positioned_ || !it_->Valid() || it_->key().compare(target_slice) != 0) {
      it_->Seek(target_slice);
      positioned_ = true;
    }
    if (!it_->Valid() || it_->key().compare(target_slice) != 0) {
      RETURN_IF_ERROR(FromRocks(it_->status(), "repo_meta"));
      return absl::DataLossError(absl::StrCat("snapshot of ", repo_id, " in crawl number ",
                                              crawl_number, " names meta version ", version,
                                              ", which is missing"));
    }
    return ToView(it_->value());
  }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;
  bool positioned_ = false;
  std::string target_;
};

absl::Status ScanCrawlRows(
    rocksdb::DB* db, rocksdb::ColumnFamilyHandle* snapshots_cf,
    rocksdb::ColumnFamilyHandle* meta_cf, const rocksdb::Snapshot* snapshot, uint32_t crawl_number,
    const RowRange& range, const std::function<bool(const SnapshotCounters&)>& keep,
    const std::function<void(absl::string_view key)>& dropped,
    const std::function<absl::Status(absl::string_view repo_id, const SnapshotCounters&,
                                     absl::string_view meta)>& row) {
  const std::string& lower = range.lower;
  rocksdb::Slice upper_slice(range.upper);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, snapshots_cf));
  MetaJoin meta_join(db, meta_cf, snapshot);
  for (it->Seek(lower); it->Valid(); it->Next()) {
    absl::string_view key = ToView(it->key());
    absl::string_view repo_id = key.substr(4);
    auto counters = DecodeSnapshotCounters(ToView(it->value()), crawl_number);
    if (!counters.ok()) return Annotate(counters.status(), absl::StrCat("snapshot of ", repo_id));
    if (keep && !keep(*counters)) {
      if (dropped) dropped(key);
      continue;
    }
    ASSIGN_OR_RETURN(absl::string_view meta,
                     meta_join.Find(repo_id, counters->meta_crawl_number, crawl_number));
    RETURN_IF_ERROR(row(repo_id, *counters, meta));
  }
  return FromRocks(it->status(), "snapshots scan");
}

// The sizes on disk (RocksDB's estimates, memtables included) of the 256 key ranges that extend
// `prefix` by one byte; `prefix_end` is the first key after every key starting with `prefix`.
bool ChildSizes(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::string& prefix,
                const std::string& prefix_end, std::vector<uint64_t>* sizes) {
  std::vector<std::string> starts(257);
  for (int b = 0; b < 256; ++b) starts[b] = prefix + static_cast<char>(b);
  starts[256] = prefix_end;
  std::vector<rocksdb::Range> ranges(256);
  for (int b = 0; b < 256; ++b) ranges[b] = rocksdb::Range(starts[b], starts[b + 1]);
  sizes->assign(256, 0);
  rocksdb::SizeApproximationOptions options;
  options.include_memtables = true;
  options.include_files = true;
  return db->GetApproximateSizes(options, cf, ranges.data(), 256, sizes->data()).ok();
}

// Cuts one crawl's rows into up to `ranges` key ranges of about equal size on disk. Each cut is
// found by descending the key space a byte at a time (repo ids often share their first bytes, as
// "user..." namespaces do), up to twelve bytes into the repo id. One range when the crawl is
// smaller than `min_bytes` or RocksDB has no estimate.
std::vector<RowRange> SplitCrawl(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* snapshots_cf,
                                 uint32_t crawl_number, size_t ranges, int64_t min_bytes) {
  RowRange whole = WholeCrawl(crawl_number);
  if (ranges <= 1) return {whole};
  std::vector<uint64_t> sizes;
  if (!ChildSizes(db, snapshots_cf, whole.lower, whole.upper, &sizes)) return {whole};
  uint64_t total = 0;
  for (uint64_t size : sizes) total += size;
  if (total == 0 || total < static_cast<uint64_t>(std::max<int64_t>(min_bytes, 0))) {
    return {whole};
  }
  constexpr int kMaxDepth = 12;
  std::vector<RowRange> out;
  std::string from = whole.lower;
  for (size_t r = 1; r < ranges; ++r) {
    const uint64_t target = total * r / ranges;  // bytes before the cut
    std::string prefix = whole.lower, prefix_end = whole.upper;
    std::vector<uint64_t> level = sizes;
    uint64_t before = 0;  // bytes before `prefix`
    std::string cut = whole.upper;
    for (int depth = 0; depth < kMaxDepth; ++depth) {
      int b = 0;
      while (b < 255 && before + level[b] < target) before += level[b++];
      std::string child = prefix + static_cast<char>(b);
      std::string child_end = b < 255 ? prefix + static_cast<char>(b + 1) : prefix_end;
      // Cut inside this child only when it is large against a range: else at its nearer edge.
      if (depth + 1 == kMaxDepth || level[b] * ranges * 8 < total) {
        cut = (target - before) * 2 < level[b] ? child : child_end;
        break;
      }
      prefix = child;
      prefix_end = child_end;
      if (!ChildSizes(db, snapshots_cf, prefix, prefix_end, &level)) {
        cut = prefix;
        break;
      }
    }
    if (cut <= from || cut >= whole.upper) continue;
    out.push_back({from, cut});
    from = cut;
  }
  out.push_back({from, whole.upper});
  return out;
}

size_t ScanThreads(int option) {
  if (option > 0) return static_cast<size_t>(option);
  return std::min<size_t>(8, std::max(1u, std::thread::hardware_concurrency()));
}

// Reads one crawl's rows into columns, the key ranges on threads, and joins them in key order.
// Rows that `keep` refuses are not loaded; their keys go to `dropped_keys` when it is given.
absl::StatusOr<CrawlSnapshot> LoadColumns(rocksdb::DB* db,
                                          rocksdb::ColumnFamilyHandle* snapshots_cf,
                                          rocksdb::ColumnFamilyHandle* meta_cf,
                                          const rocksdb::Snapshot* snapshot, uint32_t crawl_number,
                                          size_t threads, int64_t split_min_bytes,
                                          const std::function<bool(const SnapshotCounters&)>& keep,
                                          std::vector<std::string>* dropped_keys,
                                          std::vector<uint64_t>* object_id_hashes = nullptr) {
  std::vector<RowRange> ranges =
      SplitCrawl(db, snapshots_cf, crawl_number, threads, split_min_bytes);
  std::vector<CrawlSnapshot> parts(ranges.size());
  std::vector<absl::Status> statuses(ranges.size());
  std::vector<std::vector<std::string>> dropped(ranges.size());
  std::vector<std::vector<uint64_t>> hashes(ranges.size());
  ForEachRange(ranges.size(), ranges.size(), [&](size_t r, size_t, size_t) {
    auto row = [&](absl::string_view repo_id, const SnapshotCounters& c, absl::string_view meta) {
      if (object_id_hashes == nullptr) return parts[r].AddStored(repo_id, ColumnCounters(c), meta);
      absl::string_view object_id;
      absl::Status added = parts[r].AddStored(repo_id, ColumnCounters(c), meta, &object_id);
      if (added.ok()) hashes[r].push_back(ObjectIdHash(object_id));
      return added;
    };
    auto drop = [&](absl::string_view key) { dropped[r].emplace_back(key); };
    statuses[r] = ScanCrawlRows(db, snapshots_cf, meta_cf, snapshot, crawl_number, ranges[r], keep,
                                drop, row);
  });
  for (const absl::Status& st : statuses) RETURN_IF_ERROR(st);
  CrawlSnapshot out = CrawlSnapshot::Concat(std::move(parts), ranges.size());
  if (dropped_keys != nullptr) {
    for (auto& keys : dropped) {
      for (auto& key : keys) dropped_keys->push_back(std::move(key));
    }
  }
  if (object_id_hashes != nullptr) {
    object_id_hashes->clear();
    object_id_hashes->reserve(out.size());
    for (const auto& h : hashes)
      object_id_hashes->insert(object_id_hashes->end(), h.begin(), h.end());
  }
  return out;
}

}  // namespace

uint64_t BatchIdChecksum(const v1::WriteBatch& batch) {
  RepoIdChecksum checksum;
  for (const auto& r : batch.repos()) checksum.Add(r.id());
  return checksum.value();
}

uint64_t ManifestDigest(const v1::CommitRequest& request) {
  uint64_t digest = 0;
  for (const auto& e : request.manifest()) {
    std::string line =
        absl::StrCat(e.item_id(), "\n", e.fence(), "\n", e.repos(), "\n", e.id_checksum());
    // A sum of hashes: the entry order does not matter.
    digest += Fnv1a64(line) * 0x9E3779B97F4A7C15ull + 1;
  }
  return digest;
}

// One open RocksDB instance and its column families.
struct SnapshotStore::Db {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* default_cf = nullptr;
  rocksdb::ColumnFamilyHandle* crawls = nullptr;
  rocksdb::ColumnFamilyHandle* snapshots = nullptr;
  rocksdb::ColumnFamilyHandle* repo_meta = nullptr;
  rocksdb::ColumnFamilyHandle* markers = nullptr;
  rocksdb::ColumnFamilyHandle* rollups = nullptr;
  bool read_only = false;  // RocksDB's read-only mode: an immutable picture of the files
  bool secondary = false;  // a secondary instance beside a primary
  // A write or background job of this instance failed (a full disk): no flush at close.
  std::shared_ptr<std::atomic<bool>> failed = std::make_shared<std::atomic<bool>>(false);

  // Starts flushing every column family's memtable (`wait`: and waits for it). Every
  // acknowledged write is in the WAL already; the flush is for the next open, which would
  // otherwise replay the WAL (seconds for a 2.2M-repo crawl) before its first answer.
  rocksdb::Status FlushAll(bool wait) {
    rocksdb::FlushOptions fo;
    fo.wait = wait;
    fo.allow_write_stall = true;
    return db->Flush(fo, handles);
  }

  // After a commit: writes every column family's memtable into table files and waits, so that
  // an open after a crash (or a `--data_dir` query beside this process) finds the committed crawl
  // in table files instead of replaying it from the WAL. Skipped once a write or background job
  // failed: a full disk keeps the WAL in charge until the store reopens. Waited rather than
  // started: a RocksDB 7.8 secondary that catches up while a flush is half done can miss the
  // commit (SnapshotStoreTest.SecondaryReadsBesideTheWriter saw it), and a flush that fails for
  // want of space beside a failed WAL append leaves RocksDB's writer in a state it asserts on.
  void FlushAfterCommit() {
    if (read_only || secondary || failed->load()) return;
    rocksdb::Status flushed = FlushAll(/*wait=*/true);
    if (!flushed.ok())
      HC_LOG(kWarning, "store_flush_after_commit").Field("error", flushed.ToString());
  }

  ~Db() {
    if (db == nullptr) return;
    if (!read_only && !secondary && !failed->load()) {
      rocksdb::Status flushed = FlushAll(/*wait=*/true);
      // A full disk: the WAL still holds everything; the next open replays it.
      if (!flushed.ok())
        HC_LOG(kWarning, "store_flush_at_close").Field("error", flushed.ToString());
    }
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    rocksdb::Status closed = db->Close();
    if (!closed.ok()) HC_LOG(kWarning, "store_close").Field("error", closed.ToString());
    db.reset();
  }
};

absl::StatusOr<std::unique_ptr<SnapshotStore>> SnapshotStore::Open(
    const SnapshotStoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("data_dir: empty");
  std::unique_ptr<SnapshotStore> store(new SnapshotStore(options));
  if (store->options_.clock == nullptr) store->options_.clock = Clock::Real();
  auto db = store->OpenDb(/*read_only=*/false);
  absl::MutexLock lock(&store->mu_);
  if (!db.ok() && absl::IsResourceExhausted(db.status()) && !options.secondary) {
    // A full disk: RocksDB cannot write the new WAL, MANIFEST and OPTIONS files an open needs.
    // Serve the committed crawls from a read-only instance; the first write after space returns
    // reopens read-write (EnsureWritable).
    auto read_only = store->OpenDb(/*read_only=*/true);
    if (!read_only.ok()) return db.status();
    HC_LOG(kWarning, "store_opened_read_only")
        .Field("path", options.path)
        .Field("cause", db.status().message());
    store->opened_read_only_ = true;
    store->disk_full_ = true;
    store->disk_full_cause_ = std::string(db.status().message());
    db = std::move(read_only);
  }
  if (!db.ok()) return db.status();
  {
    absl::MutexLock db_lock(&store->db_mu_);
    store->db_ = std::move(*db);
  }
  RETURN_IF_ERROR(store->CheckSchema());
  RETURN_IF_ERROR(store->LoadCrawlRecords());
  return store;
}

SnapshotStore::SnapshotStore(SnapshotStoreOptions options) : options_(std::move(options)) {}

SnapshotStore::~SnapshotStore() {
  {
    absl::MutexLock lock(&db_mu_);
    db_.reset();
  }
  if (!owned_secondary_path_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(owned_secondary_path_, ec);
  }
}

std::shared_ptr<SnapshotStore::Db> SnapshotStore::CurrentDb() {
  absl::MutexLock lock(&db_mu_);
  return db_;
}

bool SnapshotStore::disk_full() {
  absl::MutexLock lock(&mu_);
  return disk_full_;
}

absl::StatusOr<std::shared_ptr<SnapshotStore::Db>> SnapshotStore::OpenDb(bool read_only) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = !options_.secondary && !read_only;
  db_options.create_missing_column_families = !options_.secondary && !read_only;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 5;
  // The small column families (markers, crawls) rarely fill a memtable and would keep every WAL
  // file alive: past this much WAL, RocksDB flushes the ones holding the oldest file. It bounds
  // what an open after a crash replays.
  db_options.max_total_wal_size = 128 << 20;
  // Every memtable of the store together: a crawl's memory stays bounded whatever its size.
  db_options.db_write_buffer_size = 96 << 20;
  if (options_.env != nullptr) db_options.env = options_.env;
  rocksdb::DB* raw = nullptr;
  if (block_cache_ == nullptr) {
    block_cache_ = rocksdb::NewLRUCache(static_cast<size_t>(options_.block_cache_bytes));
  }
  auto descriptors = Descriptors(block_cache_, /*reader=*/read_only || options_.secondary);
  auto db = std::make_shared<Db>();
  db_options.listeners.push_back(std::make_shared<ManualRecoveryOnly>(db->failed));
  db->read_only = read_only;
  db->secondary = options_.secondary;
  rocksdb::Status s;
  if (options_.secondary) {
    if (!std::filesystem::exists(std::filesystem::path(options_.path) / "CURRENT")) {
      return absl::NotFoundError(
          absl::StrCat(options_.path, ": no hubcensus store here (no RocksDB CURRENT file)"));
    }
    std::string secondary_path = options_.secondary_path;
    if (secondary_path.empty()) {
      owned_secondary_path_ = TempSecondaryPath();
      secondary_path = owned_secondary_path_;
      // Its info log would go to that temp folder, removed at close: write none (RocksDB
      // formats every option of every column family into it at open).
      class NoInfoLog final : public rocksdb::Logger {
       public:
        void LogHeader(const char*, va_list) override {}
        void Logv(const char*, va_list) override {}
        void Logv(const rocksdb::InfoLogLevel, const char*, va_list) override {}
      };
      db_options.info_log = std::make_shared<NoInfoLog>();
    }
    db_options.max_open_files = -1;  // required of secondary instances
    // RocksDB 7.8 starts max_file_opening_threads (16) threads for every column family each time
    // it applies a MANIFEST edit, at open and at every catch-up, whether or not a file is new:
    // 250 threads for one `query --data_dir`, a third of its CPU. Opening the few new table
    // files on this thread costs less than any one of those threads.
    db_options.max_file_opening_threads = 1;
    s = rocksdb::DB::OpenAsSecondary(db_options, options_.path, secondary_path, descriptors,
                                     &db->handles, &raw);
  } else if (read_only) {
    s = rocksdb::DB::OpenForReadOnly(db_options, options_.path, descriptors, &db->handles, &raw);
  } else {
    std::error_code ec;
    std::filesystem::create_directories(options_.path, ec);
    s = rocksdb::DB::Open(db_options, options_.path, descriptors, &db->handles, &raw);
  }
  RETURN_IF_ERROR(FromRocks(s, absl::StrCat("opening store ", options_.path)));
  db->db.reset(raw);
  db->default_cf = db->handles[0];
  db->crawls = db->handles[1];
  db->snapshots = db->handles[2];
  db->repo_meta = db->handles[3];
  db->markers = db->handles[4];
  db->rollups = db->handles[5];
  return db;
}

absl::Status SnapshotStore::CheckSchema() {
  std::shared_ptr<Db> d = CurrentDb();
  std::string value;
  rocksdb::Status s =
      d->db->Get(rocksdb::ReadOptions(), d->default_cf, ToSlice(kSchemaVersionKey), &value);
  if (s.IsNotFound()) {
    std::unique_ptr<rocksdb::Iterator> it(d->db->NewIterator(rocksdb::ReadOptions(), d->crawls));
    it->SeekToFirst();
    if (it->Valid() || options_.secondary) {
      return absl::FailedPreconditionError(absl::StrCat(
          options_.path, ": the store has no schema version; it was not written by hubcensus"));
    }
    if (d->read_only) return absl::OkStatus();  // an empty store, opened on a full disk
    rocksdb::WriteBatch wb;
    wb.Put(d->default_cf, ToSlice(kSchemaVersionKey), absl::StrCat(kSchemaVersion));
    rocksdb::WriteOptions wo;
    wo.sync = true;  // before any batch can be acknowledged
    return WriteToDb(wo, &wb, "writing the schema version");
  }
  RETURN_IF_ERROR(FromRocks(s, "reading the schema version"));
  int version = 0;
  if (!absl::SimpleAtoi(value, &version) || version != kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.path, ": store schema version ", QuoteInput(value),
                     " is not supported (this hubcensus reads version ", kSchemaVersion,
                     version > kSchemaVersion ? "; upgrade hubcensus" : "", ")"));
  }
  return absl::OkStatus();
}

absl::Status SnapshotStore::LoadCrawlRecords() {
  std::shared_ptr<Db> d = CurrentDb();
  crawls_.clear();
  std::unique_ptr<rocksdb::Iterator> it(d->db->NewIterator(rocksdb::ReadOptions(), d->crawls));
  for (it->Seek(ToSlice(kCrawlRecordPrefix));
       it->Valid() && StartsWith(ToView(it->key()), kCrawlRecordPrefix); it->Next()) {
    v1::StoredCrawl crawl;
    if (!crawl.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(
          absl::StrCat("crawl record ", QuoteInput(ToView(it->key())), " is corrupt"));
    }
    crawls_[crawl.crawl_id()] = crawl;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading crawl records"));
  std::string value;
  rocksdb::Status s =
      d->db->Get(rocksdb::ReadOptions(), d->crawls, ToSlice(kNextCrawlNumberKey), &value);
  if (s.ok() && value.size() == 4) {
    next_crawl_number_ = GetBigEndian32(value);
  } else if (!s.IsNotFound()) {
    RETURN_IF_ERROR(FromRocks(s, "reading the next crawl number"));
  }
  return absl::OkStatus();
}

// Free space the store wants before it resumes writing: a new WAL and the memtables' flush.
constexpr uint64_t kMinFreeBytesToResume = 256ull << 20;

absl::Status SnapshotStore::EnsureWritable() {
  if (options_.secondary) return absl::FailedPreconditionError("the store is open read-only");
  if (!disk_full_) return absl::OkStatus();
  auto refused = [this](absl::string_view now) {
    return absl::ResourceExhaustedError(
        absl::StrCat("disk full: the store at ", options_.path,
                     " takes no writes until space is freed; committed crawls are still served (",
                     InputExcerpt(now.empty() ? disk_full_cause_ : now), ")"));
  };
  // Reopening writes a new WAL and MANIFEST: tried on a still-full disk it fails again, so it
  // waits until the file system reports room for it.
  rocksdb::Env* env = options_.env != nullptr ? options_.env : rocksdb::Env::Default();
  uint64_t free_bytes = 0;
  rocksdb::Status free = env->GetFreeSpace(options_.path, &free_bytes);
  if (free.ok() && free_bytes < kMinFreeBytesToResume) {
    return refused(absl::StrCat(free_bytes, " bytes free; ", disk_full_cause_));
  }
  if (!opened_read_only_) {
    // A new instance rather than DB::Resume: RocksDB 7.8 can resume with its WAL writer still
    // holding the failed append when a flush failed for want of space at the same time (the
    // flush started after a commit), and the next write then aborts the process on an
    // assertion. A new instance opens a new WAL; serve reads from a read-only one meanwhile.
    RETURN_IF_ERROR(SwapToReadOnly());
  }
  absl::StatusOr<std::shared_ptr<Db>> writable = OpenDb(/*read_only=*/false);
  // The failed instance's LOCK goes with its last reader: give it a moment.
  for (int attempt = 0; attempt < 100 && absl::IsUnavailable(writable.status()); ++attempt) {
    absl::SleepFor(absl::Milliseconds(20));
    writable = OpenDb(/*read_only=*/false);
  }
  if (!writable.ok()) {
    if (absl::IsResourceExhausted(writable.status())) return refused(writable.status().message());
    return writable.status();
  }
  {
    absl::MutexLock lock(&db_mu_);
    db_ = std::move(*writable);  // views of the read-only instance keep it until they end
  }
  opened_read_only_ = false;
  disk_full_ = false;
  disk_full_cause_.clear();
  // A store first opened on a full disk may lack its schema version; and the read-only
  // instance saw the files as they were, a writable one may have replayed a WAL.
  RETURN_IF_ERROR(CheckSchema());
  RETURN_IF_ERROR(LoadCrawlRecords());
  HC_LOG(kInfo, "store_writable_again").Field("path", options_.path);
  return absl::OkStatus();
}

absl::Status SnapshotStore::SwapToReadOnly() {
  ASSIGN_OR_RETURN(std::shared_ptr<Db> read_only, OpenDb(/*read_only=*/true));
  std::weak_ptr<Db> failed;
  {
    absl::MutexLock lock(&db_mu_);
    failed = db_;
    db_ = std::move(read_only);  // closes the failed instance here unless a view still reads it
  }
  opened_read_only_ = true;
  // Views are one query each: wait for the failed instance's last one.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!failed.expired() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  if (!failed.expired()) {
    return absl::UnavailableError(
        "the store is reopening after a full disk; a long read still holds it: retry");
  }
  return absl::OkStatus();
}

absl::Status SnapshotStore::WriteToDb(const rocksdb::WriteOptions& options,
                                      rocksdb::WriteBatch* batch, absl::string_view what) {
  std::shared_ptr<Db> d = CurrentDb();
  return WriteFailed(d.get(), d->db->Write(options, batch), what);
}

absl::Status SnapshotStore::WriteFailed(Db* d, const rocksdb::Status& s, absl::string_view what) {
  absl::Status status = FromRocks(s, what);
  if (!status.ok()) d->failed->store(true);
  if (absl::IsResourceExhausted(status)) {
    if (!disk_full_) HC_LOG(kWarning, "store_disk_full").Field("error", status.message());
    disk_full_ = true;
    disk_full_cause_ = std::string(status.message());
    return absl::ResourceExhaustedError(absl::StrCat(
        "disk full: the store at ", options_.path, " could not write (", what,
        "); it takes no writes until space is freed, committed crawls are still served: ",
        InputExcerpt(status.message())));
  }
  return status;
}

uint64_t SnapshotStore::NextSeenSequence(const v1::StoredCrawl& crawl) {
  // Milliseconds since the crawl's record was made (a few bytes as a varint), forced to increase
  // batch after batch: the order the store received the crawl's pages in, across restarts too
  // (unless the clock steps back).
  const int64_t since_created =
      absl::ToUnixMillis(options_.clock->Now()) - crawl.created_at_unix_ms();
  uint64_t& last = last_seen_sequence_[crawl.crawl_id()];
  last = std::max(last + 1, static_cast<uint64_t>(std::max<int64_t>(1, since_created)));
  return last;
}

absl::StatusOr<v1::StoredCrawl> SnapshotStore::CrawlForWrite(const v1::WriteBatch& batch,
                                                             bool* created) {
  *created = false;
  auto it = crawls_.find(batch.crawl_id());
  if (it != crawls_.end()) {
    const v1::StoredCrawl& crawl = it->second;
    if (crawl.state() == v1::STORED_CRAWL_COMMITTED) {
      return absl::FailedPreconditionError(absl::StrCat("crawl ", InputExcerpt(crawl.crawl_id()),
                                                        " is committed: it takes no more writes"));
    }
    if (crawl.state() == v1::STORED_CRAWL_ABORTED) {
      return absl::FailedPreconditionError(
          absl::StrCat("crawl ", InputExcerpt(crawl.crawl_id()), " was aborted (",
                       InputExcerpt(crawl.abort_reason()), "): no writes"));
    }
    if (!batch.crawl_date().empty() && batch.crawl_date() != crawl.date()) {
      return absl::InvalidArgumentError(
          absl::StrCat("crawl_date: ", QuoteInput(batch.crawl_date()), " differs from crawl ",
                       InputExcerpt(crawl.crawl_id()), "'s date ", crawl.date()));
    }
    return crawl;
  }
  if (batch.crawl_date().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("crawl_date: empty on the first batch of crawl ",
                                                   InputExcerpt(batch.crawl_id())));
  }
  v1::StoredCrawl crawl;
  crawl.set_crawl_id(batch.crawl_id());
  crawl.set_date(batch.crawl_date());
  crawl.set_state(v1::STORED_CRAWL_RECEIVING);
  crawl.set_crawl_number(next_crawl_number_);
  crawl.set_created_at_unix_ms(absl::ToUnixMillis(options_.clock->Now()));
  *created = true;
  return crawl;
}

namespace {
// A date field: the message quotes at most 200 bytes of it (ParseDate quotes the whole text).
absl::Status CheckDateField(absl::string_view field, absl::string_view text) {
  if (text.size() > 10) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", QuoteInput(text), " is not a date of the form YYYY-MM-DD"));
  }
  auto date = ParseDate(text);
  if (!date.ok()) return Annotate(date.status(), field);
  return absl::OkStatus();
}
}  // namespace

namespace {
// The page chunk of `batch` (the repos `last_index` keeps, in page order, their metadata stored
// under `meta_version[i]`). A retry of the same (item, fence) keeps the rows of the earlier
// attempt that this one lacks, as the rows do (their writer is the same (item, fence)); when the
// earlier attempt has no chunk, or one without meta versions (written before they existed), none
// is written, so that the commit reads the crawl's rows instead.
absl::StatusOr<std::optional<std::string>> PageChunk(
    rocksdb::DB* db, rocksdb::ColumnFamilyHandle* snapshots_cf, uint32_t n,
    const v1::WriteBatch& batch, const absl::flat_hash_map<absl::string_view, int>& last_index,
    const std::vector<uint32_t>& meta_version, bool same_fence_again, uint64_t seen_sequence) {
  ColumnWriter columns(/*with_dedup_columns=*/true, /*with_row_meta=*/true);
  for (int i = 0; i < batch.repos_size(); ++i) {
    const v1::RepoSnapshot& repo = batch.repos(i);
    if (last_index.at(repo.id()) == i) columns.AddRepo(repo, meta_version[i]);
  }
  if (same_fence_again) {
    const std::string key = PageChunkKey(n, batch.item_id(), batch.fence());
    std::string earlier;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), snapshots_cf, key, &earlier);
    if (s.IsNotFound()) return std::nullopt;
    RETURN_IF_ERROR(FromRocks(s, "page chunk"));
    if (!HasRowMeta(earlier)) return std::nullopt;
    CrawlSnapshot rows;
    DedupColumns dedup;
    RowMetaColumns row_meta;
    RETURN_IF_ERROR(
        DecodeColumns(earlier,
                      absl::StrCat("page chunk of crawl number ", n, " item ",
                                   InputExcerpt(batch.item_id()), " fence ", batch.fence()),
                      &rows, &dedup, &row_meta));
    for (size_t r = 0; r < rows.size(); ++r) {
      if (last_index.contains(rows.id(r))) continue;
      columns.AddSnapshotRow(rows, r, dedup.object_id(r), dedup.last_modified[r], row_meta.at(r));
    }
  }
  return columns.Finish(seen_sequence);
}
}  // namespace

absl::StatusOr<BatchResult> SnapshotStore::Write(const v1::WriteBatch& batch) {
  if (options_.secondary) return absl::FailedPreconditionError("the store is open read-only");
  RETURN_IF_ERROR(CheckId("crawl_id", batch.crawl_id()));
  RETURN_IF_ERROR(CheckId("item_id", batch.item_id()));
  if (!batch.crawl_date().empty())
    RETURN_IF_ERROR(CheckDateField("crawl_date", batch.crawl_date()));
  // The last occurrence of a repo id within the page is the one kept.
  absl::flat_hash_map<absl::string_view, int> last_index;
  last_index.reserve(batch.repos_size());
  for (int i = 0; i < batch.repos_size(); ++i) {
    const v1::RepoSnapshot& repo = batch.repos(i);
    RETURN_IF_ERROR(CheckId(absl::StrCat("repos[", i, "].id"), repo.id()));
    // Crawlers drop private entries before they reach the store; this keeps one that slipped
    // through (an old crawler, a bug) out of every census and export.
    if (repo.is_private()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "repos[", i, "]: ", QuoteInput(repo.id()),
          " is private; a census stores public repos only (the crawler must drop it)"));
    }
    last_index[repo.id()] = i;
  }
  BatchResult result;
  result.repos = batch.repos_size();
  result.id_checksum = BatchIdChecksum(batch);

  absl::MutexLock lock(&mu_);
  bool created = false;
  ASSIGN_OR_RETURN(v1::StoredCrawl crawl, CrawlForWrite(batch, &created));
  RETURN_IF_ERROR(EnsureWritable());
  std::shared_ptr<Db> d = CurrentDb();
  const uint32_t n = crawl.crawl_number();
  rocksdb::WriteBatch wb;

  // Fence check: the highest fence recorded for this item decides.
  std::string item_prefix = MarkerItemPrefix(n, batch.item_id());
  std::string item_last = item_prefix + std::string(8, '\xff');
  uint32_t item_number = 0;
  bool known_item = false;
  bool same_fence_again = false;  // a retry of (item, fence): its page chunk is merged
  {
    std::unique_ptr<rocksdb::Iterator> it(d->db->NewIterator(rocksdb::ReadOptions(), d->markers));
    it->SeekForPrev(item_last);
    if (it->Valid() && StartsWith(ToView(it->key()), item_prefix) &&
        it->key().size() == item_prefix.size() + 8) {
      uint64_t max_fence = GetBigEndian64(ToView(it->key()).substr(item_prefix.size()));
      if (max_fence > batch.fence()) {
        return absl::AbortedError(absl::StrCat(
            "item ", InputExcerpt(batch.item_id()), " of crawl ", InputExcerpt(batch.crawl_id()),
            ": fence ", batch.fence(), " is stale; fence ", max_fence, " already wrote"));
      }
      v1::StoredMarker marker;
      if (!marker.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError(
            absl::StrCat("marker of item ", InputExcerpt(batch.item_id()), " is corrupt"));
      }
      item_number = marker.item_number();
      known_item = true;
      same_fence_again = max_fence == batch.fence();
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "markers"));
  }
  bool crawl_changed = created;
  if (!known_item) {
    item_number = crawl.next_item_number();
    crawl.set_next_item_number(item_number + 1);
    crawl_changed = true;
  }
  const SnapshotWriter me{item_number, batch.fence()};
  // One for the whole page: a page cannot list one repo under two names.
  const uint64_t seen_sequence = NextSeenSequence(crawl);

  std::unique_ptr<rocksdb::Iterator> meta_it(
      d->db->NewIterator(rocksdb::ReadOptions(), d->repo_meta));
  std::string existing;
  std::vector<uint32_t> meta_version(batch.repos_size(), 0);
  for (int i = 0; i < batch.repos_size(); ++i) {
    const v1::RepoSnapshot& repo = batch.repos(i);
    if (last_index[repo.id()] != i) continue;
    SnapshotCounters c;
    c.downloads_30d = repo.downloads_30d();
    c.has_downloads_all_time = repo.has_downloads_all_time();
    c.downloads_all_time = repo.downloads_all_time();
    c.likes = repo.likes();
    c.trending_score = repo.trending_score();
    c.seen_sequence = seen_sequence;
    // Metadata is written only when it differs from the version in effect for this crawl.
    std::string meta = MetaBytes(repo);
    std::string meta_key = RepoMetaKey(repo.id(), n);
    // The version in effect is the last one at or before this crawl. A repo has few versions:
    // a forward scan from its first is cheaper than SeekForPrev in the memtable's skiplist.
    absl::string_view version_prefix(meta_key.data(), repo.id().size() + 1);
    bool same = false;
    uint32_t in_effect = 0;
    for (meta_it->Seek(ToSlice(version_prefix));
         meta_it->Valid() && meta_it->key().size() == meta_key.size() &&
         StartsWith(ToView(meta_it->key()), version_prefix);
         meta_it->Next()) {
      uint32_t version = GetBigEndian32(ToView(meta_it->key()).substr(version_prefix.size()));
      if (version > n) break;
      in_effect = version;
      same = ToView(meta_it->value()) == meta;
    }
    if (same) {
      c.meta_crawl_number = in_effect;
    } else {
      RETURN_IF_ERROR(FromRocks(meta_it->status(), "repo_meta"));
      wb.Put(d->repo_meta, meta_key, meta);
      c.meta_crawl_number = n;
    }
    // Keep the other items that carried this repo: any of them in the manifest publishes it.
    std::string key = SnapshotKey(n, repo.id());
    rocksdb::Status s = d->db->Get(rocksdb::ReadOptions(), d->snapshots, key, &existing);
    if (s.ok()) {
      auto old = DecodeSnapshotCounters(existing, n);
      if (old.ok()) {
        for (const SnapshotWriter& w : old->writers) {
          if (w.item_number != item_number) c.writers.push_back(w);
        }
      }
    } else if (!s.IsNotFound()) {
      return FromRocks(s, "snapshots");
    }
    c.writers.push_back(me);
    meta_version[i] = c.meta_crawl_number;
    wb.Put(d->snapshots, key, EncodeSnapshotCounters(c, n));
  }
  // The page's columns, keyed like its marker: what the commit reads instead of the rows.
  ASSIGN_OR_RETURN(std::optional<std::string> chunk,
                   PageChunk(d->db.get(), d->snapshots, n, batch, last_index, meta_version,
                             same_fence_again, seen_sequence));
  if (chunk.has_value()) {
    wb.Put(d->snapshots, PageChunkKey(n, batch.item_id(), batch.fence()), *chunk);
  }
  v1::StoredMarker marker;
  marker.set_repos(result.repos);
  marker.set_id_checksum(result.id_checksum);
  marker.set_item_number(item_number);
  wb.Put(d->markers, MarkerKey(n, batch.item_id(), batch.fence()), marker.SerializeAsString());
  if (crawl_changed) wb.Put(d->crawls, CrawlRecordKey(crawl.crawl_id()), crawl.SerializeAsString());
  if (created) {
    std::string next;
    PutBigEndian32(&next, n + 1);
    wb.Put(d->crawls, ToSlice(kNextCrawlNumberKey), next);
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  RETURN_IF_ERROR(WriteToDb(wo, &wb, "writing a batch"));
  crawls_[crawl.crawl_id()] = crawl;
  if (created) next_crawl_number_ = n + 1;
  return result;
}

namespace {

absl::Status CheckCounts(const v1::CensusCounts& counts) {
  auto negative = [](absl::string_view field, int64_t v) {
    return absl::InvalidArgumentError(absl::StrCat("counts.", field, ": ", v, " is negative"));
  };
  if (counts.rejected_entries() < 0) return negative("rejected_entries", counts.rejected_entries());
  if (counts.private_skipped() < 0) return negative("private_skipped", counts.private_skipped());
  if (counts.unreadable() < 0) return negative("unreadable", counts.unreadable());
  for (const auto* by_reason : {&counts.rejected_by_reason(), &counts.unreadable_by_reason()}) {
    for (const auto& [reason, n] : *by_reason) {
      if (n < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("counts: reason ", QuoteInput(reason), " has a negative count ", n));
      }
    }
  }
  return absl::OkStatus();
}

// One row of a group sharing an object id, and what decides which of them a commit keeps.
struct RenameCandidate {
  size_t row;
  std::string repo_id;
  uint64_t seen_sequence;
  int64_t last_modified;
  std::string object_id;
};

bool NewerSeen(const RenameCandidate& a, const RenameCandidate& b) {
  if (a.seen_sequence != b.seen_sequence) return a.seen_sequence > b.seen_sequence;
  if (a.last_modified != b.last_modified) return a.last_modified > b.last_modified;
  return a.repo_id > b.repo_id;
}

}  // namespace

// Rows of `snapshot` (crawl number `n`) that another row with the same object id supersedes.
// Object ids are compared by hash first (a sort of 8-byte values); only rows whose hash repeats
// are read back whole, so a crawl without renames costs one sort.
static absl::StatusOr<std::vector<bool>> RenamedDuplicates(
    rocksdb::DB* db, rocksdb::ColumnFamilyHandle* snapshots_cf,
    rocksdb::ColumnFamilyHandle* meta_cf, uint32_t n, const CrawlSnapshot& snapshot,
    const std::vector<uint64_t>& object_id_hashes, int64_t* dropped) {
  *dropped = 0;
  std::vector<bool> drop;
  std::vector<uint64_t> sorted;
  sorted.reserve(object_id_hashes.size());
  for (uint64_t h : object_id_hashes) {
    if (h != 0) sorted.push_back(h);
  }
  std::sort(sorted.begin(), sorted.end());
  absl::flat_hash_set<uint64_t> repeated;
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i] == sorted[i - 1]) repeated.insert(sorted[i]);
  }
  if (repeated.empty()) return drop;
  // object id -> its rows (exact ids: a hash collision of two repos merges nothing)
  std::map<std::string, std::vector<RenameCandidate>> groups;
  for (size_t i = 0; i < object_id_hashes.size() && i < snapshot.size(); ++i) {
    if (!repeated.contains(object_id_hashes[i])) continue;
    const std::string repo_id(snapshot.id(i));
    std::string value, meta;
    RETURN_IF_ERROR(
        FromRocks(db->Get(rocksdb::ReadOptions(), snapshots_cf, SnapshotKey(n, repo_id), &value),
                  "snapshots"));
    ASSIGN_OR_RETURN(SnapshotCounters c, DecodeSnapshotCounters(value, n));
    RETURN_IF_ERROR(FromRocks(
        db->Get(rocksdb::ReadOptions(), meta_cf, RepoMetaKey(repo_id, c.meta_crawl_number), &meta),
        "repo_meta"));
    v1::RepoMeta repo;
    if (!repo.ParseFromString(meta)) {
      return absl::DataLossError(
          absl::StrCat("repo_meta of ", InputExcerpt(repo_id), " is corrupt"));
    }
    groups[repo.object_id()].push_back(
        {i, repo_id, c.seen_sequence, repo.last_modified(), repo.object_id()});
  }
  drop.assign(snapshot.size(), false);
  for (auto& [object_id, rows] : groups) {
    if (rows.size() < 2) continue;
    std::sort(rows.begin(), rows.end(), NewerSeen);
    for (size_t k = 1; k < rows.size(); ++k) {
      drop[rows[k].row] = true;
      ++*dropped;
      HC_LOG(kInfo, "renamed_repo_counted_once")
          .Field("object_id", InputExcerpt(object_id))
          .Field("kept", rows[0].repo_id)
          .Field("dropped", rows[k].repo_id);
    }
  }
  return drop;
}

namespace {

// One page a crawl received: a marker, and whether the manifest publishes it.
struct CrawlPage {
  std::string item_id;
  uint64_t fence = 0;
  bool published = false;
  int64_t repos = 0;  // as its marker says
};

// Every (item, fence) that wrote a page of crawl `n`, from its markers.
absl::StatusOr<std::vector<CrawlPage>> CrawlPages(
    rocksdb::DB* db, rocksdb::ColumnFamilyHandle* markers_cf, uint32_t n,
    const absl::flat_hash_map<uint32_t, uint64_t>& published_fence) {
  std::vector<CrawlPage> pages;
  const std::string prefix = CrawlPrefix(n) + "m";
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), markers_cf));
  for (it->Seek(prefix); it->Valid() && StartsWith(ToView(it->key()), prefix); it->Next()) {
    absl::string_view key = ToView(it->key());
    if (key.size() < prefix.size() + 10 || key[key.size() - 9] != '\0') {
      return absl::DataLossError(
          absl::StrCat("marker key ", QuoteInput(key), " of crawl number ", n, " is malformed"));
    }
    v1::StoredMarker marker;
    if (!marker.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(
          absl::StrCat("marker ", QuoteInput(key), " of crawl number ", n, " is corrupt"));
    }
    CrawlPage page;
    page.item_id = std::string(key.substr(prefix.size(), key.size() - prefix.size() - 9));
    page.fence = GetBigEndian64(key.substr(key.size() - 8));
    auto published = published_fence.find(marker.item_number());
    page.published = published != published_fence.end() && published->second == page.fence;
    page.repos = marker.repos();
    pages.push_back(std::move(page));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "markers"));
  return pages;
}

// What a commit publishes, read from the page chunks.
struct ColumnsCommit {
  CrawlSnapshot snapshot;                // sorted by repo id, one row per repo and per object id
  RowMetaColumns row_meta;               // of each row of `snapshot`
  std::vector<std::string> dropped_ids;  // rows of unpublished pages only: deleted
  std::vector<std::string> renamed_ids;  // rows superseded by a newer name: deleted
  // Published repos an unpublished page wrote too: their rows may hold that page's counters
  // (the last write), so the commit writes them again with the published ones.
  std::vector<std::string> rewritten_ids;
  // Where the read's time went (logged with crawl_committed): reading and decoding the chunks,
  // sorting by id, de-duplicating by id and object id, gathering the sorted columns.
  absl::Duration decode, sort, dedup, gather;
};

// The rows a commit read from its page chunks, one range a thread, addressed as one list (range
// 0's rows first): sorted and gathered without joining the ranges first. Their de-duplication
// columns are object id hashes only; `pages[r]` names the page (index into the commit's pages)
// of each value range r decoded, so that a row's object id can be read again from its chunk.
struct DecodedRanges {
  std::vector<CrawlSnapshot> snapshots;
  std::vector<DedupColumns> dedup;
  std::vector<RowMetaColumns> row_meta;
  std::vector<std::vector<size_t>> pages;
  std::vector<uint32_t> base;  // base[r]: the first row of range r; base.back(): every row

  size_t size() const { return base.back(); }
  std::pair<size_t, uint32_t> Locate(uint32_t row) const {
    size_t r = 0;
    while (row >= base[r + 1]) ++r;
    return {r, row - base[r]};
  }
  absl::string_view id(uint32_t row) const {
    const auto [r, i] = Locate(row);
    return snapshots[r].id(i);
  }
  uint64_t object_id_hash(uint32_t row) const {
    const auto [r, i] = Locate(row);
    return dedup[r].object_id_hash[i];
  }
  uint64_t seen_sequence(uint32_t row) const {
    const auto [r, i] = Locate(row);
    return dedup[r].row_seen_sequence(i);
  }
  // The page (index into the commit's pages) row `row` came from, and its index there.
  std::pair<size_t, uint32_t> Page(uint32_t row) const {
    const auto [r, i] = Locate(row);
    const auto [value, index] = dedup[r].PageOf(i);
    return {pages[r][value], index};
  }
};

// The rows of `all` sorted by repo id, then the newest-seen first, on `threads`.
std::vector<uint32_t> SortByIdNewestFirst(const DecodedRanges& all, size_t threads) {
  // 32 bytes a row: with the decoded crawl, what the commit's peak memory holds.
  struct Key {
    // The id's first 16 bytes, big-endian, zero-padded (ids hold no NUL): most comparisons end
    // here. Where they tie (ids of one namespace often share 16 bytes), the rest of the ids is
    // compared through `id`, without looking the row up.
    uint64_t high, low;
    const char* id;
    uint32_t id_size;
    uint32_t row;
  };
  static_assert(sizeof(Key) == 32);
  auto load = [](absl::string_view id, size_t from) {
    uint64_t v = 0;
    for (size_t b = from; b < from + 8; ++b) {
      v = (v << 8) | (b < id.size() ? static_cast<unsigned char>(id[b]) : 0u);
    }
    return v;
  };
  std::vector<Key, HugePageAllocator<Key>> keys(all.size());
  ForEachRange(all.snapshots.size(), all.snapshots.size(), [&](size_t r, size_t, size_t) {
    const CrawlSnapshot& snap = all.snapshots[r];
    for (size_t i = 0; i < snap.size(); ++i) {
      absl::string_view id = snap.id(i);
      keys[all.base[r] + i] = {load(id, 0), load(id, 8), id.data(),
                               static_cast<uint32_t>(id.size()),
                               static_cast<uint32_t>(all.base[r] + i)};
    }
  });
  auto less = [&all](const Key& a, const Key& b) {
    if (a.high != b.high) return a.high < b.high;
    if (a.low != b.low) return a.low < b.low;
    if (a.row == b.row) return false;
    // Equal first 16 bytes: both ids are longer than 16, or equal.
    const size_t skip = std::min<size_t>({16, a.id_size, b.id_size});
    int c = absl::string_view(a.id + skip, a.id_size - skip)
                .compare(absl::string_view(b.id + skip, b.id_size - skip));
    if (c != 0) return c < 0;
    uint64_t sa = all.seen_sequence(a.row), sb = all.seen_sequence(b.row);
    if (sa != sb) return sa > sb;
    return a.row > b.row;
  };
  threads = std::max<size_t>(1, std::min(threads, keys.size() / 65536 + 1));
  std::vector<size_t> bounds;
  for (size_t r = 0; r <= threads; ++r) bounds.push_back(keys.size() * r / threads);
  ForEachRange(threads, threads, [&](size_t r, size_t, size_t) {
    std::sort(keys.begin() + bounds[r], keys.begin() + bounds[r + 1], less);
  });
  // The sorted runs merged straight into the row list: no merge buffer (as inplace_merge needs,
  // half the keys) and no second pass.
  std::vector<uint32_t> rows;
  rows.reserve(keys.size());
  std::vector<size_t> at(bounds.begin(), bounds.end() - 1);
  while (rows.size() < keys.size()) {
    size_t best = threads;
    for (size_t r = 0; r < threads; ++r) {
      if (at[r] == bounds[r + 1]) continue;
      if (best == threads || less(keys[at[r]], keys[at[best]])) best = r;
    }
    rows.push_back(keys[at[best]++].row);
  }
  return rows;
}

// Reads the page chunks of `pages` on threads and publishes the published ones' repos: sorted by
// repo id, one row per id (the page received last wins, as in the rows), then one per object id
// (see SnapshotStore::Commit). nullopt when a page has no chunk (it was written before page
// chunks existed): the caller reads the rows instead.
absl::StatusOr<std::optional<ColumnsCommit>> CommitFromColumns(
    rocksdb::DB* db, rocksdb::ColumnFamilyHandle* snapshots_cf, uint32_t n,
    const std::vector<CrawlPage>& pages, size_t threads) {
  const absl::Time decode_start = absl::Now();
  const size_t ranges = std::max<size_t>(1, std::min(threads, pages.size() / 16 + 1));
  DecodedRanges all;
  all.snapshots.resize(ranges);
  all.dedup.resize(ranges);
  all.pages.resize(ranges);
  all.row_meta.resize(ranges);
  std::vector<CrawlSnapshot>& published = all.snapshots;
  std::vector<DedupColumns>& dedup = all.dedup;
  std::vector<CrawlSnapshot> unpublished(ranges);
  std::vector<absl::Status> statuses(ranges);
  std::atomic<bool> missing{false};
  ForEachRange(pages.size(), ranges, [&](size_t r, size_t begin, size_t end) {
    // The markers give each page's repo count: the columns are sized once, not grown.
    int64_t rows = 0;
    for (size_t p = begin; p < end; ++p) rows += pages[p].published ? pages[p].repos : 0;
    published[r].Reserve(static_cast<size_t>(rows));
    dedup[r].hashes_only = true;
    dedup[r].Reserve(static_cast<size_t>(rows));
    // The chunks of a range are consecutive keys, in the markers' order: one iterator walks them
    // (a point read per chunk searched every level for each).
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    ro.adaptive_readahead = true;
    const std::string upper = PageChunksEnd(n);
    rocksdb::Slice upper_bound(upper);
    ro.iterate_upper_bound = &upper_bound;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, snapshots_cf));
    for (size_t p = begin; p < end && !missing.load(); ++p) {
      const CrawlPage& page = pages[p];
      const std::string key = PageChunkKey(n, page.item_id, page.fence);
      if (p == begin || !it->Valid() || it->key().compare(key) < 0) it->Seek(key);
      if (!it->Valid() || it->key() != key) {
        statuses[r] = FromRocks(it->status(), "page chunk");
        if (statuses[r].ok()) missing = true;
        return;
      }
      const absl::string_view value = ToView(it->value());
      std::string what = absl::StrCat("page chunk of crawl number ", n, " item ",
                                      InputExcerpt(page.item_id), " fence ", page.fence);
      if (page.published) {
        // A chunk without meta versions (written before they existed): the rows have them.
        if (!HasRowMeta(value)) {
          missing = true;
          return;
        }
        statuses[r] = DecodeColumns(value, what, &published[r], &dedup[r], &all.row_meta[r]);
        if (!statuses[r].ok()) return;
        all.pages[r].push_back(p);
      } else {
        // An unpublished page is read for its ids only (its rows are deleted): when its chunk is
        // damaged, the rows tell which they are.
        absl::Status read = DecodeColumns(value, what, &unpublished[r]);
        if (!read.ok()) {
          HC_LOG(kWarning, "unpublished_page_chunk_unreadable").Field("error", read.message());
          missing = true;
          return;
        }
      }
      it->Next();
    }
  });
  if (missing) return std::nullopt;
  for (const absl::Status& st : statuses) RETURN_IF_ERROR(st);
  all.base = {0};
  for (const CrawlSnapshot& snap : all.snapshots) {
    all.base.push_back(all.base.back() + static_cast<uint32_t>(snap.size()));
  }
  // One row per repo id: the newest-seen page's, as the row (overwritten page after page) holds.
  const absl::Time sort_start = absl::Now();
  std::vector<uint32_t> rows = SortByIdNewestFirst(all, threads);
  const absl::Time dedup_start = absl::Now();
  std::vector<uint32_t> kept;
  kept.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i == 0 || all.id(rows[i]) != all.id(rows[i - 1])) kept.push_back(rows[i]);
  }
  rows = std::vector<uint32_t>();

  ColumnsCommit out;
  // Rows only unpublished pages wrote are dropped, once each.
  {
    absl::flat_hash_set<absl::string_view> seen;
    for (const CrawlSnapshot& part : unpublished) {
      for (size_t i = 0; i < part.size(); ++i) {
        absl::string_view id = part.id(i);
        if (!seen.insert(id).second) continue;
        auto pos = std::lower_bound(kept.begin(), kept.end(), id,
                                    [&all](uint32_t row, auto v) { return all.id(row) < v; });
        if (pos == kept.end() || all.id(*pos) != id) {
          out.dropped_ids.emplace_back(id);
        } else {
          out.rewritten_ids.emplace_back(id);
        }
      }
    }
  }

  // One row per object id: hashes first, exact ids only where a hash repeats.
  std::vector<std::pair<uint64_t, uint32_t>> by_hash;  // (hash, index into kept)
  by_hash.reserve(kept.size());
  for (size_t k = 0; k < kept.size(); ++k) {
    const uint64_t h = all.object_id_hash(kept[k]);
    if (h != 0) by_hash.emplace_back(h, static_cast<uint32_t>(k));
  }
  std::sort(by_hash.begin(), by_hash.end());
  std::vector<bool> drop(kept.size(), false);
  // A row whose hash repeats: its object id and last_modified, read again from its page chunk
  // (the commit holds only hashes). Few pages: renames, or a hash collision.
  absl::flat_hash_map<size_t, std::pair<CrawlSnapshot, DedupColumns>> reread;
  auto candidate = [&](uint32_t k) -> absl::StatusOr<RenameCandidate> {
    const uint32_t row = kept[k];
    const auto [p, index] = all.Page(row);
    auto found = reread.find(p);
    if (found == reread.end()) {
      const CrawlPage& page = pages[p];
      std::string value;
      RETURN_IF_ERROR(FromRocks(db->Get(rocksdb::ReadOptions(), snapshots_cf,
                                        PageChunkKey(n, page.item_id, page.fence), &value),
                                "page chunk"));
      found = reread.try_emplace(p).first;
      RETURN_IF_ERROR(DecodeColumns(value,
                                    absl::StrCat("page chunk of crawl number ", n, " item ",
                                                 InputExcerpt(page.item_id), " fence ", page.fence),
                                    &found->second.first, &found->second.second));
    }
    const auto& [rows_of_page, dedup_of_page] = found->second;
    if (index >= rows_of_page.size() || rows_of_page.id(index) != all.id(row)) {
      return absl::DataLossError(absl::StrCat("page chunk of crawl number ", n, " item ",
                                              InputExcerpt(pages[p].item_id),
                                              " changed while it was committed"));
    }
    return RenameCandidate{k, std::string(all.id(row)), all.seen_sequence(row),
                           dedup_of_page.last_modified[index],
                           std::string(dedup_of_page.object_id(index))};
  };
  for (size_t i = 0; i < by_hash.size();) {
    size_t j = i + 1;
    while (j < by_hash.size() && by_hash[j].first == by_hash[i].first) ++j;
    if (j - i > 1) {
      std::map<std::string, std::vector<RenameCandidate>> groups;
      for (size_t g = i; g < j; ++g) {
        ASSIGN_OR_RETURN(RenameCandidate c, candidate(by_hash[g].second));
        std::string object_id = c.object_id;
        groups[std::move(object_id)].push_back(std::move(c));
      }
      for (auto& [object_id, candidates] : groups) {
        if (candidates.size() < 2) continue;
        std::sort(candidates.begin(), candidates.end(), NewerSeen);
        for (size_t k = 1; k < candidates.size(); ++k) {
          drop[candidates[k].row] = true;
          out.renamed_ids.push_back(candidates[k].repo_id);
          HC_LOG(kInfo, "renamed_repo_counted_once")
              .Field("object_id", InputExcerpt(object_id))
              .Field("kept", candidates[0].repo_id)
              .Field("dropped", candidates[k].repo_id);
        }
      }
    }
    i = j;
  }
  const absl::Time gather_start = absl::Now();
  std::vector<uint32_t> final_rows;
  final_rows.reserve(kept.size());
  for (size_t k = 0; k < kept.size(); ++k) {
    if (!drop[k]) final_rows.push_back(kept[k]);
  }
  // What only the de-duplication needed goes before the gather allocates the sorted columns:
  // the commit's peak memory is here.
  all.dedup = std::vector<DedupColumns>();
  reread.clear();
  // Each published row's meta version and trending score, in the published order.
  out.row_meta.meta_version.resize(final_rows.size());
  out.row_meta.trending_score.resize(final_rows.size());
  for (size_t i = 0; i < final_rows.size(); ++i) {
    const auto [r, index] = all.Locate(final_rows[i]);
    out.row_meta.meta_version[i] = all.row_meta[r].meta_version[index];
    out.row_meta.trending_score[i] = all.row_meta[r].trending_score[index];
  }
  all.row_meta = std::vector<RowMetaColumns>();
  by_hash = std::vector<std::pair<uint64_t, uint32_t>>();
  kept = std::vector<uint32_t>();
  drop = std::vector<bool>();
  out.snapshot = CrawlSnapshot::TakeRows(std::move(all.snapshots), final_rows, threads);
  out.decode = sort_start - decode_start;
  out.sort = dedup_start - sort_start;
  out.dedup = gather_start - dedup_start;
  out.gather = absl::Now() - gather_start;
  return std::optional<ColumnsCommit>(std::move(out));
}

// A committed crawl's parts, read and decoded on threads, appended in order.
absl::StatusOr<CrawlSnapshot> LoadCommittedParts(rocksdb::DB* db,
                                                 rocksdb::ColumnFamilyHandle* snapshots_cf,
                                                 const rocksdb::Snapshot* snapshot,
                                                 const v1::StoredCrawl& crawl, size_t threads) {
  const uint32_t n = crawl.crawl_number();
  const size_t parts = crawl.column_parts();
  const size_t ranges = std::max<size_t>(1, std::min(threads, parts));
  std::vector<CrawlSnapshot> loaded(ranges);
  std::vector<absl::Status> statuses(ranges);
  ForEachRange(parts, ranges, [&](size_t r, size_t begin, size_t end) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot;
    ro.fill_cache = false;
    rocksdb::PinnableSlice value;
    if (end > begin) loaded[r].Reserve(static_cast<size_t>(crawl.repos()) * (end - begin) / parts);
    for (size_t p = begin; p < end; ++p) {
      const std::string what = absl::StrCat("column part ", p, " of ", parts, " of crawl ",
                                            InputExcerpt(crawl.crawl_id()), " (number ", n, ")");
      value.Reset();
      rocksdb::Status s =
          db->Get(ro, snapshots_cf, CommittedPartKey(n, static_cast<uint32_t>(p)), &value);
      if (s.IsNotFound()) {
        statuses[r] = absl::DataLossError(absl::StrCat(what, " is missing"));
        return;
      }
      statuses[r] = FromRocks(s, what);
      if (statuses[r].ok()) statuses[r] = DecodeColumns(ToView(value), what, &loaded[r]);
      if (!statuses[r].ok()) return;
    }
  });
  for (const absl::Status& st : statuses) RETURN_IF_ERROR(st);
  CrawlSnapshot out = CrawlSnapshot::Concat(std::move(loaded), threads);
  if (static_cast<int64_t>(out.size()) != crawl.repos()) {
    return absl::DataLossError(absl::StrCat("the column parts of crawl ",
                                            InputExcerpt(crawl.crawl_id()), " hold ", out.size(),
                                            " repos, its record says ", crawl.repos()));
  }
  return out;
}

}  // namespace

absl::Status SnapshotStore::IngestParts(uint32_t n, const CrawlSnapshot& snapshot,
                                        const RowMetaColumns* row_meta, size_t part_rows,
                                        size_t parts, size_t threads) {
  std::shared_ptr<Db> d = CurrentDb();
  if (parts == 0) {
    // Nothing to ingest: only what an interrupted commit may have left goes.
    rocksdb::WriteBatch none;
    none.DeleteRange(d->snapshots, CommittedPartKey(n, 0), PageChunksBegin(n));
    return WriteToDb(rocksdb::WriteOptions(), &none, "deleting the column parts");
  }
  // The table files are made in a folder of their own, emptied first: a commit interrupted
  // between writing and ingesting them leaves them there, never in RocksDB.
  const std::filesystem::path dir = std::filesystem::path(options_.path) / "ingest";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("creating ", dir.string(), " for the column parts: ", ec.message()));
  }
  // The snapshots column family's own table options and compression, and the store's Env.
  const rocksdb::Options sst_options = d->db->GetOptions(d->snapshots);
  const size_t files = std::min(std::max<size_t>(threads, 1), parts);
  std::vector<std::string> paths(files);
  std::vector<rocksdb::Status> written(files);
  ForEachRange(parts, files, [&](size_t r, size_t begin, size_t end) {
    paths[r] = (dir / absl::StrCat("parts-", n, "-", r, ".sst")).string();
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), sst_options, d->snapshots);
    rocksdb::Status s = writer.Open(paths[r]);
    ColumnWriter columns(/*with_dedup_columns=*/false, /*with_row_meta=*/row_meta != nullptr);
    for (size_t p = begin; s.ok() && p < end; ++p) {
      const size_t to = std::min(snapshot.size(), (p + 1) * part_rows);
      for (size_t i = p * part_rows; i < to; ++i) {
        columns.AddSnapshotRow(snapshot, i, {}, 0, row_meta ? row_meta->at(i) : RowMeta{});
      }
      s = writer.Put(CommittedPartKey(n, static_cast<uint32_t>(p)), columns.Finish());
      columns = ColumnWriter(/*with_dedup_columns=*/false, /*with_row_meta=*/row_meta != nullptr);
    }
    // The last file also deletes every part an interrupted commit left beyond these.
    if (s.ok() && end == parts) {
      s = writer.DeleteRange(CommittedPartKey(n, static_cast<uint32_t>(parts)), PageChunksBegin(n));
    }
    if (s.ok()) s = writer.Finish();
    written[r] = s;
  });
  auto failed = [&](const rocksdb::Status& s, absl::string_view what) {
    std::filesystem::remove_all(dir, ec);
    return WriteFailed(d.get(), s, what);
  };
  for (const rocksdb::Status& s : written) {
    if (!s.ok()) return failed(s, "writing the column parts' table files");
  }
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  const rocksdb::Status s = d->db->IngestExternalFile(d->snapshots, paths, ingest);
  if (!s.ok()) return failed(s, "ingesting the column parts");
  std::filesystem::remove_all(dir, ec);
  return absl::OkStatus();
}

absl::StatusOr<CommitOutcome> SnapshotStore::Commit(const v1::CommitRequest& request,
                                                    const RollupBuilder& build) {
  if (options_.secondary) return absl::FailedPreconditionError("the store is open read-only");
  RETURN_IF_ERROR(CheckId("crawl_id", request.crawl_id()));
  if (!request.crawl_date().empty()) {
    RETURN_IF_ERROR(CheckDateField("crawl_date", request.crawl_date()));
  }
  RETURN_IF_ERROR(CheckCounts(request.counts()));
  absl::flat_hash_set<absl::string_view> items;
  for (int i = 0; i < request.manifest_size(); ++i) {
    const auto& e = request.manifest(i);
    RETURN_IF_ERROR(CheckId(absl::StrCat("manifest[", i, "].item_id"), e.item_id()));
    if (!items.insert(e.item_id()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("manifest[", i, "].item_id: ", QuoteInput(e.item_id()), " appears twice"));
    }
  }
  const uint64_t digest = ManifestDigest(request);

  absl::MutexLock lock(&mu_);
  v1::StoredCrawl crawl;
  bool created = false;
  auto found = crawls_.find(request.crawl_id());
  if (found == crawls_.end()) {
    if (request.manifest_size() > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("crawl ", InputExcerpt(request.crawl_id()),
                       ": the store received no batch of it; manifest item ",
                       InputExcerpt(request.manifest(0).item_id()), " fence ",
                       request.manifest(0).fence(), " is missing"));
    }
    if (request.crawl_date().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "crawl_date: empty for crawl ", InputExcerpt(request.crawl_id()), ", unknown here"));
    }
    // An empty crawl (a Hub with nothing listed) still gets a record and a number.
    crawl.set_crawl_id(request.crawl_id());
    crawl.set_date(request.crawl_date());
    crawl.set_state(v1::STORED_CRAWL_RECEIVING);
    crawl.set_crawl_number(next_crawl_number_);
    crawl.set_created_at_unix_ms(absl::ToUnixMillis(options_.clock->Now()));
    created = true;
  } else {
    crawl = found->second;
  }
  if (crawl.state() == v1::STORED_CRAWL_ABORTED) {
    return absl::FailedPreconditionError(
        absl::StrCat("crawl ", InputExcerpt(crawl.crawl_id()), " was aborted (",
                     InputExcerpt(crawl.abort_reason()), "): it cannot be committed"));
  }
  if (crawl.state() == v1::STORED_CRAWL_COMMITTED) {
    if (crawl.manifest_digest() == digest) {
      CommitOutcome outcome;
      outcome.crawl = crawl;
      outcome.already_committed = true;
      return outcome;
    }
    return absl::FailedPreconditionError(
        absl::StrCat("crawl ", InputExcerpt(crawl.crawl_id()),
                     " is already committed with a different manifest"));
  }
  if (!request.crawl_date().empty() && request.crawl_date() != crawl.date()) {
    return absl::InvalidArgumentError(
        absl::StrCat("crawl_date: ", QuoteInput(request.crawl_date()), " differs from crawl ",
                     InputExcerpt(crawl.crawl_id()), "'s date ", crawl.date()));
  }
  RETURN_IF_ERROR(EnsureWritable());
  std::shared_ptr<Db> d = CurrentDb();
  const uint32_t n = crawl.crawl_number();

  // Every manifest entry must match the marker its batch left, and be the item's last fence.
  absl::flat_hash_map<uint32_t, uint64_t> published_fence;  // item number -> fence
  {
    std::unique_ptr<rocksdb::Iterator> it(d->db->NewIterator(rocksdb::ReadOptions(), d->markers));
    for (int i = 0; i < request.manifest_size(); ++i) {
      const auto& e = request.manifest(i);
      std::string where =
          absl::StrCat("manifest[", i, "] (item ", InputExcerpt(e.item_id()), ", fence ", e.fence(),
                       ") of crawl ", InputExcerpt(crawl.crawl_id()));
      std::string prefix = MarkerItemPrefix(n, e.item_id());
      it->SeekForPrev(prefix + std::string(8, '\xff'));
      if (!it->Valid() || !StartsWith(ToView(it->key()), prefix) ||
          it->key().size() != prefix.size() + 8) {
        RETURN_IF_ERROR(FromRocks(it->status(), "markers"));
        return absl::FailedPreconditionError(
            absl::StrCat(where, ": the store received no batch for this item"));
      }
      uint64_t max_fence = GetBigEndian64(ToView(it->key()).substr(prefix.size()));
      if (max_fence != e.fence()) {
        std::string marker_value;
        bool has = d->db
                       ->Get(rocksdb::ReadOptions(), d->markers,
                             MarkerKey(n, e.item_id(), e.fence()), &marker_value)
                       .ok();
        return absl::FailedPreconditionError(absl::StrCat(
            where, has ? ": a newer fence " : ": no batch with this fence; the item's fence ",
            max_fence, has ? " of the item wrote after it" : " wrote instead"));
      }
      v1::StoredMarker marker;
      if (!marker.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError(absl::StrCat(where, ": marker is corrupt"));
      }
      if (marker.repos() != e.repos() || marker.id_checksum() != e.id_checksum()) {
        return absl::FailedPreconditionError(absl::StrCat(
            where, ": the store received ", marker.repos(), " repos with id checksum ",
            marker.id_checksum(), ", the manifest says ", e.repos(), " with ", e.id_checksum()));
      }
      published_fence[marker.item_number()] = e.fence();
    }
  }

  rocksdb::WriteBatch wb;
  CommitOutcome outcome;
  // Called from the scan's threads: it only reads.
  auto keep = [&published_fence](const SnapshotCounters& c) {
    for (const SnapshotWriter& w : c.writers) {
      auto it = published_fence.find(w.item_number);
      if (it != published_fence.end() && it->second == w.fence) return true;
    }
    return false;
  };
  const size_t threads = ScanThreads(options_.scan_threads);
  // The commit reads without filling the block cache, and what the cache holds (the repo_meta
  // blocks the crawl's ingest looked up, up to block_cache_bytes) is of no use to it: that memory
  // goes back to the system before the read, where a commit's memory peaks.
  block_cache_->EraseUnRefEntries();
  malloc_trim(0);
  // Where a commit's time goes (logged with crawl_committed): reading the published snapshots,
  // encoding the committed parts, the rollups, the fsynced write.
  const absl::Time read_start = absl::Now();
  // The page chunks hold every page of the crawl (unless some page was written before they
  // existed): read exactly the published ones, no row scan, no repo_meta look-up.
  ASSIGN_OR_RETURN(std::vector<CrawlPage> pages,
                   CrawlPages(d->db.get(), d->markers, n, published_fence));
  ASSIGN_OR_RETURN(std::optional<ColumnsCommit> from_columns,
                   CommitFromColumns(d->db.get(), d->snapshots, n, pages, threads));
  CrawlSnapshot snapshot;
  RowMetaColumns row_meta;  // read from the page chunks only
  if (from_columns.has_value()) {
    snapshot = std::move(from_columns->snapshot);
    row_meta = std::move(from_columns->row_meta);
    for (const std::string& id : from_columns->dropped_ids)
      wb.Delete(d->snapshots, SnapshotKey(n, id));
    for (const std::string& id : from_columns->renamed_ids)
      wb.Delete(d->snapshots, SnapshotKey(n, id));
    for (const std::string& id : from_columns->rewritten_ids) {
      const std::optional<size_t> i = FindSorted(snapshot, id);
      if (!i.has_value()) continue;  // a renamed duplicate
      wb.Put(d->snapshots, SnapshotKey(n, id),
             EncodeSnapshotCounters(StoredCounters(snapshot, *i, row_meta.at(*i)), n));
    }
    outcome.dropped_rows = static_cast<int64_t>(from_columns->dropped_ids.size());
    outcome.renamed_duplicates = static_cast<int64_t>(from_columns->renamed_ids.size());
  } else {
    std::vector<std::string> dropped;
    std::vector<uint64_t> object_id_hashes;
    ASSIGN_OR_RETURN(snapshot,
                     LoadColumns(d->db.get(), d->snapshots, d->repo_meta, nullptr, n, threads,
                                 options_.scan_split_min_bytes, keep, &dropped, &object_id_hashes));
    for (const std::string& key : dropped) wb.Delete(d->snapshots, ToSlice(key));
    outcome.dropped_rows = static_cast<int64_t>(dropped.size());
    // A repo renamed mid-crawl (listed under both names by different streams) is one repo.
    ASSIGN_OR_RETURN(std::vector<bool> renamed,
                     RenamedDuplicates(d->db.get(), d->snapshots, d->repo_meta, n, snapshot,
                                       object_id_hashes, &outcome.renamed_duplicates));
    if (outcome.renamed_duplicates > 0) {
      for (size_t i = 0; i < renamed.size(); ++i) {
        if (renamed[i]) wb.Delete(d->snapshots, SnapshotKey(n, snapshot.id(i)));
      }
      snapshot = snapshot.Without(renamed);
    }
  }
  // The published crawl in sorted parts, for loads, ingested as table files ahead of the commit's
  // own batch: no reader looks at them before the crawl's record says how many there are, and a
  // commit or an abort after a crash writes or deletes them again. The page chunks go with the
  // commit.
  const absl::Time parts_start = absl::Now();
  const size_t part_rows =
      options_.column_part_rows > 0 ? static_cast<size_t>(options_.column_part_rows) : kRowsPerPart;
  const size_t parts = (snapshot.size() + part_rows - 1) / part_rows;
  RETURN_IF_ERROR(
      IngestParts(n, snapshot, from_columns ? &row_meta : nullptr, part_rows, parts, threads));
  const absl::Time rollups_start = absl::Now();
  wb.DeleteRange(d->snapshots, PageChunksBegin(n), PageChunksEnd(n));
  crawl.set_column_parts(static_cast<uint32_t>(parts));
  crawl.set_parts_have_row_meta(from_columns.has_value());
  if (crawl.parts_have_row_meta()) {
    // Where a point read finds a repo's part: the first id of each.
    std::vector<std::string> first_ids;
    for (size_t p = 0; p < parts; ++p) first_ids.emplace_back(snapshot.id(p * part_rows));
    wb.Put(d->snapshots, CommittedPartIndexKey(n), EncodePartIndex(first_ids));
  }
  row_meta = RowMetaColumns();

  crawl.set_state(v1::STORED_CRAWL_COMMITTED);
  crawl.set_repos(static_cast<int64_t>(snapshot.size()));
  crawl.set_manifest_digest(digest);
  crawl.set_committed_at_unix_ms(absl::ToUnixMillis(options_.clock->Now()));
  *crawl.mutable_counts() = request.counts();
  crawl.mutable_counts()->set_repos(crawl.repos());
  if (build) {
    ASSIGN_OR_RETURN(Rollups rollups, build(crawl, snapshot));
    wb.DeleteRange(d->rollups, CrawlPrefix(n), CrawlPrefix(n + 1));
    for (const auto& [name, value] : rollups) wb.Put(d->rollups, RollupKey(n, name), value);
  }
  // The store keeps rows for the newest committed crawl only (by date, then number): the next
  // crawl's ChangedSinceLastCrawl looks up every repo it writes there. Every other committed crawl
  // whose parts carry the meta versions is read from its parts alone: its rows go with this
  // commit (half of what a crawl keeps on disk).
  std::vector<v1::StoredCrawl> rows_dropped;
  {
    auto newer = [](const v1::StoredCrawl& a, const v1::StoredCrawl& b) {
      return a.date() != b.date() ? a.date() > b.date() : a.crawl_number() > b.crawl_number();
    };
    const v1::StoredCrawl* newest = &crawl;
    for (const auto& [id, c] : crawls_) {
      if (c.state() == v1::STORED_CRAWL_COMMITTED && newer(c, *newest)) newest = &c;
    }
    for (const auto& [id, c] : crawls_) {
      if (c.state() != v1::STORED_CRAWL_COMMITTED || c.crawl_id() == crawl.crawl_id() ||
          &c == newest || !c.parts_have_row_meta() || c.column_parts() == 0 || c.rows_dropped()) {
        continue;
      }
      rows_dropped.push_back(c);
      rows_dropped.back().set_rows_dropped(true);
      const uint32_t m = c.crawl_number();
      wb.DeleteRange(d->snapshots, CrawlPrefix(m), CrawlPrefix(m + 1));
      wb.Put(d->crawls, CrawlRecordKey(c.crawl_id()), rows_dropped.back().SerializeAsString());
    }
    if (newest != &crawl && crawl.parts_have_row_meta()) {
      crawl.set_rows_dropped(true);
      wb.DeleteRange(d->snapshots, CrawlPrefix(n), CrawlPrefix(n + 1));
    }
  }
  wb.Put(d->crawls, CrawlRecordKey(crawl.crawl_id()), crawl.SerializeAsString());
  if (created) {
    std::string next;
    PutBigEndian32(&next, n + 1);
    wb.Put(d->crawls, ToSlice(kNextCrawlNumberKey), next);
  }
  rocksdb::WriteOptions wo;
  // A commit is acknowledged to the coordinator exactly once: it must be on disk first (the
  // fsync also covers every batch before it in the WAL, synced or not).
  wo.sync = true;
  const absl::Time write_start = absl::Now();
  RETURN_IF_ERROR(WriteToDb(wo, &wb, "writing the commit"));
  const absl::Time write_end = absl::Now();
  // The commit is durable in the WAL already; the flush is for the next reader's open.
  if (options_.flush_after_commit) d->FlushAfterCommit();
  const absl::Time flush_end = absl::Now();
  crawls_[crawl.crawl_id()] = crawl;
  for (const v1::StoredCrawl& c : rows_dropped) crawls_[c.crawl_id()] = c;
  if (created) next_crawl_number_ = n + 1;
  outcome.crawl = crawl;
  HC_LOG(kInfo, "crawl_committed")
      .Field("crawl", crawl.crawl_id())
      .Field("date", crawl.date())
      .Field("repos", crawl.repos())
      .Field("dropped_rows", outcome.dropped_rows)
      .Field("renamed_duplicates", outcome.renamed_duplicates)
      .Field("from", from_columns.has_value() ? "page chunks" : "rows")
      .Field("read_ms", absl::ToInt64Milliseconds(parts_start - read_start))
      .Field("read_decode_ms", from_columns ? absl::ToInt64Milliseconds(from_columns->decode) : 0)
      .Field("read_sort_ms", from_columns ? absl::ToInt64Milliseconds(from_columns->sort) : 0)
      .Field("read_dedup_ms", from_columns ? absl::ToInt64Milliseconds(from_columns->dedup) : 0)
      .Field("read_gather_ms", from_columns ? absl::ToInt64Milliseconds(from_columns->gather) : 0)
      .Field("parts_ms", absl::ToInt64Milliseconds(rollups_start - parts_start))
      .Field("rollups_ms", absl::ToInt64Milliseconds(write_start - rollups_start))
      .Field("write_ms", absl::ToInt64Milliseconds(write_end - write_start))
      .Field("flush_ms", absl::ToInt64Milliseconds(flush_end - write_end))
      .Field("write_bytes", static_cast<int64_t>(wb.GetDataSize()))
      .Field("crawls_rows_dropped",
             static_cast<int64_t>(rows_dropped.size() + crawl.rows_dropped()));
  return outcome;
}

absl::Status SnapshotStore::Abort(absl::string_view crawl_id, absl::string_view reason) {
  if (options_.secondary) return absl::FailedPreconditionError("the store is open read-only");
  RETURN_IF_ERROR(CheckId("crawl_id", crawl_id));
  absl::MutexLock lock(&mu_);
  rocksdb::WriteBatch wb;
  v1::StoredCrawl crawl;
  bool created = false;
  auto found = crawls_.find(std::string(crawl_id));
  if (found == crawls_.end()) {
    // Remember it, so that late writes of the crawl are refused.
    crawl.set_crawl_id(std::string(crawl_id));
    crawl.set_crawl_number(next_crawl_number_);
    crawl.set_created_at_unix_ms(absl::ToUnixMillis(options_.clock->Now()));
    created = true;
  } else {
    crawl = found->second;
    if (crawl.state() == v1::STORED_CRAWL_ABORTED) return absl::OkStatus();
    if (crawl.state() == v1::STORED_CRAWL_COMMITTED) {
      return absl::FailedPreconditionError(
          absl::StrCat("crawl ", InputExcerpt(crawl_id), " is committed: it cannot be aborted"));
    }
  }
  RETURN_IF_ERROR(EnsureWritable());
  std::shared_ptr<Db> d = CurrentDb();
  const uint32_t n = crawl.crawl_number();
  crawl.set_state(v1::STORED_CRAWL_ABORTED);
  crawl.set_abort_reason(InputExcerpt(reason));
  wb.DeleteRange(d->snapshots, CrawlPrefix(n), CrawlPrefix(n + 1));
  wb.DeleteRange(d->snapshots, ColumnsCrawlPrefix(n), ColumnsCrawlPrefix(n + 1));
  wb.Put(d->crawls, CrawlRecordKey(crawl.crawl_id()), crawl.SerializeAsString());
  if (created) {
    std::string next;
    PutBigEndian32(&next, n + 1);
    wb.Put(d->crawls, ToSlice(kNextCrawlNumberKey), next);
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  RETURN_IF_ERROR(WriteToDb(wo, &wb, "writing the abort"));
  crawls_[crawl.crawl_id()] = crawl;
  if (created) next_crawl_number_ = n + 1;
  HC_LOG(kInfo, "crawl_aborted")
      .Field("crawl", InputExcerpt(crawl_id))
      .Field("reason", InputExcerpt(reason));
  return absl::OkStatus();
}

absl::Status SnapshotStore::PutRollups(uint32_t crawl_number, const Rollups& rollups) {
  if (options_.secondary) return absl::FailedPreconditionError("the store is open read-only");
  // Called by queries: one must not wait seconds behind a commit holding the lock. The query
  // answers from the figures it computed, and a later one writes them.
  if (!mu_.TryLock()) {
    return absl::UnavailableError("the store is busy with a commit; rollups not written now");
  }
  absl::Status written = PutRollupsLocked(crawl_number, rollups);
  mu_.Unlock();
  return written;
}

absl::Status SnapshotStore::PutRollupsLocked(uint32_t crawl_number, const Rollups& rollups) {
  RETURN_IF_ERROR(EnsureWritable());
  std::shared_ptr<Db> d = CurrentDb();
  rocksdb::WriteBatch wb;
  wb.DeleteRange(d->rollups, CrawlPrefix(crawl_number), CrawlPrefix(crawl_number + 1));
  for (const auto& [name, value] : rollups)
    wb.Put(d->rollups, RollupKey(crawl_number, name), value);
  // Not synced: lost rollups are recomputed from the snapshots on the next query.
  return WriteToDb(rocksdb::WriteOptions(), &wb, "writing rollups");
}

absl::StatusOr<std::unique_ptr<StoreView>> SnapshotStore::View() {
  std::shared_ptr<Db> d = CurrentDb();
  if (options_.secondary) {
    RETURN_IF_ERROR(FromRocks(d->db->TryCatchUpWithPrimary(), "catching up with the aggregator"));
  }
  // A secondary instance moves only on TryCatchUpWithPrimary (above), and a read-only one never:
  // each is its own snapshot.
  const rocksdb::Snapshot* snapshot =
      options_.secondary || d->read_only ? nullptr : d->db->GetSnapshot();
  return std::unique_ptr<StoreView>(new StoreView(this, std::move(d), snapshot));
}

absl::Status SnapshotStore::CompactAll() {
  std::shared_ptr<Db> d = CurrentDb();
  rocksdb::FlushOptions fo;
  fo.wait = true;
  for (auto* h : d->handles) {
    RETURN_IF_ERROR(FromRocks(d->db->Flush(fo, h), "flush"));
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    RETURN_IF_ERROR(FromRocks(d->db->CompactRange(co, h, nullptr, nullptr), "compaction"));
  }
  return absl::OkStatus();
}

uint64_t SnapshotStore::SnapshotBytesOnDisk() {
  uint64_t v = 0;
  std::shared_ptr<Db> d = CurrentDb();
  d->db->GetIntProperty(d->snapshots, "rocksdb.total-sst-files-size", &v);
  return v;
}

uint64_t SnapshotStore::ColumnBytesOnDisk() {
  std::shared_ptr<Db> d = CurrentDb();
  const std::string begin = ColumnsBegin(), end = ColumnsEnd();
  rocksdb::Range range(begin, end);
  uint64_t v = 0;
  rocksdb::SizeApproximationOptions options;
  options.include_files = true;
  options.include_memtables = false;
  d->db->GetApproximateSizes(options, d->snapshots, &range, 1, &v);
  return v;
}

uint64_t SnapshotStore::RepoMetaBytesOnDisk() {
  uint64_t v = 0;
  std::shared_ptr<Db> d = CurrentDb();
  d->db->GetIntProperty(d->repo_meta, "rocksdb.total-sst-files-size", &v);
  return v;
}

StoreView::~StoreView() {
  if (snapshot_ != nullptr) db_->db->ReleaseSnapshot(snapshot_);
}

std::vector<v1::StoredCrawl> StoreView::Crawls() const {
  std::vector<v1::StoredCrawl> out;
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(ro, db_->crawls));
  for (it->Seek(ToSlice(kCrawlRecordPrefix));
       it->Valid() && StartsWith(ToView(it->key()), kCrawlRecordPrefix); it->Next()) {
    v1::StoredCrawl crawl;
    if (crawl.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      out.push_back(std::move(crawl));
    }
  }
  std::sort(out.begin(), out.end(), [](const v1::StoredCrawl& a, const v1::StoredCrawl& b) {
    return a.crawl_number() < b.crawl_number();
  });
  return out;
}

std::vector<v1::StoredCrawl> StoreView::CommittedCrawls() const {
  std::vector<v1::StoredCrawl> out;
  for (auto& c : Crawls()) {
    if (c.state() == v1::STORED_CRAWL_COMMITTED) out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<v1::StoredCrawl> StoreView::FindCrawl(absl::string_view crawl_id) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::string value;
  rocksdb::Status s = db_->db->Get(ro, db_->crawls, CrawlRecordKey(crawl_id), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("crawl ", InputExcerpt(crawl_id), " is unknown"));
  }
  RETURN_IF_ERROR(FromRocks(s, "crawl record"));
  v1::StoredCrawl crawl;
  if (!crawl.ParseFromString(value)) {
    return absl::DataLossError(
        absl::StrCat("crawl record ", InputExcerpt(crawl_id), " is corrupt"));
  }
  return crawl;
}

absl::StatusOr<CrawlSnapshot> StoreView::LoadCrawl(const v1::StoredCrawl& crawl) const {
  if (crawl.state() != v1::STORED_CRAWL_COMMITTED) {
    return absl::FailedPreconditionError(
        absl::StrCat("crawl ", crawl.crawl_id(), " is not committed"));
  }
  if (crawl.column_parts() > 0) {
    return LoadCommittedParts(db_->db.get(), db_->snapshots, snapshot_, crawl,
                              ScanThreads(store_->options_.scan_threads));
  }
  // A crawl committed before the columnar form: its rows.
  return LoadColumns(db_->db.get(), db_->snapshots, db_->repo_meta, snapshot_, crawl.crawl_number(),
                     ScanThreads(store_->options_.scan_threads),
                     store_->options_.scan_split_min_bytes, nullptr, nullptr);
}

absl::Status StoreView::ForEachRepo(
    const v1::StoredCrawl& crawl,
    const std::function<absl::Status(const v1::RepoSnapshot&)>& fn) const {
  if (crawl.state() != v1::STORED_CRAWL_COMMITTED) {
    return absl::FailedPreconditionError(
        absl::StrCat("crawl ", crawl.crawl_id(), " is not committed"));
  }
  v1::RepoSnapshot repo;
  v1::RepoMeta parsed;
  auto row = [&](absl::string_view repo_id, const SnapshotCounters& c, absl::string_view meta) {
    if (!parsed.ParseFromArray(meta.data(), static_cast<int>(meta.size()))) {
      return absl::DataLossError(absl::StrCat("repo_meta of ", repo_id, " is corrupt"));
    }
    repo.Clear();
    ApplyMeta(parsed, &repo);
    repo.mutable_id()->assign(repo_id.data(), repo_id.size());
    ApplyCounters(c, &repo);
    return fn(repo);
  };
  ASSIGN_OR_RETURN(bool rows_dropped, RowsDropped(crawl));
  if (rows_dropped) {
    // Part after part (one decoded at a time), joined with the meta versions they name.
    MetaJoin meta_join(db_->db.get(), db_->repo_meta, snapshot_);
    for (size_t p = 0; p < crawl.column_parts(); ++p) {
      CrawlSnapshot rows;
      RowMetaColumns row_meta;
      RETURN_IF_ERROR(ReadPart(crawl, p, &rows, &row_meta, /*fill_cache=*/false));
      for (size_t i = 0; i < rows.size(); ++i) {
        const SnapshotCounters c = StoredCounters(rows, i, row_meta.at(i));
        ASSIGN_OR_RETURN(absl::string_view meta,
                         meta_join.Find(rows.id(i), c.meta_crawl_number, crawl.crawl_number()));
        RETURN_IF_ERROR(row(rows.id(i), c, meta));
      }
    }
    return absl::OkStatus();
  }
  return ScanCrawlRows(db_->db.get(), db_->snapshots, db_->repo_meta, snapshot_,
                       crawl.crawl_number(), WholeCrawl(crawl.crawl_number()), nullptr, nullptr,
                       row);
}

absl::StatusOr<bool> StoreView::RowsDropped(const v1::StoredCrawl& crawl) const {
  if (crawl.rows_dropped()) return true;
  if (!crawl.parts_have_row_meta() || crawl.state() != v1::STORED_CRAWL_COMMITTED) return false;
  // A record read before a later commit deleted the rows may still say they are there.
  ASSIGN_OR_RETURN(v1::StoredCrawl now, FindCrawl(crawl.crawl_id()));
  return now.rows_dropped();
}

absl::Status StoreView::ReadPart(const v1::StoredCrawl& crawl, size_t part, CrawlSnapshot* rows,
                                 RowMetaColumns* row_meta, bool fill_cache) const {
  const std::string what = absl::StrCat("column part ", part, " of ", crawl.column_parts(),
                                        " of crawl ", crawl.crawl_id());
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  ro.fill_cache = fill_cache;
  rocksdb::PinnableSlice value;
  rocksdb::Status s =
      db_->db->Get(ro, db_->snapshots,
                   CommittedPartKey(crawl.crawl_number(), static_cast<uint32_t>(part)), &value);
  if (s.IsNotFound()) return absl::DataLossError(absl::StrCat(what, " is missing"));
  RETURN_IF_ERROR(FromRocks(s, what));
  return DecodeColumns(ToView(value), what, rows, nullptr, row_meta);
}

absl::StatusOr<bool> StoreView::GetStoredFromParts(const v1::StoredCrawl& crawl,
                                                   absl::string_view repo_id,
                                                   SnapshotCounters* counters,
                                                   std::string* meta) const {
  const uint32_t n = crawl.crawl_number();
  const std::string what = absl::StrCat("part index of crawl ", crawl.crawl_id());
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::string value;
  rocksdb::Status s = db_->db->Get(ro, db_->snapshots, CommittedPartIndexKey(n), &value);
  if (s.IsNotFound()) return absl::DataLossError(absl::StrCat(what, " is missing"));
  RETURN_IF_ERROR(FromRocks(s, what));
  std::vector<std::string> first_ids;
  RETURN_IF_ERROR(DecodePartIndex(value, what, &first_ids));
  if (first_ids.size() != crawl.column_parts()) {
    return absl::DataLossError(
        absl::StrCat(what, " names ", first_ids.size(), " parts, not ", crawl.column_parts()));
  }
  // The last part whose first id is at or before `repo_id`.
  auto after =
      std::upper_bound(first_ids.begin(), first_ids.end(), repo_id,
                       [](absl::string_view id, const std::string& first) { return id < first; });
  if (after == first_ids.begin()) return false;
  CrawlSnapshot rows;
  RowMetaColumns row_meta;
  RETURN_IF_ERROR(ReadPart(crawl, static_cast<size_t>(after - first_ids.begin()) - 1, &rows,
                           &row_meta,
                           /*fill_cache=*/true));
  const std::optional<size_t> i = FindSorted(rows, repo_id);  // a part is sorted by repo id
  if (!i.has_value()) return false;
  *counters = StoredCounters(rows, *i, row_meta.at(*i));
  s = db_->db->Get(ro, db_->repo_meta, RepoMetaKey(repo_id, counters->meta_crawl_number), meta);
  RETURN_IF_ERROR(FromRocks(s, absl::StrCat("repo_meta of ", repo_id)));
  return true;
}

absl::StatusOr<bool> StoreView::GetStored(const v1::StoredCrawl& crawl, absl::string_view repo_id,
                                          SnapshotCounters* counters, std::string* meta) const {
  if (repo_id.empty() || repo_id.find('\0') != absl::string_view::npos) return false;
  if (crawl.rows_dropped()) return GetStoredFromParts(crawl, repo_id, counters, meta);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::string value;
  const uint32_t n = crawl.crawl_number();
  rocksdb::Status s = db_->db->Get(ro, db_->snapshots, SnapshotKey(n, repo_id), &value);
  if (s.IsNotFound()) {
    ASSIGN_OR_RETURN(bool rows_dropped, RowsDropped(crawl));
    if (rows_dropped) return GetStoredFromParts(crawl, repo_id, counters, meta);
    return false;
  }
  RETURN_IF_ERROR(FromRocks(s, "snapshots"));
  ASSIGN_OR_RETURN(*counters, DecodeSnapshotCounters(value, n));
  s = db_->db->Get(ro, db_->repo_meta, RepoMetaKey(repo_id, counters->meta_crawl_number), meta);
  RETURN_IF_ERROR(FromRocks(s, absl::StrCat("repo_meta of ", repo_id)));
  return true;
}

absl::StatusOr<std::optional<v1::RepoSnapshot>> StoreView::GetRepo(
    const v1::StoredCrawl& crawl, absl::string_view repo_id) const {
  SnapshotCounters c;
  std::string meta;
  ASSIGN_OR_RETURN(bool found, GetStored(crawl, repo_id, &c, &meta));
  if (!found) return std::nullopt;
  v1::RepoMeta parsed;
  if (!parsed.ParseFromString(meta)) {
    return absl::DataLossError(absl::StrCat("repo_meta of ", repo_id, " is corrupt"));
  }
  v1::RepoSnapshot repo;
  repo.set_id(std::string(repo_id));
  ApplyMeta(parsed, &repo);
  ApplyCounters(c, &repo);
  return repo;
}

absl::StatusOr<std::optional<std::string>> StoreView::GetSha(const v1::StoredCrawl& crawl,
                                                             absl::string_view repo_id) const {
  SnapshotCounters c;
  std::string meta;
  ASSIGN_OR_RETURN(bool found, GetStored(crawl, repo_id, &c, &meta));
  if (!found) return std::nullopt;
  absl::StatusOr<absl::string_view> sha = ShaOfMeta(meta);
  if (!sha.ok()) return Annotate(sha.status(), absl::StrCat("sha of ", repo_id));
  return std::string(*sha);
}

absl::StatusOr<std::optional<std::string>> StoreView::GetRollup(uint32_t crawl_number,
                                                                absl::string_view name) const {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::string value;
  rocksdb::Status s = db_->db->Get(ro, db_->rollups, RollupKey(crawl_number, name), &value);
  if (s.IsNotFound()) return std::nullopt;
  RETURN_IF_ERROR(FromRocks(s, "rollups"));
  return value;
}

}  // namespace hubcensus::store
