#include "fakehub/fakehub.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/checksum.h"
#include "common/dates.h"
#include "common/log.h"
#include "common/status.h"
#include "config/family_config.h"
#include "fakehub/faults.h"
#include "fakehub/fixture_hub.h"
#include "fakehub/generated_hub.h"
#include "fakehub/hostile.h"
#include "fakehub/http_server.h"
#include "fakehub/json_text.h"
#include "fakehub/listing.h"
#include "fakehub/rate_limiter.h"
#include "fakehub/truth.h"
#include "hub/listing_query.h"

namespace hubcensus::fakehub {

namespace {

ServedResponse JsonError(int status, absl::string_view message) {
  ServedResponse r;
  r.status = status;
  r.body = absl::StrCat("{\"error\":", JsonString(message), "}");
  return r;
}

// What the Hub's gateway sends when a listing page takes too long (heavy or deep pages).
ServedResponse GatewayTimeout() {
  ServedResponse r;
  r.status = 504;
  r.content_type = "text/html";
  r.body =
      "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
      "<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n";
  return r;
}

// A request carrying `Authorization: Bearer <token>` (any token: fakehub checks none).
bool HasToken(const ServedRequest& request) {
  absl::string_view auth = request.Header("authorization");
  return absl::StartsWithIgnoreCase(auth, "bearer ") &&
         !absl::StripAsciiWhitespace(auth.substr(7)).empty();
}

// The request's query without its cursor parameter, joined again as sent.
std::vector<absl::string_view> QueryWithoutCursor(absl::string_view target) {
  std::vector<absl::string_view> kept;
  auto q = target.find('?');
  if (q == absl::string_view::npos) return kept;
  for (absl::string_view part : absl::StrSplit(target.substr(q + 1), '&', absl::SkipEmpty())) {
    if (!absl::StartsWith(part, "cursor=")) kept.push_back(part);
  }
  return kept;
}

// An entry a crawler must reject without losing anything else: never a real repo.
std::string MalformedEntry(uint64_t h) {
  std::string oid = absl::StrCat("ffffffff", absl::Hex(h, absl::kZeroPad16));
  std::string name = absl::StrCat("malformed-entry/m", h % 100000);
  switch (h % 6) {
    case 0:  // no id at all
      return absl::StrCat(R"({"_id":")", oid, R"(","downloads":5,"likes":0,"tags":[]})");
    case 1:  // id of the wrong type
      return absl::StrCat(R"({"_id":")", oid,
                          R"(","id":12345,"downloads":"many","tags":"not-a-list"})");
    case 2:  // wrong types everywhere else
      return absl::StrCat(R"({"_id":")", oid, R"(","id":")", name,
                          R"(","downloads":"17","likes":null,"tags":"text-generation",)"
                          R"("createdAt":1700000000,"private":"no"})");
    case 3:  // a huge id
      return absl::StrCat(R"({"_id":")", oid, R"(","id":"malformed-entry/)",
                          std::string(300000, 'x'), R"(","downloads":1,"tags":[]})");
    case 4:  // invalid UTF-8 in the id
      return absl::StrCat(R"({"_id":")", oid, R"(","id":"malformed-entry/\xff\xfe\xc0bad",)",
                          R"("downloads":1,"tags":[]})");
    default:  // impossible values
      return absl::StrCat(R"({"_id":")", oid, R"(","id":")", name,
                          R"(","createdAt":"yesterday","downloads":-5,"downloadsAllTime":-1,)",
                          R"("tags":[]})");
  }
}

}  // namespace

class FakeHub::Impl {
 public:
  explicit Impl(const FakeHubOptions& options) : options_(options) {}

