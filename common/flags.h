// Per-subcommand flags: each subcommand declares its own set, with help text, so `hubcensus X
// --help` explains X and an unknown flag names itself. (absl/flags is process-global, which does
// not fit one binary with many roles.)
#ifndef HUBCENSUS_COMMON_FLAGS_H_
#define HUBCENSUS_COMMON_FLAGS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hubcensus {

class FlagSet {
 public:
  // `usage` is the synopsis line, e.g. "hubcensus fakehub [flags]"; `summary` a paragraph.
  FlagSet(std::string usage, std::string summary);

  void String(const std::string& name, std::string* target, std::string help);
  void Int(const std::string& name, int64_t* target, std::string help);
  void Double(const std::string& name, double* target, std::string help);
  // --name, --name=true|false|1|0, --noname.
  void Bool(const std::string& name, bool* target, std::string help);
  // Repeatable: each occurrence appends.
  void StringList(const std::string& name, std::vector<std::string>* target, std::string help);

  // Accepts --name=value and --name value; "--" ends flags. Returns the positional arguments.
  // Sets help_requested() on -h/--help. Unknown flags and bad values are INVALID_ARGUMENT errors
  // naming the flag. Also applies --log_format and --log_level, which every subcommand has.
  absl::StatusOr<std::vector<std::string>> Parse(const std::vector<std::string>& args);

  bool help_requested() const { return help_requested_; }
  // True when the flag appeared on the command line.
  bool IsSet(const std::string& name) const;
  std::string Help() const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string default_text;
    bool is_bool = false;
    std::function<absl::Status(const std::string&)> set;
  };
  Flag* Find(const std::string& name);
  void Add(Flag flag);

  std::string usage_;
  std::string summary_;
  std::vector<Flag> flags_;
  std::vector<std::string> set_;
  bool help_requested_ = false;
  std::string log_format_ = "text";
  std::string log_level_ = "info";
};

// Parses; on --help prints Help() to stdout and returns 0; on an error prints it with a hint to
// stderr and returns 2. Returns nullopt when the command should go on.
std::optional<int> ParseFlagsOrExit(FlagSet& flags, const std::vector<std::string>& args,
                                    std::vector<std::string>* positional = nullptr);

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_FLAGS_H_
