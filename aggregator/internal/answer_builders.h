// The threads that build the Census answers the aggregator's cache does not hold. gRPC runs
// callback handlers on its own threads, which must not block: an ad hoc census or a
// re-materialisation takes seconds. Threads start as calls need them, up to a bound: a
// `query --data_dir` process asks one question and would otherwise start them all for it.
#ifndef HUBCENSUS_AGGREGATOR_INTERNAL_ANSWER_BUILDERS_H_
#define HUBCENSUS_AGGREGATOR_INTERNAL_ANSWER_BUILDERS_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace hubcensus::aggregator::internal {

class AnswerBuilders {
 public:
  explicit AnswerBuilders(int max_threads) : max_threads_(max_threads) {}
  // Runs what is queued, then stops (gRPC's shutdown waits for every call these finish).
  ~AnswerBuilders() {
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }
  AnswerBuilders(const AnswerBuilders&) = delete;
  AnswerBuilders& operator=(const AnswerBuilders&) = delete;

  // Queues `task`; starts a thread for it when none is waiting and fewer than max_threads run.
  void Run(std::function<void()> task) {
    absl::MutexLock lock(&mu_);
    tasks_.push_back(std::move(task));
    if (tasks_.size() > idle_ && threads_.size() < static_cast<size_t>(max_threads_)) {
      threads_.emplace_back([this] { Loop(); });
    }
  }

  // Threads started so far (they end only with the AnswerBuilders).
  int threads_started() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(threads_.size());
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        absl::MutexLock lock(&mu_);
        ++idle_;
        mu_.Await(absl::Condition(
            +[](AnswerBuilders* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b->mu_) {
              return b->stopping_ || !b->tasks_.empty();
            },
            this));
        --idle_;
        if (tasks_.empty()) return;  // stopping, nothing left
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  const int max_threads_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  size_t idle_ ABSL_GUARDED_BY(mu_) = 0;  // threads waiting for a task
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hubcensus::aggregator::internal

#endif  // HUBCENSUS_AGGREGATOR_INTERNAL_ANSWER_BUILDERS_H_
