#include "embedded/report.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "aggregator/census_format.h"
#include "common/dates.h"
#include "common/status.h"
#include "common/version.h"

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

using aggregator::CsvField;
// Exact figures (CSV files, hover values): integers as integers, fractions (SPLIT attribution)
// as the shortest decimal that reads back the same.
using aggregator::FormatNumber;

// The one number format of the page (ticks, labels, hover values, tables): "385.3M".
std::string Human(double v) { return aggregator::FormatCompact(v); }

// A hover value: the rounded figure and, when they differ, the exact one.
std::string HoverValue(double v) {
  std::string human = Human(v), exact = FormatNumber(v);
  return human == exact ? human : absl::StrCat(human, " (", exact, ")");
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

const char* Colour(size_t i) { return kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))]; }

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
  double left = 78, right = 170, top = 20, bottom = 40, width = 860, height = 360;
  double plot_w() const { return width - left - right; }
  double plot_h() const { return height - top - bottom; }
};

std::string SvgOpen(const std::string& id, const std::string& label, const Frame& f) {
  return absl::StrFormat(
      "<div class=\"chart\"><svg id=\"%s\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
      "aria-label=\"%s\">",
      id, f.width, f.height, Escape(label));
}
constexpr const char* kSvgClose = "</svg></div>";

void AxisLabelY(std::string* svg, const Frame& f, const std::string& text) {
  absl::StrAppendFormat(svg,
                        "<text class=\"axis-label\" transform=\"rotate(-90)\" x=\"%.1f\" "
                        "y=\"14\" text-anchor=\"middle\">%s</text>",
                        -(f.top + f.plot_h() / 2), Escape(text));
}

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

// Days since the epoch of a YYYY-MM-DD date (0 when it does not parse).
double DayOf(const std::string& date) {
  auto t = ParseDate(date);
  return t.ok() ? absl::ToDoubleHours(*t - absl::UnixEpoch()) / 24 : 0;
}

struct Line {
  std::string name;
  const char* colour;
  std::vector<double> values;  // one per crawl
};

struct LineChartSpec {
  std::string id;
  std::string aria_label;
  std::string y_label;
  bool log_scale = false;
  bool mark_crossovers = false;
  // The crossover the summary names (a passes b at this date) gets id="crossover-marker".
  std::string headline_a, headline_b, headline_date;
};

