// The columnar form of a crawl (store/internal/crawl_columns.h) against the rows it stands in
// for: a commit from page chunks publishes what a commit from the rows publishes, a load of the
// committed parts gives what the row scan gives, old-layout crawls keep working, and damaged
// column values are DATA_LOSS naming where, never a crash. Real RocksDB in a temp dir.
#include "store/internal/crawl_columns.h"

#include <functional>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "store/internal/store_encoding.h"
#include "store/snapshot_store.h"
#include "tests/aggregator/crawl_builder.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::store {
namespace {

using testing::MakeRepo;
using testing::RepoSpec;

v1::WriteBatch Batch(const std::string& crawl, const std::string& item, uint64_t fence,
                     const std::vector<RepoSpec>& repos) {
  v1::WriteBatch b;
  b.set_crawl_id(crawl);
  b.set_crawl_date("2025-10-31");
  b.set_item_id(item);
  b.set_fence(fence);
  for (const auto& r : repos) *b.add_repos() = MakeRepo(r);
  return b;
}

v1::ManifestEntry Entry(const v1::WriteBatch& b) {
  v1::ManifestEntry e;
  e.set_item_id(b.item_id());
  e.set_fence(b.fence());
  e.set_repos(b.repos_size());
  e.set_id_checksum(BatchIdChecksum(b));
  return e;
}

v1::CommitRequest Manifest(const std::string& crawl, const std::vector<v1::WriteBatch>& batches) {
  v1::CommitRequest req;
  req.set_crawl_id(crawl);
  req.set_crawl_date("2025-10-31");
  for (const auto& b : batches) *req.add_manifest() = Entry(b);
  return req;
}

// Column by column; `what` names the pair compared.
void ExpectSameSnapshot(const CrawlSnapshot& a, const CrawlSnapshot& b, const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(std::string(a.id(i)));
    EXPECT_EQ(a.id(i), b.id(i));
    EXPECT_EQ(a.created_at(i), b.created_at(i));
    EXPECT_EQ(a.created_at_placeholder(i), b.created_at_placeholder(i));
    EXPECT_EQ(a.downloads_30d(i), b.downloads_30d(i));
    EXPECT_EQ(a.has_downloads_all_time(i), b.has_downloads_all_time(i));
    EXPECT_EQ(a.downloads_all_time(i), b.downloads_all_time(i));
    EXPECT_EQ(a.likes(i), b.likes(i));
    EXPECT_EQ(a.pipeline_tag(i), b.pipeline_tag(i));
    ASSERT_EQ(a.parent_count(i), b.parent_count(i));
    for (int k = 0; k < a.parent_count(i); ++k) {
      EXPECT_EQ(a.parent_id(i, k), b.parent_id(i, k));
      EXPECT_EQ(a.parent_relation(i, k), b.parent_relation(i, k));
    }
  }
}

class CrawlColumnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = hubcensus::testing::MakeTempDir("columns");
    Reopen();
  }
  void Reopen() {
    store_.reset();
    SnapshotStoreOptions o;
    o.path = dir_;
    o.sync_writes = false;
    o.scan_threads = 3;  // threads even on a one-core runner
    o.scan_split_min_bytes = 0;
    o.column_part_rows = part_rows_;
    auto s = SnapshotStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  // Closes the store and hands its RocksDB to `fn` (column families by name), then reopens.
  void WithRawDb(
      const std::function<void(rocksdb::DB*, std::map<std::string, rocksdb::ColumnFamilyHandle*>&)>&
          fn) {
    store_.reset();
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir_, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const auto& name : names) descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_, descriptors, &handles, &raw).ok());
    std::map<std::string, rocksdb::ColumnFamilyHandle*> cfs;
    for (size_t i = 0; i < names.size(); ++i) cfs[names[i]] = handles[i];
    fn(raw, cfs);
    for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
    delete raw;
    Reopen();
  }
  // The column keys of the snapshots column family under `prefix`.
  std::vector<std::string> ColumnKeys(const std::string& prefix) {
    std::vector<std::string> keys;
    WithRawDb([&](rocksdb::DB* db, auto& cfs) {
      std::unique_ptr<rocksdb::Iterator> it(
          db->NewIterator(rocksdb::ReadOptions(), cfs["snapshots"]));
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        keys.push_back(it->key().ToString());
      }
    });
    return keys;
  }
  absl::StatusOr<CrawlSnapshot> Load(const std::string& crawl_id) {
    auto view = store_->View();
    if (!view.ok()) return view.status();
    auto crawl = (*view)->FindCrawl(crawl_id);
    if (!crawl.ok()) return crawl.status();
    return (*view)->LoadCrawl(*crawl);
  }
  // Turns a committed crawl into one committed before the columnar form: no parts, and a
  // record without column_parts.
  void MakeOldLayout(const std::string& crawl_id) {
    auto view = store_->View();
    ASSERT_TRUE(view.ok());
    auto crawl = (*view)->FindCrawl(crawl_id);
    ASSERT_TRUE(crawl.ok());
    ASSERT_GT(crawl->column_parts(), 0u);
    v1::StoredCrawl old = *crawl;
    old.clear_column_parts();
    old.clear_parts_have_row_meta();
    view->reset();
    WithRawDb([&](rocksdb::DB* db, auto& cfs) {
      const uint32_t n = old.crawl_number();
      ASSERT_TRUE(db->DeleteRange(rocksdb::WriteOptions(), cfs["snapshots"], ColumnsCrawlPrefix(n),
                                  ColumnsCrawlPrefix(n + 1))
                      .ok());
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs["crawls"], CrawlRecordKey(crawl_id),
                          old.SerializeAsString())
                      .ok());
    });
  }
  // Writes the same crawl under `crawl_id` (dated `date`): every shape a crawl takes.
  std::vector<v1::WriteBatch> WriteRichCrawl(const std::string& crawl_id,
                                             const std::string& date = "2025-10-31") {
    const std::string oid = "6612a0b1c2d3e4f506172839";
    RepoSpec old_name{"alice/llama-ft", {{"meta-llama/Llama-3.1-8B", v1::RELATION_FINETUNE}}};
    RepoSpec new_name{"bob-org/llama-ft", {{"meta-llama/Llama-3.1-8B", v1::RELATION_FINETUNE}}};
    old_name.object_id = new_name.object_id = oid;
    RepoSpec placeholder{"old/bert-like"};
    placeholder.created = "2022-03-02T23:29:04.000Z";
    RepoSpec no_dat{"x/no-all-time"};
    no_dat.downloads_all_time.reset();
    no_dat.pipeline_tag = "";
    RepoSpec merged{
        "m/merge",
        {{"Qwen/Qwen3-8B", v1::RELATION_MERGE}, {"x/no-all-time", v1::RELATION_ADAPTER}}};
    merged.pipeline_tag = "image-text-to-text";
    RepoSpec quant{"q/quant", {{"Qwen/Qwen3-8B", v1::RELATION_QUANTIZED}}};
    quant.downloads_30d = -3;  // whatever the Hub says is kept as it is
    std::vector<v1::WriteBatch> published;
    auto write = [&](v1::WriteBatch b, bool publish) {
      b.set_crawl_date(date);
      for (int k = 0; k < b.repos_size(); ++k) {
        // Trending scores of every shape (none, round, fractional) and a sha per repo.
        if (k % 3 != 0) b.mutable_repos(k)->set_trending_score(k % 3 == 1 ? 12 : 0.1 * k);
        b.mutable_repos(k)->set_sha(absl::StrCat(Fnv1a64(b.repos(k).id())));
      }
      auto w = store_->Write(b);
      EXPECT_TRUE(w.ok()) << w.status();
      if (publish) published.push_back(b);
    };
    write(Batch(crawl_id, "list/created/0", 1, {{"a/one"}, old_name, placeholder}), true);
    write(Batch(crawl_id, "list/downloads/0", 1, {new_name, {"a/two"}, merged, {"Qwen/Qwen3-8B"}}),
          true);
    // A superseded fence: its only-here repo is dropped, its shared one published by the other.
    write(Batch(crawl_id, "list/other/0", 1, {{"z/stale-only"}, {"a/one"}}), false);
    write(Batch(crawl_id, "list/other/0", 2, {no_dat, quant}), true);
    // A retry of the same (item, fence) with other repos: both attempts' repos are published.
    write(Batch(crawl_id, "list/retry/0", 1, {{"r/first-attempt"}, {"r/both"}}), false);
    write(Batch(crawl_id, "list/retry/0", 1, {{"r/both"}, {"r/second-attempt"}}), true);
    // One repo on two published pages: the page received last gives its figures.
    RepoSpec shared_first{"s/shared"}, shared_last{"s/shared"};
    shared_first.downloads_30d = 1;
    shared_last.downloads_30d = 2;
    write(Batch(crawl_id, "list/dup/1", 1, {shared_first}), true);
    write(Batch(crawl_id, "list/dup/0", 1, {shared_last}), true);
    // Many pages on several threads, sorted across pages.
    for (int item = 0; item < 40; ++item) {
      std::vector<RepoSpec> repos;
      for (int i = 0; i < 25; ++i) {
        RepoSpec spec{absl::StrCat(std::string(1, "zAm0_"[(item + i) % 5]), "user", i % 4, "/m-",
                                   item, "-", i)};
        if (i % 3 == 0) spec.parents = {{"Qwen/Qwen3-8B", v1::RELATION_FINETUNE}};
        if (i % 5 == 0) spec.downloads_all_time.reset();
        spec.downloads_30d = item * 100 + i;
        repos.push_back(spec);
      }
      write(Batch(crawl_id, absl::StrCat("list/bulk/", item), 1, repos), true);
    }
    return published;
  }
  std::string dir_;
  int64_t part_rows_ = 0;
  std::unique_ptr<SnapshotStore> store_;
};

