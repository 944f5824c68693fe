#include "common/flags.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"

namespace hubcensus {

FlagSet::FlagSet(std::string usage, std::string summary)
    : usage_(std::move(usage)), summary_(std::move(summary)) {
  String("log_format", &log_format_, "log lines as 'text' (one line per event) or 'json'");
  String("log_level", &log_level_, "least severe level logged: debug, info, warn, error");
}

void FlagSet::Add(Flag flag) { flags_.push_back(std::move(flag)); }

void FlagSet::String(const std::string& name, std::string* target, std::string help) {
  Add({name, std::move(help), target->empty() ? "" : absl::StrCat("\"", *target, "\""), false,
       [target](const std::string& v) {
         *target = v;
         return absl::OkStatus();
       }});
}

void FlagSet::Int(const std::string& name, int64_t* target, std::string help) {
  Add({name, std::move(help), absl::StrCat(*target), false, [target, name](const std::string& v) {
         int64_t parsed;
         if (!absl::SimpleAtoi(v, &parsed)) {
           return absl::InvalidArgumentError(
               absl::StrCat("flag --", name, ": \"", v, "\" is not an integer"));
         }
         *target = parsed;
         return absl::OkStatus();
       }});
}

void FlagSet::Double(const std::string& name, double* target, std::string help) {
  Add({name, std::move(help), absl::StrCat(*target), false, [target, name](const std::string& v) {
         double parsed;
         if (!absl::SimpleAtod(v, &parsed)) {
           return absl::InvalidArgumentError(
               absl::StrCat("flag --", name, ": \"", v, "\" is not a number"));
         }
         *target = parsed;
         return absl::OkStatus();
       }});
}

void FlagSet::Bool(const std::string& name, bool* target, std::string help) {
  Add({name, std::move(help), *target ? "true" : "false", true,
       [target, name](const std::string& v) {
         if (v == "true" || v == "1" || v == "yes") {
           *target = true;
         } else if (v == "false" || v == "0" || v == "no") {
           *target = false;
         } else {
           return absl::InvalidArgumentError(
               absl::StrCat("flag --", name, ": \"", v, "\" is not true or false"));
         }
         return absl::OkStatus();
       }});
}

void FlagSet::StringList(const std::string& name, std::vector<std::string>* target,
                         std::string help) {
  Add({name, std::move(help), "", false, [target](const std::string& v) {
         target->push_back(v);
         return absl::OkStatus();
       }});
}

FlagSet::Flag* FlagSet::Find(const std::string& name) {
  for (auto& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool FlagSet::IsSet(const std::string& name) const {
  return std::find(set_.begin(), set_.end(), name) != set_.end();
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      help_requested_ = true;
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string name = body;
    std::optional<std::string> value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
    }
    Flag* flag = Find(name);
    if (flag == nullptr && !value && name.rfind("no", 0) == 0) {
      Flag* negated = Find(name.substr(2));
      if (negated != nullptr && negated->is_bool) {
        if (auto s = negated->set("false"); !s.ok()) return s;
        set_.push_back(negated->name);
        continue;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
    }
    if (auto s = flag->set(*value); !s.ok()) return s;
    set_.push_back(name);
  }
  LogFormat format;
  if (!ParseLogFormat(log_format_, &format)) {
    return absl::InvalidArgumentError(
        absl::StrCat("flag --log_format: \"", log_format_, "\" is not text or json"));
  }
  LogLevel level;
  if (!ParseLogLevel(log_level_, &level)) {
    return absl::InvalidArgumentError(
        absl::StrCat("flag --log_level: \"", log_level_, "\" is not debug, info, warn or error"));
  }
  SetLogFormat(format);
  SetLogLevel(level);
  return positional;
}

std::string FlagSet::Help() const {
  std::string out = absl::StrCat("usage: ", usage_, "\n\n", summary_, "\n\nflags:\n");
  for (const auto& f : flags_) {
    std::string head = absl::StrCat("  --", f.name, f.is_bool ? "" : "=VALUE");
    out += head;
    out += head.size() < 26 ? std::string(26 - head.size(), ' ') : "\n" + std::string(26, ' ');
    out += f.help;
    if (!f.default_text.empty()) out += absl::StrCat(" (default ", f.default_text, ")");
    out += "\n";
  }
  return out;
}

std::optional<int> ParseFlagsOrExit(FlagSet& flags, const std::vector<std::string>& args,
                                    std::vector<std::string>* positional) {
  auto parsed = flags.Parse(args);
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return 0;
  }
  if (!parsed.ok()) {
    std::fprintf(stderr, "hubcensus: %s\n(see --help)\n",
                 std::string(parsed.status().message()).c_str());
    return 2;
  }
  if (positional != nullptr) {
    *positional = std::move(*parsed);
  } else if (!parsed->empty()) {
    std::fprintf(stderr, "hubcensus: unexpected argument \"%s\"\n(see --help)\n",
                 parsed->front().c_str());
    return 2;
  }
  return std::nullopt;
}

}  // namespace hubcensus