// A line per series over the crawls, x by date; a point per crawl with its value on hover; end
// labels spread so they never overlap; with mark_crossovers, every crossover circled between
// the two crawls where it happened and listed under the chart.
std::string LineChart(const LineChartSpec& spec, const std::vector<std::string>& dates,
                      const std::vector<Line>& lines) {
  Frame f;
  std::string svg = SvgOpen(spec.id, spec.aria_label, f);
  size_t n = dates.size();
  double max = 0, min_positive = 0;
  for (const auto& l : lines) {
    for (double v : l.values) {
      max = std::max(max, v);
      if (v > 0 && (min_positive == 0 || v < min_positive)) min_positive = v;
    }
  }
  std::function<double(double)> y_of;
  if (spec.log_scale) {
    // Decades from the smallest positive value to the largest; zeros are not drawn.
    double low = std::pow(10, std::floor(std::log10(min_positive > 0 ? min_positive : 1)));
    double high = std::pow(10, std::ceil(std::log10(std::max(max, low * 10))));
    double decades = std::log10(high / low);
    y_of = [=](double v) {
      return f.top + f.plot_h() * (1 - std::log10(std::max(v, low) / low) / decades);
    };
    int step = decades > 8 ? 2 : 1;
    for (int d = 0; d <= static_cast<int>(std::lround(decades)); d += step) {
      double v = low * std::pow(10, d);
      double y = y_of(v);
      absl::StrAppendFormat(
          &svg,
          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
          "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>",
          f.left, f.left + f.plot_w(), y, y, f.left - 6, y + 4, Human(v));
    }
  } else {
    max = NiceCeiling(max);
    AxisY(&svg, f, max, false);
    y_of = [=](double v) { return f.top + f.plot_h() * (1 - v / max); };
  }
  AxisLabelY(&svg, f, spec.y_label);
  double first_day = n ? DayOf(dates.front()) : 0, last_day = n ? DayOf(dates.back()) : 0;
  auto x_of = [&](size_t i) {
    if (n <= 1 || last_day <= first_day) {
      return n <= 1 ? f.left + f.plot_w() / 2 : f.left + f.plot_w() * i / (n - 1);
    }
    return f.left + f.plot_w() * (DayOf(dates[i]) - first_day) / (last_day - first_day);
  };
  // Date labels: every few crawls, and always the latest (the one before it gives way when close).
  size_t step = std::max<size_t>(1, (n + 5) / 6);
  for (size_t i = 0; i < n; i += step) {
    if (i != n - 1 && i + step / 2 + 1 > n - 1 && i != 0) continue;
    absl::StrAppendFormat(
        &svg, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%s</text>",
        x_of(i), f.top + f.plot_h() + 18, Escape(dates[i]));
  }
  if (n > 1 && (n - 1) % step != 0) {
    absl::StrAppendFormat(
        &svg, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%s</text>",
        x_of(n - 1), f.top + f.plot_h() + 18, Escape(dates[n - 1]));
  }
  struct EndLabel {
    double y;
    std::string text;
    const char* colour;
    std::string series;
  };
  std::vector<EndLabel> labels;
  for (const auto& l : lines) {
    std::vector<std::string> points;
    std::string circles;
    for (size_t i = 0; i < n; ++i) {
      if (spec.log_scale && l.values[i] <= 0) continue;
      double x = x_of(i), y = y_of(l.values[i]);
      points.push_back(absl::StrFormat("%.1f,%.1f", x, y));
      absl::StrAppendFormat(&circles,
                            "<circle class=\"point\" data-series=\"%s\" data-date=\"%s\" "
                            "data-value=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\">"
                            "<title>%s, %s: %s</title></circle>",
                            Escape(l.name), Escape(dates[i]), FormatNumber(l.values[i]), x, y,
                            l.colour, Escape(l.name), Escape(dates[i]), HoverValue(l.values[i]));
    }
    absl::StrAppendFormat(&svg,
                          "<polyline class=\"series\" data-series=\"%s\" fill=\"none\" "
                          "stroke=\"%s\" stroke-width=\"2.5\" points=\"%s\"/>%s",
                          Escape(l.name), l.colour, absl::StrJoin(points, " "), circles);
    if (n > 0 && !(spec.log_scale && l.values[n - 1] <= 0)) {
      labels.push_back({y_of(l.values[n - 1]) + 4,
                        absl::StrCat(l.name, " ", Human(l.values[n - 1])), l.colour, l.name});
    }
  }
  // Lines that end close together would print their labels on top of each other: spread them.
  std::sort(labels.begin(), labels.end(), [](const auto& a, const auto& b) { return a.y < b.y; });
  std::vector<double> wanted;
  for (const auto& l : labels) wanted.push_back(l.y);
  std::vector<double> placed = SpreadLabels(wanted, 15, f.top + 10, f.top + f.plot_h() + 4);
  for (size_t i = 0; i < labels.size(); ++i) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.1f\" y=\"%.1f\" class=\"label end-label\" "
                          "data-series=\"%s\" fill=\"%s\">%s</text>",
                          x_of(n - 1) + 8, placed[i], Escape(labels[i].series), labels[i].colour,
                          Escape(labels[i].text));
  }
  std::string list;
  if (spec.mark_crossovers && n > 1) {
    std::vector<std::pair<std::string, std::vector<double>>> values;
    for (const auto& l : lines) values.emplace_back(l.name, l.values);
    std::vector<ReportCrossover> crossovers = FindCrossovers(dates, values);
    int number = 0;
    for (const auto& c : crossovers) {
      ++number;
      size_t i = std::find(dates.begin(), dates.end(), c.date) - dates.begin();
      double x = x_of(i - 1) + (x_of(i) - x_of(i - 1)) * c.fraction;
      double y = y_of(c.previous_a + (c.a_value - c.previous_a) * c.fraction);
      bool headline =
          c.a == spec.headline_a && c.b == spec.headline_b && c.date == spec.headline_date;
      std::string sentence =
          absl::StrCat(c.a, " passed ", c.b, " between ", c.previous_date, " and ", c.date, ": ",
                       Human(c.previous_a), " vs ", Human(c.previous_b), ", then ",
                       Human(c.a_value), " vs ", Human(c.b_value));
      absl::StrAppendFormat(
          &svg,
          "<g class=\"crossover\"%s data-a=\"%s\" data-b=\"%s\" data-previous-date=\"%s\" "
          "data-date=\"%s\"><circle class=\"crossover-point\" cx=\"%.1f\" cy=\"%.1f\" r=\"8\" "
          "fill=\"#fff\" fill-opacity=\"0.6\" stroke=\"#111\" stroke-width=\"2\"><title>%s"
          "</title></circle><text class=\"crossover-number\" x=\"%.1f\" y=\"%.1f\" "
          "text-anchor=\"middle\">%d</text></g>",
          headline ? " id=\"crossover-marker\"" : "", Escape(c.a), Escape(c.b),
          Escape(c.previous_date), Escape(c.date), x, y, Escape(sentence), x, y - 12, number);
      absl::StrAppend(&list, "<li data-a=\"", Escape(c.a), "\" data-b=\"", Escape(c.b),
                      "\" data-date=\"", Escape(c.date), "\">", Escape(sentence), "</li>");
    }
    if (crossovers.empty()) {
      list =
          "<p class=\"note crossovers\">No crossover among these families over these "
          "crawls.</p>";
    } else {
      list = absl::StrCat(
          "<p class=\"note\">Crossovers (circled and numbered on the chart, "
          "placed where the lines meet between the two crawls):</p>"
          "<ol class=\"crossovers\">",
          list, "</ol>");
    }
  }
  svg += kSvgClose;
  return svg + list;
}

