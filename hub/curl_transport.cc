// libcurl behind HttpTransport. One share handle (connections, DNS, TLS sessions) for the
// process-lifetime transport and a pool of easy handles, so sequential requests from any thread
// reuse warm connections.
#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/version.h"
#include "hub/http_transport.h"
#include "hub/url.h"

namespace hubcensus::hub {
namespace {

// Bodies larger than this are refused: a listing page of 1,000 entries is a few MB.
constexpr curl_off_t kMaxBodyBytes = 256ll << 20;

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  HttpResponse* response;
  const std::atomic<bool>* cancelled;
  const std::function<void(int, const HttpHeaders&)>* on_head;
  int head_status = 0;          // of the head being read (from its status line)
  bool head_announced = false;  // a blank line after trailers must not announce it again
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  transfer->response->body.append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  absl::string_view line(data, size * n);
  line = absl::StripTrailingAsciiWhitespace(line);
  if (absl::StartsWith(line, "HTTP/")) {
    // A new response (after 100 Continue, or a proxy's): forget earlier headers.
    transfer->response->headers = HttpHeaders();
    transfer->head_status = 0;
    transfer->head_announced = false;
    // "HTTP/1.1 200 OK", "HTTP/2 200".
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (parts.size() >= 2) (void)absl::SimpleAtoi(parts[1], &transfer->head_status);
    return size * n;
  }
  if (line.empty()) {
    // The blank line that ends a head: the body (if any) comes next. A 1xx head is followed by
    // another head, so only a final one is announced.
    if (transfer->on_head != nullptr && *transfer->on_head && transfer->head_status >= 200 &&
        !transfer->head_announced) {
      transfer->head_announced = true;
      (*transfer->on_head)(transfer->head_status, transfer->response->headers);
    }
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos || colon == 0) return size * n;
  transfer->response->headers.Add(absl::StripAsciiWhitespace(line.substr(0, colon)),
                                  absl::StripAsciiWhitespace(line.substr(colon + 1)));
  return size * n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* transfer = static_cast<Transfer*>(user);
  return transfer->cancelled != nullptr && transfer->cancelled->load() ? 1 : 0;
}

// The host a URL names, for messages ("" when it does not parse).
std::string HostOf(const std::string& url) {
  CURLU* parsed = curl_url();
  std::string host;
  char* part = nullptr;
  if (curl_url_set(parsed, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(parsed, CURLUPART_HOST, &part, 0) == CURLUE_OK) {
    host = part;
    curl_free(part);
  }
  curl_url_cleanup(parsed);
  return host;
}

// The request URL as a TLS error shows it: no credentials and no query at all (a cursor or any
// other parameter may carry a secret; the host and path say what failed).
std::string UrlWithoutQuery(const std::string& url) {
  std::string out = RedactUrl(url);
  size_t cut = out.find_first_of("?#");
  if (cut != std::string::npos) out.resize(cut);
  return out;
}

bool IsTlsVerificationFailure(CURLcode code) {
  switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:  // unknown issuer, expired, host name mismatch
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CACERT_BADFILE:  // the CA file cannot be loaded
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return true;
    default:
      return false;
  }
}

// `detail` is curl's error buffer: it names the reason (e.g. "SSL certificate problem: unable
// to get local issuer certificate") and never a request header.
absl::Status CurlError(CURLcode code, const std::string& method, const std::string& url,
                       const char* detail) {
  const bool has_detail = detail != nullptr && detail[0] != '\0';
  if (IsTlsVerificationFailure(code)) {
    // Not worth a retry: the same certificate fails the same way until someone fixes the CA
    // bundle (--hub_ca_file) or the server.
    return absl::FailedPreconditionError(absl::StrCat(
        method, " ", UrlWithoutQuery(url), ": TLS certificate verification failed for ",
        HostOf(url), ": ", has_detail ? detail : curl_easy_strerror(code)));
  }
  std::string message = absl::StrCat(method, " ", RedactUrl(url), ": ", curl_easy_strerror(code));
  if (has_detail) absl::StrAppend(&message, " (", detail, ")");
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(message);
    case CURLE_ABORTED_BY_CALLBACK:
      return absl::CancelledError(message);
    case CURLE_PARTIAL_FILE:
      return absl::UnavailableError(absl::StrCat(message, ": truncated body"));
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(message);
    case CURLE_FILESIZE_EXCEEDED:
      return absl::ResourceExhaustedError(message);
    default:
      // Connection refused or reset, DNS, TLS handshake failures, bad content encoding, HTTP/2
      // stream errors: all are worth another attempt.
      return absl::UnavailableError(message);
  }
}

