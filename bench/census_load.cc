// The Census under load (issue 15): an asynchronous gRPC load generator against a running
// aggregator, and the fastest honest way to give that aggregator a year of daily crawls.
//
//   census_load --aggregator=127.0.0.1:PORT --fill --crawls=365 --repos=20000
//       writes daily crawls ending --last_date through the aggregator's own SnapshotStore API
//       (Write streams of 1,000-repo batches, then Commit with the manifest the coordinator
//       would send: the same path and checks a crawler and the coordinator use), skipping dates
//       already committed; the repos are synthetic, shaped like the Hub (see SyntheticRepos)
//   census_load --aggregator=127.0.0.1:PORT --requests=2000 --seconds=20 --concurrency=1,8
//       Families (latest crawl), Series (ecosystem downloads of every family over every crawl)
//       and Shares (latest crawl), each with N calls in flight on one channel from one
//       CompletionQueue: p50, p99, max and calls per second, bounded by --requests and
//       --seconds per kind and concurrency, whichever ends first; --rpcs=Series runs one kind
//       (e.g. under `perf record -p` of the aggregator). SeriesBytes is the Series call received
//       as bytes and not parsed; client_parse_ms is what parsing one answer costs this client
//
// A crawl through fakehub and `hubcensus local` costs a process start, a coordinator and a
// fetch per page (about 4 s for a 20k-repo Hub here, 25 min for 365); writing through the
// SnapshotStore gRPC API skips only the Hub and the coordinator's leases, and the aggregator
// verifies, publishes and computes every metric at each commit as it does for a real crawl.
// Exit status: 0 when every call succeeded, 1 when one failed (the first error is printed).
#include <google/protobuf/arena.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "hubcensus/v1/census.grpc.pb.h"
#include "hubcensus/v1/store.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using hubcensus::v1::Census;
using hubcensus::v1::SnapshotStore;

struct Flags {
  std::string aggregator;
  bool fill = false;
  int crawls = 365;
  int repos = 20000;
  std::string last_date = "2025-12-31";
  int64_t requests = 2000;
  double seconds = 20;
  std::vector<int> concurrency = {1, 8};
  // Which kinds to run (one alone: a profile of it).
  std::string rpcs = "Families,Series,SeriesColumns,SeriesBytes,SeriesBuilt,Shares";
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name, std::string* out) {
      std::string prefix = std::string("--") + name + "=";
      if (a.rfind(prefix, 0) != 0) return false;
      *out = a.substr(prefix.size());
      return true;
    };
    std::string v;
    if (a == "--fill") {
      f->fill = true;
    } else if (value("aggregator", &v)) {
      f->aggregator = v;
    } else if (value("crawls", &v)) {
      f->crawls = std::atoi(v.c_str());
    } else if (value("repos", &v)) {
      f->repos = std::atoi(v.c_str());
    } else if (value("last_date", &v)) {
      f->last_date = v;
    } else if (value("requests", &v)) {
      f->requests = std::atoll(v.c_str());
    } else if (value("seconds", &v)) {
      f->seconds = std::atof(v.c_str());
    } else if (value("rpcs", &v)) {
      f->rpcs = v;
    } else if (value("concurrency", &v)) {
      f->concurrency.clear();
      for (size_t p = 0; p < v.size();) {
        size_t comma = v.find(',', p);
        if (comma == std::string::npos) comma = v.size();
        f->concurrency.push_back(std::max(1, std::atoi(v.substr(p, comma - p).c_str())));
        p = comma + 1;
      }
    } else {
      std::fprintf(stderr, "census_load: unknown flag %.200s (see bench/census_load.cc)\n",
                   a.c_str());
      return false;
    }
  }
  if (f->aggregator.empty()) {
    std::fprintf(stderr, "census_load: --aggregator=HOST:PORT is required\n");
    return false;
  }
  if (f->crawls < 1 || f->repos < 1000 || f->requests < 1 || f->seconds <= 0) {
    std::fprintf(stderr,
                 "census_load: --crawls >= 1, --repos >= 1000, --requests >= 1 and "
                 "--seconds > 0\n");
    return false;
  }
  return true;
}

// Days since 1970-01-01 <-> civil date (H. Hinnant's algorithms).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::string CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02u", static_cast<int>(y + (m <= 2)), m, d);
  return buf;
}

