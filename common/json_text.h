// JSON string quoting shared by the log lines, the query output and the simulator's pages.
#ifndef HUBCENSUS_COMMON_JSON_TEXT_H_
#define HUBCENSUS_COMMON_JSON_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace hubcensus {

// Appends "text" quoted, escaping quotes, backslashes and control characters. Bytes >= 0x80
// pass through unchanged (the caller decides whether they are valid UTF-8).
inline void AppendJsonString(std::string* out, absl::string_view text) {
  out->push_back('"');
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          static const char* kHex = "0123456789abcdef";
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

inline std::string JsonString(absl::string_view text) {
  std::string out;
  AppendJsonString(&out, text);
  return out;
}

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_JSON_TEXT_H_
