#include "fakehub/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"

namespace hubcensus::fakehub {

struct HttpServer::Connection {
  int fd = -1;
  std::string peer;
  std::string inbuf;
  bool busy = false;  // a worker owns it (not armed in epoll)
  absl::Time last_active;
  // A stall fault: the connection gets no answer and is closed at this time, or when the client
  // gives up first. No worker is held meanwhile; the poller watches it.
  std::optional<absl::Time> stalled_until;
  // A delayed response (ServedResponse::delay): the poller hands the connection back to a worker
  // at `deferred_until`, which writes `deferred` and goes on serving the connection.
  std::optional<absl::Time> deferred_until;
  struct Deferred {
    ServedRequest request;
    ServedResponse response;
    bool keep_alive = true;
  };
  std::unique_ptr<Deferred> deferred;
};

namespace {

constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr absl::Duration kReadTimeout = absl::Seconds(15);

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 307:
      return "Temporary Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool Gzip(absl::string_view in, std::string* out) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  // windowBits 15 + 16: a gzip wrapper. Level 1: the simulator must not be the bottleneck.
  if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  out->resize(deflateBound(&zs, in.size()) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out->data());
  zs.avail_out = static_cast<uInt>(out->size());
  int rc = deflate(&zs, Z_FINISH);
  out->resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END;
}

bool AcceptsGzip(absl::string_view accept_encoding) {
  for (absl::string_view part : absl::StrSplit(accept_encoding, ',')) {
    part = absl::StripAsciiWhitespace(part);
    absl::string_view coding = part.substr(0, part.find(';'));
    coding = absl::StripAsciiWhitespace(coding);
    if (absl::EqualsIgnoreCase(coding, "gzip") || coding == "*") {
      // "gzip;q=0" refuses it.
      auto q = part.find("q=");
      if (q != absl::string_view::npos) {
        double v = 1;
        if (absl::SimpleAtod(part.substr(q + 2), &v) && v <= 0) return false;
      }
      return true;
    }
  }
  return false;
}

std::string HttpDate(absl::Time now) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", now, absl::UTCTimeZone());
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::string_view ServedRequest::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::string ServedRequest::Query(absl::string_view key, bool* found) const {
  for (const auto& [k, v] : query) {
    if (k == key) {
      if (found) *found = true;
      return v;
    }
  }
  if (found) *found = false;
  return "";
}

std::string HttpServer::PercentDecode(absl::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> HttpServer::ParseQuery(absl::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    auto eq = part.find('=');
    if (eq == absl::string_view::npos) {
      out.emplace_back(PercentDecode(part, true), "");
    } else {
      out.emplace_back(PercentDecode(part.substr(0, eq), true),
                       PercentDecode(part.substr(eq + 1), true));
    }
  }
  return out;
}

HttpServer::HttpServer(HttpServerOptions options, ServedRequestHandler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              ServedRequestHandler handler) {
  std::unique_ptr<HttpServer> server(new HttpServer(options, std::move(handler)));
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(options.port));
  std::string host = options.listen_address.empty() ? "127.0.0.1" : options.listen_address;
  if (host == "localhost") host = "127.0.0.1";
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen: \"", options.listen_address, "\" is not an IPv4 address"));
  }
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--port: ", options.port, " is out of range"));
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("bind ", host, ":", options.port, ": ", std::strerror(err)));
  }
  if (::listen(fd, 1024) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("listen: ", std::strerror(err)));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  server->listen_fd_ = fd;
  server->port_ = ntohs(addr.sin_port);
  server->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  server->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev;
  std::memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(server->epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  ev.data.ptr = &server->wake_fd_;
  epoll_ctl(server->epoll_fd_, EPOLL_CTL_ADD, server->wake_fd_, &ev);
  server->poller_ = std::thread([s = server.get()] { s->PollLoop(); });
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    server->workers_.emplace_back([s = server.get()] { s->WorkerLoop(); });
  }
  return server;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    // Set under mu_: the workers' Await re-evaluates its condition only when mu_ is released.
    stopping_ = true;
  }
  uint64_t one = 1;
  if (::write(wake_fd_, &one, sizeof(one)) < 0) {
    // The poller also wakes on its one-second tick.
  }
  if (poller_.joinable()) poller_.join();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  absl::MutexLock lock(&mu_);
  for (auto& c : connections_) {
    if (c->fd >= 0) ::close(c->fd);
  }
  connections_.clear();
  ready_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  listen_fd_ = epoll_fd_ = wake_fd_ = -1;
}

