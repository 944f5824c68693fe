// Wraps a transport to count what reached the Hub and, against fakehub, the 429s its rate
// limiter sent because a window's quota was spent (as opposed to injected http429 faults, which
// fakehub sends with Retry-After before its RateLimit fields and always with Retry-After: 1).
#ifndef HUBCENSUS_TESTS_HUB_QUOTA_WATCH_TRANSPORT_H_
#define HUBCENSUS_TESTS_HUB_QUOTA_WATCH_TRANSPORT_H_

#include <atomic>
#include <memory>

#include "absl/strings/match.h"
#include "hub/http_transport.h"

namespace hubcensus::testing {

class QuotaWatchTransport : public hub::HttpTransport {
 public:
  explicit QuotaWatchTransport(std::shared_ptr<hub::HttpTransport> inner)
      : inner_(std::move(inner)) {}

  hub::HttpResponse Send(const hub::HttpRequest& request) override {
    hub::HttpResponse response = inner_->Send(request);
    ++requests_;
    if (!request.headers.Has("Authorization")) ++anonymous_;
    if (response.status == 429 && OverQuota(response)) ++over_quota_;
    return response;
  }

  int64_t requests() const { return requests_; }
  int64_t over_quota() const { return over_quota_; }
  int64_t anonymous() const { return anonymous_; }

 private:
  static bool OverQuota(const hub::HttpResponse& response) {
    int retry_after_at = -1, rate_limit_at = -1;
    const auto& fields = response.headers.fields();
    for (int i = 0; i < static_cast<int>(fields.size()); ++i) {
      if (absl::EqualsIgnoreCase(fields[i].first, "Retry-After") && retry_after_at < 0) {
        retry_after_at = i;
      }
      if (absl::EqualsIgnoreCase(fields[i].first, "RateLimit") && rate_limit_at < 0) {
        rate_limit_at = i;
      }
    }
    if (rate_limit_at < 0) return false;  // no limiter on this Hub: an injected fault
    return retry_after_at < 0 || retry_after_at > rate_limit_at;
  }

  std::shared_ptr<hub::HttpTransport> inner_;
  std::atomic<int64_t> requests_{0};
  std::atomic<int64_t> over_quota_{0};
  std::atomic<int64_t> anonymous_{0};
};

}  // namespace hubcensus::testing

#endif  // HUBCENSUS_TESTS_HUB_QUOTA_WATCH_TRANSPORT_H_
