#include "embedded/report.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace hubcensus {
namespace {

constexpr const char* kPalette[] = {"#e4572e", "#2e86ab", "#8cb369", "#f4a259",
                                    "#7b2d8b", "#3d5a80", "#9a8c98"};
constexpr const char* kOtherColour = "#b0b0b0";

std::string Escape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string CsvField(absl::string_view s) {
  if (s.find_first_of(",\"\n") == absl::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

std::string Number(double v) {
  if (std::fabs(v - std::round(v)) < 1e-9)
    return absl::StrCat(static_cast<int64_t>(std::llround(v)));
  return absl::StrFormat("%.4f", v);
}

// "385.3M", "10.6M", "512k".
std::string Human(double v) {
  double a = std::fabs(v);
  if (a >= 1e9) return absl::StrFormat("%.2fB", v / 1e9);
  if (a >= 1e6) return absl::StrFormat("%.1fM", v / 1e6);
  if (a >= 1e3) return absl::StrFormat("%.0fk", v / 1e3);
  return Number(v);
}

// A "nice" axis maximum at or above v.
double NiceCeiling(double v) {
  if (v <= 0) return 1;
  double p = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}

// The families drawn by name: the largest by first-party all-time downloads at the latest crawl,
// plus the two of the crossover.
std::vector<std::string> TopFamilies(const ReportData& data) {
  std::vector<std::string> names;
  if (data.crawls.empty()) return names;
  std::vector<std::pair<int64_t, std::string>> ranked;
  for (const auto& f : data.crawls.back().families()) {
    ranked.emplace_back(f.figures().first_party_downloads_all_time(), f.family());
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& x, const auto& y) { return x.first > y.first; });
  for (const std::string& must : {data.crossover_a, data.crossover_b}) {
    for (const auto& r : ranked) {
      if (r.second == must) names.push_back(must);
    }
  }
  for (const auto& r : ranked) {
    if (static_cast<int>(names.size()) >= kReportTopFamilies) break;
    if (r.first <= 0) break;
    if (std::find(names.begin(), names.end(), r.second) == names.end()) names.push_back(r.second);
  }
  return names;
}

struct Frame {
  double left = 70, right = 160, top = 20, bottom = 40, width = 860, height = 340;
  double plot_w() const { return width - left - right; }
  double plot_h() const { return height - top - bottom; }
};

void AxisY(std::string* svg, const Frame& f, double max, bool percent) {
  for (int i = 0; i <= 4; ++i) {
    double v = max * i / 4;
    double y = f.top + f.plot_h() * (1 - static_cast<double>(i) / 4);
    absl::StrAppendFormat(
        svg,
        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
        "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>",
        f.left, f.left + f.plot_w(), y, y, f.left - 6, y + 4,
        percent ? absl::StrFormat("%.0f%%", v * 100) : Human(v));
  }
}

std::string CumulativeChart(const ReportData& data, const std::vector<std::string>& names) {
  Frame f;
  std::string svg = absl::StrFormat(
      "<svg id=\"chart-cumulative\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
      "aria-label=\"Cumulative first-party downloads by family\">",
      f.width, f.height);
  size_t n = data.crawls.size();
  double max = 0;
  std::map<std::string, std::vector<double>> values;
  for (const auto& name : names) values[name].assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    for (const auto& fam : data.crawls[i].families()) {
      auto it = values.find(fam.family());
      if (it == values.end()) continue;
      it->second[i] = fam.figures().first_party_downloads_all_time();
      max = std::max(max, it->second[i]);
    }
  }
  max = NiceCeiling(max);
  AxisY(&svg, f, max, false);
  auto x_of = [&](size_t i) {
    return n <= 1 ? f.left + f.plot_w() / 2 : f.left + f.plot_w() * i / (n - 1);
  };
  auto y_of = [&](double v) { return f.top + f.plot_h() * (1 - v / max); };
  // Date labels: first, last, and every few in between.
  size_t step = std::max<size_t>(1, n / 6);
  for (size_t i = 0; i < n; i += step) {
    absl::StrAppendFormat(
        &svg, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%s</text>",
        x_of(i), f.top + f.plot_h() + 18, Escape(data.crawls[i].date()));
  }
  int colour = 0;
  struct EndLabel {
    double y;
    std::string text;
    const char* colour;
  };
  std::vector<EndLabel> labels;
  for (const auto& name : names) {
    const auto& v = values[name];
    std::vector<std::string> points;
    for (size_t i = 0; i < n; ++i)
      points.push_back(absl::StrFormat("%.1f,%.1f", x_of(i), y_of(v[i])));
    const char* c = kPalette[colour++ % 7];
    absl::StrAppendFormat(
        &svg,
        "<polyline class=\"series\" data-series=\"%s\" fill=\"none\" stroke=\"%s\" "
        "stroke-width=\"2.5\" points=\"%s\"><title>%s</title></polyline>",
        Escape(name), c, absl::StrJoin(points, " "), Escape(name));
    if (n > 0) labels.push_back({y_of(v[n - 1]) + 4, absl::StrCat(name, " ", Human(v[n - 1])), c});
  }
  // Lines that end close together would print their labels on top of each other: push apart.
  std::sort(labels.begin(), labels.end(), [](const auto& a, const auto& b) { return a.y < b.y; });
  for (size_t i = 1; i < labels.size(); ++i) {
    labels[i].y = std::max(labels[i].y, labels[i - 1].y + 14);
  }
  for (const auto& l : labels) {
    absl::StrAppendFormat(&svg, "<text x=\"%.1f\" y=\"%.1f\" class=\"label\" fill=\"%s\">%s</text>",
                          x_of(n - 1) + 8, l.y, l.colour, Escape(l.text));
  }
  if (data.crossover.found()) {
    for (size_t i = 0; i < n; ++i) {
      if (data.crawls[i].date() != data.crossover.date()) continue;
      double x = x_of(i), y = y_of(data.crossover.a_value());
      absl::StrAppendFormat(
          &svg,
          "<g id=\"crossover-marker\" data-date=\"%s\" data-a=\"%s\" data-b=\"%s\">"
          "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"none\" stroke=\"#111\" "
          "stroke-width=\"2\"/>"
          "<text x=\"%.1f\" y=\"%.1f\" class=\"label\" text-anchor=\"end\">%s passes %s: "
          "%s</text></g>",
          Escape(data.crossover.date()), Escape(data.crossover_a), Escape(data.crossover_b), x, y,
          x - 10, y - 12, Escape(data.crossover_a), Escape(data.crossover_b),
          Escape(data.crossover.date()));
    }
  }
  svg += "</svg>";
  return svg;
}

std::string SharesChart(const ReportData& data, const std::vector<std::string>& names) {
  Frame f;
  std::string svg = absl::StrFormat(
      "<svg id=\"chart-shares\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
      "aria-label=\"Share of new derivative models by family, per month\">",
      f.width, f.height);
  AxisY(&svg, f, 1.0, true);
  const auto& months = data.shares.months();
  size_t n = months.size();
  double slot = n == 0 ? 0 : f.plot_w() / n;
  size_t step = std::max<size_t>(1, n / 8);
  for (size_t i = 0; i < n; ++i) {
    const auto& m = months[i];
    double y = f.top + f.plot_h();
    double x = f.left + slot * i + slot * 0.1;
    double w = slot * 0.8;
    double named = 0;
    int colour = 0;
    auto bar = [&](const std::string& series, double share, const char* c) {
      double h = f.plot_h() * share;
      y -= h;
      absl::StrAppendFormat(&svg,
                            "<rect class=\"share\" data-series=\"%s\" data-month=\"%s\" x=\"%.1f\" "
                            "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s %s: "
                            "%.1f%%</title></rect>",
                            Escape(series), Escape(m.month()), x, y, w, h, c, Escape(series),
                            Escape(m.month()), share * 100);
    };
    for (const auto& name : names) {
      const char* c = kPalette[colour++ % 7];
      auto it = m.families().find(name);
      if (it == m.families().end()) continue;
      named += it->second.share();
      bar(name, it->second.share(), c);
    }
    if (m.total() > 0 && named < 1 - 1e-9) bar("Other", 1 - named, kOtherColour);
    if (i % step == 0) {
      absl::StrAppendFormat(
          &svg, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%s</text>",
          x + w / 2, f.top + f.plot_h() + 18, Escape(m.month()));
    }
  }
  // Legend.
  int colour = 0;
  double ly = f.top + 10;
  for (const auto& name : names) {
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" class=\"label\">%s</text>",
                          f.left + f.plot_w() + 14, ly, kPalette[colour++ % 7],
                          f.left + f.plot_w() + 32, ly + 10, Escape(name));
    ly += 20;
  }
  absl::StrAppendFormat(&svg,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\" class=\"label\">Other</text>",
                        f.left + f.plot_w() + 14, ly, kOtherColour, f.left + f.plot_w() + 32,
                        ly + 10);
  svg += "</svg>";
  return svg;
}