// When the server was never reached, why in a few words; nullopt when it answered or the
// failure came later (a reset, a timeout after connecting, a cut body).
std::optional<std::string> ConnectionFailureCause(CURL* easy, CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return "cannot resolve the host name";
    case CURLE_COULDNT_CONNECT:
      return "connection refused";
    case CURLE_SSL_CONNECT_ERROR:
      return "TLS handshake failed";
    case CURLE_OPERATION_TIMEDOUT: {
      // Timed out before a connection existed (a black-holed address): the connect phase.
      curl_off_t connected_us = 0;
      if (curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connected_us) == CURLE_OK &&
          connected_us == 0) {
        return "connection timed out";
      }
      return std::nullopt;
    }
    default:
      if (IsTlsVerificationFailure(code)) return "TLS certificate verification failed";
      return std::nullopt;
  }
}

HttpVersion VersionOf(long curl_version) {
  switch (curl_version) {
    case CURL_HTTP_VERSION_1_0:
      return HttpVersion::kHttp10;
    case CURL_HTTP_VERSION_1_1:
      return HttpVersion::kHttp11;
    case CURL_HTTP_VERSION_2_0:
      return HttpVersion::kHttp2;
    case CURL_HTTP_VERSION_3:
      return HttpVersion::kHttp3;
    default:
      return HttpVersion::kUnknown;
  }
}

class CurlTransport : public HttpTransport {
 public:
  explicit CurlTransport(CurlTransportOptions options) : options_(std::move(options)) {
    GlobalInit();
    share_ = curl_share_init();
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &CurlTransport::Lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &CurlTransport::Unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  }

  ~CurlTransport() override {
    for (CURL* easy : idle_) curl_easy_cleanup(easy);
    curl_share_cleanup(share_);
  }

  HttpResponse Send(const HttpRequest& request) override {
    CURL* easy = TakeHandle();
    HttpResponse response;
    Transfer transfer{&response, request.cancelled, &request.on_head};
    char error[CURL_ERROR_SIZE] = {0};

    curl_easy_reset(easy);
    curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
    if (request.method == "HEAD") {
      curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (request.method != "GET") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
    curl_easy_setopt(easy, CURLOPT_SHARE, share_);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");  // every encoding libcurl decodes
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, kMaxBodyBytes);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(request.timeouts.connect)));
    curl_easy_setopt(
        easy, CURLOPT_TIMEOUT_MS,
        static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(request.timeouts.total))));
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT,
                     static_cast<long>(request.timeouts.low_speed_bytes_per_s));
    curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(absl::ToInt64Seconds(request.timeouts.low_speed_time)));
    curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &OnProgress);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &transfer);

    curl_slist* headers = nullptr;
    bool has_user_agent = false;
    for (const auto& [name, value] : request.headers.fields()) {
      if (absl::EqualsIgnoreCase(name, "User-Agent")) has_user_agent = true;
      headers = curl_slist_append(headers, absl::StrCat(name, ": ", value).c_str());
    }
    if (has_user_agent) curl_easy_setopt(easy, CURLOPT_USERAGENT, nullptr);
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);

    CURLcode rc = curl_easy_perform(easy);
    if (rc == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      response.status = static_cast<int>(status);
      long version = 0;
      curl_easy_getinfo(easy, CURLINFO_HTTP_VERSION, &version);
      response.http_version = VersionOf(version);
    } else {
      response.transport_error = CurlError(rc, request.method, request.url, error);
      if (std::optional<std::string> cause = ConnectionFailureCause(easy, rc)) {
        response.connection_failure = true;
        response.connection_failure_cause = *std::move(cause);
      }
      response.status = 0;
      response.body.clear();
    }
    // The header list holds the Authorization value: free it, and drop the easy handle's
    // reference to it before the handle goes back to the pool.
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(headers);
    ReturnHandle(easy);
    return response;
  }

 private:
  static void Lock(CURL*, curl_lock_data data, curl_lock_access,
                   void* user) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    static_cast<CurlTransport*>(user)->locks_[Index(data)].Lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    static_cast<CurlTransport*>(user)->locks_[Index(data)].Unlock();
  }
  static size_t Index(curl_lock_data data) {
    return std::min<size_t>(static_cast<size_t>(data), kLocks - 1);
  }

  CURL* TakeHandle() {
    {
      absl::MutexLock lock(&pool_mu_);
      if (!idle_.empty()) {
        CURL* easy = idle_.back();
        idle_.pop_back();
        return easy;
      }
    }
    return curl_easy_init();
  }

  void ReturnHandle(CURL* easy) {
    absl::MutexLock lock(&pool_mu_);
    idle_.push_back(easy);
  }

  static constexpr size_t kLocks = CURL_LOCK_DATA_LAST + 1;
  CurlTransportOptions options_;
  CURLSH* share_ = nullptr;
  std::array<absl::Mutex, kLocks> locks_;
  absl::Mutex pool_mu_;
  std::vector<CURL*> idle_ ABSL_GUARDED_BY(pool_mu_);
};

}  // namespace

std::shared_ptr<HttpTransport> NewCurlTransport(CurlTransportOptions options) {
  if (options.user_agent.empty()) options.user_agent = kUserAgent;
  return std::make_shared<CurlTransport>(std::move(options));
}

}  // namespace hubcensus::hub