// One crawl only: the families' first-party downloads as bars (a line needs two crawls).
std::string SingleCrawlBars(const v1::FamiliesResponse& latest,
                            const std::vector<std::string>& names) {
  Frame f;
  std::string svg =
      SvgOpen("chart-cumulative", "First-party downloads by family at the only crawl", f);
  std::vector<double> values;
  double max = 0;
  for (const auto& name : names) {
    double v = 0;
    for (const auto& fam : latest.families()) {
      if (fam.family() == name) v = fam.figures().first_party_downloads_all_time();
    }
    values.push_back(v);
    max = std::max(max, v);
  }
  max = NiceCeiling(max);
  AxisY(&svg, f, max, false);
  AxisLabelY(&svg, f, "first-party downloads, all time");
  double slot = names.empty() ? 0 : f.plot_w() / names.size();
  for (size_t i = 0; i < names.size(); ++i) {
    double h = f.plot_h() * values[i] / max;
    double x = f.left + slot * i + slot * 0.15;
    absl::StrAppendFormat(&svg,
                          "<rect class=\"bar\" data-series=\"%s\" x=\"%.1f\" y=\"%.1f\" "
                          "width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s, %s: %s</title>"
                          "</rect><text x=\"%.1f\" y=\"%.1f\" class=\"tick\" "
                          "text-anchor=\"middle\">%s</text><text x=\"%.1f\" y=\"%.1f\" "
                          "class=\"label\" text-anchor=\"middle\">%s</text>",
                          Escape(names[i]), x, f.top + f.plot_h() - h, slot * 0.7, h, Colour(i),
                          Escape(names[i]), Escape(latest.date()), HoverValue(values[i]),
                          x + slot * 0.35, f.top + f.plot_h() + 18, Escape(names[i]),
                          x + slot * 0.35, f.top + f.plot_h() - h - 4, Human(values[i]));
  }
  svg += kSvgClose;
  return svg;
}

std::string SharesChart(const ReportData& data, const std::vector<std::string>& names) {
  Frame f;
  f.top = 36;
  std::string svg =
      SvgOpen("chart-shares", "Share of new derivative models by family, per month", f);
  AxisY(&svg, f, 1.0, true);
  AxisLabelY(&svg, f, "share of the month's new derivatives");
  const auto& months = data.shares.months();
  size_t n = months.size();
  double slot = n == 0 ? 0 : f.plot_w() / n;
  size_t step = std::max<size_t>(1, (n + 7) / 8);
  absl::StrAppendFormat(&svg,
                        "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">n</text>",
                        f.left - 6, f.top - 8);
  for (size_t i = 0; i < n; ++i) {
    const auto& m = months[i];
    double y = f.top + f.plot_h();
    double x = f.left + slot * i + slot * 0.1;
    double w = slot * 0.8;
    double named = 0, named_count = 0;
    auto bar = [&](const std::string& series, double share, double count, const char* c) {
      double h = f.plot_h() * share;
      y -= h;
      absl::StrAppendFormat(&svg,
                            "<rect class=\"share\" data-series=\"%s\" data-month=\"%s\" x=\"%.1f\" "
                            "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s, %s: "
                            "%s (%s of %s new derivative models)</title></rect>",
                            Escape(series), Escape(m.month()), x, y, w, h, c, Escape(series),
                            Escape(m.month()), aggregator::FormatPercent(share), Human(count),
                            Human(m.total()));
    };
    for (size_t k = 0; k < names.size(); ++k) {
      auto it = m.families().find(names[k]);
      if (it == m.families().end()) continue;
      named += it->second.share();
      named_count += it->second.count();
      bar(names[k], it->second.share(), it->second.count(), Colour(k));
    }
    if (m.total() > 0 && named < 1 - 1e-9) {
      bar("Other", 1 - named, m.total() - named_count, kOtherColour);
    }
    // n over the bar, so that a month of 8 does not pass for a month of 192.
    // Narrow bars (many months) turn the numbers upright so that neighbours never touch.
    std::string n_text = Human(m.total());
    bool upright = n_text.size() * 6.5 + 3 > slot;
    double nx = x + w / 2, ny = f.top - (upright ? 4 : 8);
    absl::StrAppendFormat(&svg,
                          "<text class=\"n-label\" data-month=\"%s\" x=\"%.1f\" y=\"%.1f\" "
                          "text-anchor=\"%s\"%s><title>%s: %s new derivative models</title>%s"
                          "</text>",
                          Escape(m.month()), nx, ny, upright ? "start" : "middle",
                          upright ? absl::StrFormat(" transform=\"rotate(-90 %.1f %.1f)\" "
                                                    "dy=\"0.35em\"",
                                                    nx, ny)
                                  : "",
                          Escape(m.month()), FormatNumber(m.total()), n_text);
    if (i % step == 0) {
      absl::StrAppendFormat(
          &svg, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%s</text>",
          x + w / 2, f.top + f.plot_h() + 18, Escape(m.month()));
    }
  }
  double ly = f.top + 10;
  for (size_t k = 0; k <= names.size(); ++k) {
    bool other = k == names.size();
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                          "<text x=\"%.1f\" y=\"%.1f\" class=\"label\">%s</text>",
                          f.left + f.plot_w() + 14, ly, other ? kOtherColour : Colour(k),
                          f.left + f.plot_w() + 32, ly + 10,
                          other ? std::string("Other") : Escape(names[k]));
    ly += 20;
  }
  svg += kSvgClose;
  return svg;
}

