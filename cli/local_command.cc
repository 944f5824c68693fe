// hubcensus local: one crawl of a Hub with every role in one process.
#include <signal.h>

#include <cstdio>

#include "absl/time/time.h"
#include "aggregator/aggregator.h"
#include "aggregator/census_format.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/dates.h"
#include "common/flags.h"
#include "common/shutdown.h"
#include "config/family_config.h"
#include "embedded/local_census.h"
#include "embedded/progress.h"
#include "hub/hub_client.h"

namespace hubcensus::cli {

int RunLocal(const Args& args) {
  std::string hub_url, data_dir, date = "today", families, token_file, format = "table";
  std::string hub_quota = "500/300";
  std::string hub_ca_file;
  std::string unreachable_hub_timeout = "60s";
  int64_t workers = 2, parallelism = 1;
  double max_rejected_fraction = 0.01;
  bool retry = false;
  FlagSet flags(
      "hubcensus local --data_dir=DIR [--hub_url=URL] [--date=YYYY-MM-DD] [--workers=N]",
      "Crawls the Hub at --hub_url once under --date with the coordinator, N crawler workers and\n"
      "the aggregator in one process (data under DIR), commits the census, prints the family\n"
      "table and exits 0. Another date adds a crawl; a date that has one changes nothing.\n"
      "An interrupted crawl (SIGTERM, Ctrl-C) resumes on the next run with the same --hub_url;\n"
      "one of another Hub URL is refused (--retry starts a new attempt). A crawl that fails\n"
      "(unreachable Hub, too many rejected entries, ...) exits 1 with one line saying why.\n"
      "Without --hub_url: $HF_ENDPOINT, else https://huggingface.co.");
  flags.String("hub_url", &hub_url, "the Hub to crawl (or a fakehub: http://127.0.0.1:PORT)");
  flags.String("data_dir", &data_dir, "folder for the snapshot store and the coordinator state");
  flags.String("date", &date, "the census date label, YYYY-MM-DD or 'today' (UTC)");
  flags.Int("workers", &workers, "crawler workers");
  flags.Int("parallelism", &parallelism, "leases in flight per worker");
  flags.String("families", &families, "families file (default: the embedded one)");
  flags.String("hf_token_file", &token_file, "file holding the Hub token (else $HF_TOKEN)");
  flags.String("hub_ca_file", &hub_ca_file,
               "PEM file of the CA certificates trusted for the Hub's TLS certificate, e.g. a "
               "corporate TLS proxy's CA or a private Hub mirror's (default: the system store; "
               "verification stays on either way)");
  flags.String("hub_quota", &hub_quota,
               "requests per window before the Hub's RateLimit headers are seen: Q/W or off");
  flags.String("format", &format, "the family table as table, csv or json");
  flags.Bool("retry", &retry,
             "start a new attempt of the date (crawl-DATE.2, ...), cancelling its open crawl "
             "if there is one; a committed date is left as it is");
  flags.Double("max_rejected_fraction", &max_rejected_fraction,
               "the crawl fails instead of committing when its rejected entries exceed this "
               "fraction of its entries (repos + rejected)");
  flags.String("unreachable_hub_timeout", &unreachable_hub_timeout,
               "the crawl fails when every attempt to reach the Hub failed at connection level "
               "(DNS, refused, TLS) for this long (a duration: 60s, 5m)");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  if (data_dir.empty()) {
    std::fprintf(stderr, "hubcensus local: --data_dir is required\n");
    return 2;
  }
  auto resolved_date = ResolveDate(date, Clock::Real()->Now());
  auto endpoint = hub::ResolveHubEndpoint(hub_url);
  auto token = hub::ResolveHubToken(token_file);
  auto config = LoadFamilyConfigOrDefault(families);
  auto out_format = aggregator::ParseOutputFormat(format);
  for (const absl::Status& s : {resolved_date.status(), endpoint.status(), token.status(),
                                config.status(), out_format.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "hubcensus local: %s\n", std::string(s.message()).c_str());
      return 2;
    }
  }
  if (!hub_ca_file.empty()) {
    absl::Status ca = hub::CheckCaFile(hub_ca_file);
    if (!ca.ok()) {
      std::fprintf(stderr, "hubcensus local: --hub_ca_file=%s\n",
                   std::string(ca.message()).c_str());
      return 2;
    }
  }
  if (!(max_rejected_fraction >= 0 && max_rejected_fraction <= 1)) {
    std::fprintf(stderr, "hubcensus local: --max_rejected_fraction: %g is outside 0..1\n",
                 max_rejected_fraction);
    return 2;
  }
  absl::Duration unreachable_timeout;
  if (!absl::ParseDuration(unreachable_hub_timeout, &unreachable_timeout) ||
      unreachable_timeout <= absl::ZeroDuration()) {
    std::fprintf(stderr,
                 "hubcensus local: --unreachable_hub_timeout: \"%s\" is not a positive duration "
                 "(e.g. 60s, 5m)\n",
                 unreachable_hub_timeout.c_str());
    return 2;
  }
  LocalCensusOptions options;
  options.max_rejected_fraction = max_rejected_fraction;
  options.unreachable_hub_timeout = unreachable_timeout;
  options.new_attempt = retry;
  options.data_dir = data_dir;
  options.hub_url = *endpoint;
  options.workers = static_cast<int>(workers);
  options.parallelism = static_cast<int>(parallelism);
  options.families = *config;
  options.hub_quota = hub_quota;
  options.hf_token = *token;
  options.hub_ca_file = hub_ca_file;
  auto census = LocalCensus::Start(options);
  if (!census.ok()) {
    std::fprintf(stderr, "hubcensus local: %s\n", std::string(census.status().message()).c_str());
    return 1;
  }
  ProgressDisplay display(stderr);
  bool first_update = true;
  auto outcome = (*census)->RunCrawl(*resolved_date, [&](const v1::Crawl& c) {
    if (first_update) {
      first_update = false;
      // A committed date prints its own line below; an open one says where it resumes.
      if (c.state() == v1::CRAWL_COMMITTED) return;
      if (c.stats().items_done() > 0 || c.stats().repos() > 0) {
        std::fprintf(stderr,
                     "hubcensus local: resuming %s from its checkpoint: %lld pages and %lld repos "
                     "done before\n",
                     c.crawl_id().c_str(), static_cast<long long>(c.stats().items_done()),
                     static_cast<long long>(c.stats().repos()));
      }
    }
    display.Update({c.crawl_id(), c.stats().items_done(), c.stats().items_total(),
                    c.stats().repos(), c.stats().eta_seconds(), c.stats().last_error(), false});
  });
  if (!outcome.ok()) {
    if (display.is_terminal()) std::fputc('\n', stderr);  // end the progress bar's line
    std::fprintf(stderr, "hubcensus local: %s\n", std::string(outcome.status().message()).c_str());
    if (outcome.status().code() == absl::StatusCode::kCancelled && ShutdownRequested()) {
      // Interrupted: exit as signalled (130 for Ctrl-C, 143 for SIGTERM).
      return 128 + (ShutdownSignalNumber() != 0 ? ShutdownSignalNumber() : SIGTERM);
    }
    return 1;
  }
  const v1::Crawl& crawl = outcome->crawl;
  if (outcome->already_existed) {
    std::fprintf(stderr, "hubcensus local: %s exists (committed, %lld repos): nothing crawled\n",
                 crawl.crawl_id().c_str(), static_cast<long long>(crawl.stats().repos()));
  } else {
    display.Finish({crawl.crawl_id(), crawl.stats().items_done(), crawl.stats().items_total(),
                    crawl.stats().repos(), 0, "", true});
    if (outcome->resumed) {
      const v1::CrawlStats& before = outcome->at_start.stats();
      std::fprintf(stderr,
                   "hubcensus local: %s resumed and committed: %lld of its %lld pages and %lld of "
                   "its %lld repos crawled in this run\n",
                   crawl.crawl_id().c_str(),
                   static_cast<long long>(crawl.stats().items_done() - before.items_done()),
                   static_cast<long long>(crawl.stats().items_done()),
                   static_cast<long long>(crawl.stats().repos() - before.repos()),
                   static_cast<long long>(crawl.stats().repos()));
    }
  }
  v1::FamiliesRequest req;
  req.mutable_crawl()->set_date(*resolved_date);
  auto families_response = (*census)->census()->Families(req);
  if (!families_response.ok()) {
    std::fprintf(stderr, "hubcensus local: %s\n",
                 std::string(families_response.status().message()).c_str());
    return 1;
  }
  std::string text;
  switch (*out_format) {
    case aggregator::OutputFormat::kJson:
      text = aggregator::FamiliesToJson(*families_response);
      break;
    case aggregator::OutputFormat::kCsv:
      text = aggregator::FamiliesToCsv(*families_response);
      break;
    default:
      text = aggregator::FamiliesToTable(*families_response);
      break;
  }
  std::fputs(text.c_str(), stdout);
  if (!text.empty() && text.back() != '\n') std::fputc('\n', stdout);
  (*census)->Stop();
  return 0;
}

}  // namespace hubcensus::cli
