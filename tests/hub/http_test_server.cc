#include "tests/hub/http_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace hubcensus::testing {

HttpTestServer::HttpTestServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  listen(listen_fd_, 16);
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

HttpTestServer::~HttpTestServer() {
  stopping_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  close(listen_fd_);
  acceptor_.join();
  std::vector<std::thread> workers;
  {
    absl::MutexLock lock(&mu_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

std::string HttpTestServer::url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", port_, path);
}

int HttpTestServer::connections() {
  absl::MutexLock lock(&mu_);
  return connections_;
}

std::vector<ReceivedRequest> HttpTestServer::requests() {
  absl::MutexLock lock(&mu_);
  return requests_;
}

std::string HttpTestServer::Response(
    int status, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string out =
      absl::StrCat("HTTP/1.1 ", status, " Scripted\r\nContent-Length: ", body.size(), "\r\n");
  for (const auto& [k, v] : headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
  absl::StrAppend(&out, "\r\n", body);
  return out;
}

void HttpTestServer::AcceptLoop() {
  while (!stopping_) {
    int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) {
      if (stopping_) return;
      continue;
    }
    absl::MutexLock lock(&mu_);
    int connection = ++connections_;
    open_fds_.push_back(fd);
    workers_.emplace_back([this, fd, connection] { Serve(fd, connection); });
  }
}

void HttpTestServer::Forget(int fd) {
  absl::MutexLock lock(&mu_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
}

void HttpTestServer::Serve(int fd, int connection) {
  std::string buffer;
  char chunk[4096];
  for (;;) {
    size_t end = buffer.find("\r\n\r\n");
    while (end == std::string::npos) {
      ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) {
        Forget(fd);
        close(fd);
        return;
      }
      buffer.append(chunk, static_cast<size_t>(n));
      end = buffer.find("\r\n\r\n");
    }
    std::string head = buffer.substr(0, end);
    buffer.erase(0, end + 4);
    ReceivedRequest request;
    request.connection = connection;
    std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
    std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
    if (first.size() >= 2) {
      request.method = first[0];
      request.target = first[1];
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      request.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
    }
    ScriptedAnswer answer = handler_(request);
    // Sleeps in slices so a closing client is noticed; false when it closed.
    auto wait = [&](absl::Duration delay) {
      absl::Time until = absl::Now() + delay;
      while (absl::Now() < until && !stopping_) {
        pollfd p{fd, POLLRDHUP, 0};
        if (poll(&p, 1, 10) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) return false;
      }
      return true;
    };
    auto write_all = [&](const std::string& bytes) {
      size_t sent = 0;
      while (sent < bytes.size()) {
        ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
    };
    if (answer.delay > absl::ZeroDuration()) wait(answer.delay);
    write_all(answer.raw);
    if (!answer.then_raw.empty()) {
      bool open = true;
      if (answer.then_when) {
        absl::Time until = absl::Now() + answer.then_delay;
        bool met = false;
        while (!(met = answer.then_when()) && absl::Now() < until && !stopping_ &&
               (open = wait(absl::Milliseconds(5)))) {
        }
        if (answer.then_when_met != nullptr) *answer.then_when_met = met;
      } else {
        open = wait(answer.then_delay);
      }
      if (open) write_all(answer.then_raw);
    }
    if (answer.close) {
      Forget(fd);
      shutdown(fd, SHUT_RDWR);
      close(fd);
      return;
    }
  }
}

}  // namespace hubcensus::testing