void HttpServer::PollLoop() {
  epoll_event events[64];
  while (!stopping_) {
    int wait_ms = 1000;
    {
      // Close keep-alive connections idle for too long (only idle ones: workers own busy ones),
      // and hand deferred responses that are due to a worker.
      absl::MutexLock lock(&mu_);
      absl::Time now = absl::Now();
      for (auto it = connections_.begin(); it != connections_.end();) {
        Connection* c = it->get();
        if (c->deferred_until.has_value()) {
          if (!c->busy && now >= *c->deferred_until) {
            c->deferred_until.reset();
            c->busy = true;
            ready_.push_back(c);
          } else if (!c->busy) {
            int64_t ms = absl::ToInt64Milliseconds(
                absl::Ceil(*c->deferred_until - now, absl::Milliseconds(1)));
            wait_ms = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(wait_ms, ms)));
          }
          ++it;
          continue;
        }
        const bool expired = c->stalled_until.has_value()
                                 ? now >= *c->stalled_until
                                 : now - c->last_active > options_.idle_timeout;
        if (!c->busy && expired) {
          epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
          ::close(c->fd);
          it = connections_.erase(it);
        } else {
          ++it;
        }
      }
    }
    int n = epoll_wait(epoll_fd_, events, 64, wait_ms);
    for (int i = 0; i < n; ++i) {
      void* ptr = events[i].data.ptr;
      if (ptr == &wake_fd_) {
        uint64_t count = 0;
        if (::read(wake_fd_, &count, sizeof(count)) < 0) {
          // EAGAIN: another wake-up drained it already.
        }
        continue;
      }
      if (ptr == nullptr) {
        while (true) {
          sockaddr_in peer;
          socklen_t len = sizeof(peer);
          int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
          if (fd < 0) break;
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          auto conn = std::make_unique<Connection>();
          conn->fd = fd;
          char buf[INET_ADDRSTRLEN] = {0};
          inet_ntop(AF_INET, &peer.sin_addr, buf, sizeof(buf));
          conn->peer = buf;
          conn->last_active = absl::Now();
          Connection* raw = conn.get();
          absl::MutexLock lock(&mu_);
          connections_.push_back(std::move(conn));
          epoll_event ev;
          std::memset(&ev, 0, sizeof(ev));
          ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
          ev.data.ptr = raw;
          epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      auto* conn = static_cast<Connection*>(ptr);
      absl::MutexLock lock(&mu_);
      if (conn->stalled_until.has_value()) {
        // The client of a stalled request closed it or wrote again: the stall is over.
        CloseLocked(conn);
        continue;
      }
      conn->busy = true;
      ready_.push_back(conn);
    }
  }
}

void HttpServer::WorkerLoop() {
  while (true) {
    Connection* conn = nullptr;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return !ready_.empty() || stopping_.load();
      };
      mu_.Await(absl::Condition(&has_work));
      if (stopping_) return;
      conn = ready_.front();
      ready_.erase(ready_.begin());
    }
    switch (Serve(conn)) {
      case AfterServe::kRearm:
        Rearm(conn);
        break;
      case AfterServe::kDeferred: {
        {
          // Not armed in epoll: the poller's timer, not the socket, wakes it.
          absl::MutexLock lock(&mu_);
          conn->busy = false;
        }
        uint64_t one = 1;
        if (::write(wake_fd_, &one, sizeof(one)) < 0) {
          // The poller also wakes on its own tick, at most a second late.
        }
        break;
      }
      case AfterServe::kClose:
        Close(conn);
        break;
    }
  }
}

