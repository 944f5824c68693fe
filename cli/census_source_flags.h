// The flags that say where a reading command (query, export, report) gets its census from, and
// which committed crawl: one wording for all three, so their --help pages cannot drift apart.
#ifndef HUBCENSUS_CLI_CENSUS_SOURCE_FLAGS_H_
#define HUBCENSUS_CLI_CENSUS_SOURCE_FLAGS_H_

#include <string>

#include "common/flags.h"

namespace hubcensus::cli {

// --data_dir and --aggregator; the caller checks that exactly one was given.
inline void RegisterCensusSourceFlags(FlagSet& flags, std::string* data_dir,
                                      std::string* aggregator) {
  flags.String("data_dir", data_dir,
               "the aggregator's data folder, read directly while the aggregator runs, or the "
               "folder given to `hubcensus local` (its store is DIR/store)");
  flags.String("aggregator", aggregator,
               "host:port of a running aggregator (http:// is accepted and dropped)");
}

// --date and --crawl_id: which committed crawl.
inline void RegisterCrawlChoiceFlags(FlagSet& flags, std::string* date, std::string* crawl_id) {
  flags.String("date", date,
               "YYYY-MM-DD of a committed crawl, 'today' (UTC) or 'latest' (the default)");
  flags.String("crawl_id", crawl_id, "a committed crawl id instead of --date");
}

}  // namespace hubcensus::cli

#endif  // HUBCENSUS_CLI_CENSUS_SOURCE_FLAGS_H_
