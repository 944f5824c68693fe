// A small HTTP/1.1 server of fakehub's own (blocking sockets, an epoll poller and a worker pool),
// because a simulator of the Hub must control every byte: keep-alive, gzip, and faults that no
// general-purpose server would let it inject (a reset mid-body, a stall, a truncated body).
#ifndef HUBCENSUS_FAKEHUB_HTTP_SERVER_H_
#define HUBCENSUS_FAKEHUB_HTTP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace hubcensus::fakehub {

// A request the simulator's HTTP server received (not hub::HttpRequest, which the client sends).
struct ServedRequest {
  std::string method;
  std::string target;  // as sent: /api/models?limit=10
  std::string path;    // percent-decoded path without the query
  // Query parameters in order, percent-decoded ('+' is a space); repeated keys repeat.
  std::vector<std::pair<std::string, std::string>> query;
  // Header names lower-cased.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string peer_address;  // client IP
  std::string body;

  // First value of a header (name lower-case), or "".
  absl::string_view Header(absl::string_view name) const;
  // First value of a query parameter, or "" (found reports presence).
  std::string Query(absl::string_view key, bool* found = nullptr) const;
};

// What the server does with the connection beyond sending the response.
enum class TransportFault {
  kNone,
  kResetMidBody,  // send the headers and part of the body, then reset the connection
  kStall,         // send nothing for `stall`, then close the connection
};

// What the simulator answers, with the transport fault to act out (not hub::HttpResponse).
struct ServedResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string content_type = "application/json; charset=utf-8";
  TransportFault fault = TransportFault::kNone;
  absl::Duration stall = absl::Seconds(60);
  // Send the response this long after its request arrived (the time spent building and
  // compressing it counts, as a real server's answer time includes its own work). The
  // connection waits in the poller meanwhile, so a slow answer holds no worker thread.
  absl::Duration delay = absl::ZeroDuration();
  // Set by the server when `body` is already gzip-compressed (a delayed answer is compressed
  // before it waits, not after).
  bool body_gzipped = false;
};

using ServedRequestHandler = std::function<ServedResponse(const ServedRequest&)>;

struct HttpServerOptions {
  std::string listen_address = "127.0.0.1";
  int port = 0;
  int threads = 16;
  absl::Duration idle_timeout = absl::Seconds(60);  // keep-alive connections idle longer close
};

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           ServedRequestHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Stops accepting, closes every connection (stalled ones included) and joins the threads.
  void Stop();

  // Parses "a=1&b=%20x" into pairs (exposed for tests of the query grammar).
  static std::vector<std::pair<std::string, std::string>> ParseQuery(absl::string_view query);
  static std::string PercentDecode(absl::string_view text, bool plus_is_space);

 private:
  struct Connection;
  HttpServer(HttpServerOptions options, ServedRequestHandler handler);
  void PollLoop();
  void WorkerLoop();
  // What Serve leaves the connection to: the poller (idle, stalled or answered later), or closed.
  enum class AfterServe { kRearm, kDeferred, kClose };
  // Serves the requests buffered on `conn` (first the deferred response, when one is due).
  AfterServe Serve(Connection* conn);
  bool WriteResponse(Connection* conn, const ServedRequest& request, ServedResponse response,
                     bool keep_alive);
  void Rearm(Connection* conn);
  void Close(Connection* conn);
  void CloseLocked(Connection* conn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  HttpServerOptions options_;
  ServedRequestHandler handler_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread poller_;
  std::vector<std::thread> workers_;

  absl::Mutex mu_;
  std::vector<Connection*> ready_ ABSL_GUARDED_BY(mu_);
  // Every open connection, so Stop() can close them.
  std::vector<std::unique_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace hubcensus::fakehub

#endif  // HUBCENSUS_FAKEHUB_HTTP_SERVER_H_
