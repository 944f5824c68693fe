// `hubcensus demo` at a small size, checked against the simulator's ground truth, and its report
// opened in headless Chromium.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/testing/png.h"
#include "tests/testing/subprocess.h"

namespace hubcensus {
namespace {

using testing::HubcensusBinary;
using testing::MakeTempDir;
using testing::RunToCompletion;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::vector<std::string> Chromium(const std::string& profile) {
  return {"/usr/bin/chromium",
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--user-data-dir=" + profile};
}

class DemoE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    out_dir_ = new std::string(MakeTempDir("demo-e2e") + "/report");
    output_ = new std::string();
    exit_code_ = RunToCompletion({HubcensusBinary(), "demo", "--repos=4000", "--out=" + *out_dir_},
                                 output_, absl::Minutes(10));
  }
  static std::string* out_dir_;
  static std::string* output_;
  static int exit_code_;
};
std::string* DemoE2E::out_dir_ = nullptr;
std::string* DemoE2E::output_ = nullptr;
int DemoE2E::exit_code_ = -1;

TEST_F(DemoE2E, EveryFigureEqualsGroundTruth) {
  ASSERT_EQ(exit_code_, 0) << *output_;
  EXPECT_NE(output_->find("23 monthly censuses"), std::string::npos) << *output_;
  EXPECT_NE(output_->find("ground truth: every figure of all 23 censuses equals"),
            std::string::npos)
      << *output_;
  EXPECT_NE(output_->find("Qwen passed Llama in the census of 2025-"), std::string::npos)
      << *output_;
  EXPECT_NE(output_->find("new derivative models in 2025-10: Qwen "), std::string::npos);
  for (const char* csv :
       {"cumulative_downloads.csv", "new_derivative_share.csv", "regions.csv", "families.csv"}) {
    std::string text = ReadFile(*out_dir_ + "/" + csv);
    EXPECT_GT(std::count(text.begin(), text.end(), '\n'), 3) << csv;
  }
  std::string cumulative = ReadFile(*out_dir_ + "/cumulative_downloads.csv");
  EXPECT_NE(cumulative.find("2025-10-31,crawl-2025-10-31,Qwen,china,385300000,"),
            std::string::npos);
  EXPECT_NE(cumulative.find("2025-10-31,crawl-2025-10-31,Llama,us,346200000,"), std::string::npos);
}

// Checks run inside the page by Chromium, after layout: written into <pre id="checks"> as
// key=value lines for the test to read from the dumped DOM.
constexpr const char* kPageChecks = R"js(<script>
(function () {
  var out = [];
  function add(k, v) { out.push(k + '=' + v); }
  var svgs = document.querySelectorAll('svg');
  add('svgs', svgs.length);
  var bad = [], overlaps = [];
  svgs.forEach(function (svg) {
    var marks = svg.querySelectorAll('circle.point, rect.share, rect.region, rect.bar');
    var untitled = 0;
    marks.forEach(function (m) {
      var t = m.querySelector('title');
      if (!t || !t.textContent.trim()) untitled++;
    });
    if (marks.length === 0 || untitled > 0) bad.push(svg.id + ':' + marks.length + ':' + untitled);
    var box = svg.getBoundingClientRect();
    if (box.width < 100 || box.height < 50) bad.push(svg.id + ':size');
    var labels = Array.prototype.map.call(svg.querySelectorAll('text.end-label'),
                                          function (t) { return t.getBoundingClientRect(); });
    for (var i = 0; i < labels.length; i++) {
      for (var j = i + 1; j < labels.length; j++) {
        var a = labels[i], b = labels[j];
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) {
          overlaps.push(svg.id + ':' + i + ':' + j);
        }
      }
    }
  });
  add('charts_without_hover', bad.join(','));
  add('label_overlaps', overlaps.join(','));
  var chart = document.getElementById('chart-cumulative');
  var series = {};
  chart.querySelectorAll('circle.point').forEach(function (c) {
    var s = c.getAttribute('data-series');
    (series[s] = series[s] || []).push({date: c.getAttribute('data-date'),
                                        v: parseFloat(c.getAttribute('data-value')),
                                        x: parseFloat(c.getAttribute('cx'))});
  });
  var names = Object.keys(series), expected = 0, missing = [], misplaced = [];
  names.forEach(function (a) {
    names.forEach(function (b) {
      if (a === b) return;
      var A = series[a], B = series[b];
      for (var i = 1; i < A.length; i++) {
        if (!(A[i - 1].v <= B[i - 1].v && A[i].v > B[i].v)) continue;
        expected++;
        var g = chart.querySelector('g.crossover[data-a="' + a + '"][data-b="' + b +
                                    '"][data-date="' + A[i].date + '"]');
        if (!g) { missing.push(a + '>' + b + '@' + A[i].date); continue; }
        var circle = g.querySelector('circle');
        var cx = parseFloat(circle.getAttribute('cx'));
        if (!(cx >= A[i - 1].x - 0.05 && cx <= A[i].x + 0.05)) misplaced.push(a + '>' + b);
        if (g.getAttribute('data-previous-date') !== A[i - 1].date) misplaced.push(a + '>' + b);
        if (!circle.querySelector('title')) missing.push('title ' + a + '>' + b);
      }
    });
  });
  add('crossovers_expected', expected);
  add('crossovers_marked', chart.querySelectorAll('g.crossover').length);
  add('crossovers_missing', missing.join(','));
  add('crossovers_misplaced', misplaced.join(','));
  add('methodology', document.getElementById('methodology') ? 1 : 0);
  add('page_overflow', document.documentElement.scrollWidth > window.innerWidth
                           ? document.documentElement.scrollWidth : 0);
  var table = document.getElementById('family-table');
  table.tHead.rows[0].cells[0].querySelector('button').click();
  var families = Array.prototype.map.call(table.tBodies[0].rows,
                                          function (r) { return r.cells[0].textContent; });
  var sorted = families.slice().sort(function (a, b) { return a.localeCompare(b); });
  add('sorted_by_family', JSON.stringify(families) === JSON.stringify(sorted) ? 1 : 0);
  add('sort_status', document.getElementById('family-table-sort').textContent);
  var pre = document.createElement('pre');
  pre.id = 'checks';
  pre.textContent = out.join('\n');
  document.body.appendChild(pre);
})();
</script>)js";