TEST(ColumnCodecTest, RoundTripsEveryColumnAndRefusesDamage) {
  std::mt19937_64 rng(7);
  std::vector<v1::RepoSnapshot> repos;
  for (int i = 0; i < 300; ++i) {
    RepoSpec spec{absl::StrCat(i % 3 ? "org/" : "user", i, "/model-", i * 7)};
    if (i % 4 == 0) spec.parents = {{"base/one", v1::RELATION_ADAPTER}};
    if (i % 8 == 0) spec.parents.push_back({"", v1::RELATION_UNKNOWN});  // an id-less parent
    if (i % 5 == 0) spec.downloads_all_time.reset();
    if (i % 6 == 0) spec.created = "2022-03-02T23:29:05.000Z";
    spec.pipeline_tag = i % 7 == 0 ? "" : absl::StrCat("tag-", i % 4);
    spec.downloads_30d = static_cast<int64_t>(rng() % 1000000) - 10;
    repos.push_back(MakeRepo(spec));
    repos.back().set_likes(static_cast<int64_t>(rng() % 50));
    repos.back().set_last_modified(static_cast<int64_t>(rng() % 2000000000));
  }
  ColumnWriter writer(/*with_dedup_columns=*/true);
  CrawlSnapshot expected;
  for (const auto& r : repos) {
    writer.AddRepo(r);
    expected.Add(r);
  }
  const std::string value = writer.Finish(/*seen_sequence=*/42);
  CrawlSnapshot decoded;
  decoded.Add(repos[0]);  // appends after what is there
  DedupColumns dedup;
  ASSERT_TRUE(DecodeColumns(value, "test value", &decoded, &dedup).ok());
  CrawlSnapshot after_first = std::move(decoded).TakeRows([&] {
    std::vector<uint32_t> rows;
    for (uint32_t i = 1; i <= repos.size(); ++i) rows.push_back(i);
    return rows;
  }());
  ExpectSameSnapshot(expected, after_first, "decoded page chunk");
  ASSERT_EQ(dedup.last_modified.size(), repos.size());
  for (size_t i = 0; i < repos.size(); ++i) {
    EXPECT_EQ(dedup.object_id(i), repos[i].object_id());
    EXPECT_EQ(dedup.last_modified[i], repos[i].last_modified());
    EXPECT_EQ(dedup.row_seen_sequence(i), 42u);
  }
  // The hashes-only form a commit reads: one hash a row, and each row's page found again.
  DedupColumns hashes;
  hashes.hashes_only = true;
  CrawlSnapshot twice;
  ASSERT_TRUE(DecodeColumns(value, "first page", &twice, &hashes).ok());
  ASSERT_TRUE(
      DecodeColumns(writer.Finish(/*seen_sequence=*/43), "second page", &twice, &hashes).ok());
  ASSERT_EQ(hashes.object_id_hash.size(), 2 * repos.size());
  EXPECT_TRUE(hashes.last_modified.empty());
  EXPECT_TRUE(hashes.object_id_bytes.empty());
  for (size_t i = 0; i < 2 * repos.size(); ++i) {
    const size_t k = i % repos.size();
    EXPECT_EQ(hashes.object_id_hash[i], ObjectIdHash(repos[k].object_id())) << i;
    EXPECT_NE(hashes.object_id_hash[i], 0u) << i;
    EXPECT_EQ(hashes.PageOf(i), std::make_pair(i / repos.size(), static_cast<uint32_t>(k))) << i;
    EXPECT_EQ(hashes.row_seen_sequence(i), i < repos.size() ? 42u : 43u) << i;
  }
  EXPECT_EQ(ObjectIdHash(""), 0u);
  // Every truncation and many byte flips: DATA_LOSS naming the value, or (a flip inside a
  // number or a string) a value that still decodes; never a crash or an over-read.
  for (size_t cut = 0; cut < value.size(); ++cut) {
    CrawlSnapshot out;
    absl::Status s = DecodeColumns(value.substr(0, cut), "page chunk X", &out);
    ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << cut;
    EXPECT_NE(s.message().find("page chunk X"), std::string::npos) << s;
  }
  for (int flip = 0; flip < 2000; ++flip) {
    std::string damaged = value;
    damaged[rng() % damaged.size()] ^= static_cast<char>(1 + rng() % 255);
    CrawlSnapshot out;
    absl::Status s = DecodeColumns(damaged, "page chunk X", &out);
    if (!s.ok()) {
      ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss);
    }
  }
  // A committed part has no de-duplication columns: it is not a page chunk.
  ColumnWriter part_writer(/*with_dedup_columns=*/false);
  for (size_t i = 0; i < expected.size(); ++i) part_writer.AddSnapshotRow(expected, i);
  const std::string part = part_writer.Finish();
  EXPECT_LT(part.size(), value.size());
  CrawlSnapshot from_part;
  ASSERT_TRUE(DecodeColumns(part, "part", &from_part).ok());
  ExpectSameSnapshot(expected, from_part, "decoded committed part");
  CrawlSnapshot wrong;
  EXPECT_EQ(DecodeColumns(part, "part", &wrong, &dedup).code(), absl::StatusCode::kDataLoss);
}

