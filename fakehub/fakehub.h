// fakehub: a Hugging Face Hub simulator (shared/hub-api.md) over a generated Hub with a
// simulated date, a known ground truth, rate limits and seeded faults. No machine here reaches
// the real Hub, so every test, the demo and every benchmark run against this.
#ifndef HUBCENSUS_FAKEHUB_FAKEHUB_H_
#define HUBCENSUS_FAKEHUB_FAKEHUB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"

namespace hubcensus::fakehub {

struct FakeHubOptions {
  std::string listen_address = "127.0.0.1";
  int port = 0;  // 0: a free port
  int64_t repos = 20000;
  uint64_t seed = 1;
  std::string date;  // YYYY-MM-DD; empty: the scenario's end (2025-12-31)
  std::string scenario = "article";
  std::string rate_limit = "1000/300";  // QUOTA/WINDOW_S, or "off"
  double fault_rate = 0;                // spread over every fault kind
  std::string faults;                   // KIND=R,...: see FaultKindsHelp()
  std::string fixture_path;             // serve these real entries instead of a generated Hub
  Clock* clock = nullptr;               // rate-limit windows; null: the real clock
  double stall_seconds = 60;            // how long a `stall` fault holds a request
  int threads = 16;                     // HTTP worker threads

  // The Hub as recorded (shared/hub-api.md); see fakehub/README.md.
  // Fraction of repos private to the token: listed ("private": true) and
  // readable only by requests with `Authorization: Bearer <any token>`; never in the truth.
  double private_repos = 0;
  // Fraction of gated repos whose per-repo endpoint answers anonymous requests 401
  // `X-Error-Code: GatedRepo` (the rest answer 200, as the 2024-25 recordings show).
  double gated_no_access = 0;
  // Listing requests with a page size above this answer 504 with an HTML body (0: off).
  int heavy_page_limit = 0;
  // Each listing page is answered after this many milliseconds per 1,000 entries (0: at once),
  // without holding a worker thread.
  double page_latency_ms = 0;
  // Hostile listing behaviours for tests (MODE,MODE: see HostileModesHelp()); off by default.
  std::string hostile;
  // Where foreign_next and foreign_redirect point: http(s)://HOST:PORT.
  std::string foreign_origin;
};

// The fault kinds, one per line with what each does (for --help).
std::string FaultKindsHelp();
// The hostile modes, one per line with what each does and what the truth means (for --help).
std::string HostileModesHelp();

class FakeHub {
 public:
  // Generates (or loads) the Hub and starts serving. The chosen port is port().
  static absl::StatusOr<std::unique_ptr<FakeHub>> Start(const FakeHubOptions& options);
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  int port() const;
  std::string url() const;  // http://127.0.0.1:PORT

  // Moves the simulated date (what POST /_sim/clock?date= does).
  absl::Status SetDate(absl::string_view yyyy_mm_dd);
  std::string date() const;

  // The body of GET /_sim/truth?date=...&policy=...: {"families": ..., "shares": ...} for the
  // default families file. `policy`: "" (first_parent, nearest), "split" or "root".
  absl::StatusOr<std::string> TruthJson(absl::string_view date, absl::string_view policy = "");
  // Every public repo id listed at that date (empty date: the current one).
  std::vector<std::string> RepoIdsAt(absl::string_view date);

  // Repos held (listed or not), and the bytes the generated Hub holds (0 for a fixture).
  int64_t repo_slots() const;
  size_t memory_bytes() const;

  void Stop();

 private:
  class Impl;
  explicit FakeHub(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_FAKEHUB_H_