std::string RegionsChart(const v1::FamiliesResponse& latest) {
  Frame f;
  f.height = 280;
  std::string svg =
      SvgOpen("chart-regions",
              absl::StrCat("First-party and ecosystem downloads by region at ", latest.date()), f);
  double max = 0;
  for (const auto& r : latest.regions()) {
    max = std::max({max, static_cast<double>(r.figures().first_party_downloads_all_time()),
                    r.figures().ecosystem_downloads_all_time()});
  }
  max = NiceCeiling(max);
  AxisY(&svg, f, max, false);
  AxisLabelY(&svg, f, "downloads, all time");
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
          "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s, %s: "
          "%s</title></rect>",
          Escape(r.region()), k == 0 ? "first_party" : "ecosystem", x + k * w,
          f.top + f.plot_h() - h, w, h, k == 0 ? kPalette[1] : kPalette[3], Escape(r.region()),
          k == 0 ? "first-party" : "ecosystem", HoverValue(v));
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
  svg += kSvgClose;
  return svg;
}

// The columns of the family table: heading, whether numeric, the cell (shown, exact).
struct Column {
  const char* heading;
  bool numeric;
  std::function<std::pair<std::string, std::string>(const v1::FamilyFigures&)> cell;
};

std::vector<Column> FamilyColumns() {
  auto num = [](std::function<double(const v1::Figures&)> get) {
    return [get](const v1::FamilyFigures& f) {
      double v = get(f.figures());
      return std::make_pair(Human(v), FormatNumber(v));
    };
  };
  return {
      {"family", false,
       [](const v1::FamilyFigures& f) { return std::make_pair(f.family(), f.family()); }},
      {"region", false,
       [](const v1::FamilyFigures& f) { return std::make_pair(f.region(), f.region()); }},
      {"first-party repos", true, num([](const v1::Figures& g) { return g.first_party_repos(); })},
      {"first-party downloads (all time)", true,
       num([](const v1::Figures& g) { return g.first_party_downloads_all_time(); })},
      {"first-party downloads (30 days)", true,
       num([](const v1::Figures& g) { return g.first_party_downloads_30d(); })},
      {"ecosystem downloads (all time)", true,
       num([](const v1::Figures& g) { return g.ecosystem_downloads_all_time(); })},
      {"finetunes", true, num([](const v1::Figures& g) { return g.derivatives().finetune(); })},
      {"adapters", true, num([](const v1::Figures& g) { return g.derivatives().adapter(); })},
      {"quantized", true, num([](const v1::Figures& g) { return g.derivatives().quantized(); })},
      {"merges", true, num([](const v1::Figures& g) { return g.derivatives().merge(); })},
      {"unknown", true, num([](const v1::Figures& g) { return g.derivatives().unknown(); })},
  };
}
constexpr int kDefaultSortColumn = 5;  // ecosystem downloads, largest first

// Sorts the family table by the clicked column (again: the other way) and says how it is
// sorted. Without JavaScript the table keeps its default order, stated in the same sentence.
constexpr const char* kSortScript = R"js(
(function () {
  var table = document.getElementById('family-table');
  var status = document.getElementById('family-table-sort');
  if (!table || !status) return;
  var heads = table.tHead.rows[0].cells;
  function key(row, i) {
    var cell = row.cells[i];
    return cell.hasAttribute('data-value') ? cell.getAttribute('data-value') : cell.textContent;
  }
  function sortBy(i, dir) {
    var numeric = heads[i].getAttribute('data-type') === 'number';
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, i), y = key(b, i);
      var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return dir === 'asc' ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var j = 0; j < heads.length; j++) heads[j].removeAttribute('aria-sort');
    heads[i].setAttribute('aria-sort', dir === 'asc' ? 'ascending' : 'descending');
    table.setAttribute('data-sort-column', String(i));
    table.setAttribute('data-sort-dir', dir);
    var order = numeric ? (dir === 'asc' ? 'smallest first' : 'largest first')
                        : (dir === 'asc' ? 'A to Z' : 'Z to A');
    status.textContent = 'Sorted by ' + heads[i].getAttribute('data-label') + ', ' + order +
        '. Click a column heading to sort by it; click again to reverse.';
  }
  Array.prototype.forEach.call(heads, function (head, i) {
    head.querySelector('button').addEventListener('click', function () {
      var same = table.getAttribute('data-sort-column') === String(i);
      var numeric = head.getAttribute('data-type') === 'number';
      var dir = same ? (table.getAttribute('data-sort-dir') === 'asc' ? 'desc' : 'asc')
                     : (numeric ? 'desc' : 'asc');
      sortBy(i, dir);
    });
  });
})();
)js";

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
  std::vector<Column> columns = FamilyColumns();
  std::string out = absl::StrCat(
      "<p class=\"note\" id=\"family-table-sort\">Sorted by ", columns[kDefaultSortColumn].heading,
      ", largest first. Click a column heading to sort by it; click again to reverse.</p>"
      "<div class=\"table-wrap\"><table id=\"family-table\" data-sort-column=\"",
      kDefaultSortColumn, "\" data-sort-dir=\"desc\"><thead><tr>");
  for (size_t i = 0; i < columns.size(); ++i) {
    absl::StrAppend(&out, "<th data-type=\"", columns[i].numeric ? "number" : "text",
                    "\" data-label=\"", columns[i].heading, "\"",
                    static_cast<int>(i) == kDefaultSortColumn ? " aria-sort=\"descending\"" : "",
                    "><button type=\"button\">", columns[i].heading, "</button></th>");
  }
  out += "</tr></thead><tbody>";
  for (const auto* f : rows) {
    absl::StrAppend(&out, "<tr data-family=\"", Escape(f->family()), "\">");
    for (const auto& column : columns) {
      auto [shown, exact] = column.cell(*f);
      if (column.numeric) {
        absl::StrAppend(&out, "<td data-value=\"", exact, "\" title=\"", exact, "\">",
                        Escape(shown), "</td>");
      } else {
        absl::StrAppend(&out, "<td>", Escape(shown), "</td>");
      }
    }
    out += "</tr>";
  }
  absl::StrAppend(&out, "</tbody></table></div><script>", kSortScript, "</script>");
  return out;
}