// The same writes committed twice: once from the page chunks, once (a page's chunk removed, as
// in a crawl begun before the columnar form) from the rows. Both publish the same crawl, with
// the same outcome, and the committed parts load what the row scan loads.
TEST_F(CrawlColumnsTest, ChunksPublishWhatTheRowsPublish) {
  // The crawl from chunks is the newer one: it keeps its rows (see
  // OlderCrawlsAreReadFromTheirPartsOnceTheirRowsAreDeleted), which the end of this test reads.
  auto from_chunks = WriteRichCrawl("crawl-chunks", "2025-11-01");
  auto from_rows = WriteRichCrawl("crawl-rows");
  // Crawl 2's page "list/bulk/3" loses its chunk: its commit reads the rows.
  WithRawDb([&](rocksdb::DB* db, auto& cfs) {
    ASSERT_TRUE(
        db->Delete(rocksdb::WriteOptions(), cfs["snapshots"], PageChunkKey(2, "list/bulk/3", 1))
            .ok());
  });
  v1::CommitRequest chunks_manifest = Manifest("crawl-chunks", from_chunks);
  chunks_manifest.set_crawl_date("2025-11-01");
  auto a = store_->Commit(chunks_manifest, nullptr);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = store_->Commit(Manifest("crawl-rows", from_rows), nullptr);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->crawl.repos(), b->crawl.repos());
  EXPECT_EQ(a->dropped_rows, 1);  // z/stale-only; r/first-attempt is published (same fence)
  EXPECT_EQ(a->dropped_rows, b->dropped_rows);
  EXPECT_EQ(a->renamed_duplicates, 1);
  EXPECT_EQ(a->renamed_duplicates, b->renamed_duplicates);
  EXPECT_EQ(a->crawl.repos(), 3 + 4 + 2 + 3 + 1 + 40 * 25 - 1);  // one renamed repo counted once
  EXPECT_GT(a->crawl.column_parts(), 0u);
  EXPECT_GT(b->crawl.column_parts(), 0u);  // a commit from the rows writes the parts too
  EXPECT_TRUE(a->crawl.parts_have_row_meta());
  EXPECT_FALSE(b->crawl.parts_have_row_meta());  // so it keeps its rows

  auto chunks_loaded = Load("crawl-chunks");
  auto rows_loaded = Load("crawl-rows");
  ASSERT_TRUE(chunks_loaded.ok()) << chunks_loaded.status();
  ASSERT_TRUE(rows_loaded.ok()) << rows_loaded.status();
  ExpectSameSnapshot(*chunks_loaded, *rows_loaded, "commit from chunks vs from rows");
  for (size_t i = 1; i < chunks_loaded->size(); ++i) {
    ASSERT_LT(chunks_loaded->id(i - 1), chunks_loaded->id(i));  // sorted, unique
  }
  EXPECT_EQ(chunks_loaded->Find("z/stale-only"), -1);
  EXPECT_EQ(chunks_loaded->Find("alice/llama-ft"), -1);
  EXPECT_GE(chunks_loaded->Find("bob-org/llama-ft"), 0);
  EXPECT_GE(chunks_loaded->Find("r/first-attempt"), 0);
  const int64_t shared = chunks_loaded->Find("s/shared");
  ASSERT_GE(shared, 0);
  EXPECT_EQ(chunks_loaded->downloads_30d(shared), 2);
  const int64_t placeholder = chunks_loaded->Find("old/bert-like");
  ASSERT_GE(placeholder, 0);
  EXPECT_TRUE(chunks_loaded->created_at_placeholder(placeholder));
  const int64_t root = chunks_loaded->Find("Qwen/Qwen3-8B");
  ASSERT_GE(root, 0);
  EXPECT_EQ(chunks_loaded->parent_count(root), 0);
  const int64_t merge = chunks_loaded->Find("m/merge");
  ASSERT_GE(merge, 0);
  ASSERT_EQ(chunks_loaded->parent_count(merge), 2);
  EXPECT_EQ(chunks_loaded->parent_relation(merge, 1), v1::RELATION_ADAPTER);

  // The committed parts against the row scan of the same committed crawl (the old layout), and
  // against every row ForEachRepo streams: the rows and the columns agree.
  MakeOldLayout("crawl-chunks");
  auto row_scan = Load("crawl-chunks");
  ASSERT_TRUE(row_scan.ok()) << row_scan.status();
  ExpectSameSnapshot(*chunks_loaded, *row_scan, "committed parts vs row scan");
  auto view = store_->View();
  ASSERT_TRUE(view.ok());
  auto crawl = (*view)->FindCrawl("crawl-chunks");
  ASSERT_TRUE(crawl.ok());
  EXPECT_EQ(crawl->column_parts(), 0u);
  CrawlSnapshot streamed;
  ASSERT_TRUE((*view)
                  ->ForEachRepo(*crawl,
                                [&](const v1::RepoSnapshot& r) {
                                  streamed.Add(r);
                                  return absl::OkStatus();
                                })
                  .ok());
  ExpectSameSnapshot(*chunks_loaded, streamed, "committed parts vs ForEachRepo");
}

