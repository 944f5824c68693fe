#include "coordinator/internal/crawl_ledger.h"

#include <rocksdb/options.h>

#include "absl/strings/str_cat.h"

namespace hubcensus::coordinator {
namespace {

// Key layout: "c/<crawl_id>", "i/<crawl_id>/<item_id>", "b/<budget key>". Crawl ids
// ("crawl-YYYY-MM-DD") sort chronologically.
std::string CrawlKey(const std::string& crawl_id) { return absl::StrCat("c/", crawl_id); }
std::string ItemPrefix(const std::string& crawl_id) { return absl::StrCat("i/", crawl_id, "/"); }
std::string BudgetKey(const std::string& key) { return absl::StrCat("b/", key); }

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat("coordinator state: ", what, ": ", s.ToString()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CrawlLedger>> CrawlLedger::Open(const std::string& dir, bool sync) {
  if (dir.empty()) return absl::InvalidArgumentError("state_dir: required");
  rocksdb::Options options;
  options.create_if_missing = true;
  options.compression = rocksdb::kNoCompression;
  options.keep_log_file_num = 4;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("state_dir ", dir, ": cannot open RocksDB: ", s.ToString()));
  }
  std::unique_ptr<CrawlLedger> ledger(new CrawlLedger());
  ledger->db_.reset(raw);
  ledger->dir_ = dir;
  ledger->sync_ = sync;
  return ledger;
}

CrawlLedger::~CrawlLedger() {
  if (db_ != nullptr) db_->Close().PermitUncheckedError();
}

void CrawlLedger::Batch::PutCrawl(const CrawlRecord& crawl) {
  batch_.Put(CrawlKey(crawl.crawl().crawl_id()), crawl.SerializeAsString());
}

void CrawlLedger::Batch::PutItem(const std::string& crawl_id, const ItemRecord& item) {
  batch_.Put(absl::StrCat(ItemPrefix(crawl_id), item.item().item_id()), item.SerializeAsString());
}

void CrawlLedger::Batch::PutBudget(const BudgetRecord& budget) {
  batch_.Put(BudgetKey(budget.key()), budget.SerializeAsString());
}

absl::Status CrawlLedger::Write(Batch& batch, bool durable) {
  if (batch.empty()) return absl::OkStatus();
  rocksdb::WriteOptions options;
  options.sync = sync_ && durable;
  return FromRocks(db_->Write(options, &batch.batch_), "write");
}

template <typename Record>
absl::StatusOr<std::vector<Record>> CrawlLedger::LoadPrefix(const std::string& prefix) {
  std::vector<Record> out;
  std::string upper = prefix;
  upper.back() = static_cast<char>(upper.back() + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    Record r;
    if (!r.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("coordinator state ", dir_, ": record ",
                                              it->key().ToString(), " does not parse"));
    }
    out.push_back(std::move(r));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan");
  return out;
}

absl::StatusOr<std::vector<CrawlRecord>> CrawlLedger::LoadCrawls() {
  return LoadPrefix<CrawlRecord>("c/");
}

absl::StatusOr<std::vector<ItemRecord>> CrawlLedger::LoadItems(const std::string& crawl_id) {
  return LoadPrefix<ItemRecord>(ItemPrefix(crawl_id));
}

absl::StatusOr<std::vector<BudgetRecord>> CrawlLedger::LoadBudgets() {
  return LoadPrefix<BudgetRecord>("b/");
}

}  // namespace hubcensus::coordinator
