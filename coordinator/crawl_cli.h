// `hubcensus crawl start|status|list|cancel`: the operator's client of the Coordinator (what the
// nightly CronJob runs), kept in the library so the CLI stays a flag parser.
#ifndef HUBCENSUS_COORDINATOR_CRAWL_CLI_H_
#define HUBCENSUS_COORDINATOR_CRAWL_CLI_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "hubcensus/v1/crawl.pb.h"

namespace hubcensus::coordinator {

struct CrawlCliOptions {
  std::string action;  // start | status | list | cancel
  std::string coordinator = "127.0.0.1:7001";
  std::string date = "today";  // or YYYY-MM-DD
  std::string crawl_id;        // status/cancel: instead of --date
  std::string hub_url;
  bool fetch_details = false;
  bool retry = false;  // start: a new attempt when the date's crawl failed or was cancelled
  std::vector<std::string> extra_streams;  // start: further listing streams (sort keys)
  bool wait = false;
  std::string admin_token;
  // TLS/mTLS to the coordinator (common/tls.h MakeChannelCredentials); null: insecure.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string reason;  // cancel
  int64_t limit = 20;  // list
  absl::Duration poll_interval = absl::Seconds(2);
  absl::Duration rpc_timeout = absl::Seconds(30);
  // --wait keeps going while the coordinator is unreachable (e.g. restarting) for this long.
  absl::Duration unavailable_grace = absl::Minutes(10);
  // Progress bar (a terminal) or one line per update.
  bool progress_bar = false;
  Clock* clock = Clock::Real();
  // --wait stops waiting when this returns true (default: SIGTERM/SIGINT, common/shutdown.h).
  std::function<bool()> stop_requested;
};

// Returns the exit code: 0 ok (and, with --wait, the crawl COMMITTED), 1 the crawl FAILED or was
// CANCELLED or the coordinator refused, 2 usage; with --wait, 128+signal (143 for SIGTERM, 130
// for SIGINT) when a signal stopped the waiting: the crawl goes on in the coordinator.
int RunCrawlCli(const CrawlCliOptions& options, FILE* out, FILE* err);

// "crawl-2025-10-31 RUNNING items 12/13 repos 12000 rejected 3 retries 1 eta 40s".
std::string FormatCrawlLine(const v1::Crawl& crawl);
// "crawl-2025-10-31 [########............] 12/13 items, 12000 repos, RUNNING, eta 40s" (width:
// the bar's).
std::string FormatProgressBar(const v1::Crawl& crawl, int width, absl::Time now);

}  // namespace hubcensus::coordinator

#endif  // HUBCENSUS_COORDINATOR_CRAWL_CLI_H_
