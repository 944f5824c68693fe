// Progress of long work: a live bar on a terminal, plain one-line updates otherwise (logs, CI).
#ifndef HUBCENSUS_EMBEDDED_PROGRESS_H_
#define HUBCENSUS_EMBEDDED_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace hubcensus {

struct ProgressSnapshot {
  std::string label;        // e.g. "crawl-2025-10-31"
  int64_t items_done = 0;   // pages
  int64_t items_total = 0;  // known so far (a cursor chain grows as it goes)
  int64_t repos = 0;
  int64_t eta_seconds = -1;
  // The latest failure (e.g. "createdAt/p000000: cannot connect to 127.0.0.1:9"), shown so that a
  // stalled crawl says why; "" when none.
  std::string last_error;
  bool finished = false;
};

class ProgressDisplay {
 public:
  // `out` is usually stderr; a terminal gets a redrawn bar, anything else a line every
  // `line_interval` (and at the end). The rate (repos/s) counts the repos gained since the first
  // update.
  explicit ProgressDisplay(FILE* out, absl::Duration line_interval = absl::Seconds(5));
  void Update(const ProgressSnapshot& p);
  void Finish(const ProgressSnapshot& p);
  bool is_terminal() const { return terminal_; }

 private:
  FILE* out_;
  bool terminal_;
  absl::Duration line_interval_;
  absl::Time started_ = absl::Now();
  absl::Time last_line_ = absl::InfinitePast();
  // The repos of the first update since the start: a resumed crawl's rate counts only the repos
  // this run fetched, not those of the run it resumes.
  int64_t repos_at_start_ = -1;
};

}  // namespace hubcensus

#endif  // HUBCENSUS_EMBEDDED_PROGRESS_H_
