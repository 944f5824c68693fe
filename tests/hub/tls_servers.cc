#include "tests/hub/tls_servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace hubcensus::testing {
namespace {

constexpr char kPathPrefix[] = "PATH=\"$PATH:/usr/sbin:/sbin\"; export PATH; ";

std::string Quoted(const std::string& text) { return absl::StrCat("'", text, "'"); }

bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

std::string MakeCa(const std::string& name, const std::string& key) {
  return absl::StrCat("openssl req -x509 ", key, " -days 2 -subj /CN=", name, " -keyout ", name,
                      ".key -out ", name,
                      ".crt -addext basicConstraints=critical,CA:TRUE"
                      " -addext keyUsage=critical,keyCertSign,cRLSign;");
}

std::string MakeLeaf(const std::string& name, const std::string& ext, const std::string& key) {
  return absl::StrCat("openssl req ", key, " -subj /CN=", name, " -keyout ", name, ".key -out ",
                      name, ".csr;", "openssl x509 -req -in ", name,
                      ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ", ext,
                      " -out ", name, ".crt;");
}

}  // namespace

absl::Status RequireTool(const std::string& tool, const std::string& debian_package) {
  std::string probe = absl::StrCat(kPathPrefix, "command -v ", tool, " >/dev/null 2>&1");
  if (std::system(probe.c_str()) == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      tool, " is not installed: apt-get install ", debian_package, " (scripts/setup installs it)"));
}

void WriteTestFile(const std::string& path, const std::string& content) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    std::string mkdir = absl::StrCat("mkdir -p ", Quoted(path.substr(0, slash)));
    if (std::system(mkdir.c_str()) != 0) std::abort();
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

absl::StatusOr<TestPki> GetTestPki() {
  static const absl::StatusOr<TestPki>* pki = [] {
    absl::Status tool = RequireTool("openssl", "openssl");
    if (!tool.ok()) return new absl::StatusOr<TestPki>(tool);
    TestPki p;
    p.dir = MakeTempDir("hub_tls_pki");
    auto path = [&](const std::string& name) { return absl::StrCat(p.dir, "/", name); };
    const std::string leaf =
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n";
    WriteTestFile(path("server.ext"),
                  absl::StrCat(leaf, "subjectAltName=DNS:localhost,IP:127.0.0.1\n"));
    WriteTestFile(path("wrong-name.ext"),
                  absl::StrCat(leaf, "subjectAltName=DNS:wrong-name.invalid\n"));
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string script = absl::StrCat("set -e; cd ", Quoted(p.dir), "; ", MakeCa("ca", key),
                                      MakeLeaf("server", "server.ext", key),
                                      MakeLeaf("wrong-name", "wrong-name.ext", key));
    WriteTestFile(path("make-pki.sh"), script);
    std::string command = absl::StrCat("bash ", Quoted(path("make-pki.sh")), " >",
                                       Quoted(path("openssl.log")), " 2>&1");
    if (std::system(command.c_str()) != 0) {
      return new absl::StatusOr<TestPki>(absl::InternalError(
          absl::StrCat("openssl could not make the test PKI: see ", path("openssl.log"))));
    }
    p.ca_cert = path("ca.crt");
    p.server_cert = path("server.crt");
    p.server_key = path("server.key");
    p.wrong_name_cert = path("wrong-name.crt");
    p.wrong_name_key = path("wrong-name.key");
    return new absl::StatusOr<TestPki>(std::move(p));
  }();
  return *pki;
}

absl::StatusOr<std::unique_ptr<TlsTestServer>> TlsTestServer::Start(const Options& options) {
  const bool h2 = options.kind == Kind::kNghttpd;
  if (h2) {
    absl::Status tool = RequireTool("nghttpd", "nghttp2-server");
    if (!tool.ok()) return tool;
  } else {
    absl::Status tool = RequireTool("openssl", "openssl");
    if (!tool.ok()) return tool;
  }
  std::string last_output;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const int port = FreeLoopbackPort();  // retried below if taken meanwhile
    std::string command;
    if (h2) {
      command = absl::StrCat("exec nghttpd", options.verbose ? " -v" : "", " -d ",
                             Quoted(options.docroot), " --address=127.0.0.1 ", port, " ",
                             Quoted(options.key), " ", Quoted(options.cert));
    } else {
      command = absl::StrCat("cd ", Quoted(options.docroot),
                             " && exec openssl s_server -quiet -HTTP -accept 127.0.0.1:", port,
                             " -cert ", Quoted(options.cert), " -key ", Quoted(options.key));
    }
    std::optional<Subprocess> process =
        Subprocess::Start({"/bin/sh", "-c", absl::StrCat(kPathPrefix, command)});
    if (!process) return absl::InternalError(absl::StrCat("cannot start: ", command));
    // Ready when it accepts a connection (a bare TCP connect: both servers shrug it off).
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (absl::Now() < deadline && process->Running()) {
      if (Accepts(port)) {
        return std::unique_ptr<TlsTestServer>(new TlsTestServer(std::move(*process), port));
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    last_output = process->Output();
    // Exited (the port was taken meanwhile?) or never listened: try another port.
  }
  return absl::UnavailableError(
      absl::StrCat(h2 ? "nghttpd" : "openssl s_server",
                   " did not accept connections on 127.0.0.1; it printed: ", last_output));
}

std::string TlsTestServer::url(const std::string& path) const {
  return absl::StrCat("https://127.0.0.1:", port_, path);
}

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

}  // namespace hubcensus::testing