std::string RegionsChart(const v1::FamiliesResponse& latest) {
  Frame f;
  f.height = 260;
  std::string svg = absl::StrFormat(
      "<svg id=\"chart-regions\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
      "aria-label=\"First-party and ecosystem downloads by region\">",
      f.width, f.height);
  double max = 0;
  for (const auto& r : latest.regions()) {
    max = std::max({max, static_cast<double>(r.figures().first_party_downloads_all_time()),
                    r.figures().ecosystem_downloads_all_time()});
  }
  max = NiceCeiling(max);
  AxisY(&svg, f, max, false);
  size_t n = latest.regions_size();
  double slot = n == 0 ? 0 : f.plot_w() / n;
  for (size_t i = 0; i < n; ++i) {
    const auto& r = latest.regions(i);
    double fp = r.figures().first_party_downloads_all_time();
    double eco = r.figures().ecosystem_downloads_all_time();
    double x = f.left + slot * i + slot * 0.15;
    double w = slot * 0.33;
    for (int k = 0; k < 2; ++k) {
      double v = k == 0 ? fp : eco;
      double h = f.plot_h() * v / max;
      absl::StrAppendFormat(
          &svg,
          "<rect class=\"region\" data-region=\"%s\" data-metric=\"%s\" x=\"%.1f\" "
          "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s %s: "
          "%s</title></rect>",
          Escape(r.region()), k == 0 ? "first_party" : "ecosystem", x + k * w,
          f.top + f.plot_h() - h, w, h, k == 0 ? kPalette[1] : kPalette[3], Escape(r.region()),
          k == 0 ? "first-party" : "ecosystem", Human(v));
    }
    absl::StrAppendFormat(
        &svg, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%s</text>", x + w,
        f.top + f.plot_h() + 18, Escape(r.region()));
  }
  absl::StrAppendFormat(&svg,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\" class=\"label\">first-party</text>"
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                        "<text x=\"%.1f\" y=\"%.1f\" class=\"label\">ecosystem</text>",
                        f.left + f.plot_w() + 14, f.top + 10, kPalette[1], f.left + f.plot_w() + 32,
                        f.top + 20, f.left + f.plot_w() + 14, f.top + 30, kPalette[3],
                        f.left + f.plot_w() + 32, f.top + 40);
  svg += "</svg>";
  return svg;
}