std::string TopReposSection(const ReportData& data) {
  std::string out;
  for (const auto& top : data.top_repos) {
    std::vector<const v1::TopRepo*> derivatives;
    for (const auto& r : top.response.repos()) {
      if (!r.first_party() && derivatives.size() < kReportTopDerivatives) {
        derivatives.push_back(&r);
      }
    }
    absl::StrAppend(&out, "<h3>", Escape(top.family),
                    "</h3><div class=\"table-wrap\">"
                    "<table class=\"top-table\" data-family=\"",
                    Escape(top.family), "\">");
    if (derivatives.empty()) {
      out +=
          "<tbody><tr><td>No derivative repo among the family's most downloaded.</td></tr>"
          "</tbody>";
    } else {
      out +=
          "<thead><tr><th>repo</th><th>relation</th><th>downloads (all time)</th>"
          "<th>downloads (30 days)</th><th>created</th></tr></thead><tbody>";
      for (const auto* r : derivatives) {
        absl::StrAppend(&out, "<tr><td>", Escape(r->id()), "</td><td>", Escape(r->relation()),
                        "</td><td data-value=\"", r->downloads_all_time(), "\" title=\"",
                        r->downloads_all_time(), "\">", Human(r->downloads_all_time()),
                        "</td><td data-value=\"", r->downloads_30d(), "\" title=\"",
                        r->downloads_30d(), "\">", Human(r->downloads_30d()), "</td><td>",
                        Escape(FormatHubTimestamp(r->created_at()).substr(0, 10)), "</td></tr>");
      }
      out += "</tbody>";
    }
    out += "</table></div>";
  }
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

}  // namespace

std::vector<ReportCrossover> FindCrossovers(
    const std::vector<std::string>& dates,
    const std::vector<std::pair<std::string, std::vector<double>>>& values) {
  std::vector<ReportCrossover> out;
  for (size_t i = 1; i < dates.size(); ++i) {
    for (size_t p = 0; p < values.size(); ++p) {
      for (size_t q = 0; q < values.size(); ++q) {
        if (p == q) continue;
        const auto& [a, va] = values[p];
        const auto& [b, vb] = values[q];
        if (va.size() <= i || vb.size() <= i) continue;
        double before = va[i - 1] - vb[i - 1], after = va[i] - vb[i];
        if (!(before <= 0 && after > 0)) continue;  // a <= b, then a > b
        ReportCrossover c;
        c.a = a;
        c.b = b;
        c.previous_date = dates[i - 1];
        c.date = dates[i];
        c.previous_a = va[i - 1];
        c.previous_b = vb[i - 1];
        c.a_value = va[i];
        c.b_value = vb[i];
        c.fraction = -before / (after - before);
        out.push_back(c);
      }
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& x, const auto& y) {
    return std::tie(x.date, x.a, x.b) < std::tie(y.date, y.a, y.b);
  });
  return out;
}

std::vector<double> SpreadLabels(std::vector<double> y, double gap, double low, double high) {
  if (y.empty()) return y;
  if (y.size() > 1) gap = std::min(gap, (high - low) / (y.size() - 1));
  for (double& v : y) v = std::clamp(v, low, high);
  // Push down from the top, then up from the bottom: each label moves no further than the ones
  // in its way force it to.
  for (size_t i = 1; i < y.size(); ++i) y[i] = std::max(y[i], y[i - 1] + gap);
  if (y.back() > high) {
    y.back() = high;
    for (size_t i = y.size() - 1; i-- > 0;) y[i] = std::min(y[i], y[i + 1] - gap);
  }
  return y;
}