  absl::Status Init() {
    clock_ = options_.clock != nullptr ? options_.clock : Clock::Real();
    config_ = WithDefaults(DefaultFamilyConfig());
    matcher_ = std::make_unique<FamilyMatcher>(config_);
    ASSIGN_OR_RETURN(auto policy, ParseRateLimit(options_.rate_limit));
    if (policy) limiter_ = std::make_unique<RateLimiter>(*policy, clock_);
    ASSIGN_OR_RETURN(plan_, FaultPlan::Parse(options_.fault_rate, options_.faults));
    ASSIGN_OR_RETURN(hostile_, HostileModes::Parse(options_.hostile, options_.foreign_origin));
    if (options_.heavy_page_limit < 0) {
      return absl::InvalidArgumentError("--heavy_page_limit must be 0 (off) or positive");
    }
    if (!(options_.page_latency_ms >= 0 && options_.page_latency_ms <= 600000)) {
      return absl::InvalidArgumentError("--page_latency_ms must be in 0..600000");
    }
    if (options_.stall_seconds <= 0) {
      return absl::InvalidArgumentError("--stall_seconds must be positive");
    }
    std::string date = options_.date.empty() ? DateOfDay(kLastDay) : options_.date;
    if (!options_.fixture_path.empty()) {
      ASSIGN_OR_RETURN(fixture_, FixtureHub::Load(options_.fixture_path, &config_, matcher_.get()));
      catalog_ = fixture_.get();
    } else {
      GeneratedHubOptions g;
      g.repos = options_.repos;
      g.seed = options_.seed;
      g.scenario = options_.scenario;
      g.private_fraction = options_.private_repos;
      g.gated_no_access_fraction = options_.gated_no_access;
      ASSIGN_OR_RETURN(generated_, GeneratedHub::Create(g, &config_, matcher_.get()));
      catalog_ = generated_.get();
    }
    RETURN_IF_ERROR(SetDate(date));
    engine_ = std::make_unique<ListingEngine>(catalog_);
    HttpServerOptions http;
    http.listen_address = options_.listen_address;
    http.port = options_.port;
    http.threads = options_.threads;
    ASSIGN_OR_RETURN(server_,
                     HttpServer::Start(http, [this](const ServedRequest& r) { return Handle(r); }));
    std::string host = options_.listen_address;
    if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
    url_ = absl::StrCat("http://", host, ":", server_->port());
    return absl::OkStatus();
  }

  absl::Status SetDate(absl::string_view date) {
    if (generated_ != nullptr) {
      ASSIGN_OR_RETURN(int day, DayOfDate(date));
      absl::WriterMutexLock lock(&state_mu_);
      generated_->SetDay(day);
      date_ = std::string(date);
    } else {
      ASSIGN_OR_RETURN(absl::Time t, ParseDate(date));
      absl::WriterMutexLock lock(&state_mu_);
      fixture_->SetDate(absl::ToUnixSeconds(t));
      date_ = std::string(date);
    }
    return absl::OkStatus();
  }

  std::string date() {
    absl::ReaderMutexLock lock(&state_mu_);
    return date_;
  }

  absl::StatusOr<std::string> Truth(absl::string_view date_text, absl::string_view policy_text) {
    ASSIGN_OR_RETURN(TruthPolicy policy, ParseTruthPolicy(policy_text));
    std::string date = date_text.empty() ? this->date() : std::string(date_text);
    if (generated_ != nullptr) {
      ASSIGN_OR_RETURN(int day, DayOfDate(date));
      TruthGraph graph;
      {
        absl::ReaderMutexLock lock(&state_mu_);
        graph = generated_->GraphAt(day);
      }
      return ::hubcensus::fakehub::TruthJson(graph, config_, policy);
    }
    ASSIGN_OR_RETURN(absl::Time t, ParseDate(date));
    absl::WriterMutexLock lock(&state_mu_);  // the fixture's date moves for the computation
    fixture_->SetDate(absl::ToUnixSeconds(t));
    TruthGraph graph = fixture_->Graph(date);
    auto current = ParseDate(date_);
    if (current.ok()) fixture_->SetDate(absl::ToUnixSeconds(*current));
    return ::hubcensus::fakehub::TruthJson(graph, config_, policy);
  }