TEST_F(CrawlColumnsTest, ChunksOfUnpublishedPagesAreDeletedAtCommitAndAbort) {
  auto stale = Batch("crawl-1", "list/0", 1, {{"a/stale"}, {"a/kept"}});
  auto fresh = Batch("crawl-1", "list/0", 2, {{"a/kept"}, {"a/fresh"}});
  ASSERT_TRUE(store_->Write(stale).ok());
  ASSERT_TRUE(store_->Write(fresh).ok());
  EXPECT_EQ(ColumnKeys(PageChunksBegin(1)).size(), 2u);
  auto committed = store_->Commit(Manifest("crawl-1", {fresh}), nullptr);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->dropped_rows, 1);
  EXPECT_TRUE(ColumnKeys(PageChunksBegin(1)).empty());  // neither page's chunk is left
  EXPECT_EQ(ColumnKeys(ColumnsCrawlPrefix(1)),
            (std::vector<std::string>{CommittedPartKey(1, 0), CommittedPartIndexKey(1)}));
  auto loaded = Load("crawl-1");
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ(loaded->id(0), "a/fresh");
  EXPECT_EQ(loaded->id(1), "a/kept");

  ASSERT_TRUE(store_->Write(Batch("crawl-2", "list/0", 1, {{"b/one"}})).ok());
  EXPECT_EQ(ColumnKeys(ColumnsCrawlPrefix(2)).size(), 1u);
  ASSERT_TRUE(store_->Abort("crawl-2", "test").ok());
  EXPECT_TRUE(ColumnKeys(ColumnsCrawlPrefix(2)).empty());
  EXPECT_EQ(ColumnKeys(ColumnsCrawlPrefix(1)).size(), 2u);  // the committed crawl keeps its part
}

// A commit ingests its parts (table files made on threads) ahead of the crawl's record. Parts
// an interrupted commit left (here: more of them than the crawl has now, and damaged) are
// replaced, never loaded.
TEST_F(CrawlColumnsTest, PartsReplaceAnInterruptedCommitsParts) {
  part_rows_ = 3;  // about a thousand repos: over 300 parts, in several table files
  Reopen();
  const std::vector<v1::WriteBatch> published = WriteRichCrawl("crawl-1");
  const uint32_t n = 1;
  WithRawDb([&](rocksdb::DB* db, auto& cfs) {
    for (uint32_t part : {0u, 5u, 900u}) {
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs["snapshots"], CommittedPartKey(n, part),
                          "damaged by an interrupted commit")
                      .ok());
    }
  });
  auto committed = store_->Commit(Manifest("crawl-1", published), nullptr);
  ASSERT_TRUE(committed.ok()) << committed.status();
  const size_t parts = committed->crawl.column_parts();
  EXPECT_EQ(parts, (static_cast<size_t>(committed->crawl.repos()) + 2) / 3);
  EXPECT_GT(parts, 300u);
  std::vector<std::string> expected;
  for (uint32_t p = 0; p < parts; ++p) expected.push_back(CommittedPartKey(n, p));
  expected.push_back(CommittedPartIndexKey(n));
  EXPECT_EQ(ColumnKeys(ColumnsCrawlPrefix(n)), expected);  // part 900 is gone, no chunk is left
  auto loaded = Load("crawl-1");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(static_cast<int64_t>(loaded->size()), committed->crawl.repos());
  for (size_t i = 1; i < loaded->size(); ++i) EXPECT_LT(loaded->id(i - 1), loaded->id(i));
}

