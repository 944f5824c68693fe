#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"
#include "common/flags.h"
#include "common/tls.h"
#include "coordinator/crawl_cli.h"

namespace hubcensus::cli {

int RunCrawl(const Args& args) {
  coordinator::CrawlCliOptions options;
  std::string admin_token_file;
  double poll_seconds = 2;
  FlagSet flags("hubcensus crawl start|status|list|cancel --coordinator=ADDR [flags]",
                "Operates crawls on a coordinator. `start` is idempotent per date (--retry starts "
                "another attempt of a date whose crawl failed or was cancelled); with --wait it "
                "follows the crawl (a progress bar on a terminal, one line per change otherwise) "
                "and exits 0 when it is committed, 1 when it failed or was cancelled; SIGTERM or "
                "SIGINT stops the waiting (the crawl goes on in the coordinator) with exit 143 or "
                "130. `status` shows rejections, private entries skipped, unreadable details, "
                "limit shrinks and the last error as they happen.");
  flags.String("coordinator", &options.coordinator, "the coordinator's address host:port");
  flags.String("date", &options.date, "the crawl's UTC date: today or YYYY-MM-DD");
  flags.String("crawl_id", &options.crawl_id, "status/cancel: the crawl id instead of --date");
  flags.String("hub_url", &options.hub_url, "start: the Hub endpoint (default: the coordinator's)");
  flags.Bool("fetch_details", &options.fetch_details,
             "start: also fetch per-repo detail for new or changed repos");
  flags.Bool("retry", &options.retry,
             "start: when the date's crawl FAILED or was CANCELLED, start another attempt "
             "(crawl-DATE.2, .3, ...); a running or committed crawl is left as it is");
  flags.StringList("extra_stream", &options.extra_streams,
                   "start: a further listing stream (sort key) crawled in parallel; repeatable");
  flags.Bool("wait", &options.wait, "start/status: follow the crawl until it ends");
  flags.Double("poll_seconds", &poll_seconds, "--wait: seconds between updates");
  flags.String("admin_token_file", &admin_token_file, "file holding the coordinator's admin token");
  flags.String("reason", &options.reason, "cancel: why (recorded on the crawl)");
  flags.Int("limit", &options.limit, "list: at most this many crawls, newest first (0: all)");
  TlsOptions tls;
  RegisterClientTlsFlags(flags, &tls);
  std::vector<std::string> positional;
  if (auto code = ParseFlagsOrExit(flags, args, &positional)) return *code;
  if (positional.size() != 1) {
    std::fprintf(stderr,
                 "hubcensus crawl: expected one action: start, status, list or cancel "
                 "(see hubcensus crawl --help)\n");
    return 2;
  }
  options.action = positional[0];
  if (poll_seconds <= 0) {
    std::fprintf(stderr, "hubcensus crawl: --poll_seconds: must be positive\n");
    return 2;
  }
  options.poll_interval = absl::Milliseconds(static_cast<int64_t>(poll_seconds * 1000));
  if (!admin_token_file.empty()) {
    auto token = ReadSecretFile(admin_token_file);
    if (!token.ok()) {
      std::fprintf(stderr, "hubcensus crawl: --admin_token_file: %s\n",
                   std::string(token.status().message()).c_str());
      return 2;
    }
    options.admin_token = *token;
  }
  auto credentials = MakeChannelCredentials(tls);
  if (!credentials.ok()) {
    std::fprintf(stderr, "hubcensus crawl: %s\n",
                 std::string(credentials.status().message()).c_str());
    return 2;
  }
  options.credentials = *credentials;
  options.progress_bar = isatty(fileno(stdout)) != 0;
  return coordinator::RunCrawlCli(options, stdout, stderr);
}

}  // namespace hubcensus::cli
