// The threads that build Census answers: none until a call needs one, one for each call in
// flight up to the bound, and every queued call answered before they stop.
#include "aggregator/internal/answer_builders.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace hubcensus::aggregator::internal {
namespace {

// A deadlock guard, not a timing: tasks that cannot all run at once would wait forever.
constexpr absl::Duration kGuard = absl::Seconds(60);

TEST(AnswerBuildersTest, StartNoThreadBeforeTheFirstCall) {
  AnswerBuilders builders(4);
  EXPECT_EQ(builders.threads_started(), 0);
  absl::Notification done;
  builders.Run([&] { done.Notify(); });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kGuard));
  EXPECT_EQ(builders.threads_started(), 1);
}

TEST(AnswerBuildersTest, CallsInFlightRunAtOnceUpToTheBound) {
  AnswerBuilders builders(4);
  absl::Mutex mu;
  int running = 0;
  absl::Notification release;
  for (int i = 0; i < 4; ++i) {
    builders.Run([&] {
      {
        absl::MutexLock lock(&mu);
        ++running;
      }
      release.WaitForNotification();
    });
  }
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(
                                        +[](int* n) { return *n == 4; }, &running),
                                    kGuard))
        << running << " of 4 calls running";
  }
  EXPECT_EQ(builders.threads_started(), 4);
  // A fifth call waits for a thread instead of starting one.
  absl::Notification fifth;
  builders.Run([&] { fifth.Notify(); });
  EXPECT_EQ(builders.threads_started(), 4);
  release.Notify();
  ASSERT_TRUE(fifth.WaitForNotificationWithTimeout(kGuard));
  EXPECT_EQ(builders.threads_started(), 4);
}

TEST(AnswerBuildersTest, StoppingAnswersEveryQueuedCall) {
  auto builders = std::make_unique<AnswerBuilders>(1);
  absl::Notification first_running, release;
  std::atomic<int> answered{0};
  builders->Run([&] {
    first_running.Notify();
    release.WaitForNotification();
    ++answered;
  });
  ASSERT_TRUE(first_running.WaitForNotificationWithTimeout(kGuard));
  for (int i = 0; i < 3; ++i) builders->Run([&] { ++answered; });
  EXPECT_EQ(builders->threads_started(), 1);
  release.Notify();
  builders.reset();
  EXPECT_EQ(answered.load(), 4);
}

}  // namespace
}  // namespace hubcensus::aggregator::internal