  std::vector<std::string> RepoIds(absl::string_view date_text) {
    std::string date = date_text.empty() ? this->date() : std::string(date_text);
    if (generated_ != nullptr) {
      auto day = DayOfDate(date);
      if (!day.ok()) return {};
      absl::ReaderMutexLock lock(&state_mu_);
      return generated_->ListedIdsAt(*day);
    }
    auto t = ParseDate(date);
    if (!t.ok()) return {};
    absl::WriterMutexLock lock(&state_mu_);
    fixture_->SetDate(absl::ToUnixSeconds(*t));
    auto ids = fixture_->ListedIds();
    auto current = ParseDate(date_);
    if (current.ok()) fixture_->SetDate(absl::ToUnixSeconds(*current));
    return ids;
  }

  ServedResponse Handle(const ServedRequest& request) {
    if (absl::StartsWith(request.path, "/_sim/")) return HandleSim(request);
    if (!absl::StartsWith(request.path, "/api/")) return JsonError(404, "Not Found");
    ServedResponse response;
    std::vector<std::pair<std::string, std::string>> limit_headers;
    if (limiter_ != nullptr) {
      std::string key;
      absl::string_view auth = request.Header("authorization");
      if (absl::StartsWithIgnoreCase(auth, "bearer ")) {
        key = absl::StrCat("token:", Fnv1a64(auth.substr(7)));  // a hash: never the token
      } else {
        key = absl::StrCat("ip:", request.peer_address);
      }
      RateLimiter::Decision d = limiter_->Admit(key);
      limit_headers.emplace_back("RateLimit", limiter_->RateLimitHeader(d));
      limit_headers.emplace_back("RateLimit-Policy", limiter_->PolicyHeader());
      if (!d.allowed) {
        response = JsonError(429, "You have exceeded the rate limit for API calls. Retry later.");
        response.headers = limit_headers;
        response.headers.emplace_back("Retry-After", absl::StrCat(d.reset_seconds));
        return response;
      }
    }
    if (request.method != "GET" && request.method != "HEAD") {
      response = JsonError(405, "Method Not Allowed");
      response.headers = limit_headers;
      return response;
    }
    bool listing = request.path == "/api/models" || request.path == "/api/models/";
    uint64_t sequence = requests_.fetch_add(1);
    std::optional<FaultKind> fault = plan_.Draw(options_.seed, sequence, listing);
    if (fault) {
      switch (*fault) {
        case FaultKind::kHttp500:
          response = JsonError(
              500, "Internal Error - We're working hard to fix this as soon as possible!");
          break;
        case FaultKind::kHttp502:
          response = JsonError(502, "Bad Gateway");
          break;
        case FaultKind::kHttp503:
          response = JsonError(503, "Service Temporarily Unavailable");
          break;
        case FaultKind::kHttp429:
          response = JsonError(429, "You have exceeded the rate limit for API calls. Retry later.");
          response.headers.emplace_back("Retry-After", "1");
          if (limiter_ != nullptr) {
            limit_headers[0].second = "\"api\";r=0;t=1";
          }
          break;
        case FaultKind::kStall:
          response.fault = TransportFault::kStall;
          response.stall = absl::Seconds(options_.stall_seconds);
          return response;
        case FaultKind::kMutate:
          if (generated_ != nullptr) {
            absl::WriterMutexLock lock(&state_mu_);
            generated_->Mutate(sequence);
          }
          break;
        default:
          break;
      }
      if (response.status != 200) {
        for (auto& h : limit_headers) response.headers.push_back(h);
        return response;
      }
    }
    if (listing) {
      response = HandleListing(request, fault == FaultKind::kMalformed ? sequence + 1 : 0,
                               fault == FaultKind::kRepeat);
    } else if (absl::StartsWith(request.path, "/api/models/")) {
      response = HandleRepo(request);
    } else {
      response = JsonError(404, "Not Found");
    }
    for (auto& h : limit_headers) response.headers.push_back(h);
    if (fault == FaultKind::kTruncate && response.body.size() > 1) {
      response.body.resize(response.body.size() / 2);
    }
    if (fault == FaultKind::kReset) response.fault = TransportFault::kResetMidBody;
    return response;
  }

