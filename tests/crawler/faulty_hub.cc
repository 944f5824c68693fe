#include "tests/crawler/faulty_hub.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/dates.h"

namespace hubcensus::testing {
namespace {

// The value of query parameter `name`, or "".
std::string QueryValue(const std::string& url, const std::string& name) {
  size_t q = url.find('?');
  if (q == std::string::npos) return "";
  size_t at = q;
  while (at != std::string::npos) {
    size_t start = at + 1;
    if (url.compare(start, name.size() + 1, name + "=") == 0) {
      size_t end = url.find('&', start);
      return url.substr(start + name.size() + 1, end == std::string::npos
                                                     ? std::string::npos
                                                     : end - start - name.size() - 1);
    }
    at = url.find('&', start);
  }
  return "";
}

std::string WithoutCursor(const std::string& url) {
  size_t at = url.find("&cursor=");
  if (at == std::string::npos) return url;
  size_t end = url.find('&', at + 1);
  return url.substr(0, at) + (end == std::string::npos ? "" : url.substr(end));
}

}  // namespace

FaultyHub::FaultyHub(FaultyHubOptions options, SimulatedClock* clock)
    : options_(std::move(options)), clock_(clock), random_(options_.seed) {}

std::string FaultyHub::RepoId(int index) const {
  return absl::StrFormat("org%02d/model-%06d", index % 13, index);
}

std::string FaultyHub::Entry(int index) const {
  // Newest first: index 0 is the newest repo.
  int64_t created = 1735689600 - index * 37;
  return absl::StrFormat(
      R"({"_id":"%024x","id":"%s","author":"org%02d","createdAt":"%s","lastModified":"%s",)"
      R"("downloads":%d,"downloadsAllTime":%d,"likes":%d,"trendingScore":%.2f,"private":false,)"
      R"("gated":%s,"tags":["text-generation","base_model:org00/model-000000",)"
      R"("base_model:finetune:org00/model-000000"],"pipeline_tag":"text-generation"})",
      index, RepoId(index), index % 13, FormatHubTimestamp(created), FormatHubTimestamp(created),
      index % 1000, index * 10, index % 50, index * 0.25, index % 17 == 0 ? "\"auto\"" : "false");
}

std::set<std::string> FaultyHub::ids() const {
  std::set<std::string> out;
  for (int i = 0; i < options_.repos; ++i) out.insert(RepoId(i));
  return out;
}

int64_t FaultyHub::requests() {
  absl::MutexLock lock(&mu_);
  return requests_;
}

int64_t FaultyHub::over_quota() {
  absl::MutexLock lock(&mu_);
  return over_quota_;
}

int64_t FaultyHub::faults() {
  absl::MutexLock lock(&mu_);
  return faults_;
}

hub::HttpResponse FaultyHub::Serve(const hub::HttpRequest& request) {
  absl::MutexLock lock(&mu_);
  ++requests_;
  absl::Time now = clock_->Now();
  std::vector<std::pair<std::string, std::string>> headers;
  if (options_.quota > 0) {
    int64_t seconds = absl::ToUnixSeconds(now);
    int64_t window = seconds / options_.window_s;
    if (window != window_index_) {
      window_index_ = window;
      used_in_window_ = 0;
    }
    absl::Time end = absl::FromUnixSeconds((window + 1) * options_.window_s);
    int64_t reset = static_cast<int64_t>(std::ceil(absl::ToDoubleSeconds(end - now)));
    headers.push_back({"RateLimit-Policy", absl::StrCat("\"fixed window\";\"api\";q=",
                                                        options_.quota, ";w=", options_.window_s)});
    if (used_in_window_ >= options_.quota) {
      ++over_quota_;
      headers.push_back({"RateLimit", absl::StrCat("\"api\";r=0;t=", reset)});
      return hub::MakeResponse(429, "{\"error\":\"rate limited\"}", headers);
    }
    ++used_in_window_;
    headers.push_back(
        {"RateLimit", absl::StrCat("\"api\";r=", options_.quota - used_in_window_, ";t=", reset)});
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  bool fault = unit(random_) < options_.fault_rate;
  int fault_kind = static_cast<int>(unit(random_) * 8);
  if (fault) {
    ++faults_;
    switch (fault_kind) {
      case 0:
        return hub::MakeResponse(503, "upstream", headers);
      case 1:
        return hub::MakeResponse(500, "", headers);
      case 2:
        headers.push_back({"Retry-After", "2"});
        return hub::MakeResponse(429, "", headers);
      case 3:
        return hub::MakeTransportError(absl::UnavailableError("connection reset by peer"));
      case 4:
        return hub::MakeTransportError(absl::DeadlineExceededError("operation timed out"));
      case 5:
        return hub::MakeResponse(502, "<html>bad gateway</html>", headers);
      default:
        break;  // 6, 7: a cut or garbled body, below
    }
  }

  // /api/models?...&cursor=N
  size_t path_at = request.url.find("/api/models");
  if (path_at == std::string::npos || request.url.compare(path_at, 12, "/api/models?") != 0) {
    return hub::MakeResponse(404, "{\"error\":\"not found\"}", headers);
  }
  int64_t limit = 1000;
  absl::SimpleAtoi(QueryValue(request.url, "limit"), &limit);
  limit = std::clamp<int64_t>(limit, 1, options_.max_page_size);
  int64_t offset = 0;
  std::string cursor = QueryValue(request.url, "cursor");
  if (!cursor.empty() && !absl::SimpleAtoi(cursor.substr(1), &offset)) {
    return hub::MakeResponse(400, "{\"error\":\"bad cursor\"}", headers);
  }
  int64_t end = std::min<int64_t>(options_.repos, offset + limit);
  std::string body = "[";
  for (int64_t i = offset; i < end; ++i) {
    if (i > offset) body += ",";
    body += Entry(static_cast<int>(i));
  }
  // Now and then the Hub repeats an entry (its order shifted) or sends a malformed one.
  double extra = unit(random_);
  if (end > offset && extra < 0.03) body += "," + Entry(static_cast<int>(offset));
  if (extra > 0.97) body += R"(,{"id":12345,"downloads":"many"})";
  body += "]";
  if (fault && fault_kind == 6) body = body.substr(0, body.size() / 2);
  if (fault && fault_kind == 7) body = "<html><body>oops</body></html>";
  hub::HttpResponse response = hub::MakeResponse(200, body, headers);
  if (end < options_.repos) {
    response.headers.Add(
        "Link", absl::StrCat("<", WithoutCursor(request.url), "&cursor=c", end, ">; rel=\"next\""));
  }
  return response;
}

}  // namespace hubcensus::testing
