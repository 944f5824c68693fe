#!/usr/bin/env bash
# One `hubcensus local` crawl of a fresh fakehub, with its memory over time: the peak RSS
# (/usr/bin/time -v), the RSS sampled every 0.2 s (where in the run the peak falls), and the
# crawl's and the commit's phases from the JSON log (docs/performance.md, "Session 7").
#   bench/local_rss.sh [--bin=build/release/bin/hubcensus] [--repos=2200000] [--work_dir=DIR]
# Prints the peak, the commit's `crawl_committed` line and the RSS timeline from the last crawled
# page on (MB every 0.2 s); keeps every output in DIR (default /tmp/hubcensus-local-rss).
set -euo pipefail
BIN=build/release/bin/hubcensus
REPOS=2200000
WORK=/tmp/hubcensus-local-rss
for arg in "$@"; do
  case "$arg" in
    --bin=*) BIN=${arg#--bin=} ;;
    --repos=*) REPOS=${arg#--repos=} ;;
    --work_dir=*) WORK=${arg#--work_dir=} ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "local_rss.sh: unknown flag $arg (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x "$BIN" ]] || { echo "local_rss.sh: $BIN is missing: run scripts/setup release" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "local_rss.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
rm -rf "$WORK" && mkdir -p "$WORK"
"$BIN" fakehub --port=0 --repos="$REPOS" --rate_limit=off --log_level=warn \
  >"$WORK/fakehub.out" 2>"$WORK/fakehub.err" &
HUB=$!
trap 'kill $HUB 2>/dev/null || true' EXIT
URL=""
for _ in $(seq 1 900); do
  URL=$(grep -ho 'http://[^ ]*' "$WORK/fakehub.out" "$WORK/fakehub.err" 2>/dev/null | head -1 || true)
  [[ -n "$URL" ]] && break
  kill -0 $HUB 2>/dev/null || { echo "local_rss.sh: fakehub exited: $(tail -3 "$WORK/fakehub.err")" >&2; exit 1; }
  sleep 1
done
[[ -n "$URL" ]] || { echo "local_rss.sh: fakehub did not start within 900 s" >&2; exit 1; }
/usr/bin/time -v "$BIN" local --hub_url="$URL" --data_dir="$WORK/data" --date=2025-10-10 \
  --workers=2 --hub_quota=off --log_format=json --format=csv >"$WORK/local.out" 2>"$WORK/local.err" &
TIMED=$!
LOCAL=""
for _ in $(seq 1 50); do
  LOCAL=$(pgrep -P $TIMED | head -1 || true)
  [[ -n "$LOCAL" ]] && break
  sleep 0.1
done
while [[ -n "$LOCAL" ]] && kill -0 "$LOCAL" 2>/dev/null; do
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$LOCAL/status" 2>/dev/null || true)
  [[ -n "$rss" ]] && echo "$(date +%s.%N | cut -c1-14) $rss" >>"$WORK/rss.txt"
  sleep 0.2
done
wait $TIMED || { echo "local_rss.sh: local failed: $(tail -3 "$WORK/local.err")" >&2; exit 1; }
echo "peak RSS of local: $(awk '/Maximum resident/ {printf "%.0f MB", $6 / 1024}' "$WORK/local.err")"
grep -o '"event":"crawl_committed","crawl":"[^"]*","date".*' "$WORK/local.err" | head -1
# The timeline from the log's crawl_items_done on (its wall clock, to the 0.1 s).
done_at=$(grep -o '"ts":"[^"]*","level":"INFO","event":"crawl_items_done' "$WORK/local.err" |
  head -1 | cut -d'"' -f4)
from=$(date -d "$done_at" +%s.%N 2>/dev/null || echo 0)
echo "RSS (MB) every 0.2 s from the last page on:"
awk -v from="$from" '$1 >= from - 1 {printf "%.1f s %d\n", $1 - from, $2 / 1024}' "$WORK/rss.txt" |
  tr '\n' ';' | sed 's/;/; /g'
echo
