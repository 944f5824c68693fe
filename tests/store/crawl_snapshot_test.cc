// CrawlSnapshot's two ways in: from a RepoSnapshot message, and from the stored parts (id,
// counters, repo_meta bytes) decoded straight from the wire format. Both must give the same
// columns for any repo, and a damaged meta must be an error that appends nothing.
#include "store/crawl_snapshot.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "store/internal/repo_meta.h"

namespace hubcensus::store {
namespace {

v1::RepoSnapshot RandomRepo(std::mt19937_64& rng, int i) {
  auto pick = [&](std::initializer_list<const char*> options) {
    return std::string(*(options.begin() + rng() % options.size()));
  };
  v1::RepoSnapshot r;
  r.set_id(pick({"Qwen", "meta-llama", "someone", "a-b"}) + "/model-" + std::to_string(i));
  r.set_object_id("0123456789abcdef01234567");
  r.set_author("someone");
  // Negative, zero and large values all go through varints.
  r.set_created_at(static_cast<int64_t>(rng() % 3) - 1 + (rng() % 2 ? 1700000000 : 0));
  r.set_created_at_placeholder(rng() % 2);
  r.set_last_modified(static_cast<int64_t>(rng() >> 20));
  r.set_pipeline_tag(pick({"", "text-generation", "image-text-to-text", "fill-mask"}));
  r.set_library_name(pick({"", "transformers", "gguf"}));
  r.set_is_private(rng() % 5 == 0);
  r.set_disabled(rng() % 7 == 0);
  r.set_gated(static_cast<v1::Gated>(rng() % 3));
  r.set_sha(std::string(40, 'a' + static_cast<char>(rng() % 6)));
  r.set_trending_score(static_cast<double>(rng() % 1000) / 7.0);  // fixed64, to be skipped
  int parents = static_cast<int>(rng() % 4);
  for (int k = 0; k < parents; ++k) {
    auto* p = r.add_parents();
    if (rng() % 8 != 0) p->set_id(pick({"Qwen/Qwen3-8B", "x/y", "meta-llama/Llama-3.1-8B"}));
    p->set_relation(static_cast<v1::Relation>(rng() % 6));
  }
  r.set_downloads_30d(static_cast<int64_t>(rng() % 100000));
  if (rng() % 4 != 0) r.set_downloads_all_time(static_cast<int64_t>(rng() % 10000000));
  r.set_likes(static_cast<int64_t>(rng() % 500));
  return r;
}

CrawlSnapshot::Counters CountersOf(const v1::RepoSnapshot& r) {
  CrawlSnapshot::Counters c;
  c.downloads_30d = r.downloads_30d();
  c.has_downloads_all_time = r.has_downloads_all_time();
  c.downloads_all_time = r.downloads_all_time();
  c.likes = r.likes();
  return c;
}

void ExpectSameColumns(const CrawlSnapshot& a, const CrawlSnapshot& b) {
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

TEST(CrawlSnapshotTest, StoredPartsGiveTheSameColumnsAsTheMessage) {
  std::mt19937_64 rng(42);
  CrawlSnapshot from_messages, from_stored;
  for (int i = 0; i < 5000; ++i) {
    v1::RepoSnapshot r = RandomRepo(rng, i);
    from_messages.Add(r);
    ASSERT_TRUE(from_stored.AddStored(r.id(), CountersOf(r), MetaBytes(r)).ok());
  }
  ExpectSameColumns(from_messages, from_stored);
  EXPECT_EQ(from_stored.Find("Qwen/model-17") >= 0, from_messages.Find("Qwen/model-17") >= 0);
}

// Issue 11: the placeholder flag must survive the columnar read path, or every pre-2022 repo
// is new in March 2022 again once the crawl is read back from the store.
TEST(CrawlSnapshotTest, ThePlaceholderFlagSurvivesTheStoredPath) {
  v1::RepoSnapshot r;
  r.set_id("old/bert");
  r.set_created_at(1646263745);  // 2022-03-02T23:29:05Z
  r.set_created_at_placeholder(true);
  v1::RepoSnapshot fresh = r;
  fresh.set_id("new/bert");
  fresh.set_created_at_placeholder(false);
  CrawlSnapshot s;
  ASSERT_TRUE(s.AddStored(r.id(), CountersOf(r), MetaBytes(r)).ok());
  ASSERT_TRUE(s.AddStored(fresh.id(), CountersOf(fresh), MetaBytes(fresh)).ok());
  s.Add(r);
  EXPECT_TRUE(s.created_at_placeholder(0));
  EXPECT_FALSE(s.created_at_placeholder(1));
  EXPECT_TRUE(s.created_at_placeholder(2));
  CrawlSnapshot tail;
  tail.Add(fresh);
  tail.Add(r);
  std::vector<CrawlSnapshot> parts;
  parts.push_back(std::move(s));
  parts.push_back(std::move(tail));
  s = CrawlSnapshot::Concat(std::move(parts));
  EXPECT_FALSE(s.created_at_placeholder(3));
  EXPECT_TRUE(s.created_at_placeholder(4));
}

TEST(CrawlSnapshotTest, AnEmptyMetaIsARepoWithDefaults) {
  CrawlSnapshot s;
  CrawlSnapshot::Counters c;
  c.downloads_30d = 5;
  ASSERT_TRUE(s.AddStored("a/b", c, "").ok());
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s.created_at(0), 0);
  EXPECT_EQ(s.pipeline_tag(0), "");
  EXPECT_EQ(s.parent_count(0), 0);
  EXPECT_EQ(s.downloads_30d(0), 5);
  EXPECT_FALSE(s.has_downloads_all_time(0));
}

TEST(CrawlSnapshotTest, DamagedMetaIsDataLossAndAppendsNothing) {
  std::mt19937_64 rng(7);
  v1::RepoSnapshot r = RandomRepo(rng, 1);
  r.clear_parents();
  r.add_parents()->set_id("Qwen/Qwen3-8B");
  r.add_parents()->set_id("x/y");
  const std::string meta = MetaBytes(r);
  int refused = 0;
  // Every truncation: protobuf's own parser decides which prefixes are well formed.
  for (size_t len = 0; len < meta.size(); ++len) {
    CrawlSnapshot s;
    ASSERT_TRUE(s.AddStored("ok/first", {}, "").ok());
    std::string cut = meta.substr(0, len);
    v1::RepoSnapshot parsed;
    const bool well_formed = parsed.ParseFromString(cut);
    absl::Status st = s.AddStored("a/b", {}, cut);
    EXPECT_EQ(st.ok(), well_formed) << "prefix of " << len << " bytes: " << st;
    if (!st.ok()) {
      ++refused;
      EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
      EXPECT_NE(st.message().find("repo_meta of a/b"), std::string::npos) << st;
      ASSERT_EQ(s.size(), 1u);
      EXPECT_EQ(s.parent_count(0), 0);
      // The next row still goes in cleanly after a refused one.
      ASSERT_TRUE(s.AddStored("c/d", {}, meta).ok());
      ASSERT_EQ(s.size(), 2u);
      EXPECT_EQ(s.parent_count(1), 2);
      EXPECT_EQ(s.parent_id(1, 1), "x/y");
    }
  }
  EXPECT_GT(refused, 0);
  for (std::string bad : {std::string("\x07", 1), std::string("\x00\x01", 2),
                          std::string("\x8a\x01\x05\x0a\x09", 5), std::string("\xff", 1)}) {
    CrawlSnapshot s;
    absl::Status st = s.AddStored("a/b", {}, bad);
    EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
    EXPECT_EQ(s.size(), 0u);
  }
}

TEST(CrawlSnapshotTest, ConcatEqualsAddingEverythingToOne) {
  std::mt19937_64 rng(3);
  std::vector<v1::RepoSnapshot> repos;
  for (int i = 0; i < 3000; ++i) repos.push_back(RandomRepo(rng, i));
  // The second part meets a tag first that the first part never has, so the parts number their
  // tags differently and Concat must map them.
  repos[1000].set_pipeline_tag("zero-shot-classification");
  for (size_t threads : {1, 2, 3}) {
    SCOPED_TRACE(threads);
    CrawlSnapshot whole;
    for (const auto& r : repos) whole.Add(r);
    std::vector<CrawlSnapshot> parts(4);
    for (int i = 0; i < 1000; ++i) parts[0].Add(repos[i]);
    for (int i = 1000; i < 2000; ++i) parts[1].Add(repos[i]);
    // parts[2] stays empty
    for (int i = 2000; i < 3000; ++i) parts[3].Add(repos[i]);
    CrawlSnapshot joined = CrawlSnapshot::Concat(std::move(parts), threads);
    EXPECT_EQ(parts[1].size(), 0u);
    // Adding after a concatenation goes on in an arena of its own.
    v1::RepoSnapshot extra = RandomRepo(rng, 9999);
    joined.Add(extra);
    whole.Add(extra);
    ExpectSameColumns(whole, joined);
    EXPECT_EQ(joined.Find(extra.id()), 3000);
  }
}

TEST(CrawlSnapshotTest, TakeRowsOfPartsEqualsTakingThemFromOne) {
  std::mt19937_64 rng(4);
  std::vector<v1::RepoSnapshot> repos;
  for (int i = 0; i < 2500; ++i) repos.push_back(RandomRepo(rng, i));
  repos[1700].set_pipeline_tag("zero-shot-classification");  // only the second part has it
  // Every other row, backwards: each part's rows interleaved with the other's.
  std::vector<uint32_t> rows;
  for (int i = 2499; i >= 0; i -= 2) rows.push_back(static_cast<uint32_t>(i));
  CrawlSnapshot expected;
  for (uint32_t i : rows) expected.Add(repos[i]);
  for (size_t threads : {1, 2}) {
    SCOPED_TRACE(threads);
    std::vector<CrawlSnapshot> parts(2);
    for (int i = 0; i < 1200; ++i) parts[0].Add(repos[i]);
    for (int i = 1200; i < 2500; ++i) parts[1].Add(repos[i]);
    CrawlSnapshot taken = CrawlSnapshot::TakeRows(std::move(parts), rows, threads);
    EXPECT_EQ(parts[0].size(), 0u);
    ExpectSameColumns(expected, taken);
  }
}

// Stored meta values of older stores are RepoSnapshots with the id and counters cleared: they
// read as a RepoMeta only while every RepoMeta field has its RepoSnapshot field's number and type.
TEST(RepoMetaTest, EveryFieldMatchesItsRepoSnapshotField) {
  const auto* meta = v1::RepoMeta::descriptor();
  const auto* snapshot = v1::RepoSnapshot::descriptor();
  ASSERT_GT(meta->field_count(), 0);
  for (int i = 0; i < meta->field_count(); ++i) {
    const auto* f = meta->field(i);
    SCOPED_TRACE(f->name());
    const auto* g = snapshot->FindFieldByName(f->name());
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(f->number(), g->number());
    EXPECT_EQ(f->type(), g->type());
    EXPECT_EQ(f->is_repeated(), g->is_repeated());
  }
  // And the fields it leaves out are exactly the id and the daily counters.
  EXPECT_EQ(snapshot->field_count() - meta->field_count(), 5);
  for (const char* apart :
       {"id", "downloads_30d", "downloads_all_time", "likes", "trending_score"}) {
    EXPECT_EQ(meta->FindFieldByName(apart), nullptr) << apart;
  }
}

TEST(RepoMetaTest, AnOldStoredValueReadsAsTheSameMeta) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) {
    v1::RepoSnapshot r = RandomRepo(rng, i);
    v1::RepoSnapshot old = r;  // what MetaBytes wrote before RepoMeta existed
    old.clear_id();
    old.clear_downloads_30d();
    old.clear_downloads_all_time();
    old.clear_likes();
    old.clear_trending_score();
    v1::RepoMeta parsed;
    ASSERT_TRUE(parsed.ParseFromString(old.SerializeAsString()));
    EXPECT_EQ(parsed.SerializeAsString(), MetaBytes(r));
    v1::RepoSnapshot back;
    back.set_id(r.id());
    ApplyMeta(parsed, &back);
    EXPECT_EQ(back.sha(), r.sha());
    EXPECT_EQ(back.parents_size(), r.parents_size());
    EXPECT_EQ(back.object_id(), r.object_id());
  }
}

TEST(RepoMetaTest, TheShaIsReadWithoutParsingAndDamageIsDataLoss) {
  std::mt19937_64 rng(9);
  v1::RepoSnapshot r = RandomRepo(rng, 1);
  r.set_sha("0123abcd");
  // ShaOfMeta returns a view into the bytes it reads: keep them alive while the view is used.
  std::string meta = MetaBytes(r);
  auto sha = ShaOfMeta(meta);
  ASSERT_TRUE(sha.ok()) << sha.status();
  EXPECT_EQ(*sha, "0123abcd");
  r.clear_sha();
  meta = MetaBytes(r);
  sha = ShaOfMeta(meta);
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(*sha, "");
  EXPECT_EQ(ShaOfMeta("\x82\x01\x05"
                      "ab")
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace hubcensus::store
