// The subcommands of the one `hubcensus` binary. Each Run* takes the arguments after the
// subcommand name and returns the process exit code (0 ok, 1 failure, 2 usage).
#ifndef HUBCENSUS_CLI_COMMANDS_H_
#define HUBCENSUS_CLI_COMMANDS_H_

#include <string>
#include <vector>

namespace hubcensus::cli {

using Args = std::vector<std::string>;

int RunCoordinator(const Args& args);
int RunCrawler(const Args& args);
int RunAggregator(const Args& args);
int RunFakehub(const Args& args);
int RunLocal(const Args& args);
int RunDemo(const Args& args);
int RunCrawl(const Args& args);
int RunQuery(const Args& args);
int RunReport(const Args& args);
int RunExport(const Args& args);

}  // namespace hubcensus::cli

#endif  // HUBCENSUS_CLI_COMMANDS_H_