// A Hub shaped like the real one (bench/store_bench.cc's proportions): ~2% first-party repos of
// tracked families' namespaces, 28% declaring a base model (most of them first-party or another
// derivative), heavy-tailed downloads, creation dates over 2023-2025.
std::vector<hubcensus::v1::RepoSnapshot> SyntheticRepos(int n, uint32_t seed) {
  static const char* kTracked[] = {"Qwen",   "meta-llama",  "deepseek-ai", "mistralai",
                                   "google", "microsoft",   "nvidia",      "THUDM",
                                   "01-ai",  "allenai",     "tiiuae",      "HuggingFaceTB",
                                   "openai", "ibm-granite", "tencent",     "moonshotai"};
  static const char* kTags[] = {"text-generation", "image-text-to-text", "text-classification",
                                "text-to-image", ""};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<hubcensus::v1::RepoSnapshot> repos(n);
  std::vector<int> bases;  // repos others may derive from
  const int64_t t0 = DaysFromCivil(2023, 1, 1) * 86400;
  for (int i = 0; i < n; ++i) {
    auto& r = repos[i];
    const bool first_party = u(rng) < 0.02;
    std::string ns =
        first_party
            ? kTracked[rng() % std::size(kTracked)]
            : "user" + std::to_string(static_cast<int64_t>(std::pow(u(rng), 3.0) * (n / 4 + 1)));
    r.set_id(ns + "/model-" + std::to_string(i));
    r.set_author(ns);
    char oid[25];
    std::snprintf(oid, sizeof(oid), "%024" PRIx64, static_cast<uint64_t>(rng()));
    r.set_object_id(std::string(oid, 24));
    r.set_created_at(t0 + static_cast<int64_t>(u(rng) * 3 * 365 * 86400));
    r.set_last_modified(r.created_at());
    r.set_downloads_30d(static_cast<int64_t>(std::pow(10, u(rng) * 5)));
    r.set_downloads_all_time(r.downloads_30d() * (1 + static_cast<int64_t>(rng() % 20)));
    r.set_likes(static_cast<int64_t>(rng() % 100));
    r.set_pipeline_tag(kTags[rng() % std::size(kTags)]);
    r.set_library_name("transformers");
    r.set_sha(std::string(40, 'a' + static_cast<char>(rng() % 6)));
    if (!first_party && !bases.empty() && u(rng) < 0.28) {
      auto* p = r.add_parents();
      p->set_id(repos[bases[rng() % bases.size()]].id());
      p->set_relation(static_cast<hubcensus::v1::Relation>(1 + rng() % 4));
    }
    if (first_party || u(rng) < 0.05) bases.push_back(i);
  }
  return repos;
}