absl::StatusOr<ReportData> GatherReportData(aggregator::CensusClient& census) {
  ReportData data;
  data.version = kVersion;
  data.generated_at_unix_ms = absl::ToUnixMillis(absl::Now());
  ASSIGN_OR_RETURN(v1::ListCommittedCrawlsResponse crawls, census.ListCrawls());
  if (crawls.crawls_size() == 0) {
    return absl::NotFoundError("the store holds no committed crawl: nothing to report");
  }
  for (const auto& c : crawls.crawls()) {
    v1::FamiliesRequest req;
    req.mutable_crawl()->set_crawl_id(c.crawl_id());
    ASSIGN_OR_RETURN(v1::FamiliesResponse families, census.Families(req));
    data.crawls.push_back(std::move(families));
  }
  v1::SharesRequest shares;
  shares.mutable_crawl()->set_crawl_id(crawls.crawls().rbegin()->crawl_id());
  ASSIGN_OR_RETURN(data.shares, census.Shares(shares));
  v1::CrossoverRequest cross;
  cross.set_a(data.crossover_a);
  cross.set_b(data.crossover_b);
  cross.set_metric("first_party_downloads_all_time");
  absl::StatusOr<v1::CrossoverResponse> crossover = census.Crossover(cross);
  if (crossover.ok()) {
    data.crossover = std::move(*crossover);
  } else if (crossover.status().code() != absl::StatusCode::kInvalidArgument &&
             crossover.status().code() != absl::StatusCode::kNotFound) {
    // A families file without Qwen or Llama has no crossover to draw: not an error.
    return crossover.status();
  }
  // The leading families by ecosystem downloads, and their most downloaded repos of any kind:
  // the derivatives among them are what the family's ecosystem is made of.
  std::vector<const v1::FamilyFigures*> leading;
  for (const auto& f : data.crawls.back().families()) {
    if (f.figures().ecosystem_downloads_all_time() > 0) leading.push_back(&f);
  }
  std::stable_sort(leading.begin(), leading.end(), [](const auto* a, const auto* b) {
    return a->figures().ecosystem_downloads_all_time() >
           b->figures().ecosystem_downloads_all_time();
  });
  if (leading.size() > kReportTopRepoFamilies) leading.resize(kReportTopRepoFamilies);
  for (const auto* f : leading) {
    v1::TopReposRequest top;
    top.mutable_crawl()->set_crawl_id(data.crawls.back().crawl_id());
    top.set_family(f->family());
    top.set_first_party_only(false);
    top.set_k(100);
    ReportData::FamilyTopRepos entry;
    entry.family = f->family();
    ASSIGN_OR_RETURN(entry.response, census.TopRepos(top));
    data.top_repos.push_back(std::move(entry));
  }
  return data;
}

namespace {

// What the page means, in plain words, with the numbers that qualify it.
std::string Methodology(const ReportData& data) {
  const v1::FamiliesResponse* latest = data.crawls.empty() ? nullptr : &data.crawls.back();
  std::string out =
      "<section id=\"methodology\"><h2>Methodology</h2><dl>"
      "<dt>Family</dt><dd>A named set of Hub namespaces (organisations), with a region. A repo is "
      "<em>first-party</em> for a family when its namespace belongs to the family.</dd>"
      "<dt>Where the families come from</dt><dd>The embedded families file is built from the ATOM "
      "Project's organisation list (organization_regions.csv, licensed Apache-2.0), with the "
      "region that list gives; a family is named after its model line (Qwen for Qwen and "
      "Alibaba-NLP, Llama for meta-llama, ...). A families file given with --families replaces "
      "it.</dd>"
      "<dt>First-party downloads (all time)</dt><dd>The sum of the Hub's downloadsAllTime over a "
      "family's own repos at a crawl. The 30-day figure sums the Hub's downloads field (the last "
      "30 days).</dd>"
      "<dt>Lineage</dt><dd>A repo's parents are the models named in its base_model tags. "
      "Following the first parent from a repo until a first-party repo is reached gives its "
      "<em>lineage family</em>; a cycle or a walk of over 64 steps gives none.</dd>"
      "<dt>Ecosystem downloads (all time)</dt><dd>The sum of downloadsAllTime over every repo "
      "whose lineage family is the family: its own repos and all their derivatives.</dd>"
      "<dt>Derivatives</dt><dd>Repos that are not first-party for any family, counted under their "
      "lineage family by the relation of their first parent: finetune, adapter, quantized, merge "
      "or unknown.</dd>"
      "<dt>Crossover</dt><dd>Family A passes B at the first crawl where A is above B after a crawl "
      "where A was at or below B. On the chart each crossover is circled where the two lines "
      "meet, between those two crawls.</dd>";
  absl::StrAppend(
      &out, "<dt>Monthly shares of new derivatives</dt><dd>Built from the latest crawl (",
      latest ? Escape(latest->date()) : "none",
      ") alone: each derivative model (pipeline text-generation or image-text-to-text, at least "
      "5 downloads where the Hub reports all-time downloads) counts in the month of its "
      "createdAt. Repos deleted before that crawl are absent, so past months show what survives, "
      "not what was created then. Repos whose createdAt is the Hub's placeholder for "
      "\"before March 2022\" belong to no month: <span id=\"placeholder-left-out\">",
      data.shares.placeholder_dated_left_out(),
      "</span> such repos were left out of the shares (they still count in every sum).</dd>");
  if (latest != nullptr) {
    absl::StrAppend(&out,
                    "<dt>What the census counts</dt><dd id=\"census-counts\">The public "
                    "Hub as an anonymous listing shows it at each crawl; private repos are "
                    "never counted. At ",
                    Escape(latest->date()), ": ",
                    Escape(aggregator::CensusCountsLine(latest->counts())),
                    ". Rejected entries are listing entries the Hub sent malformed; unreadable "
                    "repos are those whose details the Hub refused (401, 403, 404).</dd>");
  }
  absl::StrAppend(&out, "<dt>This report</dt><dd id=\"report-version\">Written by hubcensus ",
                  Escape(data.version.empty() ? "(unknown version)" : data.version), " at ",
                  aggregator::FormatIsoTimeMs(data.generated_at_unix_ms), ", from ",
                  data.crawls.size(),
                  data.crawls.size() == 1 ? " committed crawl" : " committed crawls",
                  ". Numbers read 385.3M for 385,300,000; hover a point or a bar for its exact "
                  "value. Every chart's data is in the CSV files beside this page.</dd></dl>"
                  "</section>");
  return out;
}

constexpr const char* kStyle =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;"
    "max-width:1000px;padding:0 1rem;color:#222;background:#fff;line-height:1.4}"
    "h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2.2rem}h3{font-size:1rem}"
    ".chart{overflow-x:auto}"
    "svg{width:100%;height:auto;background:#fafafa;border:1px solid #ddd;display:block;"
    "box-sizing:border-box}"
    ".grid{stroke:#e3e3e3}.tick{font-size:11px;fill:#555}.label{font-size:12px}"
    ".axis-label{font-size:12px;fill:#333}.n-label{font-size:10px;fill:#333}"
    ".crossover-number{font-size:11px;font-weight:bold}"
    "circle.point:hover,rect.share:hover,rect.region:hover,rect.bar:hover{stroke:#111;"
    "stroke-width:1.5}"
    ".table-wrap{overflow-x:auto}"
    "table{border-collapse:collapse;font-size:13px;width:100%}"
    "th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:right}"
    "th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}"
    "th button{font:inherit;font-weight:bold;background:none;border:0;padding:0;cursor:pointer;"
    "text-align:inherit}"
    "th[aria-sort=descending] button::after{content:' \\2193'}"
    "th[aria-sort=ascending] button::after{content:' \\2191'}"
    ".note{color:#555}dt{font-weight:bold;margin-top:.6rem}dd{margin-left:1rem}"
    "@media (max-width:600px){body{margin:1rem auto;padding:0 .5rem}h1{font-size:1.25rem}"
    ".chart svg{min-width:620px}table{font-size:12px}"
    // A chart wider than the screen opens at its right end, the latest crawls (rtl scrolling).
    ".chart{direction:rtl}.chart svg{direction:ltr}}";

}  // namespace

