// SIGTERM and SIGINT become a request to shut down gracefully (Kubernetes sends SIGTERM before
// it kills), observed by servers and worker loops.
#ifndef HUBCENSUS_COMMON_SHUTDOWN_H_
#define HUBCENSUS_COMMON_SHUTDOWN_H_

#include "absl/time/time.h"

namespace hubcensus {

// Blocks SIGTERM/SIGINT in the calling thread (call it in main before any thread starts, so
// every thread inherits the mask) and starts a thread that turns them into RequestShutdown().
void InstallShutdownSignalHandler();
void RequestShutdown();
bool ShutdownRequested();
// Waits until shutdown is requested or `timeout` passes; returns ShutdownRequested().
bool WaitForShutdown(absl::Duration timeout = absl::InfiniteDuration());
// Which signal asked for shutdown (0: none, or RequestShutdown()).
int ShutdownSignalNumber();
// For tests: forget an earlier request.
void ResetShutdownForTesting();

}  // namespace hubcensus

#endif  // HUBCENSUS_COMMON_SHUTDOWN_H_