int Fill(const Flags& f, const std::shared_ptr<grpc::Channel>& channel) {
  auto census = Census::NewStub(channel);
  auto store = SnapshotStore::NewStub(channel);
  std::set<std::string> committed;
  {
    grpc::ClientContext ctx;
    hubcensus::v1::ListCommittedCrawlsRequest req;
    hubcensus::v1::ListCommittedCrawlsResponse resp;
    grpc::Status s = census->ListCrawls(&ctx, req, &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "census_load: ListCrawls: %s\n", s.error_message().c_str());
      return 1;
    }
    for (const auto& c : resp.crawls()) committed.insert(c.date());
  }
  int y = 0;
  unsigned m = 0, d = 0;
  if (std::sscanf(f.last_date.c_str(), "%d-%u-%u", &y, &m, &d) != 3) {
    std::fprintf(stderr, "census_load: --last_date %.40s is not YYYY-MM-DD\n", f.last_date.c_str());
    return 1;
  }
  const int64_t last = DaysFromCivil(y, m, d);
  auto repos = SyntheticRepos(f.repos, 7);
  std::mt19937_64 rng(3);
  const auto t0 = Clock::now();
  double commit_seconds = 0;
  int written = 0;
  for (int c = 0; c < f.crawls; ++c) {
    const std::string date = CivilFromDays(last - (f.crawls - 1) + c);
    // Counters move every day, as the Hub's do.
    for (auto& r : repos) {
      r.set_downloads_30d(r.downloads_30d() + static_cast<int64_t>(rng() % 3));
      r.set_downloads_all_time(r.downloads_all_time() + static_cast<int64_t>(rng() % 5));
    }
    if (committed.count(date)) continue;
    const std::string crawl_id = "bench-" + date;
    grpc::ClientContext wctx;
    hubcensus::v1::WriteResponse wresp;
    auto writer = store->Write(&wctx, &wresp);
    hubcensus::v1::CommitRequest commit;
    commit.set_crawl_id(crawl_id);
    commit.set_crawl_date(date);
    for (int start = 0, item = 0; start < f.repos; start += 1000, ++item) {
      hubcensus::v1::WriteBatch b;
      b.set_crawl_id(crawl_id);
      b.set_crawl_date(date);
      b.set_item_id("list/" + std::to_string(item));
      b.set_fence(1);
      for (int i = start; i < f.repos && i < start + 1000; ++i) *b.add_repos() = repos[i];
      auto* e = commit.add_manifest();
      e->set_item_id(b.item_id());
      e->set_fence(1);
      e->set_repos(b.repos_size());
      if (!writer->Write(b)) break;
    }
    writer->WritesDone();
    grpc::Status ws = writer->Finish();
    if (!ws.ok() || wresp.id_checksums_size() != commit.manifest_size()) {
      std::fprintf(stderr, "census_load: Write %s: %s (%d checksums for %d batches)\n",
                   date.c_str(), ws.error_message().c_str(), wresp.id_checksums_size(),
                   commit.manifest_size());
      return 1;
    }
    for (int i = 0; i < commit.manifest_size(); ++i) {
      commit.mutable_manifest(i)->set_id_checksum(wresp.id_checksums(i));
    }
    const auto tc = Clock::now();
    grpc::ClientContext cctx;
    hubcensus::v1::CommitResponse cresp;
    grpc::Status cs = store->Commit(&cctx, commit, &cresp);
    commit_seconds += std::chrono::duration<double>(Clock::now() - tc).count();
    if (!cs.ok()) {
      std::fprintf(stderr, "census_load: Commit %s: %s\n", date.c_str(),
                   cs.error_message().c_str());
      return 1;
    }
    ++written;
  }
  const double total = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "fill: %d crawls of %d repos written and committed (%zu were there) in %.1f s; "
      "commits %.1f s (%.0f ms each)\n",
      written, f.repos, committed.size(), total, commit_seconds,
      written ? 1000 * commit_seconds / written : 0.0);
  return 0;
}

// One in-flight call of any kind: the CompletionQueue tag.
struct Call {
  grpc::ClientContext ctx;
  grpc::Status status;
  Clock::time_point start;
  hubcensus::v1::FamiliesResponse families;
  hubcensus::v1::SeriesResponse series;
  hubcensus::v1::SharesResponse shares;
  std::unique_ptr<grpc::ClientAsyncResponseReader<hubcensus::v1::FamiliesResponse>> rf;
  std::unique_ptr<grpc::ClientAsyncResponseReader<hubcensus::v1::SeriesResponse>> rs;
  std::unique_ptr<grpc::ClientAsyncResponseReader<hubcensus::v1::SharesResponse>> rh;
  grpc::ByteBuffer bytes;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> rb;
};

// kSeriesBytes: the Series call of kSeries received as bytes and not parsed, which tells the
// server and the transport apart from the client's parse of 39,420 points.
// kSeriesBuilt: the same answer asked with a to_date after every crawl that no earlier call asked
// (years 3000 to 3999), so the aggregator builds it instead of sending a cached one.
// kSeriesColumns: the Series call of kSeries asked in columns (SeriesRequest.columns: the crawls
// once, a packed list of values a line), received and parsed: the same figures, another shape.
enum class Kind { kFamilies, kSeries, kSeriesColumns, kSeriesBytes, kSeriesBuilt, kShares };

struct Result {
  std::vector<double> ms;
  double seconds = 0;
  int64_t failed = 0;
  std::string first_error;
  int64_t answer_size = 0;  // a sanity figure: series points / families / months per answer
  std::string last_answer;  // the last answer's bytes, for the client's own parse time
};