// The value of key=value in the checks block of a dumped DOM ("<missing>" when absent).
std::string Check(const std::string& dom, const std::string& key) {
  size_t block = dom.find("<pre id=\"checks\">");
  if (block == std::string::npos) return "<missing>";
  size_t at = dom.find("\n" + key + "=", block);
  if (at == std::string::npos) at = dom.find(">" + key + "=", block);
  if (at == std::string::npos) return "<missing>";
  at += key.size() + 2;
  return dom.substr(at, dom.find_first_of("\n<", at) - at);
}

// Crossovers among `families` from cumulative_downloads.csv, as "a>b@date" (the design's rule:
// a <= b at one crawl, a > b at the next).
std::vector<std::string> CrossoversFromCsv(const std::string& csv,
                                           const std::vector<std::string>& families) {
  std::map<std::string, std::map<std::string, double>> by_family;  // family -> date -> value
  std::set<std::string> dates;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    if (cells.size() < 5) continue;
    by_family[cells[2]][cells[0]] = std::stod(cells[4]);
    dates.insert(cells[0]);
  }
  std::vector<std::string> ordered(dates.begin(), dates.end()), found;
  for (const auto& a : families) {
    for (const auto& b : families) {
      if (a == b) continue;
      for (size_t i = 1; i < ordered.size(); ++i) {
        double a0 = by_family[a][ordered[i - 1]], b0 = by_family[b][ordered[i - 1]];
        double a1 = by_family[a][ordered[i]], b1 = by_family[b][ordered[i]];
        if (a0 <= b0 && a1 > b1) found.push_back(a + ">" + b + "@" + ordered[i]);
      }
    }
  }
  return found;
}

