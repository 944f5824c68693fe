#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace hubcensus::testing {

std::string HubcensusBinary() {
  if (const char* env = std::getenv("HUBCENSUS_BIN")) return env;
  return HUBCENSUS_BINARY_DIR "/bin/hubcensus";
}

std::string MakeTempDir(const std::string& name) {
  static std::atomic<int> counter{0};
  const char* base = std::getenv("TEST_TMPDIR");
  std::string root = base != nullptr ? base : "/tmp";
  std::string dir = absl::StrCat(root, "/hubcensus-", name, "-", getpid(), "-", counter++);
  std::string cmd = absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'");
  if (std::system(cmd.c_str()) != 0) std::abort();
  return dir;
}

std::optional<Subprocess> Subprocess::Start(const std::vector<std::string>& argv,
                                            const std::vector<std::string>& env) {
  static std::atomic<int> counter{0};
  Subprocess p;
  p.log_path_ = absl::StrCat(MakeTempDir("proc"), "/output-", counter++, ".log");
  int fd = open(p.log_path_.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) return std::nullopt;
  pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    // Unblock the signals a test process may have blocked, so SIGTERM reaches the child.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    setpgid(0, 0);
    for (const auto& e : env) putenv(strdup(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fd);
  p.pid_ = pid;
  return p;
}

Subprocess::Subprocess(Subprocess&& other) noexcept { *this = std::move(other); }

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  pid_ = other.pid_;
  log_path_ = std::move(other.log_path_);
  exit_code_ = other.exit_code_;
  other.pid_ = -1;
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_code_) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
}

std::string Subprocess::Output() const {
  std::ifstream in(log_path_);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

bool Subprocess::Running() {
  if (exit_code_) return false;
  int status;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

std::optional<std::string> Subprocess::WaitForOutput(const std::string& needle,
                                                     absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::string out = Output();
    auto pos = out.find(needle);
    if (pos != std::string::npos) {
      auto start = out.rfind('\n', pos);
      start = start == std::string::npos ? 0 : start + 1;
      auto end = out.find('\n', pos);
      return out.substr(start, end == std::string::npos ? std::string::npos : end - start);
    }
    if (!Running()) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return std::nullopt;
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && !exit_code_) kill(pid_, sig);
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return exit_code_;
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

int RunToCompletion(const std::vector<std::string>& argv, std::string* output,
                    absl::Duration timeout, const std::vector<std::string>& env) {
  auto p = Subprocess::Start(argv, env);
  if (!p) return -1;
  auto code = p->Wait(timeout);
  if (output != nullptr) *output = p->Output();
  return code ? *code : -1;
}

int RunInTerminal(const std::vector<std::string>& argv, std::string* output, absl::Duration timeout,
                  const std::vector<std::string>& env) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  struct winsize size = {};
  size.ws_row = 40;
  size.ws_col = 160;
  int master = -1;
  pid_t pid = forkpty(&master, nullptr, nullptr, &size);
  if (pid < 0) return -1;
  if (pid == 0) {
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    execv(args[0], args.data());
    _exit(127);
  }
  std::string got;
  const absl::Time deadline = absl::Now() + timeout;
  bool timed_out = false;
  char buf[4096];
  while (true) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      break;
    }
    struct pollfd fd = {master, POLLIN, 0};
    int ready =
        poll(&fd, 1, static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left), 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    ssize_t n = read(master, buf, sizeof(buf));
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EIO: every holder of the terminal's other end has closed it
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  close(master);
  if (output != nullptr) *output = got;
  if (timed_out) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace hubcensus::testing
