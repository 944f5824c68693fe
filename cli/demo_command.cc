#include "cli/commands.h"
#include "common/flags.h"

namespace hubcensus::cli {

int RunDemo(const Args& args) {
  FlagSet flags("hubcensus demo [flags]", "Not available yet: see issue 7.");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  return NotYetAvailable("demo", "its issue, #7, is open");
}

}  // namespace hubcensus::cli
