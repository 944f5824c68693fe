// libcurl over real sockets for the fakehub tests: what a crawler sees, headers included.
#ifndef HUBCENSUS_TESTS_FAKEHUB_HTTP_TEST_CLIENT_H_
#define HUBCENSUS_TESTS_FAKEHUB_HTTP_TEST_CLIENT_H_

#include <curl/curl.h>

#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace hubcensus::fakehub::testing {

struct HttpResult {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  long new_connections = 0;

  std::string Header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
  bool HasHeader(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return true;
    }
    return false;
  }
  // The rel="next" URL of the Link header, parsed as huggingface.js does.
  std::optional<std::string> NextLink() const {
    static const std::regex re("<(https?://[^>]+)>;\\s+rel=\"([^\"]+)\"");
    std::string link = Header("link");
    for (std::sregex_iterator it(link.begin(), link.end(), re), end; it != end; ++it) {
      if ((*it)[2] == "next") return (*it)[1].str();
    }
    return std::nullopt;
  }
};

// One handle: requests reuse its connection (keep-alive), as a crawler's would.
class HttpTestClient {
 public:
  HttpTestClient() : curl_(curl_easy_init()) {}
  ~HttpTestClient() { curl_easy_cleanup(curl_); }
  HttpTestClient(const HttpTestClient&) = delete;
  HttpTestClient& operator=(const HttpTestClient&) = delete;

  HttpResult Get(const std::string& url, const std::vector<std::string>& headers = {},
                 long timeout_ms = 30000, bool gzip = false) {
    return Perform("GET", url, headers, timeout_ms, gzip);
  }
  HttpResult Post(const std::string& url) { return Perform("POST", url, {}, 30000, false); }

 private:
  static size_t OnBody(char* data, size_t size, size_t n, void* user) {
    static_cast<HttpResult*>(user)->body.append(data, size * n);
    return size * n;
  }
  static size_t OnHeader(char* data, size_t size, size_t n, void* user) {
    std::string line(data, size * n);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      static_cast<HttpResult*>(user)->headers.emplace_back(
          absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon))),
          std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
    }
    return size * n;
  }
  HttpResult Perform(const char* method, const std::string& url,
                     const std::vector<std::string>& headers, long timeout_ms, bool gzip) {
    HttpResult result;
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &result);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &result);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    if (gzip) curl_easy_setopt(curl_, CURLOPT_ACCEPT_ENCODING, "gzip");
    if (std::string(method) == "POST") {
      curl_easy_setopt(curl_, CURLOPT_POST, 1L);
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    if (list) curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, list);
    result.code = curl_easy_perform(curl_);
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &result.status);
    curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &result.new_connections);
    if (list) curl_slist_free_all(list);
    return result;
  }

  CURL* curl_;
};

}  // namespace hubcensus::fakehub::testing

#endif  // HUBCENSUS_TESTS_FAKEHUB_HTTP_TEST_CLIENT_H_
