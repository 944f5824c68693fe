#include "hub/http_transport.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace hubcensus::hub {

absl::string_view HttpVersionName(HttpVersion version) {
  switch (version) {
    case HttpVersion::kHttp10:
      return "1.0";
    case HttpVersion::kHttp11:
      return "1.1";
    case HttpVersion::kHttp2:
      return "2";
    case HttpVersion::kHttp3:
      return "3";
    default:
      return "unknown";
  }
}

absl::Status CheckCaFile(absl::string_view path) {
  const std::string name(path);
  std::FILE* file = std::fopen(name.c_str(), "rb");
  if (file == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": cannot read the CA file (", std::strerror(errno), ")"));
  }
  std::string content;
  char buffer[8192];
  size_t n;
  // A CA bundle is at most a few hundred KB; reading stops well before a stray huge file ends.
  while (content.size() < (16u << 20) && (n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    content.append(buffer, n);
  }
  const bool failed = std::ferror(file) != 0;
  const int read_errno = errno;
  std::fclose(file);
  if (failed) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": cannot read the CA file (", std::strerror(read_errno), ")"));
  }
  if (!absl::StrContains(content, "-----BEGIN CERTIFICATE-----")) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
  }
  return absl::OkStatus();
}

void HttpHeaders::Add(absl::string_view name, absl::string_view value) {
  fields_.emplace_back(std::string(name), std::string(value));
}

void HttpHeaders::Set(absl::string_view name, absl::string_view value) {
  std::vector<std::pair<std::string, std::string>> kept;
  for (auto& field : fields_) {
    if (!absl::EqualsIgnoreCase(field.first, name)) kept.push_back(std::move(field));
  }
  fields_ = std::move(kept);
  Add(name, value);
}

std::optional<std::string> HttpHeaders::Get(absl::string_view name) const {
  for (const auto& field : fields_) {
    if (absl::EqualsIgnoreCase(field.first, name)) return field.second;
  }
  return std::nullopt;
}

std::vector<std::string> HttpHeaders::GetAll(absl::string_view name) const {
  std::vector<std::string> out;
  for (const auto& field : fields_) {
    if (absl::EqualsIgnoreCase(field.first, name)) out.push_back(field.second);
  }
  return out;
}

bool HttpHeaders::Has(absl::string_view name) const { return Get(name).has_value(); }

FakeHttpTransport::FakeHttpTransport(Handler handler, SimulatedClock* clock, absl::Duration latency)
    : handler_(std::move(handler)), clock_(clock), latency_(latency) {}

HttpResponse FakeHttpTransport::Send(const HttpRequest& request) {
  Handler handler;
  {
    absl::MutexLock lock(&mu_);
    requests_.push_back(request);
    requests_.back().on_head = nullptr;  // its captures live only as long as this call
    handler = handler_;
  }
  if (clock_ != nullptr && latency_ > absl::ZeroDuration()) clock_->Advance(latency_);
  if (request.cancelled != nullptr && request.cancelled->load()) {
    return MakeTransportError(absl::CancelledError("request cancelled"));
  }
  HttpResponse response = handler(request);
  // The whole answer is in hand at once: its head is announced before it is returned, as a real
  // transport announces it before reading the body.
  if (request.on_head && response.transport_error.ok() && response.status >= 200) {
    request.on_head(response.status, response.headers);
  }
  return response;
}

void FakeHttpTransport::set_handler(Handler handler) {
  absl::MutexLock lock(&mu_);
  handler_ = std::move(handler);
}

int64_t FakeHttpTransport::request_count() {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(requests_.size());
}

std::vector<HttpRequest> FakeHttpTransport::requests() {
  absl::MutexLock lock(&mu_);
  return requests_;
}

HttpResponse MakeResponse(int status, std::string body,
                          std::vector<std::pair<std::string, std::string>> headers) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  for (auto& [name, value] : headers) response.headers.Add(name, value);
  return response;
}

HttpResponse MakeTransportError(absl::Status error) {
  HttpResponse response;
  response.transport_error = std::move(error);
  return response;
}

HttpResponse MakeConnectionFailure(absl::Status error, std::string cause) {
  HttpResponse response = MakeTransportError(std::move(error));
  response.connection_failure = true;
  response.connection_failure_cause = std::move(cause);
  return response;
}

}  // namespace hubcensus::hub
