// Hostile listing behaviours (issue 12): a Hub, or something posing as one, that sends cursor
// loops, endless empty pages, links and redirects to another origin, HTML instead of JSON, or
// entries of the wrong types. Off by default; tests turn them on one by one.
#ifndef HUBCENSUS_FAKEHUB_HOSTILE_H_
#define HUBCENSUS_FAKEHUB_HOSTILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hubcensus::fakehub {

struct HostileModes {
  bool link_cycle = false;        // pages after the first link back to the first page
  bool empty_pages = false;       // pages after the first are [] with a new next link, forever
  bool foreign_next = false;      // pages after the first link to the foreign origin
  bool foreign_redirect = false;  // listing requests with a cursor answer 302 to it
  bool html_200 = false;          // listing pages answer 200 with an HTML body
  double garbage_fraction = 0;    // of listed repos, whose entries have wrong types

  bool any() const {
    return link_cycle || empty_pages || foreign_next || foreign_redirect || html_200 ||
           garbage_fraction > 0;
  }
  bool needs_foreign_origin() const { return foreign_next || foreign_redirect; }

  // "MODE,MODE,garbage_entries=F"; `foreign_origin` (http(s)://HOST:PORT, no path) is required
  // by foreign_next and foreign_redirect. Errors name the flag and the bad part.
  static absl::StatusOr<HostileModes> Parse(absl::string_view modes,
                                            absl::string_view foreign_origin);
};

// One line per mode: what it does and what the truth means under it (for --help).
std::string HostileModesHelp();

// Whether repo `oid_hex` gets a garbage entry under `fraction` (deterministic by seed).
bool IsGarbageEntry(uint64_t seed, absl::string_view oid_hex, double fraction);
// An entry of `_id` and `id` with every other field of the wrong type, which a strict parser
// rejects (it keeps the ids so the rejection can name the repo).
std::string GarbageEntry(absl::string_view oid_hex, absl::string_view id);

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_HOSTILE_H_
