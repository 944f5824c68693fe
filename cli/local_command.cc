#include "cli/commands.h"
#include "common/flags.h"

namespace hubcensus::cli {

int RunLocal(const Args& args) {
  FlagSet flags("hubcensus local [flags]", "Not available yet: see issue 7.");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  return NotYetAvailable("local", "its issue, #7, is open");
}

}  // namespace hubcensus::cli
