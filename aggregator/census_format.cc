#include "aggregator/census_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "aggregator/relation_names.h"
#include "common/dates.h"

namespace hubcensus::aggregator {
namespace {

using Row = std::vector<std::string>;

std::string Csv(const Row& header, const std::vector<Row>& rows) {
  std::string out;
  auto line = [&out](const Row& r) {
    for (size_t i = 0; i < r.size(); ++i) {
      if (i > 0) out += ',';
      out += CsvField(r[i]);
    }
    out += '\n';
  };
  line(header);
  for (const Row& r : rows) line(r);
  return out;
}

// Numbers right-align in tables, rounded ones ("385.3M", "37.1%") included.
bool LooksNumeric(std::string s) {
  if (!s.empty() && std::string("kMBT%").find(s.back()) != std::string::npos) s.pop_back();
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == 'e' ||
          c == '+')) {
      return false;
    }
  }
  return true;
}

std::string Table(const Row& header, const std::vector<Row>& rows) {
  std::vector<size_t> width(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const Row& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  auto line = [&](const Row& r, bool is_header) {
    for (size_t i = 0; i < r.size(); ++i) {
      if (i > 0) out += "  ";
      std::string pad(width[i] - r[i].size(), ' ');
      bool right = !is_header && LooksNumeric(r[i]);
      out += right ? pad + r[i] : r[i] + (i + 1 < r.size() ? pad : "");
    }
    out += '\n';
  };
  line(header, true);
  for (const Row& r : rows) line(r, false);
  return out;
}

const Row kFigureHeader = {"first_party_repos",         "first_party_downloads_all_time",
                           "first_party_downloads_30d", "ecosystem_downloads_all_time",
                           "derivatives_finetune",      "derivatives_adapter",
                           "derivatives_quantized",     "derivatives_merge",
                           "derivatives_unknown"};

Row FigureCells(const v1::Figures& f) {
  const auto& d = f.derivatives();
  return {absl::StrCat(f.first_party_repos()),
          absl::StrCat(f.first_party_downloads_all_time()),
          absl::StrCat(f.first_party_downloads_30d()),
          FormatNumber(f.ecosystem_downloads_all_time()),
          FormatNumber(d.finetune()),
          FormatNumber(d.adapter()),
          FormatNumber(d.quantized()),
          FormatNumber(d.merge()),
          FormatNumber(d.unknown())};
}

const Row kFigureTableHeader = {"repos",   "downloads", "downloads_30d", "ecosystem", "finetune",
                                "adapter", "quantized", "merge",         "unknown"};

Row FigureTableCells(const v1::Figures& f) {
  const auto& d = f.derivatives();
  return {FormatCompact(f.first_party_repos()),
          FormatCompact(f.first_party_downloads_all_time()),
          FormatCompact(f.first_party_downloads_30d()),
          FormatCompact(f.ecosystem_downloads_all_time()),
          FormatCompact(d.finetune()),
          FormatCompact(d.adapter()),
          FormatCompact(d.quantized()),
          FormatCompact(d.merge()),
          FormatCompact(d.unknown())};
}

std::string FiguresJson(const v1::Figures& f) {
  const auto& d = f.derivatives();
  return absl::StrCat(
      "\"first_party_repos\": ", f.first_party_repos(),
      ", \"first_party_downloads_all_time\": ", f.first_party_downloads_all_time(),
      ", \"first_party_downloads_30d\": ", f.first_party_downloads_30d(),
      ", \"ecosystem_downloads_all_time\": ", FormatNumber(f.ecosystem_downloads_all_time()),
      ", \"derivatives\": {\"finetune\": ", FormatNumber(d.finetune()),
      ", \"adapter\": ", FormatNumber(d.adapter()),
      ", \"quantized\": ", FormatNumber(d.quantized()), ", \"merge\": ", FormatNumber(d.merge()),
      ", \"unknown\": ", FormatNumber(d.unknown()), "}");
}

// Families of a month by count (largest first), then name: map order is not stable.
std::vector<std::pair<std::string, v1::ShareCount>> SortedShares(const v1::MonthShares& m) {
  std::vector<std::pair<std::string, v1::ShareCount>> v(m.families().begin(), m.families().end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    if (a.second.count() != b.second.count()) return a.second.count() > b.second.count();
    return a.first < b.first;
  });
  return v;
}

