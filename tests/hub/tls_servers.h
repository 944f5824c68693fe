// Real TLS servers on 127.0.0.1 for the libcurl transport's TLS and HTTP/2 tests: a throwaway
// PKI made with the openssl CLI, nghttpd (HTTP/2 over TLS, h2 by ALPN) and `openssl s_server
// -HTTP` (TLS without ALPN, so HTTP/1.1), each serving files from a folder.
#ifndef HUBCENSUS_TESTS_HUB_TLS_SERVERS_H_
#define HUBCENSUS_TESTS_HUB_TLS_SERVERS_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/testing/subprocess.h"

namespace hubcensus::testing {

// OK when `tool` runs from PATH (with /usr/sbin and /sbin added: nghttpd lives there); else an
// error that says which Debian package to install.
absl::Status RequireTool(const std::string& tool, const std::string& debian_package);

// Made once per process by the openssl CLI, the way an operator would.
struct TestPki {
  std::string dir;
  std::string ca_cert;  // the CA that signed both leaves (not in the system store)
  // Subject alternative names DNS:localhost and IP:127.0.0.1.
  std::string server_cert, server_key;
  // Signed by the same CA, but its only name is DNS:wrong-name.invalid.
  std::string wrong_name_cert, wrong_name_key;
};
absl::StatusOr<TestPki> GetTestPki();

// Writes `content` to `path`, creating the parent folders.
void WriteTestFile(const std::string& path, const std::string& content);

class TlsTestServer {
 public:
  enum class Kind {
    // nghttpd -d DOCROOT: HTTP/2 only; the query is ignored when mapping a path to a file.
    kNghttpd,
    // openssl s_server -HTTP in DOCROOT: no ALPN, so HTTP/1.x. The whole request target,
    // query included, names the file, which holds a complete HTTP response (status line,
    // headers, body).
    kOpensslHttp,
  };
  struct Options {
    Kind kind = Kind::kNghttpd;
    std::string docroot;
    std::string cert, key;
    // nghttpd -v: logs every connection and request header (then never send it a secret).
    bool verbose = false;
  };

  // Starts the server on a free port and returns once it accepts connections.
  static absl::StatusOr<std::unique_ptr<TlsTestServer>> Start(const Options& options);

  int port() const { return port_; }
  // https://127.0.0.1:PORT<path>
  std::string url(const std::string& path) const;
  // What the server printed so far.
  std::string Log() const { return process_->Output(); }

 private:
  TlsTestServer(Subprocess process, int port) : process_(std::move(process)), port_(port) {}
  std::optional<Subprocess> process_;
  int port_;
};

// Counts non-overlapping occurrences of `needle` in `text`.
int CountOf(const std::string& text, const std::string& needle);

}  // namespace hubcensus::testing

#endif  // HUBCENSUS_TESTS_HUB_TLS_SERVERS_H_
