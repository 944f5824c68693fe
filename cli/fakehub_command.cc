#include "cli/commands.h"
#include "common/flags.h"

namespace hubcensus::cli {

int RunFakehub(const Args& args) {
  FlagSet flags("hubcensus fakehub [flags]", "Not available yet: see issue 3.");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  return NotYetAvailable("fakehub", "its issue, #3, is open");
}

}  // namespace hubcensus::cli