// A superseded fence's chunk is never published, even when it is damaged: the commit reads the
// rows to find which of its repos to delete.
TEST_F(CrawlColumnsTest, ADamagedUnpublishedChunkIsNotPublished) {
  auto stale = Batch("crawl-1", "list/0", 1, {{"a/stale"}});
  auto fresh = Batch("crawl-1", "list/0", 2, {{"a/fresh"}});
  ASSERT_TRUE(store_->Write(stale).ok());
  ASSERT_TRUE(store_->Write(fresh).ok());
  WithRawDb([&](rocksdb::DB* db, auto& cfs) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs["snapshots"], PageChunkKey(1, "list/0", 1),
                        "\x01garbage")
                    .ok());
  });
  auto committed = store_->Commit(Manifest("crawl-1", {fresh}), nullptr);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->dropped_rows, 1);
  auto loaded = Load("crawl-1");
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ(loaded->id(0), "a/fresh");
  EXPECT_TRUE(ColumnKeys(PageChunksBegin(1)).empty());
}

TEST_F(CrawlColumnsTest, DamagedChunksAndPartsAreDataLossNamingWhere) {
  auto page = Batch("crawl-1", "list/7", 3, {{"a/one"}, {"a/two"}});
  ASSERT_TRUE(store_->Write(page).ok());
  const std::string key = PageChunkKey(1, "list/7", 3);
  WithRawDb([&](rocksdb::DB* db, auto& cfs) {
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cfs["snapshots"], key, &value).ok());
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), cfs["snapshots"], key, value.substr(0, value.size() / 2))
            .ok());
  });
  auto refused = store_->Commit(Manifest("crawl-1", {page}), nullptr);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_NE(refused.status().message().find("item list/7 fence 3"), std::string::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find("crawl number 1"), std::string::npos);
  // Nothing was published.
  auto view = store_->View();
  ASSERT_TRUE(view.ok());
  EXPECT_TRUE((*view)->CommittedCrawls().empty());
  view->reset();

  // A damaged or missing committed part.
  auto other = Batch("crawl-2", "list/0", 1, {{"b/one"}, {"b/two"}});
  ASSERT_TRUE(store_->Write(other).ok());
  ASSERT_TRUE(store_->Commit(Manifest("crawl-2", {other}), nullptr).ok());
  ASSERT_TRUE(Load("crawl-2").ok());
  WithRawDb([&](rocksdb::DB* db, auto& cfs) {
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), cfs["snapshots"], CommittedPartKey(2, 0), "\x01\x00\x05")
            .ok());
  });
  auto damaged = Load("crawl-2");
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss) << damaged.status();
  EXPECT_NE(damaged.status().message().find("column part 0 of 1 of crawl crawl-2"),
            std::string::npos)
      << damaged.status();
  WithRawDb([&](rocksdb::DB* db, auto& cfs) {
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), cfs["snapshots"], CommittedPartKey(2, 0)).ok());
  });
  auto missing = Load("crawl-2");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kDataLoss) << missing.status();
  EXPECT_NE(missing.status().message().find("is missing"), std::string::npos);
}

// Crawls committed before the columnar form load from their rows, beside crawls with parts;
// and a crawl whose pages were all written before it commits from its rows.
TEST_F(CrawlColumnsTest, OldLayoutCrawlsKeepWorking) {
  auto first =
      Batch("crawl-1", "list/0", 1, {{"a/one", {{"a/two", v1::RELATION_FINETUNE}}}, {"a/two"}});
  ASSERT_TRUE(store_->Write(first).ok());
  ASSERT_TRUE(store_->Commit(Manifest("crawl-1", {first}), nullptr).ok());
  auto with_parts = Load("crawl-1");
  ASSERT_TRUE(with_parts.ok());
  MakeOldLayout("crawl-1");
  auto old_loaded = Load("crawl-1");
  ASSERT_TRUE(old_loaded.ok()) << old_loaded.status();
  ExpectSameSnapshot(*with_parts, *old_loaded, "old layout");

  auto second = Batch("crawl-2", "list/0", 1, {{"c/x"}, {"c/y"}});
  ASSERT_TRUE(store_->Write(second).ok());
  WithRawDb([&](rocksdb::DB* db, auto& cfs) {
    ASSERT_TRUE(db->DeleteRange(rocksdb::WriteOptions(), cfs["snapshots"], PageChunksBegin(2),
                                PageChunksEnd(2))
                    .ok());
  });
  // A retry of the same (item, fence) whose first attempt has no chunk writes none either.
  ASSERT_TRUE(store_->Write(second).ok());
  EXPECT_TRUE(ColumnKeys(PageChunksBegin(2)).empty());
  auto committed = store_->Commit(Manifest("crawl-2", {second}), nullptr);
  ASSERT_TRUE(committed.ok()) << committed.status();
  auto loaded = Load("crawl-2");
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ(loaded->id(0), "c/x");
}

