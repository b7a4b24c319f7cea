#!/usr/bin/env bash
# Cold start to first paint of the desktop app (release build by default), RUNS times
# (default 5): a fresh data dir each time, started through tauri-driver under Xvfb and a
# private D-Bus session. Prints a Markdown table and the median (see bench/README.md).
#
#   make bundle && bench/cold-start.sh
#   RUNS=10 MTP_APP_BINARY=target/debug/mtp-desktop bench/cold-start.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
APP="${MTP_APP_BINARY:-$TARGET_DIR/release/mtp-desktop}"
[ -x "$APP" ] || { echo "$APP is missing: run \`make bundle\` (the release build) first" >&2; exit 1; }
command -v tauri-driver >/dev/null || { echo "tauri-driver is missing: run \`make deps\`" >&2; exit 1; }

cd "$ROOT"
export MTP_APP_BINARY="$(realpath "$APP")" MTP_COLD_START_RUNS="${RUNS:-5}"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
# The same screen size as `make e2e`; the test prints the table (--nocapture), and the
# app's own log lines are left out of it unless the run fails.
if ! xvfb-run -a -s "-screen 0 1920x1200x24" dbus-run-session -- \
  cargo test -q -p mtp-tests --test cold_start -- --ignored --nocapture --test-threads 1 >"$LOG" 2>&1; then
  cat "$LOG" >&2
  exit 1
fi
grep -E '^(binary|\||median)' "$LOG"
