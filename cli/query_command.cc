#include "cli/commands.h"
#include "common/flags.h"

namespace hubcensus::cli {

int RunQuery(const Args& args) {
  FlagSet flags("hubcensus query [flags]", "Not available yet: see issue 6.");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  return NotYetAvailable("query", "its issue, #6, is open");
}

}  // namespace hubcensus::cli
