#include "cli/commands.h"
#include "common/flags.h"

namespace hubcensus::cli {

int RunAggregator(const Args& args) {
  FlagSet flags("hubcensus aggregator [flags]", "Not available yet: see issue 6.");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  return NotYetAvailable("aggregator", "its issue, #6, is open");
}

}  // namespace hubcensus::cli
