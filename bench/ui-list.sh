#!/usr/bin/env bash
# The status list with 1,000 sequences (3,000 destination rows) in the release build of the
# desktop app: first paint, opening the list (the newest 100 cards; older ones come a page
# at a time), a burst of 100 progress events, and scrolling down the cards shown as a quick
# mouse wheel does, with the longest frame of each (goal: none over 50 ms).
#
#   make bundle && bench/ui-list.sh              (RUNS=3 by default)
#   RUNS=1 MTP_APP_BINARY=target/debug/mtp-desktop bench/ui-list.sh
#
# Each run is the end-to-end test `the_status_list_of_a_thousand_sequences_…` (tests/tests/
# e2e.rs): it seeds a fresh sandbox data dir with 1,000 paused sequences of 3 photos to three
# destinations, starts the app under Xvfb through tauri-driver, and measures in the page
# (requestAnimationFrame intervals). It prints one JSON line, which this script tabulates.
# Frames are WebKitGTK's software-rendered frames under Xvfb (60 Hz: ~16.7 ms each).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
APP="${MTP_APP_BINARY:-$TARGET_DIR/release/mtp-desktop}"
RUNS="${RUNS:-3}"
[ -x "$APP" ] || { echo "$APP is missing: run \`make bundle\` (the release build) first" >&2; exit 1; }
command -v tauri-driver >/dev/null || { echo "tauri-driver is missing: run \`make deps\`" >&2; exit 1; }
cd "$ROOT"
export MTP_APP_BINARY="$(realpath "$APP")" MTP_SCREENSHOTS=screenshots-bench
LINES="$(mktemp)"
LOG="$(mktemp)"
trap 'rm -f "$LINES" "$LOG"' EXIT
for run in $(seq 1 "$RUNS"); do
  echo "run $run of $RUNS…" >&2
  if ! xvfb-run -a -s "-screen 0 1920x1200x24" dbus-run-session -- \
    cargo nextest run -p mtp-tests --test e2e --run-ignored only --no-capture \
    the_status_list_of_a_thousand_sequences >"$LOG" 2>&1; then
    cat "$LOG" >&2
    exit 1
  fi
  grep -o 'status list, 1,000 sequences: .*' "$LOG" | sed 's/^status list, 1,000 sequences: //' >>"$LINES"
done
python3 - "$LINES" "$APP" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = lambda xs: statistics.median(xs)
rows = [
    ("app start to first screen painted (ms, page clock)", [r["first_paint_ms"] for r in runs], None),
    ("open the list: first cards on screen (ms)", [r["open"]["result"]["first_cards_ms"] for r in runs], [r["open"]["frames"] for r in runs]),
    ("open the list: its first 100 cards in (ms)", [r["open"]["result"]["page_ms"] for r in runs], None),
    ("100 progress events handled (ms)", [r["burst"]["result"]["handled_ms"] for r in runs], [r["burst"]["frames"] for r in runs]),
    (f"scroll down the 100 cards shown, 120 px a frame (ms; {runs[0]['scroll']['result']['steps']} frames)", [r["scroll"]["result"]["scroll_ms"] for r in runs], [r["scroll"]["frames"] for r in runs]),
]
print(f"binary: {sys.argv[2]}, {len(runs)} runs")
print()
print("| step | median | runs | longest frame (worst run) | frames over 50 ms (all runs) |")
print("|---|---:|---|---:|---:|")
worst = 0
for name, xs, frames in rows:
    f_max = max(f["max_ms"] for f in frames) if frames else None
    f_over = sum(f["over_50ms"] for f in frames) if frames else None
    if f_max is not None:
        worst = max(worst, f_max)
    print(f"| {name} | {med(xs):.0f} | {', '.join(str(x) for x in xs)} | {'' if f_max is None else f'{f_max} ms'} | {'' if f_over is None else f_over} |")
print()
print("frames over 33 ms, [frame number, ms] per run (frame 0 is the first after the step began):")
for name, xs, frames in rows:
    if frames:
        print(f"- {name.split(' (')[0]}: {'; '.join(json.dumps(f.get('slow', [])) for f in frames)}")
print()
print(f"longest frame over every measured step: {worst} ms (goal: none over 50 ms): {'met' if worst <= 50 else 'missed'}")
PY
