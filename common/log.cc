#include "common/log.h"

#include <cstdio>
#include <mutex>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/json_text.h"

namespace hubcensus {
namespace {

std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<void (*)(const std::string&)> g_sink{nullptr};
std::mutex g_write_mu;

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
  }
  return "INFO";
}

bool NeedsQuotes(absl::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}

}  // namespace

void SetLogFormat(LogFormat format) { g_format = static_cast<int>(format); }
void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
void SetLogSink(void (*sink)(const std::string& line)) { g_sink = sink; }
bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

bool ParseLogFormat(absl::string_view text, LogFormat* out) {
  if (text == "text") {
    *out = LogFormat::kText;
  } else if (text == "json") {
    *out = LogFormat::kJson;
  } else {
    return false;
  }
  return true;
}

bool ParseLogLevel(absl::string_view text, LogLevel* out) {
  std::string t = absl::AsciiStrToLower(text);
  if (t == "debug") {
    *out = LogLevel::kDebug;
  } else if (t == "info") {
    *out = LogLevel::kInfo;
  } else if (t == "warn" || t == "warning") {
    *out = LogLevel::kWarning;
  } else if (t == "error") {
    *out = LogLevel::kError;
  } else {
    return false;
  }
  return true;
}

LogLine::LogLine(LogLevel level, absl::string_view event)
    : level_(level), enabled_(LogEnabled(level)), event_(event) {}

LogLine& LogLine::Field(absl::string_view key, absl::string_view value) {
  if (enabled_) fields_.emplace_back(std::string(key), std::string(value), true);
  return *this;
}

LogLine& LogLine::Field(absl::string_view key, bool value) {
  return Raw(key, value ? "true" : "false");
}

LogLine& LogLine::Field(absl::string_view key, double value) {
  return Raw(key, absl::StrFormat("%.6g", value));
}

LogLine& LogLine::Field(absl::string_view key, const absl::Status& status) {
  return Field(key, status.ToString());
}

LogLine& LogLine::Raw(absl::string_view key, std::string value) {
  if (enabled_) fields_.emplace_back(std::string(key), std::move(value), false);
  return *this;
}

LogLine::~LogLine() {
  if (!enabled_) return;
  std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::string line;
  if (static_cast<LogFormat>(g_format.load()) == LogFormat::kJson) {
    line = "{\"ts\":";
    AppendJsonString(&line, ts);
    line += ",\"level\":";
    AppendJsonString(&line, LevelName(level_));
    line += ",\"event\":";
    AppendJsonString(&line, event_);
    for (const auto& [k, v, quoted] : fields_) {
      line.push_back(',');
      AppendJsonString(&line, k);
      line.push_back(':');
      if (quoted) {
        AppendJsonString(&line, v);
      } else {
        line += v;
      }
    }
    line.push_back('}');
  } else {
    line = absl::StrCat(ts, " ", LevelName(level_), " ", event_);
    for (const auto& [k, v, quoted] : fields_) {
      line += absl::StrCat(" ", k, "=");
      if (quoted && NeedsQuotes(v)) {
        AppendJsonString(&line, v);
      } else {
        line += v;
      }
    }
  }
  auto* sink = g_sink.load();
  if (sink != nullptr) {
    sink(line);
    return;
  }
  std::lock_guard<std::mutex> lock(g_write_mu);
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace hubcensus
