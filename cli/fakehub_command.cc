#include <cstdio>

#include "cli/commands.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/shutdown.h"
#include "fakehub/fakehub.h"

namespace hubcensus::cli {

int RunFakehub(const Args& args) {
  fakehub::FakeHubOptions o;
  int64_t port = 0, seed = 1, threads = o.threads, heavy_page_limit = 0;
  FlagSet flags(
      "hubcensus fakehub [flags]",
      "Serves a simulated Hugging Face Hub (the API of shared/hub-api.md) over a generated Hub\n"
      "with a simulated date, ground truth (GET /_sim/truth?date=YYYY-MM-DD[&policy=split|root]),\n"
      "rate limits and seeded faults. POST /_sim/clock?date=YYYY-MM-DD moves the date;\n"
      "GET /_sim/ids?date= lists every public repo id. Prints\n"
      "`fakehub listening on http://ADDR:PORT` once serving, then serves until SIGTERM/SIGINT.\n\n"
      "Fault kinds (--faults=KIND=R,...):\n" +
          fakehub::FaultKindsHelp() +
          "\nThe Hub as recorded (shared/hub-api.md): listings with a bearer token (any token)\n"
          "also list --private_repos (\"private\": true); anonymous ones never do. Per repo:\n"
          "missing or private 401 {\"error\":\"Invalid username or password.\"} (404\n"
          "RepoNotFound with a token), disabled 403, gated without access 401 GatedRepo,\n"
          "renamed 307 with a relative Location, a bad revision 404 RevisionNotFound.\n"
          "Legacy repos carry either placeholder createdAt (2022-03-02T23:29:04/05.000Z).\n"
          "The truth counts the public Hub: private repos never; a private parent is missing;\n"
          "placeholder-dated repos count in every sum and are new in no month.\n"
          "\nHostile modes (--hostile=MODE,MODE; off by default):\n" +
          fakehub::HostileModesHelp());
  flags.Int("port", &port, "TCP port; 0 picks a free one and prints it");
  flags.String("listen", &o.listen_address, "IPv4 address to bind");
  flags.Int("repos", &o.repos, "repos in the generated Hub at the scenario's end (1000..10000000)");
  flags.Int("seed", &seed, "generator seed: the same seed gives byte-identical pages");
  flags.String("date", &o.date,
               "simulated date YYYY-MM-DD at start (default: scenario end, 2025-12-31)");
  flags.String("scenario", &o.scenario,
               "scenario: article (2023-06..2025-12, calibrated to the "
               "published figures)");
  flags.String("rate_limit", &o.rate_limit,
               "QUOTA/WINDOW_S per token (per client address without one), or off");
  flags.Double("fault_rate", &o.fault_rate,
               "probability of a fault per request, spread over "
               "every kind");
  flags.String("faults", &o.faults, "KIND=R,KIND=R: per-kind fault probabilities (see above)");
  flags.String("fixture", &o.fixture_path,
               "serve this JSON array of real entries instead of a generated Hub");
  flags.Double("stall_seconds", &o.stall_seconds, "how long a stall fault holds a request");
  flags.Int("threads", &threads, "HTTP worker threads");
  flags.Double("private_repos", &o.private_repos,
               "fraction (0..1) of repos private to the token: listed only to "
               "requests with a bearer token, never in the truth");
  flags.Double("gated_no_access", &o.gated_no_access,
               "fraction (0..1) of gated repos whose per-repo endpoint answers anonymous "
               "requests 401 X-Error-Code: GatedRepo");
  flags.Int("heavy_page_limit", &heavy_page_limit,
            "listing requests with limit above N answer 504 with an HTML body (0: off)");
  flags.Double("page_latency_ms", &o.page_latency_ms,
               "answer each listing page after MS per 1,000 entries (the real Hub's pace; "
               "holds no worker thread)");
  flags.String("hostile", &o.hostile, "MODE,MODE: hostile listing behaviours (see above)");
  flags.String("foreign_origin", &o.foreign_origin,
               "http://HOST:PORT that foreign_next and foreign_redirect point at");
  if (auto code = ParseFlagsOrExit(flags, args)) return *code;
  o.port = static_cast<int>(port);
  o.seed = static_cast<uint64_t>(seed);
  o.threads = static_cast<int>(threads);
  o.heavy_page_limit = static_cast<int>(heavy_page_limit);
  auto hub = fakehub::FakeHub::Start(o);
  if (!hub.ok()) {
    std::fprintf(stderr, "hubcensus fakehub: %s\n", std::string(hub.status().message()).c_str());
    return hub.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  HC_LOG(kInfo, "fakehub_started")
      .Field("url", (*hub)->url())
      .Field("repos", (*hub)->repo_slots())
      .Field("memory_bytes", static_cast<int64_t>((*hub)->memory_bytes()))
      .Field("date", (*hub)->date());
  std::printf("fakehub listening on %s\n", (*hub)->url().c_str());
  std::fflush(stdout);
  WaitForShutdown();
  (*hub)->Stop();
  HC_LOG(kInfo, "fakehub_stopped");
  return 0;
}

}  // namespace hubcensus::cli