// Everything a view answers of one committed crawl, repo by repo: ForEachRepo, and GetRepo and
// GetSha of each repo and of ids it does not hold (before the first, between two, after the last).
std::vector<std::string> EveryAnswer(const StoreView& view, const v1::StoredCrawl& crawl) {
  std::vector<std::string> out;
  std::vector<std::string> ids;
  absl::Status each = view.ForEachRepo(crawl, [&](const v1::RepoSnapshot& repo) {
    out.push_back(absl::StrCat("each ", repo.ShortDebugString()));
    ids.push_back(repo.id());
    return absl::OkStatus();
  });
  EXPECT_TRUE(each.ok()) << each;
  for (const std::string& id :
       {std::string("!before-all"), std::string("a/one-not"), std::string("zzzz/after-all")}) {
    ids.push_back(id);
  }
  for (const std::string& id : ids) {
    auto repo = view.GetRepo(crawl, id);
    EXPECT_TRUE(repo.ok()) << repo.status();
    out.push_back(absl::StrCat(
        "get ", id, ": ", repo.ok() && repo->has_value() ? (*repo)->ShortDebugString() : "none"));
    auto sha = view.GetSha(crawl, id);
    EXPECT_TRUE(sha.ok()) << sha.status();
    out.push_back(absl::StrCat("sha ", id, ": ", sha.ok() && sha->has_value() ? **sha : "none"));
  }
  return out;
}

// `a` equals `b`, or the first line where they differ.
::testing::AssertionResult SameAnswers(const std::vector<std::string>& a,
                                       const std::vector<std::string>& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i] != b[i]) {
      return ::testing::AssertionFailure() << "line " << i << ":\n  " << a[i] << "\n  " << b[i];
    }
  }
  if (a.size() != b.size()) {
    return ::testing::AssertionFailure() << a.size() << " lines against " << b.size();
  }
  return ::testing::AssertionSuccess();
}

// The store keeps rows for the newest committed crawl only: the next commit deletes an older
// crawl's rows, and every read of it answers from its parts what it answered from its rows.
TEST_F(CrawlColumnsTest, OlderCrawlsAreReadFromTheirPartsOnceTheirRowsAreDeleted) {
  part_rows_ = 7;  // many parts: point reads find the right one
  Reopen();
  auto commit = [&](const std::string& crawl_id, const std::string& date) {
    v1::CommitRequest req = Manifest(crawl_id, WriteRichCrawl(crawl_id, date));
    req.set_crawl_date(date);
    auto c = store_->Commit(req, nullptr);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->crawl : v1::StoredCrawl();
  };
  auto rows_of = [&](const v1::StoredCrawl& crawl) {
    return ColumnKeys(CrawlPrefix(crawl.crawl_number())).size();
  };
  auto answers = [&](const std::string& crawl_id) {
    auto view = store_->View();
    EXPECT_TRUE(view.ok());
    auto crawl = (*view)->FindCrawl(crawl_id);
    EXPECT_TRUE(crawl.ok());
    return EveryAnswer(**view, *crawl);
  };
  const v1::StoredCrawl c1 = commit("c1", "2025-10-30");
  EXPECT_TRUE(c1.parts_have_row_meta());
  EXPECT_FALSE(c1.rows_dropped());
  EXPECT_GT(rows_of(c1), 0u);
  const std::vector<std::string> from_rows = answers("c1");
  ASSERT_GT(from_rows.size(), 100u);
  // A view made before the next commit, and the record as it was then.
  auto before = store_->View();
  ASSERT_TRUE(before.ok());

  const v1::StoredCrawl c2 = commit("c2", "2025-10-31");
  EXPECT_FALSE(c2.rows_dropped());
  auto now = store_->View();
  ASSERT_TRUE(now.ok());
  auto c1_now = (*now)->FindCrawl("c1");
  ASSERT_TRUE(c1_now.ok());
  EXPECT_TRUE(c1_now->rows_dropped());
  EXPECT_TRUE(SameAnswers(EveryAnswer(**now, *c1_now), from_rows));
  // The record read before the commit, asked of the new view; the old view, its own snapshot.
  EXPECT_TRUE(SameAnswers(EveryAnswer(**now, c1), from_rows));
  EXPECT_TRUE(SameAnswers(EveryAnswer(**before, c1), from_rows));
  auto loaded = (*now)->LoadCrawl(*c1_now);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->size(), c1.repos());
  before->reset();
  now->reset();
  EXPECT_EQ(rows_of(c1), 0u);
  EXPECT_GT(rows_of(c2), 0u);
  // The newest crawl keeps its rows; the same crawl under another name answers the same.
  std::vector<std::string> c2_answers = answers("c2");
  EXPECT_TRUE(SameAnswers(c2_answers, from_rows));

  // A backfill (an earlier date) is not the newest: it keeps no rows from its commit on.
  const v1::StoredCrawl c0 = commit("c0", "2025-10-01");
  EXPECT_TRUE(c0.rows_dropped());
  EXPECT_EQ(rows_of(c0), 0u);
  EXPECT_TRUE(SameAnswers(answers("c0"), from_rows));
  EXPECT_GT(rows_of(c2), 0u);
  EXPECT_TRUE(SameAnswers(answers("c2"), from_rows));
  // Reopened: the records say the same.
  Reopen();
  EXPECT_TRUE(SameAnswers(answers("c1"), from_rows));

  // A damaged or missing part index is DATA_LOSS naming it, not "no such repo".
  WithRawDb([&](rocksdb::DB* db, auto& cfs) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs["snapshots"],
                        CommittedPartIndexKey(c1.crawl_number()), "\x05x")
                    .ok());
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), cfs["snapshots"],
                           CommittedPartIndexKey(c0.crawl_number()))
                    .ok());
  });
  auto view = store_->View();
  ASSERT_TRUE(view.ok());
  for (const char* crawl_id : {"c1", "c0"}) {
    auto crawl = (*view)->FindCrawl(crawl_id);
    ASSERT_TRUE(crawl.ok());
    auto repo = (*view)->GetRepo(*crawl, "a/one");
    ASSERT_EQ(repo.status().code(), absl::StatusCode::kDataLoss) << crawl_id;
    EXPECT_NE(repo.status().message().find(absl::StrCat("part index of crawl ", crawl_id)),
              std::string::npos)
        << repo.status();
  }
}

