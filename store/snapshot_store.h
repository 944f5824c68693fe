// The aggregator's RocksDB: per-crawl repo snapshots ingested idempotently per (item, fence),
// published atomically at commit against the coordinator's manifest, read through snapshots.
#ifndef HUBCENSUS_STORE_SNAPSHOT_STORE_H_
#define HUBCENSUS_STORE_SNAPSHOT_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "hubcensus/v1/repo.pb.h"
#include "hubcensus/v1/store.pb.h"
#include "store/crawl_snapshot.h"

namespace rocksdb {
class Cache;
class DB;
class ColumnFamilyHandle;
class Env;
class Snapshot;
class Status;
class WriteBatch;
struct WriteOptions;
}  // namespace rocksdb

namespace hubcensus::store {

inline constexpr int kSchemaVersion = 1;

struct SnapshotStoreOptions {
  std::string path;  // the RocksDB directory (created when missing, read-write mode)
  // Secondary: read-only beside a running aggregator (RocksDB secondary instance; it catches up
  // with the primary's WAL and MANIFEST on every View()). Works with the aggregator stopped too.
  bool secondary = false;
  std::string secondary_path;  // the secondary's own info-log folder; empty: a fresh temp folder
  Clock* clock = Clock::Real();
  // fsync the WAL on every acknowledged batch and commit (survives power loss, not just SIGKILL).
  bool sync_writes = true;
  // Flush the memtables into table files at every commit (waited), so that a reader opening the
  // store next (a query, a restart after a crash) does not replay the crawl from the WAL. Off
  // only in tests that fork a child: the child has none of RocksDB's background threads.
  bool flush_after_commit = true;
  // RocksDB's block cache (uncompressed data blocks, shared by this store's column families; a
  // reader's index and filter blocks too). The repo metadata blocks are small and LZ4, so a miss
  // costs microseconds: the cache is for the hot blocks, not for holding the Hub.
  int64_t block_cache_bytes = 64 << 20;
  // Threads that read one crawl's rows at commit and load (each a key range of about equal size
  // on disk). 0: one per core, up to 8; a small crawl is read by one thread.
  int scan_threads = 0;
  // A crawl smaller than this on disk is read by one thread (tests lower it to split small ones).
  int64_t scan_split_min_bytes = 8 << 20;  // about 250k repos' counters
  // Repos per committed column part (store/internal/crawl_columns.h); 0: its kRowsPerPart.
  // Tests lower it to make many parts of a small crawl.
  int64_t column_part_rows = 0;
  // The RocksDB Env (tests pass one whose file system fails writes with "no space"); null: the
  // default. Not owned; must outlive the store.
  rocksdb::Env* env = nullptr;
};

// What one batch wrote: its marker.
struct BatchResult {
  int64_t repos = 0;
  uint64_t id_checksum = 0;
};

// Materialised rollups of a crawl: (name, serialized value), written with the commit.
using Rollups = std::vector<std::pair<std::string, std::string>>;
// Called at commit with exactly the snapshots being published (under the store's write lock).
using RollupBuilder =
    std::function<absl::StatusOr<Rollups>(const v1::StoredCrawl& crawl, const CrawlSnapshot&)>;

struct CommitOutcome {
  v1::StoredCrawl crawl;
  bool already_committed = false;  // an idempotent repeat of an earlier commit
  int64_t dropped_rows = 0;        // snapshots from (item, fence) pairs not in the manifest
  // Rows dropped because another row of the crawl has the same object id (_id): a repo renamed
  // mid-crawl, listed under both names. The newest-seen name is kept (see Commit).
  int64_t renamed_duplicates = 0;
};

class StoreView;
struct SnapshotCounters;  // store/internal/store_encoding.h
struct RowMetaColumns;    // store/internal/crawl_columns.h

class SnapshotStore {
 public:
  static absl::StatusOr<std::unique_ptr<SnapshotStore>> Open(const SnapshotStoreOptions& options);
  ~SnapshotStore();
  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;

  // One whole page for (crawl, item, fence), in one RocksDB WriteBatch: its rows, its marker and
  // its column chunk (store/internal/crawl_columns.h). A repeat with the same
  // (item, fence) replaces its marker; a lower fence than one already recorded for the item is
  // ABORTED; a committed or aborted crawl is FAILED_PRECONDITION. The first batch of a crawl
  // creates its record and number. A batch holding a private repo is INVALID_ARGUMENT (the census
  // counts public repos only; crawlers drop private entries before): nothing of it is written.
  //
  // Disk full: every write (Write, Commit, Abort, PutRollups) answers RESOURCE_EXHAUSTED naming
  // the cause while the disk is full; reads keep working. The next write after space returns
  // opens a new RocksDB instance and goes through, without a restart.
  absl::StatusOr<BatchResult> Write(const v1::WriteBatch& batch);

