#include "common/clock.h"

#include <gtest/gtest.h>

#include <thread>

namespace hubcensus {
namespace {

TEST(SimulatedClock, MovesOnlyWhenTold) {
  SimulatedClock clock(absl::FromUnixSeconds(1000));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(1000));
  clock.Advance(absl::Seconds(30));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(1030));
  clock.SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(1031) + absl::Milliseconds(500));
  EXPECT_EQ(clock.slept(), absl::Milliseconds(1500));
  clock.SleepFor(-absl::Seconds(5));  // a negative sleep does not turn time back
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(1031) + absl::Milliseconds(500));
  clock.Set(absl::FromUnixSeconds(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(5));
}

TEST(SimulatedClock, SleepUntilJumpsToDeadlineUnlessCancelled) {
  SimulatedClock clock(absl::FromUnixSeconds(0));
  absl::Mutex mu;
  bool cancelled = false;
  EXPECT_TRUE(clock.SleepUntil(absl::FromUnixSeconds(60), &mu, &cancelled));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(60));
  cancelled = true;
  EXPECT_FALSE(clock.SleepUntil(absl::FromUnixSeconds(120), &mu, &cancelled));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(60));
}

TEST(SimulatedClock, IsSafeAcrossThreads) {
  SimulatedClock clock(absl::FromUnixSeconds(0));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&clock] {
      for (int i = 0; i < 1000; ++i) clock.Advance(absl::Milliseconds(1));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(4));
}

TEST(RealClock, CancelledSleepReturnsEarly) {
  absl::Mutex mu;
  bool cancelled = false;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(20));
    absl::MutexLock lock(&mu);
    cancelled = true;
  });
  // An hour-long sleep: only the cancellation can end it within the test's timeout.
  EXPECT_FALSE(Clock::Real()->SleepUntil(absl::Now() + absl::Hours(1), &mu, &cancelled));
  canceller.join();
}

}  // namespace
}  // namespace hubcensus