// A page chunk written before chunks carried meta versions: the commit reads the crawl's rows
// (as for a page without a chunk), its parts carry no meta versions, and it keeps its rows when
// a newer crawl is committed.
TEST_F(CrawlColumnsTest, AChunkWithoutMetaVersionsIsCommittedFromTheRows) {
  const std::vector<v1::WriteBatch> published = WriteRichCrawl("crawl-1");
  WithRawDb([&](rocksdb::DB* db, auto& cfs) {
    const std::string key = PageChunkKey(1, "list/bulk/3", 1);
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cfs["snapshots"], key, &value).ok());
    ASSERT_TRUE(HasRowMeta(value));
    CrawlSnapshot rows;
    DedupColumns dedup;
    ASSERT_TRUE(DecodeColumns(value, "chunk", &rows, &dedup).ok());
    ColumnWriter old_format(/*with_dedup_columns=*/true, /*with_row_meta=*/false);
    for (size_t r = 0; r < rows.size(); ++r) {
      old_format.AddSnapshotRow(rows, r, dedup.object_id(r), dedup.last_modified[r]);
    }
    const std::string old_value = old_format.Finish(dedup.page_seen_sequence.at(0));
    ASSERT_FALSE(HasRowMeta(old_value));
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs["snapshots"], key, old_value).ok());
  });
  auto first = store_->Commit(Manifest("crawl-1", published), nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->crawl.parts_have_row_meta());
  EXPECT_EQ(first->crawl.repos(), 3 + 4 + 2 + 3 + 1 + 40 * 25 - 1);

  std::vector<v1::WriteBatch> newer = WriteRichCrawl("crawl-2", "2025-11-01");
  v1::CommitRequest manifest = Manifest("crawl-2", newer);
  manifest.set_crawl_date("2025-11-01");
  auto second = store_->Commit(manifest, nullptr);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->crawl.parts_have_row_meta());
  EXPECT_FALSE(ColumnKeys(CrawlPrefix(1)).empty());  // crawl 1's rows are kept
  auto view = store_->View();
  ASSERT_TRUE(view.ok());
  auto crawl = (*view)->FindCrawl("crawl-1");
  ASSERT_TRUE(crawl.ok());
  EXPECT_FALSE(crawl->rows_dropped());
  auto repo = (*view)->GetRepo(*crawl, "m/merge");
  ASSERT_TRUE(repo.ok()) << repo.status();
  ASSERT_TRUE(repo->has_value());
  EXPECT_EQ((*repo)->parents_size(), 2);
}

}  // namespace
}  // namespace hubcensus::store