  // Verifies every manifest entry against the markers, publishes exactly the snapshots written
  // under the manifest's (item, fence) pairs, writes `build`'s rollups and flips the crawl to
  // COMMITTED, all in one WriteBatch, fsynced. The snapshots are read from the pages' column
  // chunks (the rows when a page has none: written before chunks existed); the published crawl
  // is written back in sorted column parts for LoadCrawl (table files, ingested before the
  // commit's batch), and the page chunks are deleted. A repeat with the same manifest is OK. The
  // request's counts are kept with the crawl (StoredCrawl.counts), `repos` set to what was
  // published.
  //
  // Rows are kept for the newest committed crawl only (by date, then crawl number): the next
  // crawl looks up its repos' shas there (ChangedSinceLastCrawl). The commit deletes the rows of
  // every other committed crawl whose parts carry the meta versions (StoredCrawl.rows_dropped);
  // StoreView reads those crawls from their parts, a point read through the part index.
  //
  // De-duplication by object id: a repo renamed mid-crawl is listed under two ids with one
  // `_id`. One row per object id is published: the one the store received last (the newest-seen
  // name), then the later last_modified, then the greater repo id; the others are dropped.
  // Rows without an object id are never merged.
  absl::StatusOr<CommitOutcome> Commit(const v1::CommitRequest& request,
                                       const RollupBuilder& build);

  // RECEIVING -> ABORTED (its rows and column chunks are deleted); ABORTED again is OK;
  // COMMITTED refuses.
  absl::Status Abort(absl::string_view crawl_id, absl::string_view reason);

  // Replaces the rollups of a committed crawl (re-materialised for another families config).
  // UNAVAILABLE without waiting when a commit holds the store (the caller may skip writing).
  absl::Status PutRollups(uint32_t crawl_number, const Rollups& rollups);

  // A consistent read view: one RocksDB snapshot. In secondary mode, catches up first.
  absl::StatusOr<std::unique_ptr<StoreView>> View();

  bool secondary() const { return options_.secondary; }
  const std::string& path() const { return options_.path; }
  // The store refuses writes for want of disk space (until a write finds space again).
  bool disk_full();

  // Benchmarks and operators: flush memtables and compact every column family.
  absl::Status CompactAll();
  // Live SST bytes of the snapshots and repo_meta column families.
  uint64_t SnapshotBytesOnDisk();
  // The part of SnapshotBytesOnDisk that the columnar form takes (page chunks of crawls being
  // received, committed parts): RocksDB's estimate.
  uint64_t ColumnBytesOnDisk();
  uint64_t RepoMetaBytesOnDisk();

