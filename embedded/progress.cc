#include "embedded/progress.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_format.h"

namespace hubcensus {
namespace {

std::string Short(const std::string& text, size_t max) {
  if (text.size() <= max) return text;
  size_t cut = max - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
}

}  // namespace

ProgressDisplay::ProgressDisplay(FILE* out, absl::Duration line_interval)
    : out_(out), terminal_(isatty(fileno(out)) != 0), line_interval_(line_interval) {}

void ProgressDisplay::Update(const ProgressSnapshot& p) {
  absl::Time now = absl::Now();
  double secs = std::max(1e-3, absl::ToDoubleSeconds(now - started_));
  if (repos_at_start_ < 0) repos_at_start_ = p.repos;
  double rate = std::max<int64_t>(0, p.repos - repos_at_start_) / secs;
  std::string eta = p.eta_seconds >= 0 ? absl::StrFormat("%ds", p.eta_seconds) : "?";
  if (terminal_) {
    // The chain's length is unknown until its last page: the bar shows pages done of pages seen.
    double frac = p.items_total > 0 ? static_cast<double>(p.items_done) / p.items_total : 0;
    int width = 28;
    int filled = static_cast<int>(frac * width);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    absl::FPrintF(out_, "\r\033[K%s [%s] %d/%d pages  %d repos  %.0f repos/s  eta %s%s", p.label,
                  bar, p.items_done, p.items_total, p.repos, rate, eta,
                  p.last_error.empty() || p.finished ? "" : "  (" + Short(p.last_error, 60) + ")");
    std::fflush(out_);
    return;
  }
  if (now - last_line_ < line_interval_ && !p.finished) return;
  last_line_ = now;
  absl::FPrintF(
      out_, "%s: %d/%d pages, %d repos, %.0f repos/s, eta %s%s\n", p.label, p.items_done,
      p.items_total, p.repos, rate, eta,
      p.last_error.empty() || p.finished ? "" : ", last error: " + Short(p.last_error, 160));
  std::fflush(out_);
}

void ProgressDisplay::Finish(const ProgressSnapshot& p) {
  ProgressSnapshot done = p;
  done.finished = true;
  Update(done);
  if (terminal_) absl::FPrintF(out_, "\n");
  started_ = absl::Now();
  last_line_ = absl::InfinitePast();
  repos_at_start_ = -1;
}

}  // namespace hubcensus
