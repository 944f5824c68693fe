// ThreadSanitizer builds only (HUBCENSUS_TSAN). Debian's Abseil is compiled without TSan, so the
// lock and unlock inside absl::Mutex are invisible to it and every access a Mutex guards would be
// reported as a race. This file defines Mutex's and CondVar's out-of-line entry points in the test
// executable, where they take precedence over the shared library's (ELF interposition, for calls
// from hubcensus and from gRPC alike), calls the library's own through dlsym(RTLD_NEXT), and tells
// TSan what each did with its __tsan_mutex_* annotations.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"

namespace {

template <typename Fn>
Fn Real(const char* symbol) {
  void* fn = dlsym(RTLD_NEXT, symbol);
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_absl_mutex: %s not found in Abseil: %s\n", symbol, dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// Symbols of Debian 12's Abseil 20220623 (inline namespace debian3).
#define HC_ABSL(name) "_ZN4absl7debian3" name

// Abseil's own entry points call each other (CondVar::WaitWithTimeout calls WaitWithDeadline,
// through the interposed symbol): only the outermost call of a thread is annotated.
thread_local int interposed_depth = 0;

struct Outermost {
  Outermost() : outermost(interposed_depth++ == 0) {}
  ~Outermost() { --interposed_depth; }
  const bool outermost;
};

void Locked(void* mu, unsigned flags) { __tsan_mutex_pre_lock(mu, flags); }
void LockDone(void* mu, unsigned flags) { __tsan_mutex_post_lock(mu, flags, 0); }
void Unlocking(void* mu, unsigned flags) { __tsan_mutex_pre_unlock(mu, flags); }
void UnlockDone(void* mu, unsigned flags) { __tsan_mutex_post_unlock(mu, flags); }

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static auto real = Real<void (*)(Mutex*)>(HC_ABSL("5Mutex4LockEv"));
  Outermost guard;
  if (!guard.outermost) return real(this);
  Locked(this, 0);
  real(this);
  LockDone(this, 0);
}

void Mutex::ReaderLock() {
  static auto real = Real<void (*)(Mutex*)>(HC_ABSL("5Mutex10ReaderLockEv"));
  Outermost guard;
  if (!guard.outermost) return real(this);
  Locked(this, __tsan_mutex_read_lock);
  real(this);
  LockDone(this, __tsan_mutex_read_lock);
}

bool Mutex::TryLock() {
  static auto real = Real<bool (*)(Mutex*)>(HC_ABSL("5Mutex7TryLockEv"));
  Outermost guard;
  if (!guard.outermost) return real(this);
  Locked(this, __tsan_mutex_try_lock);
  bool got = real(this);
  __tsan_mutex_post_lock(this, got ? __tsan_mutex_try_lock : __tsan_mutex_try_lock_failed, 0);
  return got;
}

void Mutex::Unlock() {
  static auto real = Real<void (*)(Mutex*)>(HC_ABSL("5Mutex6UnlockEv"));
  Outermost guard;
  if (!guard.outermost) return real(this);
  Unlocking(this, 0);
  real(this);
  UnlockDone(this, 0);
}

void Mutex::ReaderUnlock() {
  static auto real = Real<void (*)(Mutex*)>(HC_ABSL("5Mutex12ReaderUnlockEv"));
  Outermost guard;
  if (!guard.outermost) return real(this);
  Unlocking(this, __tsan_mutex_read_lock);
  real(this);
  UnlockDone(this, __tsan_mutex_read_lock);
}

void Mutex::LockWhen(const Condition& cond) {
  static auto real =
      Real<void (*)(Mutex*, const Condition&)>(HC_ABSL("5Mutex8LockWhenERKNS0_9ConditionE"));
  Outermost guard;
  if (!guard.outermost) return real(this, cond);
  Locked(this, 0);
  real(this, cond);
  LockDone(this, 0);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      HC_ABSL("5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE"));
  Outermost guard;
  if (!guard.outermost) return real(this, cond, timeout);
  Locked(this, 0);
  bool met = real(this, cond, timeout);
  LockDone(this, 0);
  return met;
}

// Await releases the Mutex while it waits and holds it again on return: to TSan, an unlock and a
// lock, so what other threads did under the Mutex meanwhile happens before the caller goes on.
void Mutex::Await(const Condition& cond) {
  static auto real =
      Real<void (*)(Mutex*, const Condition&)>(HC_ABSL("5Mutex5AwaitERKNS0_9ConditionE"));
  Outermost guard;
  if (!guard.outermost) return real(this, cond);
  Unlocking(this, 0);
  UnlockDone(this, 0);
  Locked(this, 0);
  real(this, cond);
  LockDone(this, 0);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Duration)>(
      HC_ABSL("5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE"));
  Outermost guard;
  if (!guard.outermost) return real(this, cond, timeout);
  Unlocking(this, 0);
  UnlockDone(this, 0);
  Locked(this, 0);
  bool met = real(this, cond, timeout);
  LockDone(this, 0);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
  static auto real = Real<bool (*)(Mutex*, const Condition&, absl::Time)>(
      HC_ABSL("5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE"));
  Outermost guard;
  if (!guard.outermost) return real(this, cond, deadline);
  Unlocking(this, 0);
  UnlockDone(this, 0);
  Locked(this, 0);
  bool met = real(this, cond, deadline);
  LockDone(this, 0);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  static auto real = Real<void (*)(CondVar*, Mutex*)>(HC_ABSL("7CondVar4WaitEPNS0_5MutexE"));
  Outermost guard;
  if (!guard.outermost) return real(this, mu);
  Unlocking(mu, 0);
  UnlockDone(mu, 0);
  Locked(mu, 0);
  real(this, mu);
  LockDone(mu, 0);
}

bool CondVar::WaitWithTimeout(Mutex* mu, absl::Duration timeout) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, absl::Duration)>(
      HC_ABSL("7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE"));
  Outermost guard;
  if (!guard.outermost) return real(this, mu, timeout);
  Unlocking(mu, 0);
  UnlockDone(mu, 0);
  Locked(mu, 0);
  bool timed_out = real(this, mu, timeout);
  LockDone(mu, 0);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, absl::Time deadline) {
  static auto real = Real<bool (*)(CondVar*, Mutex*, absl::Time)>(
      HC_ABSL("7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE"));
  Outermost guard;
  if (!guard.outermost) return real(this, mu, deadline);
  Unlocking(mu, 0);
  UnlockDone(mu, 0);
  Locked(mu, 0);
  bool timed_out = real(this, mu, deadline);
  LockDone(mu, 0);
  return timed_out;
}

ABSL_NAMESPACE_END
}  // namespace absl
