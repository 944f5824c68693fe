// Helpers for the embedded end-to-end tests: a fakehub process and plain HTTP to it.
#ifndef HUBCENSUS_TESTS_EMBEDDED_E2E_UTIL_H_
#define HUBCENSUS_TESTS_EMBEDDED_E2E_UTIL_H_

#include <curl/curl.h>

#include <optional>
#include <string>

#include "tests/testing/subprocess.h"

namespace hubcensus::testing {

inline size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// GET or POST over libcurl; returns the HTTP status (0 on a transport error).
inline long HttpCall(const std::string& url, std::string* body, bool post = false) {
  CURL* curl = curl_easy_init();
  body->clear();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  if (post) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  return status;
}

// Starts `hubcensus fakehub` with `flags` and returns it with its URL.
inline std::optional<Subprocess> StartFakehub(const std::vector<std::string>& flags,
                                              std::string* url) {
  std::vector<std::string> argv = {HubcensusBinary(), "fakehub", "--port=0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  auto p = Subprocess::Start(argv);
  if (!p) return std::nullopt;
  auto line = p->WaitForOutput("fakehub listening on ", absl::Seconds(120));
  if (!line) return std::nullopt;
  auto pos = line->find("http://");
  *url = line->substr(pos);
  while (!url->empty() && (url->back() == '\r' || url->back() == ' ')) url->pop_back();
  return p;
}

}  // namespace hubcensus::testing

#endif  // HUBCENSUS_TESTS_EMBEDDED_E2E_UTIL_H_
