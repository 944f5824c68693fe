// hubcensus: one binary, a subcommand per role.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/shutdown.h"
#include "common/version.h"

namespace hubcensus::cli {
namespace {

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(const Args&);
};

constexpr Subcommand kSubcommands[] = {
    {"coordinator", "serve the Coordinator: plans crawls, leases work, commits", RunCoordinator},
    {"crawler", "run a crawler worker: leases work, fetches the Hub, streams snapshots",
     RunCrawler},
    {"aggregator", "serve the snapshot store and the Census query API", RunAggregator},
    {"fakehub", "serve a simulated Hugging Face Hub (tests, demo, benchmarks)", RunFakehub},
    {"local", "crawl a Hub once with every role in one process, then print the families", RunLocal},
    {"demo", "crawl a simulated Hub monthly from 2024-01 to 2025-11 and write the report", RunDemo},
    {"crawl", "operate crawls on a coordinator: start, status, list, cancel", RunCrawl},
    {"query", "query the census: families, series, shares, crossover, top, lineage", RunQuery},
    {"report", "write the HTML/SVG/CSV report from a store", RunReport},
    {"export", "export a committed crawl's snapshots as JSON lines or CSV", RunExport},
};

void PrintHelp(FILE* out) {
  std::fprintf(out,
               "hubcensus %s: nightly censuses of the Hugging Face Hub by model family.\n\n"
               "usage: hubcensus <command> [flags]\n\ncommands:\n",
               kVersion);
  for (const auto& c : kSubcommands) std::fprintf(out, "  %-12s %s\n", c.name, c.summary);
  std::fprintf(out,
               "  %-12s %s\n  %-12s %s\n\n"
               "`hubcensus <command> --help` explains a command and its flags.\n",
               "help", "this list", "version", "print the version");
}

}  // namespace

int Main(int argc, char** argv) {
  if (argc < 2) {
    PrintHelp(stderr);
    return 2;
  }
  std::string name = argv[1];
  if (name == "help" || name == "--help" || name == "-h") {
    if (argc >= 3) {
      for (const auto& c : kSubcommands) {
        if (c.name == std::string(argv[2])) return c.run({"--help"});
      }
    }
    PrintHelp(stdout);
    return 0;
  }
  if (name == "version" || name == "--version") {
    std::printf("hubcensus %s\n", kVersion);
    return 0;
  }
  for (const auto& c : kSubcommands) {
    if (name == c.name) {
      InstallShutdownSignalHandler();
      return c.run(Args(argv + 2, argv + argc));
    }
  }
  std::fprintf(stderr, "hubcensus: unknown command \"%s\" (see `hubcensus help`)\n", name.c_str());
  return 2;
}

}  // namespace hubcensus::cli

int main(int argc, char** argv) { return hubcensus::cli::Main(argc, argv); }