// Copies the page with the checks added beside it (so relative links still resolve), opens it in
// headless Chromium at `width` and returns the DOM after the checks ran.
std::string DomAfterChecks(const std::string& report_dir, int width, const std::string& profile) {
  std::string checked = ReadFile(report_dir + "/index.html");
  checked.insert(checked.rfind("</body>"), kPageChecks);
  std::string checked_path = report_dir + "/index-checked.html";
  {
    std::ofstream out(checked_path, std::ios::binary | std::ios::trunc);
    out << checked;
  }
  std::string dom;
  auto argv = Chromium(profile);
  argv.push_back(absl::StrCat("--window-size=", width, ",1600"));
  argv.push_back("--dump-dom");
  argv.push_back("file://" + checked_path);
  EXPECT_EQ(RunToCompletion(argv, &dom, absl::Minutes(2)), 0) << dom;
  return dom;
}

// A store with one crawl: the page shows that census as bars and says why there are no lines.
TEST(DemoOneCrawl, ReportOfOneCrawlRendersInHeadlessChromium) {
  if (access("/usr/bin/chromium", X_OK) != 0) {
    GTEST_FAIL() << "/usr/bin/chromium is missing: scripts/setup-test-tools installs it";
  }
  std::string out_dir = MakeTempDir("demo-one-crawl") + "/report";
  std::string output;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "demo", "--repos=1000", "--from_month=2025-11",
                             "--to_month=2025-11", "--out=" + out_dir},
                            &output, absl::Minutes(10)),
            0)
      << output;
  std::string profile = MakeTempDir("chromium-profile-one");
  for (int width : {1400, 420}) {
    SCOPED_TRACE(width);
    std::string dom = DomAfterChecks(out_dir, width, profile);
    EXPECT_NE(dom.find("The store holds one census, of 2025-11-30"), std::string::npos);
    EXPECT_NE(dom.find("<rect class=\"bar\" data-series=\"Qwen\""), std::string::npos);
    EXPECT_EQ(dom.find("<polyline"), std::string::npos);
    EXPECT_GE(std::stoi(Check(dom, "svgs")), 3);
    EXPECT_EQ(Check(dom, "charts_without_hover"), "");
    EXPECT_EQ(Check(dom, "methodology"), "1");
    EXPECT_EQ(Check(dom, "page_overflow"), "0");
    EXPECT_EQ(Check(dom, "sorted_by_family"), "1");
  }
}