std::string FamilyTable(const v1::FamiliesResponse& latest) {
  std::vector<const v1::FamilyFigures*> rows;
  for (const auto& f : latest.families()) {
    if (f.figures().first_party_repos() > 0 || f.figures().ecosystem_downloads_all_time() > 0) {
      rows.push_back(&f);
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) {
    return a->figures().ecosystem_downloads_all_time() >
           b->figures().ecosystem_downloads_all_time();
  });
  std::string out =
      "<table id=\"family-table\"><thead><tr><th>family</th><th>region</th><th>first-party "
      "repos</th><th>first-party downloads (all time)</th><th>first-party downloads (30 "
      "days)</th><th>ecosystem downloads (all time)</th><th>finetunes</th><th>adapters</th>"
      "<th>quantized</th><th>merges</th><th>unknown</th></tr></thead><tbody>";
  for (const auto* f : rows) {
    const auto& g = f->figures();
    const auto& d = g.derivatives();
    absl::StrAppend(&out, "<tr data-family=\"", Escape(f->family()), "\"><td>", Escape(f->family()),
                    "</td><td>", Escape(f->region()), "</td><td>", g.first_party_repos(),
                    "</td><td>", Human(g.first_party_downloads_all_time()), "</td><td>",
                    Human(g.first_party_downloads_30d()), "</td><td>",
                    Human(g.ecosystem_downloads_all_time()), "</td><td>", Number(d.finetune()),
                    "</td><td>", Number(d.adapter()), "</td><td>", Number(d.quantized()),
                    "</td><td>", Number(d.merge()), "</td><td>", Number(d.unknown()), "</td></tr>");
  }
  out += "</tbody></table>";
  return out;
}

