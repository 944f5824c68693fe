#include "common/shutdown.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "common/log.h"

namespace hubcensus {
namespace {

absl::Mutex g_mu;
bool g_requested ABSL_GUARDED_BY(g_mu) = false;
std::atomic<int> g_signal{0};

}  // namespace

void InstallShutdownSignalHandler() {
  static std::atomic<bool> installed{false};
  if (installed.exchange(true)) return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set]() {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      bool again = ShutdownRequested();
      g_signal = sig;
      HC_LOG(kInfo, "shutdown_signal").Field("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      if (again && sig == SIGINT) {
        // A second Ctrl-C means now.
        _exit(130);
      }
      RequestShutdown();
    }
  }).detach();
}

void RequestShutdown() {
  absl::MutexLock lock(&g_mu);
  g_requested = true;
}

bool ShutdownRequested() {
  absl::MutexLock lock(&g_mu);
  return g_requested;
}

bool WaitForShutdown(absl::Duration timeout) {
  absl::MutexLock lock(&g_mu);
  g_mu.AwaitWithTimeout(absl::Condition(&g_requested), timeout);
  return g_requested;
}

int ShutdownSignalNumber() { return g_signal.load(); }

void ResetShutdownForTesting() {
  absl::MutexLock lock(&g_mu);
  g_requested = false;
  g_signal = 0;
}

}  // namespace hubcensus