TEST_F(DemoE2E, ReportRendersInHeadlessChromium) {
  ASSERT_EQ(exit_code_, 0) << *output_;
  if (access("/usr/bin/chromium", X_OK) != 0) {
    GTEST_FAIL() << "/usr/bin/chromium is missing: scripts/setup-test-tools installs it";
  }
  std::string html = ReadFile(*out_dir_ + "/index.html");
  // Every crossover among the plotted families, found from the CSV, is marked in the page.
  std::vector<std::string> plotted;
  const std::string series_attr = "class=\"series\" data-series=\"";
  size_t chart_end = html.find("</svg>", html.find("id=\"chart-cumulative\""));
  for (size_t at = html.find(series_attr); at != std::string::npos && at < chart_end;
       at = html.find(series_attr, at + 1)) {
    size_t begin = at + series_attr.size();
    plotted.push_back(html.substr(begin, html.find('"', begin) - begin));
  }
  EXPECT_GE(plotted.size(), 4u);
  std::vector<std::string> crossovers =
      CrossoversFromCsv(ReadFile(*out_dir_ + "/cumulative_downloads.csv"), plotted);
  EXPECT_FALSE(crossovers.empty());
  bool qwen_passes_llama = false;
  for (const auto& c : crossovers) {
    std::string a = c.substr(0, c.find('>'));
    std::string b = c.substr(c.find('>') + 1, c.find('@') - c.find('>') - 1);
    std::string date = c.substr(c.find('@') + 1);
    qwen_passes_llama |= a == "Qwen" && b == "Llama";
    EXPECT_NE(html.find("<g class=\"crossover\"" +
                        std::string(a == "Qwen" && b == "Llama" ? " id=\"crossover-marker\"" : "") +
                        " data-a=\"" + a + "\" data-b=\"" + b + "\" data-previous-date=\""),
              std::string::npos)
        << c;
    EXPECT_NE(html.find("data-a=\"" + a + "\" data-b=\"" + b + "\" data-date=\"" + date + "\">"),
              std::string::npos)
        << c << " is not in the crossover list";
  }
  EXPECT_TRUE(qwen_passes_llama);
  int marked = 0;
  for (size_t at = html.find("<g class=\"crossover\""); at != std::string::npos;
       at = html.find("<g class=\"crossover\"", at + 1)) {
    ++marked;
  }
  EXPECT_EQ(marked, static_cast<int>(crossovers.size()));

  std::string profile = MakeTempDir("chromium-profile");
  for (int width : {1400, 420}) {
    SCOPED_TRACE(width);
    std::string dom = DomAfterChecks(*out_dir_, width, profile);
    EXPECT_NE(dom.find("class=\"series\" data-series=\"Qwen\""), std::string::npos);
    EXPECT_NE(dom.find("data-series=\"Qwen\" data-month=\"2025-10\""), std::string::npos);
    EXPECT_GE(std::stoi(Check(dom, "svgs")), 5) << dom.substr(dom.find("<pre id=\"checks\">"));
    EXPECT_EQ(Check(dom, "charts_without_hover"), "");
    EXPECT_EQ(Check(dom, "label_overlaps"), "");
    EXPECT_EQ(Check(dom, "crossovers_expected"), std::to_string(crossovers.size()));
    EXPECT_EQ(Check(dom, "crossovers_marked"), std::to_string(crossovers.size()));
    EXPECT_EQ(Check(dom, "crossovers_missing"), "");
    EXPECT_EQ(Check(dom, "crossovers_misplaced"), "");
    EXPECT_EQ(Check(dom, "methodology"), "1");
    EXPECT_EQ(Check(dom, "page_overflow"), "0") << "the page is wider than the window";
    EXPECT_EQ(Check(dom, "sorted_by_family"), "1");
    EXPECT_EQ(Check(dom, "sort_status"),
              "Sorted by family, A to Z. Click a column heading to sort by it; click again to "
              "reverse.");

    std::string shot = MakeTempDir("chromium-shot") + "/report.png";
    auto argv = Chromium(profile);
    argv.push_back(absl::StrCat("--window-size=", width, ",1600"));
    argv.push_back("--screenshot=" + shot);
    argv.push_back("file://" + *out_dir_ + "/index.html");
    std::string log;
    ASSERT_EQ(RunToCompletion(argv, &log, absl::Minutes(2)), 0) << log;
    auto image = testing::DecodePng(ReadFile(shot));
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->width, width);
    testing::ImageStats stats = testing::Analyse(*image);
    // Charts and text cover far more than a few stray pixels, in many colours.
    EXPECT_GT(stats.non_background_pixels, image->width * image->height / 50);
    EXPECT_GT(stats.distinct_colours, 20);
  }
}

TEST_F(DemoE2E, ReportCommandRewritesTheReportFromTheStore) {
  ASSERT_EQ(exit_code_, 0) << *output_;
  std::string again = MakeTempDir("report-again") + "/r";
  std::string out;
  ASSERT_EQ(RunToCompletion({HubcensusBinary(), "report", "--data_dir=" + *out_dir_ + "/data/store",
                             "--out=" + again},
                            &out),
            0)
      << out;
  EXPECT_NE(out.find("(23 crawls)"), std::string::npos) << out;
  // The same store gives the same figures (the demo adds only its ground-truth sentence).
  for (const char* csv :
       {"cumulative_downloads.csv", "new_derivative_share.csv", "regions.csv", "families.csv"}) {
    EXPECT_EQ(ReadFile(again + "/" + csv), ReadFile(*out_dir_ + "/" + csv)) << csv;
  }
  EXPECT_EQ(RunToCompletion({HubcensusBinary(), "report", "--out=" + again}, &out), 2);
  EXPECT_NE(out.find("one of --data_dir or --aggregator"), std::string::npos) << out;
  EXPECT_EQ(
      RunToCompletion(
          {HubcensusBinary(), "report", "--data_dir=/nonexistent/store", "--out=" + again}, &out),
      1);
}

}  // namespace
}  // namespace hubcensus
