#include "cli/commands.h"
#include "common/flags.h"

namespace hubcensus::cli {

int RunExport(const Args& args) {
  FlagSet flags("hubcensus export [flags]", "Not available yet: see issue 6.");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  return NotYetAvailable("export", "its issue, #6, is open");
}

}  // namespace hubcensus::cli