Result RunLoad(Census::Stub* stub, grpc::GenericStub* generic, Kind kind, int concurrency,
               const Flags& f) {
  grpc::CompletionQueue cq;
  Result res;
  int64_t started = 0, finished = 0;
  const auto t0 = Clock::now();
  const auto deadline =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(f.seconds));
  auto start_one = [&]() {
    auto* call = new Call;
    call->start = Clock::now();
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    switch (kind) {
      case Kind::kFamilies: {
        hubcensus::v1::FamiliesRequest req;  // the latest crawl, the served families
        call->rf = stub->PrepareAsyncFamilies(&call->ctx, req, &cq);
        call->rf->StartCall();
        call->rf->Finish(&call->families, &call->status, call);
        break;
      }
      case Kind::kSeries:
      case Kind::kSeriesColumns:
      case Kind::kSeriesBuilt: {
        hubcensus::v1::SeriesRequest req;  // every family, every crawl
        req.set_metric("ecosystem_downloads_all_time");
        req.set_columns(kind == Kind::kSeriesColumns);
        if (kind == Kind::kSeriesBuilt) {
          char to[16];
          std::snprintf(to, sizeof(to), "%04d-01-01", 3000 + static_cast<int>(started % 1000));
          req.set_to_date(to);
        }
        call->rs = stub->PrepareAsyncSeries(&call->ctx, req, &cq);
        call->rs->StartCall();
        call->rs->Finish(&call->series, &call->status, call);
        break;
      }
      case Kind::kSeriesBytes: {
        hubcensus::v1::SeriesRequest req;
        req.set_metric("ecosystem_downloads_all_time");
        grpc::Slice slice(req.SerializeAsString());
        grpc::ByteBuffer request(&slice, 1);
        call->rb =
            generic->PrepareUnaryCall(&call->ctx, "/hubcensus.v1.Census/Series", request, &cq);
        call->rb->StartCall();
        call->rb->Finish(&call->bytes, &call->status, call);
        break;
      }
      case Kind::kShares: {
        hubcensus::v1::SharesRequest req;  // the latest crawl, every month
        call->rh = stub->PrepareAsyncShares(&call->ctx, req, &cq);
        call->rh->StartCall();
        call->rh->Finish(&call->shares, &call->status, call);
        break;
      }
    }
    ++started;
  };
  for (int i = 0; i < concurrency && started < f.requests; ++i) start_one();
  void* tag = nullptr;
  bool ok = false;
  while (finished < started && cq.Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    ++finished;
    const auto now = Clock::now();
    if (!ok || !call->status.ok()) {
      if (res.failed++ == 0) res.first_error = call->status.error_message();
    } else {
      res.ms.push_back(std::chrono::duration<double, std::milli>(now - call->start).count());
      if (kind == Kind::kFamilies) res.answer_size = call->families.families_size();
      if (kind == Kind::kShares) res.answer_size = call->shares.months_size();
      if (kind == Kind::kSeries || kind == Kind::kSeriesBuilt || kind == Kind::kSeriesColumns) {
        int64_t points = 0;
        for (const auto& line : call->series.lines()) points += line.points_size();
        for (const auto& line : call->series.lines()) points += line.values_size();
        res.answer_size = points;
      }
      if (kind == Kind::kSeriesBytes) res.answer_size = static_cast<int64_t>(call->bytes.Length());
      if (finished == started && (started >= f.requests || now >= deadline)) {
        if (kind == Kind::kFamilies) res.last_answer = call->families.SerializeAsString();
        if (kind == Kind::kSeries || kind == Kind::kSeriesBuilt || kind == Kind::kSeriesColumns) {
          res.last_answer = call->series.SerializeAsString();
        }
        if (kind == Kind::kShares) res.last_answer = call->shares.SerializeAsString();
        std::vector<grpc::Slice> slices;
        if (kind == Kind::kSeriesBytes && call->bytes.Dump(&slices).ok()) {
          for (const auto& piece : slices) {
            res.last_answer.append(reinterpret_cast<const char*>(piece.begin()), piece.size());
          }
        }
      }
    }
    if (started < f.requests && now < deadline) start_one();
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return res;
}

