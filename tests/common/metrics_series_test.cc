// Every Prometheus series the docs name (docs/deploy.md's metrics table, by role, and any other
// `hubcensus_...` series docs/running.md mentions) is on a fresh process's /metrics before any
// event, at 0, with the labels the docs give it: alerts and rates see a series from the start,
// not after its first event. The list is read from the docs, so the docs and the code cannot drift.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "hub/http_transport.h"
#include "re2/re2.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using testing::HubcensusBinary;
using testing::MakeTempDir;
using testing::Subprocess;

struct DocumentedSeries {
  std::string name;
  std::vector<std::string> labels;
  std::string from;  // "coordinator", "crawlers", "aggregator", or a comma list; "" for any
  std::string doc;
};

std::string ReadDoc(const std::string& name) {
  std::ifstream in(std::string(HUBCENSUS_SOURCE_DIR) + "/docs/" + name);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_FALSE(text.str().empty()) << "docs/" << name;
  return text.str();
}

// The `hubcensus_name{label,label}` mentions in `text`.
std::vector<DocumentedSeries> SeriesIn(absl::string_view text, const std::string& from,
                                       const std::string& doc) {
  static const RE2 kSeries("`(hubcensus_[a-z0-9_]+)(?:\\{([a-z_,]*)\\})?`");
  std::vector<DocumentedSeries> out;
  re2::StringPiece input(text.data(), text.size());
  std::string name, labels;
  while (RE2::FindAndConsume(&input, kSeries, &name, &labels)) {
    DocumentedSeries s{name, {}, from, doc};
    if (!labels.empty()) s.labels = absl::StrSplit(labels, ',');
    out.push_back(s);
  }
  return out;
}

std::vector<DocumentedSeries> DocumentedList() {
  std::vector<DocumentedSeries> out;
  std::set<std::string> named;
  std::string deploy = ReadDoc("deploy.md");
  size_t section = deploy.find("### Metrics");
  EXPECT_NE(section, std::string::npos) << "docs/deploy.md has no ### Metrics section";
  for (absl::string_view line : absl::StrSplit(deploy.substr(section), '\n')) {
    if (!absl::StartsWith(line, "| `hubcensus_")) continue;
    std::vector<std::string> cells = absl::StrSplit(line, '|');
    if (cells.size() < 4) {
      ADD_FAILURE() << "docs/deploy.md: not a table row: " << line;
      continue;
    }
    std::string from(absl::StripAsciiWhitespace(cells[2]));
    for (auto& s : SeriesIn(cells[1], from, "deploy.md")) {
      named.insert(s.name);
      out.push_back(s);
    }
  }
  for (auto& s : SeriesIn(ReadDoc("running.md"), "", "running.md")) {
    if (named.insert(s.name).second) out.push_back(s);
  }
  return out;
}

// /metrics of a role started fresh (nothing to do: its peers are not there or idle).
std::string FreshMetrics(const std::string& role, std::vector<std::string> argv,
                         const std::string& ready, std::optional<Subprocess>* process) {
  argv.insert(argv.begin(), {HubcensusBinary(), role});
  argv.push_back("--metrics_port=-1");
  *process = Subprocess::Start(argv);
  if (!process->has_value()) {
    ADD_FAILURE() << role << ": cannot start";
    return "";
  }
  std::optional<std::string> line = (*process)->WaitForOutput("metrics_listening");
  if (!line) {
    ADD_FAILURE() << role << ": no metrics_listening line\n" << (*process)->Output();
    return "";
  }
  size_t at = line->find("port=");
  int port = 0;
  if (at == std::string::npos ||
      !absl::SimpleAtoi(line->substr(at + 5, line->find_first_of(" \n", at) - at - 5), &port)) {
    ADD_FAILURE() << role << ": " << *line;
    return "";
  }
  // The metrics endpoint starts first: wait until the role has started its server or worker.
  if (!(*process)->WaitForOutput(ready)) {
    ADD_FAILURE() << role << ": never printed " << ready << "\n" << (*process)->Output();
  }
  hub::HttpRequest request;
  request.url = absl::StrCat("http://127.0.0.1:", port, "/metrics");
  hub::HttpResponse response = hub::NewCurlTransport()->Send(request);
  EXPECT_EQ(response.status, 200) << role << ": " << response.transport_error;
  return response.body;
}

// The series' sample lines in a /metrics body: "name{...} value" or "name value".
std::vector<std::string> Samples(const std::string& body, const std::string& name) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (absl::StartsWith(line, name + "{") || absl::StartsWith(line, name + " ")) {
      out.emplace_back(line);
    }
  }
  return out;
}

TEST(MetricsSeries, EveryDocumentedSeriesIsOnAFreshProcess) {
  std::vector<DocumentedSeries> documented = DocumentedList();
  // The docs list these today; a parse that finds fewer has lost the table.
  ASSERT_GE(documented.size(), 13u);

  std::string state = MakeTempDir("coordinator"), data = MakeTempDir("aggregator");
  std::optional<Subprocess> coordinator, aggregator, crawler;
  std::map<std::string, std::string> metrics;
  metrics["coordinator"] = FreshMetrics(
      "coordinator", {"--state_dir=" + state, "--store=127.0.0.1:1", "--listen=127.0.0.1:0"},
      "coordinator_serving", &coordinator);
  metrics["aggregator"] = FreshMetrics("aggregator", {"--data_dir=" + data, "--listen=127.0.0.1:0"},
                                       "aggregator_started", &aggregator);
  metrics["crawlers"] = FreshMetrics(
      "crawler", {"--coordinator=127.0.0.1:1", "--store=127.0.0.1:1", "--parallelism=1"},
      "crawler_started", &crawler);

  for (const DocumentedSeries& s : documented) {
    std::vector<std::string> roles;
    if (s.from.empty()) {
      roles = {"coordinator", "aggregator", "crawlers"};
    } else {
      roles = absl::StrSplit(s.from, ", ");
      for (const std::string& role : roles) {
        ASSERT_TRUE(metrics.count(role)) << s.doc << " names an unknown role \"" << role << "\"";
      }
    }
    int found_in = 0;
    for (const std::string& role : roles) {
      std::vector<std::string> samples = Samples(metrics[role], s.name);
      if (samples.empty()) {
        if (s.from.empty()) continue;  // running.md's mentions need only be somewhere
        ADD_FAILURE() << s.name << " (docs/" << s.doc << ", from " << s.from
                      << ") is not on a fresh " << role << "'s /metrics";
        continue;
      }
      ++found_in;
      for (const std::string& label : s.labels) {
        bool labelled = false;
        for (const std::string& sample : samples) {
          labelled |= absl::StrContains(sample, absl::StrCat(label, "=\""));
        }
        EXPECT_TRUE(labelled) << s.name << " on " << role << " has no series with label " << label
                              << ": " << samples[0];
      }
      for (const std::string& sample : samples) {
        EXPECT_TRUE(absl::EndsWith(sample, " 0")) << "fresh " << role << ": " << sample;
      }
    }
    if (s.from.empty()) {
      EXPECT_GT(found_in, 0) << s.name << " (docs/" << s.doc << ") is on no fresh role's /metrics";
    }
  }
}

}  // namespace
}  // namespace hubcensus