const char* StopName(v1::LineageStop stop) {
  switch (stop) {
    case v1::LINEAGE_STOP_FIRST_PARTY:
      return "first_party";
    case v1::LINEAGE_STOP_NO_PARENT:
      return "no_parent";
    case v1::LINEAGE_STOP_CYCLE:
      return "cycle";
    case v1::LINEAGE_STOP_TOO_DEEP:
      return "too_deep";
    case v1::LINEAGE_STOP_ROOT:
      return "root";
    default:
      return "unspecified";
  }
}

Row TopRepoTableCells(const v1::TopRepo& r) {
  return {r.id(),
          FormatCompact(r.downloads_all_time()),
          FormatCompact(r.downloads_30d()),
          r.first_party() ? "true" : "false",
          r.relation(),
          FormatHubTimestamp(r.created_at())};
}

Row TopRepoCells(const v1::TopRepo& r) {
  return {r.id(),
          absl::StrCat(r.downloads_all_time()),
          absl::StrCat(r.downloads_30d()),
          r.first_party() ? "true" : "false",
          r.relation(),
          FormatHubTimestamp(r.created_at())};
}

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text) {
  if (text == "table" || text.empty()) return OutputFormat::kTable;
  if (text == "csv") return OutputFormat::kCsv;
  if (text == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--format: \"", text, "\" is not one of table, csv, json"));
}

std::string FormatCompact(double value) {
  if (!std::isfinite(value)) return "0";
  double magnitude = std::fabs(value);
  if (magnitude < 999.95) {
    if (value == std::nearbyint(value)) return absl::StrCat(static_cast<int64_t>(value));
    return absl::StrFormat("%.1f", value);
  }
  // The suffix is chosen after rounding, so 999,960 reads 1.0M rather than 1000.0k.
  static constexpr struct {
    double scale;
    const char* suffix;
  } kUnits[] = {{1e3, "k"}, {1e6, "M"}, {1e9, "B"}, {1e12, "T"}};
  for (size_t i = 0; i < 4; ++i) {
    if (i + 1 == 4 || std::round(magnitude / kUnits[i].scale * 10) / 10 < 1000) {
      return absl::StrFormat("%.1f%s", value / kUnits[i].scale, kUnits[i].suffix);
    }
  }
  return FormatNumber(value);
}

std::string FormatPercent(double fraction) {
  if (!std::isfinite(fraction)) return "0.0%";
  return absl::StrFormat("%.1f%%", fraction * 100);
}