absl::Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::UnavailableError(absl::StrCat(path, ": cannot write"));
  out << content;
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

grpc::Status Call(std::function<grpc::Status(grpc::ClientContext*)> fn) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return fn(&ctx);
}

}  // namespace

absl::StatusOr<ReportData> GatherReportData(v1::Census::StubInterface* census) {
  ReportData data;
  v1::ListCommittedCrawlsResponse crawls;
  RETURN_IF_ERROR(FromGrpcStatus(Call([&](grpc::ClientContext* ctx) {
    return census->ListCrawls(ctx, v1::ListCommittedCrawlsRequest(), &crawls);
  })));
  if (crawls.crawls_size() == 0) {
    return absl::NotFoundError("the store holds no committed crawl: nothing to report");
  }
  for (const auto& c : crawls.crawls()) {
    v1::FamiliesRequest req;
    req.mutable_crawl()->set_crawl_id(c.crawl_id());
    v1::FamiliesResponse resp;
    RETURN_IF_ERROR(FromGrpcStatus(
        Call([&](grpc::ClientContext* ctx) { return census->Families(ctx, req, &resp); })));
    data.crawls.push_back(std::move(resp));
  }
  v1::SharesRequest shares;
  shares.mutable_crawl()->set_crawl_id(crawls.crawls().rbegin()->crawl_id());
  RETURN_IF_ERROR(FromGrpcStatus(
      Call([&](grpc::ClientContext* ctx) { return census->Shares(ctx, shares, &data.shares); })));
  v1::CrossoverRequest cross;
  cross.set_a(data.crossover_a);
  cross.set_b(data.crossover_b);
  cross.set_metric("first_party_downloads_all_time");
  grpc::Status s = Call(
      [&](grpc::ClientContext* ctx) { return census->Crossover(ctx, cross, &data.crossover); });
  // A families file without Qwen or Llama has no crossover to draw: not an error.
  if (!s.ok() && s.error_code() != grpc::StatusCode::INVALID_ARGUMENT &&
      s.error_code() != grpc::StatusCode::NOT_FOUND) {
    return FromGrpcStatus(s);
  }
  return data;
}

std::string RenderReportHtml(const ReportData& data) {
  std::vector<std::string> names = TopFamilies(data);
  v1::FamiliesResponse empty;
  const v1::FamiliesResponse& latest = data.crawls.empty() ? empty : data.crawls.back();
  std::string html = absl::StrCat(
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>", Escape(data.title),
      "</title><style>"
      "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;"
      "max-width:960px;color:#222;background:#fff}"
      "h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2.2rem}"
      "svg{width:100%;height:auto;background:#fafafa;border:1px solid #ddd}"
      ".grid{stroke:#e3e3e3}.tick{font-size:11px;fill:#555}.label{font-size:12px}"
      "table{border-collapse:collapse;font-size:13px;width:100%}"
      "th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:right}"
      "th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}"
      ".note{color:#555}</style></head><body>"
      "<h1>",
      Escape(data.title), "</h1>");
  if (!data.crawls.empty()) {
    absl::StrAppend(&html, "<p class=\"note\">", data.crawls.size(), " committed crawls, ",
                    Escape(data.crawls.front().date()), " to ", Escape(latest.date()), ".");
    if (data.crossover.found()) {
      absl::StrAppend(&html, " ", Escape(data.crossover_a), " passed ", Escape(data.crossover_b),
                      " in cumulative first-party downloads in the crawl of ",
                      Escape(data.crossover.date()), " (", Human(data.crossover.a_value()), " vs ",
                      Human(data.crossover.b_value()), ").");
    }
    if (!data.ground_truth_note.empty())
      absl::StrAppend(&html, " ", Escape(data.ground_truth_note));
    html += "</p>";
  }
  absl::StrAppend(&html, "<h2>Cumulative first-party downloads</h2>", CumulativeChart(data, names),
                  "<p class=\"note\">Sum of downloadsAllTime over each family's own repos, per "
                  "crawl. Data: <a href=\"cumulative_downloads.csv\">cumulative_downloads.csv</a>."
                  "</p><h2>Share of new derivative models, by month</h2>",
                  SharesChart(data, names),
                  "<p class=\"note\">New derivative language models created each month whose "
                  "lineage leads to a family. Data: <a href=\"new_derivative_share.csv\">"
                  "new_derivative_share.csv</a>.</p><h2>Regions, at ",
                  Escape(latest.date()), "</h2>", RegionsChart(latest),
                  "<p class=\"note\">Data: <a href=\"regions.csv\">regions.csv</a>.</p>"
                  "<h2>Families, at ",
                  Escape(latest.date()), "</h2>", FamilyTable(latest),
                  "<p class=\"note\">Data: <a href=\"families.csv\">families.csv</a>.</p>"
                  "</body></html>\n");
  return html;
}

