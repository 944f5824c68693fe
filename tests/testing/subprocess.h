// Real processes for end-to-end tests: start the hubcensus binary, read what it prints, signal
// it (SIGTERM, SIGKILL), wait for its exit code.
#ifndef HUBCENSUS_TESTS_TESTING_SUBPROCESS_H_
#define HUBCENSUS_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace hubcensus::testing {

// The hubcensus binary under test (built beside the tests).
std::string HubcensusBinary();
// A fresh empty directory under the test's temp dir.
std::string MakeTempDir(const std::string& name);

class Subprocess {
 public:
  // Starts argv[0] with argv; stdout and stderr both go to a log file read by the methods below.
  // `env` entries ("K=V") are added to the inherited environment.
  static std::optional<Subprocess> Start(const std::vector<std::string>& argv,
                                         const std::vector<std::string>& env = {});
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();  // SIGKILLs a process still running

  pid_t pid() const { return pid_; }
  // Everything printed so far.
  std::string Output() const;
  // Waits until the output contains `needle`; returns the line holding it, or nullopt on timeout
  // or if the process exited first.
  std::optional<std::string> WaitForOutput(const std::string& needle,
                                           absl::Duration timeout = absl::Seconds(60));
  void Signal(int sig);
  // Waits for exit; returns the exit code, 128+signal when killed, nullopt on timeout.
  std::optional<int> Wait(absl::Duration timeout = absl::Seconds(120));
  bool Running();

 private:
  Subprocess() = default;
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_code_;
};

// A loopback port nothing listens on now, for a process that must be given its port (one that
// comes back on the same address after a restart). Another process may take it meanwhile.
int FreeLoopbackPort();

// Runs to completion; returns the exit code and fills `output` (stdout+stderr).
int RunToCompletion(const std::vector<std::string>& argv, std::string* output,
                    absl::Duration timeout = absl::Seconds(300),
                    const std::vector<std::string>& env = {});

// Runs to completion with stdin, stdout and stderr on a pseudo-terminal (what a user at a
// terminal sees: isatty() is true); returns the exit code, -1 on a timeout (the process is
// killed), and fills `output` with every byte written to the terminal.
int RunInTerminal(const std::vector<std::string>& argv, std::string* output,
                  absl::Duration timeout = absl::Seconds(300),
                  const std::vector<std::string>& env = {});

}  // namespace hubcensus::testing

#endif  // HUBCENSUS_TESTS_TESTING_SUBPROCESS_H_