std::string FormatIsoTimeMs(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

std::string CensusCountsLine(const v1::CensusCounts& c) {
  auto by_reason = [](const google::protobuf::Map<std::string, int64_t>& m) {
    std::vector<std::pair<std::string, int64_t>> sorted(m.begin(), m.end());
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::string> parts;
    for (const auto& [reason, n] : sorted) parts.push_back(absl::StrCat(reason, " ", n));
    return parts.empty() ? std::string() : absl::StrCat(" (", absl::StrJoin(parts, ", "), ")");
  };
  return absl::StrCat("repos counted ", c.repos(), "; rejected entries ", c.rejected_entries(),
                      by_reason(c.rejected_by_reason()), "; private skipped ", c.private_skipped(),
                      "; unreadable ", c.unreadable(), by_reason(c.unreadable_by_reason()));
}

std::string CrossoverAbsentSentence(const std::string& a, const std::string& b,
                                    const v1::SeriesResponse& series) {
  const v1::SeriesPoint* last_a = nullptr;
  const v1::SeriesPoint* last_b = nullptr;
  for (const auto& line : series.lines()) {
    if (line.points().empty()) continue;
    if (line.name() == a) last_a = &*line.points().rbegin();
    if (line.name() == b) last_b = &*line.points().rbegin();
  }
  std::string head = absl::StrCat(a, " does not pass ", b, " in ", series.metric(), ": ");
  if (last_a == nullptr || last_b == nullptr || last_a->date() != last_b->date()) {
    return absl::StrCat(head, "no committed crawl has figures for both.");
  }
  double va = last_a->value(), vb = last_b->value();
  if (va == vb) {
    return absl::StrCat(head, "at the last crawl (", last_a->date(), ") they are level at ",
                        FormatCompact(va), ".");
  }
  bool a_leads = va > vb;
  double lead = std::fabs(va - vb);
  double base = a_leads ? vb : va;
  std::string relative =
      base > 0 ? absl::StrCat(" (", FormatPercent(lead / base), ")") : std::string();
  // a ahead at the last crawl without a crossover: a was ahead at every crawl of the range (any
  // step from a <= b to a > b would have been the crossover).
  return absl::StrCat(head, "at the last crawl (", last_a->date(), ") ", a_leads ? a : b,
                      " leads with ", FormatCompact(a_leads ? va : vb), " to ",
                      FormatCompact(a_leads ? vb : va), ", by ", FormatCompact(lead), relative,
                      a_leads ? absl::StrCat("; ", a, " led at every crawl compared.") : ".");
}

std::string CrossoverFoundSentence(const std::string& a, const std::string& b,
                                   const v1::CrossoverResponse& r) {
  return absl::StrCat(a, " passed ", b, " in the crawl of ", r.date(), ": ",
                      FormatCompact(r.a_value()), " vs ", FormatCompact(r.b_value()), " (",
                      r.previous_date(), ": ", FormatCompact(r.previous_a_value()), " vs ",
                      FormatCompact(r.previous_b_value()), ").");
}

std::string CsvField(absl::string_view field) {
  if (field.find_first_of(",\"\n\r") == absl::string_view::npos) return std::string(field);
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string FormatNumber(double value) {
  if (std::isfinite(value) && value == std::nearbyint(value) && std::fabs(value) < 9.0e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  if (!std::isfinite(value)) return "0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, res.ptr);
}

std::string FamiliesToJson(const v1::FamiliesResponse& r) {
  std::string out = absl::StrCat("{\"crawl_id\": ", JsonString(r.crawl_id()),
                                 ", \"date\": ", JsonString(r.date()), ", \"families\": [");
  for (int i = 0; i < r.families_size(); ++i) {
    const auto& f = r.families(i);
    absl::StrAppend(&out, i ? ", " : "", "{\"family\": ", JsonString(f.family()),
                    ", \"region\": ", JsonString(f.region()), ", ", FiguresJson(f.figures()), "}");
  }
  out += "], \"regions\": [";
  for (int i = 0; i < r.regions_size(); ++i) {
    const auto& g = r.regions(i);
    absl::StrAppend(&out, i ? ", " : "", "{\"region\": ", JsonString(g.region()), ", ",
                    FiguresJson(g.figures()), "}");
  }
  return out + "]}";
}

std::string SharesToJson(const v1::SharesResponse& r) {
  std::string out = absl::StrCat("{\"date\": ", JsonString(r.date()), ", \"months\": [");
  for (int i = 0; i < r.months_size(); ++i) {
    const auto& m = r.months(i);
    absl::StrAppend(&out, i ? ", " : "", "{\"month\": ", JsonString(m.month()),
                    ", \"total\": ", FormatNumber(m.total()), ", \"families\": {");
    bool first = true;
    for (const auto& [name, sc] : SortedShares(m)) {
      absl::StrAppend(&out, first ? "" : ", ", JsonString(name),
                      ": {\"count\": ", FormatNumber(sc.count()),
                      ", \"share\": ", FormatNumber(sc.share()), "}");
      first = false;
    }
    out += "}}";
  }
  return absl::StrCat(out, "], \"placeholder_dated_left_out\": ", r.placeholder_dated_left_out(),
                      "}");
}

std::string SeriesToJson(const v1::SeriesResponse& r) {
  std::string out = absl::StrCat("{\"metric\": ", JsonString(r.metric()), ", \"lines\": [");
  for (int i = 0; i < r.lines_size(); ++i) {
    const auto& l = r.lines(i);
    absl::StrAppend(&out, i ? ", " : "", "{\"name\": ", JsonString(l.name()), ", \"points\": [");
    for (int j = 0; j < l.points_size(); ++j) {
      const auto& p = l.points(j);
      absl::StrAppend(&out, j ? ", " : "", "{\"date\": ", JsonString(p.date()),
                      ", \"crawl_id\": ", JsonString(p.crawl_id()),
                      ", \"value\": ", FormatNumber(p.value()), "}");
    }
    out += "]}";
  }
  return out + "]}";
}

std::string CrossoverToJson(const v1::CrossoverResponse& r) {
  if (!r.found()) return "{\"found\": false}";
  return absl::StrCat("{\"found\": true, \"crawl_id\": ", JsonString(r.crawl_id()),
                      ", \"date\": ", JsonString(r.date()),
                      ", \"a_value\": ", FormatNumber(r.a_value()),
                      ", \"b_value\": ", FormatNumber(r.b_value()),
                      ", \"previous_date\": ", JsonString(r.previous_date()),
                      ", \"previous_a_value\": ", FormatNumber(r.previous_a_value()),
                      ", \"previous_b_value\": ", FormatNumber(r.previous_b_value()), "}");
}

std::string TopReposToJson(const v1::TopReposResponse& r) {
  std::string out = absl::StrCat("{\"crawl_id\": ", JsonString(r.crawl_id()),
                                 ", \"date\": ", JsonString(r.date()), ", \"repos\": [");
  for (int i = 0; i < r.repos_size(); ++i) {
    const auto& t = r.repos(i);
    absl::StrAppend(&out, i ? ", " : "", "{\"id\": ", JsonString(t.id()),
                    ", \"downloads_all_time\": ", t.downloads_all_time(),
                    ", \"downloads_30d\": ", t.downloads_30d(),
                    ", \"first_party\": ", t.first_party() ? "true" : "false",
                    ", \"relation\": ", JsonString(t.relation()),
                    ", \"created_at\": ", JsonString(FormatHubTimestamp(t.created_at())), "}");
  }
  return out + "]}";
}

std::string LineageToJson(const v1::LineageResponse& r) {
  std::string out = absl::StrCat("{\"crawl_id\": ", JsonString(r.crawl_id()),
                                 ", \"date\": ", JsonString(r.date()), ", \"walk\": [");
  for (int i = 0; i < r.walk_size(); ++i) {
    const auto& s = r.walk(i);
    absl::StrAppend(&out, i ? ", " : "", "{\"repo_id\": ", JsonString(s.repo_id()),
                    ", \"relation\": ", JsonString(s.relation()),
                    ", \"in_crawl\": ", s.in_crawl() ? "true" : "false",
                    ", \"first_party_family\": ", JsonString(s.first_party_family()), "}");
  }
  absl::StrAppend(&out, "], \"family\": ", JsonString(r.family()),
                  ", \"stop\": ", JsonString(StopName(r.stop())),
                  ", \"explanation\": ", JsonString(r.explanation()), "}");
  return out;
}

std::string CrawlsToJson(const v1::ListCommittedCrawlsResponse& r) {
  std::string out = "{\"crawls\": [";
  for (int i = 0; i < r.crawls_size(); ++i) {
    const auto& c = r.crawls(i);
    absl::StrAppend(&out, i ? ", " : "", "{\"crawl_id\": ", JsonString(c.crawl_id()),
                    ", \"date\": ", JsonString(c.date()), ", \"repos\": ", c.repos(),
                    ", \"committed_at_unix_ms\": ", c.committed_at_unix_ms(), "}");
  }
  return out + "]}";
}

namespace {
void FamiliesRows(const v1::FamiliesResponse& r, bool table, Row* header, std::vector<Row>* rows) {
  *header = {"family", "region"};
  const Row& figure_header = table ? kFigureTableHeader : kFigureHeader;
  header->insert(header->end(), figure_header.begin(), figure_header.end());
  auto cells_of = table ? &FigureTableCells : &FigureCells;
  for (const auto& f : r.families()) {
    Row row = {f.family(), f.region()};
    Row cells = cells_of(f.figures());
    row.insert(row.end(), cells.begin(), cells.end());
    rows->push_back(row);
  }
  for (const auto& g : r.regions()) {
    Row row = {absl::StrCat("region:", g.region()), g.region()};
    Row cells = cells_of(g.figures());
    row.insert(row.end(), cells.begin(), cells.end());
    rows->push_back(row);
  }
}

void SharesRows(const v1::SharesResponse& r, bool table, std::vector<Row>* rows) {
  auto count = table ? &FormatCompact : &FormatNumber;
  auto share = table ? &FormatPercent : &FormatNumber;
  for (const auto& m : r.months()) {
    for (const auto& [name, sc] : SortedShares(m)) {
      rows->push_back({m.month(), count(m.total()), name, count(sc.count()), share(sc.share())});
    }
    if (m.families().empty()) rows->push_back({m.month(), count(m.total()), "", "0", share(0)});
  }
}

void SeriesRows(const v1::SeriesResponse& r, bool table, std::vector<Row>* rows) {
  auto value = table ? &FormatCompact : &FormatNumber;
  for (const auto& l : r.lines()) {
    for (const auto& p : l.points()) {
      rows->push_back({l.name(), p.date(), p.crawl_id(), value(p.value())});
    }
  }
}

void LineageRows(const v1::LineageResponse& r, std::vector<Row>* rows) {
  for (int i = 0; i < r.walk_size(); ++i) {
    const auto& s = r.walk(i);
    rows->push_back({absl::StrCat(i), s.repo_id(), s.relation(), s.in_crawl() ? "true" : "false",
                     s.first_party_family()});
  }
}

const Row kSharesHeader = {"month", "total", "family", "count", "share"};
const Row kSeriesHeader = {"name", "date", "crawl_id", "value"};
const Row kTopHeader = {"id",          "downloads_all_time", "downloads_30d",
                        "first_party", "relation",           "created_at"};
const Row kLineageHeader = {"step", "repo_id", "relation", "in_crawl", "first_party_family"};
const Row kCrossoverHeader = {"found",
                              "crawl_id",
                              "date",
                              "a_value",
                              "b_value",
                              "previous_date",
                              "previous_a_value",
                              "previous_b_value"};
const Row kCrawlsHeader = {"crawl_id", "date", "repos", "committed_at_unix_ms"};

Row CrossoverRow(const v1::CrossoverResponse& r, bool table) {
  if (!r.found()) return {"false", "", "", "", "", "", "", ""};
  auto value = table ? &FormatCompact : &FormatNumber;
  return {"true",
          r.crawl_id(),
          r.date(),
          value(r.a_value()),
          value(r.b_value()),
          r.previous_date(),
          value(r.previous_a_value()),
          value(r.previous_b_value())};
}

std::vector<Row> CrawlRows(const v1::ListCommittedCrawlsResponse& r, bool table) {
  std::vector<Row> rows;
  for (const auto& c : r.crawls()) {
    rows.push_back({c.crawl_id(), c.date(),
                    table ? FormatCompact(c.repos()) : absl::StrCat(c.repos()),
                    table ? FormatIsoTimeMs(c.committed_at_unix_ms())
                          : absl::StrCat(c.committed_at_unix_ms())});
  }
  return rows;
}
}  // namespace

std::string FamiliesToCsv(const v1::FamiliesResponse& r) {
  Row header;
  std::vector<Row> rows;
  FamiliesRows(r, /*table=*/false, &header, &rows);
  return Csv(header, rows);
}

std::string FamiliesToTable(const v1::FamiliesResponse& r) {
  Row header;
  std::vector<Row> rows;
  FamiliesRows(r, /*table=*/true, &header, &rows);
  return absl::StrCat(
      "crawl ", r.crawl_id(), " (", r.date(), "): ", CensusCountsLine(r.counts()), "\n",
      Table(header, rows),
      "repos, downloads, downloads_30d: first-party; ecosystem: downloads of the "
      "family's repos and derivatives; finetune..unknown: derivatives by relation\n");
}

std::string SharesToCsv(const v1::SharesResponse& r) {
  std::vector<Row> rows;
  SharesRows(r, /*table=*/false, &rows);
  return Csv(kSharesHeader, rows);
}

std::string SharesToTable(const v1::SharesResponse& r) {
  std::vector<Row> rows;
  SharesRows(r, /*table=*/true, &rows);
  return absl::StrCat("new derivative shares, crawl ", r.crawl_id(), " (", r.date(), ")\n",
                      Table(kSharesHeader, rows), r.placeholder_dated_left_out(),
                      " placeholder-dated repos left out (their createdAt is the Hub's "
                      "placeholder, so they are new in no month)\n");
}

std::string SeriesToCsv(const v1::SeriesResponse& r) {
  std::vector<Row> rows;
  SeriesRows(r, /*table=*/false, &rows);
  return Csv(kSeriesHeader, rows);
}

std::string SeriesToTable(const v1::SeriesResponse& r) {
  std::vector<Row> rows;
  SeriesRows(r, /*table=*/true, &rows);
  return absl::StrCat("series of ", r.metric(), "\n", Table(kSeriesHeader, rows));
}

std::string CrossoverToCsv(const v1::CrossoverResponse& r) {
  return Csv(kCrossoverHeader, {CrossoverRow(r, /*table=*/false)});
}

std::string CrossoverToTable(const v1::CrossoverResponse& r) {
  return Table(kCrossoverHeader, {CrossoverRow(r, /*table=*/true)});
}

std::string TopReposToCsv(const v1::TopReposResponse& r) {
  std::vector<Row> rows;
  for (const auto& t : r.repos()) rows.push_back(TopRepoCells(t));
  return Csv(kTopHeader, rows);
}

std::string TopReposToTable(const v1::TopReposResponse& r) {
  std::vector<Row> rows;
  for (const auto& t : r.repos()) rows.push_back(TopRepoTableCells(t));
  return absl::StrCat("crawl ", r.crawl_id(), " (", r.date(), ")\n", Table(kTopHeader, rows));
}

std::string LineageToCsv(const v1::LineageResponse& r) {
  std::vector<Row> rows;
  LineageRows(r, &rows);
  return Csv(kLineageHeader, rows);
}

std::string LineageToTable(const v1::LineageResponse& r) {
  std::vector<Row> rows;
  LineageRows(r, &rows);
  return absl::StrCat(Table(kLineageHeader, rows),
                      "family: ", r.family().empty() ? "(none)" : r.family(),
                      "\nstop: ", StopName(r.stop()), "\n", r.explanation(), "\n");
}

std::string CrawlsToCsv(const v1::ListCommittedCrawlsResponse& r) {
  return Csv(kCrawlsHeader, CrawlRows(r, /*table=*/false));
}

std::string CrawlsToTable(const v1::ListCommittedCrawlsResponse& r) {
  return Table({"crawl_id", "date", "repos", "committed_at"}, CrawlRows(r, /*table=*/true));
}

std::string RepoSnapshotToJsonLine(const v1::RepoSnapshot& r) {
  std::string parents;
  for (int i = 0; i < r.parents_size(); ++i) {
    absl::StrAppend(&parents, i ? ", " : "", "{\"id\": ", JsonString(r.parents(i).id()),
                    ", \"relation\": ", JsonString(RelationName(r.parents(i).relation())), "}");
  }
  const char* gated = r.gated() == v1::GATED_AUTO     ? "\"auto\""
                      : r.gated() == v1::GATED_MANUAL ? "\"manual\""
                                                      : "false";
  return absl::StrCat(
      "{\"id\": ", JsonString(r.id()), ", \"object_id\": ", JsonString(r.object_id()),
      ", \"author\": ", JsonString(r.author()),
      ", \"created_at\": ", JsonString(FormatHubTimestamp(r.created_at())),
      ", \"last_modified\": ", JsonString(FormatHubTimestamp(r.last_modified())),
      ", \"downloads_30d\": ", r.downloads_30d(), ", \"downloads_all_time\": ",
      r.has_downloads_all_time() ? absl::StrCat(r.downloads_all_time()) : std::string("null"),
      ", \"likes\": ", r.likes(), ", \"trending_score\": ", FormatNumber(r.trending_score()),
      ", \"pipeline_tag\": ", JsonString(r.pipeline_tag()),
      ", \"library_name\": ", JsonString(r.library_name()),
      ", \"private\": ", r.is_private() ? "true" : "false",
      ", \"disabled\": ", r.disabled() ? "true" : "false", ", \"gated\": ", gated,
      ", \"sha\": ", JsonString(r.sha()), ", \"parents\": [", parents, "]}");
}

std::string RepoSnapshotCsvHeader() {
  return "id,object_id,author,created_at,last_modified,downloads_30d,downloads_all_time,likes,"
         "trending_score,pipeline_tag,library_name,private,disabled,gated,sha,parents\n";
}

std::string RepoSnapshotToCsvRow(const v1::RepoSnapshot& r) {
  std::vector<std::string> parents;
  for (const auto& p : r.parents())
    parents.push_back(absl::StrCat(RelationName(p.relation()), ":", p.id()));
  const char* gated = r.gated() == v1::GATED_AUTO     ? "auto"
                      : r.gated() == v1::GATED_MANUAL ? "manual"
                                                      : "false";
  Row row = {r.id(),
             r.object_id(),
             r.author(),
             FormatHubTimestamp(r.created_at()),
             FormatHubTimestamp(r.last_modified()),
             absl::StrCat(r.downloads_30d()),
             r.has_downloads_all_time() ? absl::StrCat(r.downloads_all_time()) : "",
             absl::StrCat(r.likes()),
             FormatNumber(r.trending_score()),
             r.pipeline_tag(),
             r.library_name(),
             r.is_private() ? "true" : "false",
             r.disabled() ? "true" : "false",
             gated,
             r.sha(),
             absl::StrJoin(parents, " ")};
  std::string out;
  for (size_t i = 0; i < row.size(); ++i) {
    if (i > 0) out += ',';
    out += CsvField(row[i]);
  }
  return out + "\n";
}

}  // namespace hubcensus::aggregator