  ServedResponse HandleListing(const ServedRequest& request, uint64_t malformed_nonce,
                               bool repeat) {
    auto parsed = ParseListingRequest(request.query);
    if (!parsed.ok()) return JsonError(400, parsed.status().message());
    parsed->with_token = HasToken(request);
    if (options_.heavy_page_limit > 0 && parsed->limit > options_.heavy_page_limit) {
      return GatewayTimeout();
    }
    const bool later_page = !parsed->cursor.empty();
    absl::string_view host = request.Header("host");
    const std::string origin = host.empty() ? url_ : absl::StrCat("http://", host);
    if (hostile_.foreign_redirect && later_page) {
      ServedResponse response;
      response.status = 302;
      response.content_type = "text/plain; charset=utf-8";
      std::string location = absl::StrCat(options_.foreign_origin, request.target);
      response.body = absl::StrCat("Found. Redirecting to ", location);
      response.headers.emplace_back("Location", location);
      return response;
    }
    if (hostile_.html_200) {
      ServedResponse response;
      response.content_type = "text/html; charset=utf-8";
      response.body =
          "<!DOCTYPE html>\n<html><head><title>Hugging Face</title></head>"
          "<body><h1>We're sorry, the Hub is in maintenance.</h1></body></html>\n";
      return response;
    }
    std::vector<absl::string_view> kept = QueryWithoutCursor(request.target);
    auto link_to = [&](absl::string_view base, absl::string_view cursor) {
      std::string url = absl::StrCat(base, request.path, "?", absl::StrJoin(kept, "&"));
      if (!cursor.empty()) {
        absl::StrAppend(&url, kept.empty() ? "" : "&", "cursor=", hub::UrlEncode(cursor));
      }
      return absl::StrCat("<", url, ">; rel=\"next\"");
    };
    if (hostile_.empty_pages && later_page) {
      // An older keyset each time: a new URL on every page, and never an entry.
      auto keyset = DecodeCursor(parsed->cursor, parsed->sort);
      if (!keyset.ok()) return JsonError(400, keyset.status().message());
      ServedResponse response;
      response.body = "[]";
      response.headers.emplace_back(
          "Link", link_to(origin, EncodeCursor(parsed->sort, keyset->key - 1, keyset->oid)));
      return response;
    }
    absl::StatusOr<ServedPage> page;
    std::string repeated;
    {
      absl::ReaderMutexLock lock(&state_mu_);
      page = engine_->Page(*parsed);
      if (page.ok() && repeat && page->previous_index >= 0) {
        catalog_->AppendEntry(page->previous_index, parsed->fields, &repeated);
      }
      if (page.ok() && hostile_.garbage_fraction > 0) {
        for (size_t k = 0; k < page->entries.size(); ++k) {
          std::string oid = catalog_->Oid(page->indices[k]).Hex();
          if (IsGarbageEntry(options_.seed, oid, hostile_.garbage_fraction)) {
            page->entries[k] = GarbageEntry(oid, catalog_->Id(page->indices[k]));
          }
        }
      }
    }
    if (!page.ok()) return JsonError(400, page.status().message());
    ServedResponse response;
    std::string& body = response.body;
    body.reserve(page->entries.size() * 700 + 2);
    body.push_back('[');
    bool first = true;
    auto add = [&](const std::string& entry) {
      if (!first) body.push_back(',');
      first = false;
      body += entry;
    };
    if (!repeated.empty()) add(repeated);
    size_t malformed_at =
        malformed_nonce ? (malformed_nonce * 2654435761u) % (page->entries.size() + 1) : SIZE_MAX;
    for (size_t k = 0; k < page->entries.size(); ++k) {
      if (k == malformed_at) add(MalformedEntry(malformed_nonce * 0x9e3779b97f4a7c15ull));
      add(page->entries[k]);
    }
    if (malformed_at == page->entries.size()) {
      add(MalformedEntry(malformed_nonce * 0x9e3779b97f4a7c15ull));
    }
    body.push_back(']');
    if (hostile_.link_cycle && later_page) {
      // Back to the first page: A -> B -> A -> ...
      response.headers.emplace_back("Link", link_to(origin, ""));
    } else if (hostile_.foreign_next && later_page) {
      response.headers.emplace_back(
          "Link", link_to(options_.foreign_origin, page->next_cursor.value_or(parsed->cursor)));
    } else if (page->next_cursor) {
      response.headers.emplace_back("Link", link_to(origin, *page->next_cursor));
    }
    if (options_.page_latency_ms > 0) {
      // The real Hub's pace: MS per 1,000 entries, served later by the HTTP server's poller.
      response.delay = absl::Microseconds(static_cast<int64_t>(
          options_.page_latency_ms * static_cast<double>(page->entries.size())));
    }
    return response;
  }

