// A tiny HTTP/1.1 server on 127.0.0.1 for the libcurl transport tests: it speaks real sockets,
// keeps connections alive, and answers with whatever bytes a test scripts (gzip, cut bodies,
// stalls, dropped connections), recording what it received.
#ifndef HUBCENSUS_TESTS_HUB_HTTP_TEST_SERVER_H_
#define HUBCENSUS_TESTS_HUB_HTTP_TEST_SERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace hubcensus::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;                          // path and query
  std::map<std::string, std::string> headers;  // lower-cased names
  int connection = 0;                          // which accepted connection carried it (from 1)
};

struct ScriptedAnswer {
  std::string raw;                              // bytes to write (status line, headers, body)
  absl::Duration delay = absl::ZeroDuration();  // before writing
  bool close = false;  // close the connection after writing (or, with empty raw, at once)
  // Written after `raw` (before any close): a head sent first, its body later. It waits
  // `then_delay`, or with `then_when`, until that returns true (checked every few ms, for at most
  // `then_delay`); `then_when_met` (optional) records whether it did.
  std::string then_raw = "";
  absl::Duration then_delay = absl::ZeroDuration();
  std::function<bool()> then_when = nullptr;
  std::atomic<bool>* then_when_met = nullptr;
};

class HttpTestServer {
 public:
  using Handler = std::function<ScriptedAnswer(const ReceivedRequest&)>;
  explicit HttpTestServer(Handler handler);
  ~HttpTestServer();

  int port() const { return port_; }
  std::string url(const std::string& path) const;
  int connections();
  std::vector<ReceivedRequest> requests();

  // A complete response with Content-Length.
  static std::string Response(int status, const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers = {});

 private:
  void AcceptLoop();
  void Serve(int fd, int connection);
  void Forget(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
  std::vector<int> open_fds_ ABSL_GUARDED_BY(mu_);
  int connections_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<ReceivedRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace hubcensus::testing

#endif  // HUBCENSUS_TESTS_HUB_HTTP_TEST_SERVER_H_
