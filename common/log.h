// One line per event: `2026-12-01T06:00:00.123Z INFO lease_acquired crawl=... fence=3` on a
// terminal, or a JSON object per line with --log_format=json (what log pipelines want).
#ifndef HUBCENSUS_COMMON_LOG_H_
#define HUBCENSUS_COMMON_LOG_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace hubcensus {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class LogFormat { kText, kJson };

void SetLogFormat(LogFormat format);
void SetLogLevel(LogLevel level);
bool ParseLogFormat(absl::string_view text, LogFormat* out);
bool ParseLogLevel(absl::string_view text, LogLevel* out);
// Where lines go (stderr by default); tests capture them.
void SetLogSink(void (*sink)(const std::string& line));
bool LogEnabled(LogLevel level);

// Collects the fields of one event and writes it on destruction. Never put a secret in a field.
class LogLine {
 public:
  LogLine(LogLevel level, absl::string_view event);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Field(absl::string_view key, absl::string_view value);
  LogLine& Field(absl::string_view key, const std::string& value) {
    return Field(key, absl::string_view(value));
  }
  LogLine& Field(absl::string_view key, const char* value) {
    return Field(key, absl::string_view(value));
  }
  LogLine& Field(absl::string_view key, bool value);
  LogLine& Field(absl::string_view key, double value);
  LogLine& Field(absl::string_view key, const absl::Status& status);
  template <typename T, typename = std::enable_if_t<std::is_integral_v<T>>>
  LogLine& Field(absl::string_view key, T value) {
    return Raw(key, absl::StrCat(value));
  }

 private:
  LogLine& Raw(absl::string_view key, std::string value);
  LogLevel level_;
  bool enabled_;
  std::string event_;
  // (key, value, quoted-as-string)
  std::vector<std::tuple<std::string, std::string, bool>> fields_;
};

}  // namespace hubcensus

// HC_LOG(kInfo, "lease_acquired").Field("crawl", id).Field("fence", fence);
#define HC_LOG(level, event) ::hubcensus::LogLine(::hubcensus::LogLevel::level, event)

#endif  // HUBCENSUS_COMMON_LOG_H_