absl::Status WriteReport(const ReportData& data, const std::string& out_dir) {
  if (mkdir(out_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::UnavailableError(absl::StrCat(out_dir, ": cannot create the report folder"));
  }
  RETURN_IF_ERROR(WriteFile(out_dir + "/index.html", RenderReportHtml(data)));

  std::string cumulative =
      "date,crawl_id,family,region,first_party_downloads_all_time,"
      "first_party_downloads_30d,ecosystem_downloads_all_time\n";
  for (const auto& crawl : data.crawls) {
    for (const auto& f : crawl.families()) {
      absl::StrAppend(&cumulative, crawl.date(), ",", CsvField(crawl.crawl_id()), ",",
                      CsvField(f.family()), ",", f.region(), ",",
                      f.figures().first_party_downloads_all_time(), ",",
                      f.figures().first_party_downloads_30d(), ",",
                      Number(f.figures().ecosystem_downloads_all_time()), "\n");
    }
  }
  RETURN_IF_ERROR(WriteFile(out_dir + "/cumulative_downloads.csv", cumulative));

  std::string shares = "month,family,count,share,total\n";
  for (const auto& m : data.shares.months()) {
    std::map<std::string, v1::ShareCount> sorted(m.families().begin(), m.families().end());
    for (const auto& [family, sc] : sorted) {
      absl::StrAppend(&shares, m.month(), ",", CsvField(family), ",", Number(sc.count()), ",",
                      absl::StrFormat("%.6f", sc.share()), ",", Number(m.total()), "\n");
    }
  }
  RETURN_IF_ERROR(WriteFile(out_dir + "/new_derivative_share.csv", shares));

  std::string regions =
      "date,region,first_party_repos,first_party_downloads_all_time,"
      "first_party_downloads_30d,ecosystem_downloads_all_time\n";
  std::string families =
      "date,family,region,first_party_repos,first_party_downloads_all_time,"
      "first_party_downloads_30d,ecosystem_downloads_all_time,finetune,adapter,"
      "quantized,merge,unknown\n";
  if (!data.crawls.empty()) {
    const auto& latest = data.crawls.back();
    for (const auto& r : latest.regions()) {
      const auto& g = r.figures();
      absl::StrAppend(&regions, latest.date(), ",", r.region(), ",", g.first_party_repos(), ",",
                      g.first_party_downloads_all_time(), ",", g.first_party_downloads_30d(), ",",
                      Number(g.ecosystem_downloads_all_time()), "\n");
    }
    for (const auto& f : latest.families()) {
      const auto& g = f.figures();
      const auto& d = g.derivatives();
      absl::StrAppend(&families, latest.date(), ",", CsvField(f.family()), ",", f.region(), ",",
                      g.first_party_repos(), ",", g.first_party_downloads_all_time(), ",",
                      g.first_party_downloads_30d(), ",", Number(g.ecosystem_downloads_all_time()),
                      ",", Number(d.finetune()), ",", Number(d.adapter()), ",",
                      Number(d.quantized()), ",", Number(d.merge()), ",", Number(d.unknown()),
                      "\n");
    }
  }
  RETURN_IF_ERROR(WriteFile(out_dir + "/regions.csv", regions));
  RETURN_IF_ERROR(WriteFile(out_dir + "/families.csv", families));
  return absl::OkStatus();
}

}  // namespace hubcensus