std::string RenderReportHtml(const ReportData& data) {
  std::vector<std::string> names = TopFamilies(data);
  v1::FamiliesResponse empty;
  const v1::FamiliesResponse& latest = data.crawls.empty() ? empty : data.crawls.back();
  std::vector<std::string> dates;
  for (const auto& c : data.crawls) dates.push_back(c.date());
  const bool one_crawl = data.crawls.size() == 1;
  std::string html = absl::StrCat(
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>",
      Escape(data.title), "</title><style>", kStyle, "</style></head><body><h1>",
      Escape(data.title), "</h1>");
  if (!data.crawls.empty()) {
    absl::StrAppend(&html, "<p class=\"note\" id=\"summary\">", data.crawls.size(),
                    one_crawl ? " committed crawl, " : " committed crawls, ",
                    Escape(data.crawls.front().date()),
                    one_crawl ? "." : absl::StrCat(" to ", Escape(latest.date()), "."));
    if (data.crossover.found()) {
      absl::StrAppend(&html, " ", Escape(data.crossover_a), " passed ", Escape(data.crossover_b),
                      " in cumulative first-party downloads in the crawl of ",
                      Escape(data.crossover.date()), " (", Human(data.crossover.a_value()), " vs ",
                      Human(data.crossover.b_value()), ").");
    }
    if (!data.ground_truth_note.empty())
      absl::StrAppend(&html, " ", Escape(data.ground_truth_note));
    html += " How the figures are made: <a href=\"#methodology\">methodology</a>.</p>";
  }
  if (one_crawl) {
    absl::StrAppend(&html, "<p class=\"note\" id=\"one-crawl\">The store holds one census, of ",
                    Escape(latest.date()),
                    ": the charts over time need two or more, so this page shows that census "
                    "alone. Crawl again on a later date (hubcensus local --date=YYYY-MM-DD) to "
                    "see the families move.</p>");
  }

  // Lines per family over the crawls, first-party downloads.
  std::vector<Line> family_lines;
  for (size_t k = 0; k < names.size(); ++k) {
    Line line{names[k], Colour(k), std::vector<double>(data.crawls.size(), 0)};
    for (size_t i = 0; i < data.crawls.size(); ++i) {
      for (const auto& fam : data.crawls[i].families()) {
        if (fam.family() == names[k]) {
          line.values[i] = fam.figures().first_party_downloads_all_time();
        }
      }
    }
    family_lines.push_back(std::move(line));
  }
  html += "<h2>Cumulative first-party downloads</h2>";
  if (one_crawl) {
    html += SingleCrawlBars(latest, names);
  } else {
    LineChartSpec spec;
    spec.id = "chart-cumulative";
    spec.aria_label = "Cumulative first-party downloads by family";
    spec.y_label = "first-party downloads, all time";
    spec.mark_crossovers = true;
    if (data.crossover.found()) {
      spec.headline_a = data.crossover_a;
      spec.headline_b = data.crossover_b;
      spec.headline_date = data.crossover.date();
    }
    html += LineChart(spec, dates, family_lines);
    LineChartSpec log = spec;
    log.id = "chart-cumulative-log";
    log.aria_label = "Cumulative first-party downloads by family, log scale";
    log.y_label = "first-party downloads, all time (log scale)";
    log.log_scale = true;
    log.mark_crossovers = false;
    absl::StrAppend(&html,
                    "<p class=\"note\">Sum of downloadsAllTime over each family's own repos, per "
                    "crawl. Data: <a href=\"cumulative_downloads.csv\">cumulative_downloads.csv"
                    "</a>.</p><h2>Cumulative first-party downloads, log scale</h2>",
                    LineChart(log, dates, family_lines),
                    "<p class=\"note\">The same figures on a logarithmic axis: equal slopes are "
                    "equal growth rates, and small families stay visible. Zeros are not "
                    "drawn.</p>");
  }
  absl::StrAppend(&html, "<h2>Share of new derivative models, by month</h2>",
                  SharesChart(data, names),
                  "<p class=\"note\">New derivative language models created each month whose "
                  "lineage leads to a family, from the crawl of ",
                  Escape(latest.date()), "; n over each bar is the month's number of such models. ",
                  data.shares.placeholder_dated_left_out(),
                  " placeholder-dated repos were left out (see the methodology). Data: "
                  "<a href=\"new_derivative_share.csv\">new_derivative_share.csv</a>.</p>");
  html += "<h2>Regions over time</h2>";
  if (!one_crawl) {
    std::vector<Line> region_lines;
    for (int k = 0; k < latest.regions_size(); ++k) {
      const std::string& region = latest.regions(k).region();
      Line line{region, Colour(k), std::vector<double>(data.crawls.size(), 0)};
      for (size_t i = 0; i < data.crawls.size(); ++i) {
        for (const auto& r : data.crawls[i].regions()) {
          if (r.region() == region) line.values[i] = r.figures().first_party_downloads_all_time();
        }
      }
      region_lines.push_back(std::move(line));
    }
    LineChartSpec spec;
    spec.id = "chart-regions-time";
    spec.aria_label = "First-party downloads by region over the crawls";
    spec.y_label = "first-party downloads, all time";
    html += LineChart(spec, dates, region_lines);
    html += "<p class=\"note\">First-party downloads of each region's families, per crawl.</p>";
  }
  absl::StrAppend(&html, "<h3>Regions at ", Escape(latest.date()), "</h3>", RegionsChart(latest),
                  "<p class=\"note\">Data: <a href=\"regions.csv\">regions.csv</a> (every "
                  "crawl).</p>");
  if (!data.top_repos.empty()) {
    absl::StrAppend(&html,
                    "<section id=\"top-derivatives\"><h2>Top derivative repos of the leading "
                    "families, at ",
                    Escape(latest.date()),
                    "</h2><p class=\"note\">The most downloaded repos (all time) whose lineage "
                    "leads to each of the ",
                    data.top_repos.size(),
                    " families with the most ecosystem downloads, the family's own repos "
                    "left out.</p>",
                    TopReposSection(data), "</section>");
  }
  absl::StrAppend(&html, "<h2>Families, at ", Escape(latest.date()), "</h2>", FamilyTable(latest),
                  "<p class=\"note\">Data: <a href=\"families.csv\">families.csv</a>.</p>",
                  Methodology(data), "</body></html>\n");
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
                      CsvField(f.family()), ",", CsvField(f.region()), ",",
                      f.figures().first_party_downloads_all_time(), ",",
                      f.figures().first_party_downloads_30d(), ",",
                      FormatNumber(f.figures().ecosystem_downloads_all_time()), "\n");
    }
  }
  RETURN_IF_ERROR(WriteFile(out_dir + "/cumulative_downloads.csv", cumulative));

  std::string shares = "month,family,count,share,total\n";
  for (const auto& m : data.shares.months()) {
    std::map<std::string, v1::ShareCount> sorted(m.families().begin(), m.families().end());
    for (const auto& [family, sc] : sorted) {
      absl::StrAppend(&shares, m.month(), ",", CsvField(family), ",", FormatNumber(sc.count()), ",",
                      FormatNumber(sc.share()), ",", FormatNumber(m.total()), "\n");
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
    for (const auto& crawl : data.crawls) {
      for (const auto& r : crawl.regions()) {
        const auto& g = r.figures();
        absl::StrAppend(&regions, crawl.date(), ",", CsvField(r.region()), ",",
                        g.first_party_repos(), ",", g.first_party_downloads_all_time(), ",",
                        g.first_party_downloads_30d(), ",",
                        FormatNumber(g.ecosystem_downloads_all_time()), "\n");
      }
    }
    for (const auto& f : latest.families()) {
      const auto& g = f.figures();
      const auto& d = g.derivatives();
      absl::StrAppend(&families, latest.date(), ",", CsvField(f.family()), ",",
                      CsvField(f.region()), ",", g.first_party_repos(), ",",
                      g.first_party_downloads_all_time(), ",", g.first_party_downloads_30d(), ",",
                      FormatNumber(g.ecosystem_downloads_all_time()), ",",
                      FormatNumber(d.finetune()), ",", FormatNumber(d.adapter()), ",",
                      FormatNumber(d.quantized()), ",", FormatNumber(d.merge()), ",",
                      FormatNumber(d.unknown()), "\n");
    }
  }
  RETURN_IF_ERROR(WriteFile(out_dir + "/regions.csv", regions));
  RETURN_IF_ERROR(WriteFile(out_dir + "/families.csv", families));
  return absl::OkStatus();
}

}  // namespace hubcensus
