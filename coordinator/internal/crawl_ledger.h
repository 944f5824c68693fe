// The coordinator's durable memory: crawls, their items (with fences and checkpointed cursors) and
// the request budgets, in its own RocksDB, so a coordinator killed at any point resumes every
// open crawl where it stood.
#ifndef HUBCENSUS_COORDINATOR_INTERNAL_CRAWL_LEDGER_H_
#define HUBCENSUS_COORDINATOR_INTERNAL_CRAWL_LEDGER_H_

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator_state.pb.h"

namespace hubcensus::coordinator {

class CrawlLedger {
 public:
  // Opens (creating if missing) the RocksDB at `dir`. `sync`: fsync every write (survives a
  // machine crash, not only a process kill).
  static absl::StatusOr<std::unique_ptr<CrawlLedger>> Open(const std::string& dir, bool sync);
  ~CrawlLedger();

  // One atomic change: everything put into a Batch lands together or not at all.
  class Batch {
   public:
    void PutCrawl(const CrawlRecord& crawl);
    void PutItem(const std::string& crawl_id, const ItemRecord& item);
    void PutBudget(const BudgetRecord& budget);
    bool empty() const { return batch_.Count() == 0; }

   private:
    friend class CrawlLedger;
    rocksdb::WriteBatch batch_;
  };
  // `durable`: honour the ledger's sync setting. Lease renewals pass false: what they carry
  // (request counters) survives a process kill either way, and a machine crash may lose a few.
  absl::Status Write(Batch& batch, bool durable = true);

  absl::StatusOr<std::vector<CrawlRecord>> LoadCrawls();
  absl::StatusOr<std::vector<ItemRecord>> LoadItems(const std::string& crawl_id);
  absl::StatusOr<std::vector<BudgetRecord>> LoadBudgets();

 private:
  CrawlLedger() = default;
  template <typename Record>
  absl::StatusOr<std::vector<Record>> LoadPrefix(const std::string& prefix);

  std::unique_ptr<rocksdb::DB> db_;
  std::string dir_;
  bool sync_ = true;
};

}  // namespace hubcensus::coordinator

#endif  // HUBCENSUS_COORDINATOR_INTERNAL_CRAWL_LEDGER_H_