// What the client alone spends parsing one answer (median of 21 parses): the part of every call's
// time that no server change removes.
// With `arena`, into a message on a protobuf Arena (one allocation per block, not per point):
// what a client that chose to could save.
double ClientParseMs(Kind kind, const std::string& bytes, bool arena) {
  std::vector<double> ms;
  for (int i = 0; i < 21; ++i) {
    google::protobuf::Arena on;
    google::protobuf::Arena* where = arena ? &on : nullptr;
    auto* families = google::protobuf::Arena::CreateMessage<hubcensus::v1::FamiliesResponse>(where);
    auto* series = google::protobuf::Arena::CreateMessage<hubcensus::v1::SeriesResponse>(where);
    auto* shares = google::protobuf::Arena::CreateMessage<hubcensus::v1::SharesResponse>(where);
    const auto t = Clock::now();
    if (kind == Kind::kFamilies) families->ParseFromString(bytes);
    if (kind == Kind::kSeries || kind == Kind::kSeriesBytes || kind == Kind::kSeriesBuilt ||
        kind == Kind::kSeriesColumns) {
      series->ParseFromString(bytes);
    }
    if (kind == Kind::kShares) shares->ParseFromString(bytes);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
    if (!arena) {
      delete families;
      delete series;
      delete shares;
    }
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t k = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(k, v.size() - 1)];
}

int Load(const Flags& f, const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = Census::NewStub(channel);
  grpc::GenericStub generic(channel);
  int64_t crawls = 0;
  {
    grpc::ClientContext ctx;
    hubcensus::v1::ListCommittedCrawlsResponse resp;
    grpc::Status s = stub->ListCrawls(&ctx, {}, &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "census_load: ListCrawls: %s\n", s.error_message().c_str());
      return 1;
    }
    crawls = resp.crawls_size();
  }
  std::printf("load: %" PRId64 " committed crawls; at most %" PRId64 " calls or %.0f s per row\n",
              crawls, f.requests, f.seconds);
  // bench/peers/run.mjs reads the columns up to `answer` by position; later ones go after it.
  std::printf("%-9s %8s %8s %9s %9s %9s %10s %8s %-14s %9s %15s %s\n", "rpc", "in_flight", "calls",
              "p50_ms", "p99_ms", "max_ms", "calls/s", "failed", "answer", "p99.9_ms",
              "client_parse_ms", "arena_parse_ms");
  int status = 0;
  const std::pair<Kind, const char*> kinds[] = {
      {Kind::kFamilies, "Families"},           {Kind::kSeries, "Series"},
      {Kind::kSeriesColumns, "SeriesColumns"}, {Kind::kSeriesBytes, "SeriesBytes"},
      {Kind::kSeriesBuilt, "SeriesBuilt"},     {Kind::kShares, "Shares"}};
  for (const auto& [kind, name] : kinds) {
    if (("," + f.rpcs + ",").find(std::string(",") + name + ",") == std::string::npos) continue;
    // One call first, untimed: a first query may read the crawl from disk into caches.
    Flags warm = f;
    warm.requests = 1;
    RunLoad(stub.get(), &generic, kind, 1, warm);
    for (int c : f.concurrency) {
      Result r = RunLoad(stub.get(), &generic, kind, c, f);
      const std::string answer =
          std::to_string(r.answer_size) +
          (kind == Kind::kSeries || kind == Kind::kSeriesBuilt || kind == Kind::kSeriesColumns
               ? " points"
           : kind == Kind::kSeriesBytes ? " bytes"
           : kind == Kind::kShares      ? " months"
                                        : " families");
      std::printf("%-9s %8d %8zu %9.2f %9.2f %9.2f %10.1f %8" PRId64 " %-14s %9.2f %15.3f %.3f\n",
                  name, c, r.ms.size(), Percentile(r.ms, 0.5), Percentile(r.ms, 0.99),
                  Percentile(r.ms, 1.0), r.ms.size() / r.seconds, r.failed, answer.c_str(),
                  Percentile(r.ms, 0.999), ClientParseMs(kind, r.last_answer, false),
                  ClientParseMs(kind, r.last_answer, true));
      std::fflush(stdout);
      if (r.failed) {
        std::fprintf(stderr, "census_load: %s: %" PRId64 " calls failed, first: %.200s\n", name,
                     r.failed, r.first_error.c_str());
        status = 1;
      }
    }
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  if (!ParseFlags(argc, argv, &f)) return 2;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  args.SetMaxSendMessageSize(256 << 20);
  auto channel = grpc::CreateCustomChannel(f.aggregator, grpc::InsecureChannelCredentials(), args);
  return f.fill ? Fill(f, channel) : Load(f, channel);
}