  // GET /api/models/{id}[/revision/{rev}], answered as the Hub answered in the recordings
  // (shared/data/real-hub, shared/hub-api.md).
  ServedResponse HandleRepo(const ServedRequest& request) {
    absl::string_view rest = absl::string_view(request.path).substr(strlen("/api/models/"));
    std::string suffix;
    std::optional<std::string> revision;
    auto rev = rest.find("/revision/");
    if (rev != absl::string_view::npos) {
      suffix = std::string(rest.substr(rev));
      revision = std::string(rest.substr(rev + strlen("/revision/")));
      rest = rest.substr(0, rev);
    }
    std::string id(absl::StripSuffix(rest, "/"));
    const bool token = HasToken(request);
    // Missing, or private to someone else: anonymous 401; with a token 404 (unverified).
    auto not_found = [token]() {
      if (!token) return JsonError(401, "Invalid username or password.");
      ServedResponse r = JsonError(404, "Repository not found");
      r.headers.emplace_back("X-Error-Code", "RepoNotFound");
      return r;
    };
    if (id.empty() || std::count(id.begin(), id.end(), '/') > 1) return not_found();
    auto expand = ParseRepoExpand(request.query);
    if (!expand.ok()) return JsonError(400, expand.status().message());
    ServedResponse response;
    absl::ReaderMutexLock lock(&state_mu_);
    RepoLookup found = catalog_->Lookup(id);
    if (found.kind == RepoLookup::kPrivate) {
      if (!token || !found.token_visible) return not_found();
      found.kind = found.current_id.empty() ? RepoLookup::kFound : RepoLookup::kRenamed;
    }
    switch (found.kind) {
      case RepoLookup::kNotFound:
      case RepoLookup::kPrivate:
        return not_found();
      case RepoLookup::kRenamed: {
        // As recorded: 307, text/plain, no body, a relative Location.
        auto q = request.target.find('?');
        std::string location = absl::StrCat("/api/models/", found.current_id, suffix,
                                            q == std::string::npos ? "" : request.target.substr(q));
        response.status = 307;
        response.content_type = "text/plain; charset=utf-8";
        response.headers.emplace_back("Location", location);
        return response;
      }
      case RepoLookup::kFound:
        break;
    }
    if (found.disabled) return JsonError(403, "Access to this resource is disabled.");
    if (found.gated_no_access && !token) {
      std::string message = absl::StrCat(
          "Access to model ", id,
          " is restricted. You must have access to it and be authenticated to access it. "
          "Please log in.");
      response = JsonError(401, message);
      response.headers.emplace_back("X-Error-Code", "GatedRepo");
      response.headers.emplace_back("X-Error-Message", message);
      return response;
    }
    if (revision && !catalog_->HasRevision(found.index, *revision)) {
      response = JsonError(404, absl::StrCat("Invalid rev id: ", revision->substr(0, 200)));
      response.headers.emplace_back("X-Error-Code", "RevisionNotFound");
      return response;
    }
    catalog_->AppendEntry(found.index, expand->has_value() ? **expand : DefaultRepoFields(),
                          &response.body);
    return response;
  }

