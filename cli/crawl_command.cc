#include "cli/commands.h"
#include "common/flags.h"

namespace hubcensus::cli {

int RunCrawl(const Args& args) {
  FlagSet flags("hubcensus crawl [flags]", "Not available yet: see issue 5.");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  return NotYetAvailable("crawl", "its issue, #5, is open");
}

}  // namespace hubcensus::cli
