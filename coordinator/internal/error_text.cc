#include "coordinator/internal/error_text.h"

#include <map>

#include "absl/strings/str_cat.h"

namespace hubcensus::coordinator {

std::string Truncated(absl::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  constexpr absl::string_view kElided = " ... ";
  auto is_continuation = [&](size_t i) {
    return i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80;
  };
  const size_t room = max > kElided.size() ? max - kElided.size() : 0;
  size_t head = room * 2 / 3;
  while (head > 0 && is_continuation(head)) --head;
  size_t tail_start = text.size() - (room - room * 2 / 3);
  while (is_continuation(tail_start)) ++tail_start;
  return absl::StrCat(text.substr(0, head), kElided, text.substr(tail_start));
}

std::string CountsByReason(const google::protobuf::Map<std::string, int64_t>& counts) {
  std::map<std::string, int64_t> sorted(counts.begin(), counts.end());
  std::string out;
  for (const auto& [reason, n] : sorted) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", reason, ": ", n);
  }
  return out.empty() ? "no reason given" : out;
}

}  // namespace hubcensus::coordinator
