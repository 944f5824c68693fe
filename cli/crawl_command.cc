#include <unistd.h>

#include <cstdio>
#include <initializer_list>
#include <string>

#include "cli/commands.h"
#include "common/flags.h"
#include "common/tls.h"
#include "coordinator/crawl_cli.h"

namespace hubcensus::cli {

namespace {

struct CrawlAction {
  const char* name;
  const char* usage;
  const char* summary;
};

constexpr CrawlAction kCrawlActions[] = {
    {"start", "hubcensus crawl start --coordinator=ADDR [--date=today|YYYY-MM-DD] [--wait] [flags]",
     "Starts the crawl of a date on the coordinator (--coordinator REQUIRED unless it is\n"
     "127.0.0.1:7001). Idempotent per date: a date that has a crawl gets that one back;\n"
     "--retry starts another attempt (crawl-DATE.2, ...) when its crawl FAILED or was CANCELLED.\n"
     "With --wait it follows the crawl (a progress bar on a terminal, one line per change\n"
     "otherwise) and exits 0 when it is committed, 1 when it failed or was cancelled; SIGTERM or\n"
     "SIGINT stops the waiting (the crawl goes on in the coordinator) with exit 143 or 130.\n"
     "This is what the nightly CronJob runs: crawl start --date=today --wait."},
    {"status", "hubcensus crawl status --coordinator=ADDR (--date=YYYY-MM-DD | --crawl_id=ID)",
     "Shows one crawl: its state, items, repos, rejections, private entries skipped,\n"
     "unreadable details, limit shrinks, ETA and the last error. --wait follows it until it\n"
     "ends (exit 0 committed, 1 failed or cancelled)."},
    {"list", "hubcensus crawl list --coordinator=ADDR [--limit=N]",
     "Lists the coordinator's crawls, newest first, one line each."},
    {"cancel",
     "hubcensus crawl cancel --coordinator=ADDR (--date=YYYY-MM-DD | --crawl_id=ID) "
     "[--reason=TEXT]",
     "Cancels an open crawl: its leases end, nothing of it is committed, and the reason is\n"
     "recorded on the crawl. `crawl start --retry` starts the date again."},
};

const CrawlAction* FindCrawlAction(const Args& args) {
  for (const std::string& arg : args) {
    if (arg == "--") break;
    for (const CrawlAction& action : kCrawlActions) {
      if (arg == action.name) return &action;
    }
  }
  return nullptr;
}

bool HelpRequested(const Args& args) {
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (arg == "-h" || arg == "--help" || arg == "-help") return true;
  }
  return false;
}

}  // namespace

int RunCrawl(const Args& args) {
  coordinator::CrawlCliOptions options;
  std::string admin_token_file;
  double poll_seconds = 2;
  // `crawl ACTION --help` shows that action's page and flags. Parsing itself accepts every
  // action's flags, as it always has: a flag another action uses is ignored, not refused.
  const CrawlAction* action = HelpRequested(args) ? FindCrawlAction(args) : nullptr;
  auto for_action = [action](std::initializer_list<const char*> actions) {
    if (action == nullptr) return true;
    for (const char* name : actions) {
      if (std::string(name) == action->name) return true;
    }
    return false;
  };
  FlagSet flags(action != nullptr
                    ? action->usage
                    : "hubcensus crawl start|status|list|cancel --coordinator=ADDR [flags]",
                action != nullptr
                    ? action->summary
                    : "Operates crawls on a coordinator (`hubcensus crawl ACTION --help` explains "
                      "one action and its flags):\n"
                      "  start   start (or find) the crawl of a date; --wait follows it\n"
                      "  status  one crawl's state, counts, ETA and last error\n"
                      "  list    the crawls, newest first\n"
                      "  cancel  cancel an open crawl, recording why");
  flags.String("coordinator", &options.coordinator,
               "the coordinator's address host:port (REQUIRED unless it is the default)");
  if (for_action({"start", "status", "cancel"})) {
    flags.String("date", &options.date, "the crawl's UTC date: today or YYYY-MM-DD");
  }
  if (for_action({"status", "cancel"})) {
    flags.String("crawl_id", &options.crawl_id, "status/cancel: the crawl id instead of --date");
  }
  if (for_action({"start"})) {
    flags.String("hub_url", &options.hub_url,
                 "start: the Hub endpoint (default: the coordinator's)");
    flags.Bool("fetch_details", &options.fetch_details,
               "start: also fetch per-repo detail for new or changed repos");
    flags.Bool("retry", &options.retry,
               "start: when the date's crawl FAILED or was CANCELLED, start another attempt "
               "(crawl-DATE.2, .3, ...); a running or committed crawl is left as it is");
    flags.StringList("extra_stream", &options.extra_streams,
                     "start: a further listing stream (sort key) crawled in parallel; "
                     "repeatable");
  }
  if (for_action({"start", "status"})) {
    flags.Bool("wait", &options.wait, "start/status: follow the crawl until it ends");
    flags.Double("poll_seconds", &poll_seconds, "--wait: seconds between updates");
  }
  flags.String("admin_token_file", &admin_token_file, "file holding the coordinator's admin token");
  if (for_action({"cancel"})) {
    flags.String("reason", &options.reason, "cancel: why (recorded on the crawl)");
  }
  if (for_action({"list"})) {
    flags.Int("limit", &options.limit, "list: at most this many crawls, newest first (0: all)");
  }
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