void HttpServer::Rearm(Connection* conn) {
  absl::MutexLock lock(&mu_);
  conn->busy = false;
  conn->last_active = absl::Now();
  epoll_event ev;
  std::memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
  ev.data.ptr = conn;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, conn->fd, &ev);
}

void HttpServer::Close(Connection* conn) {
  absl::MutexLock lock(&mu_);
  CloseLocked(conn);
}

void HttpServer::CloseLocked(Connection* conn) {
  if (conn->fd >= 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, conn->fd, nullptr);
    ::close(conn->fd);
    conn->fd = -1;
  }
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (it->get() == conn) {
      connections_.erase(it);
      break;
    }
  }
}

HttpServer::AfterServe HttpServer::Serve(Connection* conn) {
  bool served_one = false;
  if (conn->deferred != nullptr) {
    std::unique_ptr<Connection::Deferred> d = std::move(conn->deferred);
    if (!WriteResponse(conn, d->request, std::move(d->response), d->keep_alive) || !d->keep_alive) {
      return AfterServe::kClose;
    }
    served_one = true;
  }
  while (!stopping_) {
    size_t header_end = conn->inbuf.find("\r\n\r\n");
    if (header_end == std::string::npos) {
      if (conn->inbuf.size() > kMaxHeaderBytes) {
        ServedRequest bad;
        ServedResponse r;
        r.status = 431;
        r.body = R"({"error":"request headers too large"})";
        WriteResponse(conn, bad, std::move(r), false);
        return AfterServe::kClose;
      }
      if (served_one && conn->inbuf.empty())
        return AfterServe::kRearm;  // back to epoll until more arrives
      pollfd p{conn->fd, POLLIN, 0};
      int ready = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(kReadTimeout)));
      if (ready <= 0) return AfterServe::kClose;
      char buf[16384];
      ssize_t n = ::recv(conn->fd, buf, sizeof(buf), 0);
      if (n <= 0) return AfterServe::kClose;
      conn->inbuf.append(buf, static_cast<size_t>(n));
      continue;
    }
    ServedRequest request;
    request.peer_address = conn->peer;
    absl::string_view head(conn->inbuf.data(), header_end);
    std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
    std::vector<absl::string_view> first = absl::StrSplit(lines[0], ' ', absl::SkipEmpty());
    bool http10 = false;
    if (first.size() != 3 || !absl::StartsWith(first[2], "HTTP/1.")) {
      ServedResponse r;
      r.status = 400;
      r.body = R"({"error":"malformed request line"})";
      WriteResponse(conn, request, std::move(r), false);
      return AfterServe::kClose;
    }
    http10 = first[2] == "HTTP/1.0";
    request.method = std::string(first[0]);
    request.target = std::string(first[1]);
    for (size_t i = 1; i < lines.size(); ++i) {
      auto colon = lines[i].find(':');
      if (colon == absl::string_view::npos) continue;
      request.headers.emplace_back(
          absl::AsciiStrToLower(absl::StripAsciiWhitespace(lines[i].substr(0, colon))),
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
    }
    size_t body_len = 0;
    absl::string_view cl = request.Header("content-length");
    if (!cl.empty() && !absl::SimpleAtoi(cl, &body_len)) {
      ServedResponse r;
      r.status = 400;
      r.body = R"({"error":"bad Content-Length"})";
      WriteResponse(conn, request, std::move(r), false);
      return AfterServe::kClose;
    }
    if (!request.Header("transfer-encoding").empty()) {
      ServedResponse r;
      r.status = 411;
      r.body = R"({"error":"chunked request bodies are not supported; send Content-Length"})";
      WriteResponse(conn, request, std::move(r), false);
      return AfterServe::kClose;
    }
    if (body_len > (1u << 20)) {
      ServedResponse r;
      r.status = 413;
      r.body = R"({"error":"request body too large"})";
      WriteResponse(conn, request, std::move(r), false);
      return AfterServe::kClose;
    }
    size_t total = header_end + 4 + body_len;
    while (conn->inbuf.size() < total) {
      pollfd p{conn->fd, POLLIN, 0};
      int ready = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(kReadTimeout)));
      if (ready <= 0) return AfterServe::kClose;
      char buf[16384];
      ssize_t n = ::recv(conn->fd, buf, sizeof(buf), 0);
      if (n <= 0) return AfterServe::kClose;
      conn->inbuf.append(buf, static_cast<size_t>(n));
    }
    request.body = conn->inbuf.substr(header_end + 4, body_len);
    conn->inbuf.erase(0, total);

    absl::string_view target = request.target;
    auto qmark = target.find('?');
    request.path = PercentDecode(target.substr(0, qmark), false);
    if (qmark != absl::string_view::npos) request.query = ParseQuery(target.substr(qmark + 1));

    absl::string_view connection = request.Header("connection");
    bool keep_alive = http10 ? absl::EqualsIgnoreCase(connection, "keep-alive")
                             : !absl::EqualsIgnoreCase(connection, "close");
    const absl::Time received = absl::Now();
    ServedResponse response = handler_(request);
    if (response.fault == TransportFault::kStall) {
      // Back to the poller, which closes it when the stall ends or the client gives up.
      conn->stalled_until = absl::Now() + response.stall;
      return AfterServe::kRearm;
    }
    if (response.delay > absl::ZeroDuration()) {
      // Due `delay` after the request arrived: building and compressing the answer is part of
      // that time, as on the real Hub, whose pace is the time from a request to its answer.
      absl::Time due = received + response.delay;
      if (response.fault == TransportFault::kNone && !response.body.empty() &&
          request.method != "HEAD" && AcceptsGzip(request.Header("accept-encoding"))) {
        std::string compressed;
        if (Gzip(response.body, &compressed)) {
          response.body = std::move(compressed);
          response.body_gzipped = true;
        }
      }
      conn->deferred = std::make_unique<Connection::Deferred>();
      conn->deferred->request = std::move(request);
      conn->deferred->response = std::move(response);
      conn->deferred->keep_alive = keep_alive;
      absl::MutexLock lock(&mu_);
      conn->deferred_until = due;
      return AfterServe::kDeferred;
    }
    if (!WriteResponse(conn, request, std::move(response), keep_alive)) return AfterServe::kClose;
    if (!keep_alive) return AfterServe::kClose;
    served_one = true;
  }
  return AfterServe::kClose;
}