 private:
  friend class StoreView;
  struct Db;
  explicit SnapshotStore(SnapshotStoreOptions options);
  absl::StatusOr<std::shared_ptr<Db>> OpenDb(bool read_only);
  absl::Status CheckSchema() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadCrawlRecords() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::StoredCrawl> CrawlForWrite(const v1::WriteBatch& batch, bool* created)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<Db> CurrentDb();
  // Before any write: RESOURCE_EXHAUSTED while the disk is full. Once there is room again,
  // replaces the failed instance (or the read-only one a store opened on a full disk has) by a
  // new writable one.
  absl::Status EnsureWritable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Replaces a writable instance RocksDB holds in a fatal error by a read-only one, and waits
  // for the failed one to close (it holds the directory's LOCK).
  absl::Status SwapToReadOnly() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes `batch`; a no-space failure marks the store full (RESOURCE_EXHAUSTED).
  absl::Status WriteToDb(const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch,
                         absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What a write of `d` answered (`s`), as WriteToDb reports it.
  absl::Status WriteFailed(Db* d, const rocksdb::Status& s, absl::string_view what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Committed parts [0, parts) of crawl `n`'s sorted `snapshot` (`part_rows` repos each, with
  // their RowMeta when given), made into table files on up to `threads` threads and ingested
  // into the snapshots column family at once: they never pass through the WAL or a memtable.
  // Deletes any part an interrupted commit left beyond them.
  absl::Status IngestParts(uint32_t n, const CrawlSnapshot& snapshot,
                           const RowMetaColumns* row_meta, size_t part_rows, size_t parts,
                           size_t threads) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // When the store receives a page of `crawl`: see SnapshotCounters::seen_sequence.
  absl::Status PutRollupsLocked(uint32_t crawl_number, const Rollups& rollups)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t NextSeenSequence(const v1::StoredCrawl& crawl) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  SnapshotStoreOptions options_;
  std::shared_ptr<rocksdb::Cache> block_cache_;  // made at the first open, kept across reopens
  std::string owned_secondary_path_;
  // Swapped (under mu_ and db_mu_) only when a store opened read-only on a full disk becomes
  // writable; views keep the instance they read alive.
  absl::Mutex db_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::shared_ptr<Db> db_ ABSL_GUARDED_BY(db_mu_);

  // Serialises writes and commits: fence checks and item numbering read-modify-write.
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, v1::StoredCrawl> crawls_ ABSL_GUARDED_BY(mu_);
  uint32_t next_crawl_number_ ABSL_GUARDED_BY(mu_) = 1;
  // Opened read-only because the disk was full at open.
  bool opened_read_only_ ABSL_GUARDED_BY(mu_) = false;
  // A write failed for want of space; `disk_full_cause_` says how.
  bool disk_full_ ABSL_GUARDED_BY(mu_) = false;
  std::string disk_full_cause_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> last_seen_sequence_ ABSL_GUARDED_BY(mu_);
};

// Reads of one RocksDB snapshot: a query never sees a half-published crawl.
class StoreView {
 public:
  ~StoreView();
  StoreView(const StoreView&) = delete;
  StoreView& operator=(const StoreView&) = delete;

  // Every crawl record, by crawl number.
  std::vector<v1::StoredCrawl> Crawls() const;
  // COMMITTED ones only, by crawl number (commit order).
  std::vector<v1::StoredCrawl> CommittedCrawls() const;
  // NOT_FOUND when the crawl id is unknown.
  absl::StatusOr<v1::StoredCrawl> FindCrawl(absl::string_view crawl_id) const;

  // A committed crawl's snapshots, sorted by repo id: its committed column parts (read on
  // threads), or its rows when the record has no column_parts (a crawl committed before the
  // columnar form). DataLoss naming the crawl and part when a part is damaged or missing.
  absl::StatusOr<CrawlSnapshot> LoadCrawl(const v1::StoredCrawl& crawl) const;
  // Every snapshot of a committed crawl as a full RepoSnapshot, sorted by repo id.
  absl::Status ForEachRepo(const v1::StoredCrawl& crawl,
                           const std::function<absl::Status(const v1::RepoSnapshot&)>& fn) const;
  absl::StatusOr<std::optional<v1::RepoSnapshot>> GetRepo(const v1::StoredCrawl& crawl,
                                                          absl::string_view repo_id) const;
  // The sha of one repo of a crawl (empty when the Hub gave none), read out of its stored
  // metadata without decoding the rest; nullopt when the crawl does not hold the repo.
  absl::StatusOr<std::optional<std::string>> GetSha(const v1::StoredCrawl& crawl,
                                                    absl::string_view repo_id) const;
  absl::StatusOr<std::optional<std::string>> GetRollup(uint32_t crawl_number,
                                                       absl::string_view name) const;

 private:
  friend class SnapshotStore;
  // The stored parts of one repo of a crawl: false when the crawl does not hold it.
  absl::StatusOr<bool> GetStored(const v1::StoredCrawl& crawl, absl::string_view repo_id,
                                 SnapshotCounters* counters, std::string* meta) const;
  // The same from a crawl's committed parts (its rows are gone): the part index names the part.
  absl::StatusOr<bool> GetStoredFromParts(const v1::StoredCrawl& crawl, absl::string_view repo_id,
                                          SnapshotCounters* counters, std::string* meta) const;
  // Whether `crawl`'s rows were deleted, as this view's snapshot says.
  absl::StatusOr<bool> RowsDropped(const v1::StoredCrawl& crawl) const;
  // Committed part `part` of `crawl`, with its RowMeta. DataLoss when missing or damaged.
  // `fill_cache`: keep its block in the block cache (point reads, which often meet the same
  // part again; not a scan of every part).
  absl::Status ReadPart(const v1::StoredCrawl& crawl, size_t part, CrawlSnapshot* rows,
                        RowMetaColumns* row_meta, bool fill_cache) const;
  StoreView(SnapshotStore* store, std::shared_ptr<SnapshotStore::Db> db,
            const rocksdb::Snapshot* snapshot)
      : store_(store), db_(std::move(db)), snapshot_(snapshot) {}
  SnapshotStore* store_;
  std::shared_ptr<SnapshotStore::Db> db_;
  const rocksdb::Snapshot* snapshot_;
};

// The id checksum a batch is recorded under (common/checksum.h over its repo ids, as sent).
uint64_t BatchIdChecksum(const v1::WriteBatch& batch);
// Digest of a manifest, independent of entry order: a repeated commit must carry the same one.
uint64_t ManifestDigest(const v1::CommitRequest& request);

}  // namespace hubcensus::store

#endif  // HUBCENSUS_STORE_SNAPSHOT_STORE_H_
