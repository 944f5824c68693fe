// Error messages quote what they were given, but never more than 200 bytes of it: a hostile or
// broken input (a 1 MB repo id, a families file of garbage) must not become a 1 MB log line.
#ifndef HUBCENSUS_CONFIG_INPUT_QUOTE_H_
#define HUBCENSUS_CONFIG_INPUT_QUOTE_H_

#include <cstddef>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace hubcensus {

inline constexpr size_t kMaxQuotedInputBytes = 200;

// At most kMaxQuotedInputBytes of `input`, cut on a UTF-8 character boundary, with
// "...(N bytes)" when it was cut.
inline std::string InputExcerpt(absl::string_view input) {
  if (input.size() <= kMaxQuotedInputBytes) return std::string(input);
  size_t cut = kMaxQuotedInputBytes;
  // Back up over UTF-8 continuation bytes (10xxxxxx) so that a character is not split.
  while (cut > 0 && (static_cast<unsigned char>(input[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(input.substr(0, cut), "...(", input.size(), " bytes)");
}

// InputExcerpt in double quotes.
inline std::string QuoteInput(absl::string_view input) {
  return absl::StrCat("\"", InputExcerpt(input), "\"");
}

}  // namespace hubcensus

#endif  // HUBCENSUS_CONFIG_INPUT_QUOTE_H_
