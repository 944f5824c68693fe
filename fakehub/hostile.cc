#include "fakehub/hostile.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/checksum.h"
#include "common/json_text.h"

namespace hubcensus::fakehub {

namespace {

struct ModeInfo {
  const char* name;
  const char* help;
};

constexpr ModeInfo kModes[] = {
    {"link_cycle",
     "every page after the first has a next link back to the first page's URL (A->B->A)"},
    {"empty_pages",
     "every page after the first is [] with a next link to a new URL (an older keyset), forever"},
    {"foreign_next",
     "every page after the first has its next link on --foreign_origin (same path and query)"},
    {"foreign_redirect",
     "every listing request with a cursor (page 2 on) answers 302 to --foreign_origin (same "
     "path and query)"},
    {"html_200", "every listing page answers 200 with an HTML body (Content-Type text/html)"},
    {"garbage_entries=F",
     "that fraction of listed repos (chosen by seed and _id) are sent with every field but _id "
     "and id of the wrong type"},
};

}  // namespace

std::string HostileModesHelp() {
  std::string out;
  for (const auto& m : kModes) absl::StrAppend(&out, "  ", m.name, ": ", m.help, "\n");
  out +=
      "  The truth (/_sim/truth, /_sim/ids) always describes the public Hub and ignores these\n"
      "  modes: under any of the first five no listing can complete, so no census should commit;\n"
      "  under garbage_entries a crawl that rejects those entries lacks them and must fail once\n"
      "  they exceed its rejection bound.\n";
  return out;
}

absl::StatusOr<HostileModes> HostileModes::Parse(absl::string_view modes,
                                                 absl::string_view foreign_origin) {
  HostileModes out;
  for (absl::string_view part : absl::StrSplit(modes, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    if (part == "link_cycle") {
      out.link_cycle = true;
    } else if (part == "empty_pages") {
      out.empty_pages = true;
    } else if (part == "foreign_next") {
      out.foreign_next = true;
    } else if (part == "foreign_redirect") {
      out.foreign_redirect = true;
    } else if (part == "html_200") {
      out.html_200 = true;
    } else if (absl::ConsumePrefix(&part, "garbage_entries=")) {
      double f = 0;
      if (!absl::SimpleAtod(part, &f) || !(f > 0 && f <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--hostile: garbage_entries=", part.substr(0, 200), " is not a fraction in (0, 1]"));
      }
      out.garbage_fraction = f;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--hostile: unknown mode \"", part.substr(0, 200),
          "\" (known: link_cycle, empty_pages, foreign_next, foreign_redirect, html_200, "
          "garbage_entries=F)"));
    }
  }
  if (out.link_cycle + out.empty_pages + out.foreign_next + out.foreign_redirect > 1) {
    return absl::InvalidArgumentError(
        "--hostile: link_cycle, empty_pages, foreign_next and foreign_redirect each decide the "
        "second page; choose one");
  }
  if (out.needs_foreign_origin()) {
    absl::string_view origin = foreign_origin;
    bool scheme =
        absl::ConsumePrefix(&origin, "http://") || absl::ConsumePrefix(&origin, "https://");
    if (!scheme || origin.empty() || origin.find('/') != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--foreign_origin: \"", foreign_origin.substr(0, 200),
          "\" is not http(s)://HOST:PORT (foreign_next and foreign_redirect need it)"));
    }
  }
  return out;
}

bool IsGarbageEntry(uint64_t seed, absl::string_view oid_hex, double fraction) {
  if (fraction <= 0) return false;
  uint64_t h = Fnv1a64(absl::StrCat(seed, "/garbage/", oid_hex));
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0) < fraction;
}

std::string GarbageEntry(absl::string_view oid_hex, absl::string_view id) {
  return absl::StrCat(
      R"({"_id":")", oid_hex, R"(","id":)", JsonString(id),
      R"(,"likes":"many","private":"no","downloads":"17","tags":"text-generation",)",
      R"("pipeline_tag":7,"createdAt":1700000000,"downloadsAllTime":[1]})");
}

}  // namespace hubcensus::fakehub