  ServedResponse HandleSim(const ServedRequest& request) {
    ServedResponse response;
    if (request.path == "/_sim/clock") {
      if (request.method == "POST") {
        bool found = false;
        std::string date = request.Query("date", &found);
        if (!found) return JsonError(400, "POST /_sim/clock needs ?date=YYYY-MM-DD");
        absl::Status s = SetDate(date);
        if (!s.ok()) return JsonError(400, s.message());
      }
      response.body = absl::StrCat("{\"date\":", JsonString(date()), "}");
      return response;
    }
    if (request.path == "/_sim/truth") {
      auto truth = Truth(request.Query("date"), request.Query("policy"));
      if (!truth.ok()) return JsonError(400, truth.status().message());
      response.body = *std::move(truth);
      return response;
    }
    if (request.path == "/_sim/ids") {
      std::string date = request.Query("date");
      if (!date.empty() && !ParseDate(date).ok()) return JsonError(400, "bad date");
      std::vector<std::string> ids = RepoIds(date);
      response.body = "[";
      for (size_t k = 0; k < ids.size(); ++k) {
        if (k) response.body.push_back(',');
        AppendJsonString(&response.body, ids[k]);
      }
      response.body.push_back(']');
      return response;
    }
    if (request.path == "/_sim/health") {
      response.body = "{\"status\":\"ok\"}";
      return response;
    }
    return JsonError(404, "Not Found");
  }

  void Stop() {
    if (server_ != nullptr) server_->Stop();
  }

  FakeHubOptions options_;
  Clock* clock_ = nullptr;
  v1::FamilyConfig config_;
  std::unique_ptr<FamilyMatcher> matcher_;
  std::unique_ptr<RateLimiter> limiter_;
  FaultPlan plan_;
  HostileModes hostile_;
  std::unique_ptr<GeneratedHub> generated_;
  std::unique_ptr<FixtureHub> fixture_;
  ModelCatalog* catalog_ = nullptr;
  std::unique_ptr<ListingEngine> engine_;
  std::unique_ptr<HttpServer> server_;
  std::string url_;
  std::atomic<uint64_t> requests_{0};
  // Readers serve requests; SetDate and mutations write.
  absl::Mutex state_mu_;
  std::string date_ ABSL_GUARDED_BY(state_mu_);
};

FakeHub::FakeHub(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FakeHub::~FakeHub() { Stop(); }

absl::StatusOr<std::unique_ptr<FakeHub>> FakeHub::Start(const FakeHubOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<FakeHub>(new FakeHub(std::move(impl)));
}

int FakeHub::port() const { return impl_->server_->port(); }
std::string FakeHub::url() const { return impl_->url_; }
absl::Status FakeHub::SetDate(absl::string_view date) { return impl_->SetDate(date); }
std::string FakeHub::date() const { return impl_->date(); }
absl::StatusOr<std::string> FakeHub::TruthJson(absl::string_view date, absl::string_view policy) {
  return impl_->Truth(date, policy);
}
std::vector<std::string> FakeHub::RepoIdsAt(absl::string_view date) { return impl_->RepoIds(date); }
int64_t FakeHub::repo_slots() const { return impl_->catalog_->Count(); }
size_t FakeHub::memory_bytes() const {
  return impl_->generated_ != nullptr ? impl_->generated_->MemoryBytes() : 0;
}
void FakeHub::Stop() {
  if (impl_) impl_->Stop();
}

}  // namespace hubcensus::fakehub
