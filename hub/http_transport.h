// The one seam between hubcensus and HTTP: the Hub client's retry, budget and parsing logic runs
// on any HttpTransport, so tests drive it with an in-memory fake on a simulated clock and
// production drives it with libcurl.
#ifndef HUBCENSUS_HUB_HTTP_TRANSPORT_H_
#define HUBCENSUS_HUB_HTTP_TRANSPORT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace hubcensus::hub {

// HTTP header fields: names compare case-insensitively, a name may repeat, order is kept.
class HttpHeaders {
 public:
  void Add(absl::string_view name, absl::string_view value);
  // Replaces every field of that name with one.
  void Set(absl::string_view name, absl::string_view value);
  // The first value of `name`.
  std::optional<std::string> Get(absl::string_view name) const;
  std::vector<std::string> GetAll(absl::string_view name) const;
  bool Has(absl::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

struct HttpTimeouts {
  absl::Duration connect = absl::Seconds(10);
  absl::Duration total = absl::Seconds(60);
  // A transfer slower than low_speed_bytes_per_s for low_speed_time is abandoned.
  int64_t low_speed_bytes_per_s = 1024;
  absl::Duration low_speed_time = absl::Seconds(20);
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  HttpHeaders headers;  // may hold Authorization: never print a request's headers
  HttpTimeouts timeouts;
  // When set and true, the transport abandons the transfer as soon as it can (CANCELLED).
  const std::atomic<bool>* cancelled = nullptr;
  // When set, called once the final response's head (status line and header fields, not a 1xx)
  // has arrived and before its body is read, on the thread that sent the request, so a listing
  // can hand its next page's URL on while the body still streams in. Must not block.
  std::function<void(int status, const HttpHeaders& headers)> on_head;
};

// The protocol version an answer came in (ALPN picks h2 over TLS when the server offers it).
enum class HttpVersion { kUnknown, kHttp10, kHttp11, kHttp2, kHttp3 };
// "1.0", "1.1", "2", "3", or "unknown" (no answer, or a fake transport that did not say).
absl::string_view HttpVersionName(HttpVersion version);

struct HttpResponse {
  int status = 0;  // 0 when transport_error is set
  HttpHeaders headers;
  std::string body;
  HttpVersion http_version = HttpVersion::kUnknown;  // libcurl: CURLINFO_HTTP_VERSION
  // Not OK when no complete HTTP answer arrived: DEADLINE_EXCEEDED (timeouts), UNAVAILABLE
  // (connection refused or reset, truncated body, TLS handshake failures), FAILED_PRECONDITION
  // (the server's TLS certificate failed verification, or the CA file cannot be used: retrying
  // cannot help), INVALID_ARGUMENT (a malformed URL), CANCELLED, INTERNAL (misuse). Never names
  // a header value.
  absl::Status transport_error;
  // Set with transport_error when the server was never reached: the host name did not resolve,
  // the connection was refused or timed out, or the TLS handshake or certificate verification
  // failed. `connection_failure_cause` then says which, in a few words ("connection refused").
  bool connection_failure = false;
  std::string connection_failure_cause;
};

// Sends one request, without following redirects (the Hub client follows them itself so every
// hop is counted against the request budget). Implementations are thread-safe.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual HttpResponse Send(const HttpRequest& request) = 0;
};

struct CurlTransportOptions {
  std::string user_agent;  // "": common/version.h
  // A PEM bundle of the CAs that may sign the Hub's certificate (CURLOPT_CAINFO), e.g. a
  // corporate TLS proxy's; "": the system store. Check it at startup with CheckCaFile.
  std::string ca_file;
};

// libcurl: connections, DNS and TLS sessions shared across threads (a curl share handle and a
// pool of reusable easy handles), HTTP/2 where the server offers it (ALPN), gzip/deflate/br/zstd,
// TLS verification (peer and host name) always on.
std::shared_ptr<HttpTransport> NewCurlTransport(CurlTransportOptions options = {});

// OK when `path` is a readable file holding at least one PEM certificate; otherwise
// FAILED_PRECONDITION naming the path and what is wrong, so a bad CA option fails at startup
// rather than on the first request.
absl::Status CheckCaFile(absl::string_view path);

// An in-memory Hub for tests: a handler answers each request; every request is recorded. An
// optional clock is advanced by `latency` per request, so simulated time passes as on a network.
class FakeHttpTransport : public HttpTransport {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  explicit FakeHttpTransport(Handler handler, SimulatedClock* clock = nullptr,
                             absl::Duration latency = absl::ZeroDuration());
  HttpResponse Send(const HttpRequest& request) override;
  void set_handler(Handler handler);

  int64_t request_count();
  std::vector<HttpRequest> requests();  // copies, for assertions

 private:
  absl::Mutex mu_;
  Handler handler_ ABSL_GUARDED_BY(mu_);
  SimulatedClock* clock_;
  absl::Duration latency_;
  std::vector<HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
};

// Shorthands for fake handlers.
HttpResponse MakeResponse(int status, std::string body,
                          std::vector<std::pair<std::string, std::string>> headers = {});
HttpResponse MakeTransportError(absl::Status error);
// A transport error at connection level, as NewCurlTransport reports "connection refused".
HttpResponse MakeConnectionFailure(absl::Status error, std::string cause);

}  // namespace hubcensus::hub

#endif  // HUBCENSUS_HUB_HTTP_TRANSPORT_H_
