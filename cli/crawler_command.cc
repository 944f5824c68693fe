#include "cli/commands.h"
#include "common/flags.h"

namespace hubcensus::cli {

int RunCrawler(const Args& args) {
  FlagSet flags("hubcensus crawler [flags]", "Not available yet: see issue 4.");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  return NotYetAvailable("crawler", "its issue, #4, is open");
}

}  // namespace hubcensus::cli