bool HttpServer::WriteResponse(Connection* conn, const ServedRequest& request,
                               ServedResponse response, bool keep_alive) {
  bool head_only = request.method == "HEAD";
  std::string body = std::move(response.body);
  bool gzipped = response.body_gzipped;
  if (!gzipped && !body.empty() && AcceptsGzip(request.Header("accept-encoding"))) {
    std::string compressed;
    if (Gzip(body, &compressed)) {
      body = std::move(compressed);
      gzipped = true;
    }
  }
  std::string out = absl::StrCat("HTTP/1.1 ", response.status, " ", Reason(response.status),
                                 "\r\nDate: ", HttpDate(absl::Now()), "\r\n");
  if (!response.content_type.empty()) {
    absl::StrAppend(&out, "Content-Type: ", response.content_type, "\r\n");
  }
  absl::StrAppend(&out, "Content-Length: ", body.size(), "\r\n");
  if (gzipped) absl::StrAppend(&out, "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
  absl::StrAppend(&out, "Connection: ", keep_alive ? "keep-alive" : "close", "\r\n");
  for (const auto& [k, v] : response.headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
  out += "\r\n";
  if (response.fault == TransportFault::kResetMidBody) {
    // Half the body, then RST (SO_LINGER 0 makes close() abort the connection).
    out.append(body, 0, body.size() / 2);
    SendAll(conn->fd, out.data(), out.size());
    linger lg{1, 0};
    setsockopt(conn->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    return false;
  }
  if (!head_only) out += body;
  return SendAll(conn->fd, out.data(), out.size());
}

}  // namespace hubcensus::fakehub
