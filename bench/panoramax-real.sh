#!/usr/bin/env bash
# `mtp upload --to panoramax` against panoramax_cli (PyPI `panoramax_cli`, pinned), the same
# folder of camera-size photos (200 × 5 MB by default) into a real GeoVisio 2.15.1 on
# loopback (scripts/geovisio.sh): wall time until the tool ends, and until GeoVisio says
# every picture is ready; throughput, CPU, peak RSS.
#
# Usage: bench/panoramax-real.sh             (COUNT=200 SIZE_MB=5 RUNS=1 PNX_PARALLEL="1 4")
#        KEEP=1 …                            (keep the photo folder; deleted at the end otherwise)
# Needs GeoVisio installed (`scripts/geovisio.sh install`, or a symlink .venv-geovisio to an
# installed venv) and ports 55432/5055 free: the script refuses to run if a GeoVisio already
# answers there. It owns target/geovisio: each run of each tool starts from an EMPTY GeoVisio
# (stop, rm -rf target/geovisio, start: GeoVisio refuses byte-identical files it already
# has, so the second tool would send nothing otherwise) and it stops GeoVisio at the end.
# panoramax_cli $PNX_VERSION is installed into .venv-pnx/ if missing (PNX_VENV=… to reuse one).
#
# Runs, each measured by bench/measure.py (wall, user+sys CPU, GNU time %M):
#   - mtp: `mtp accounts panoramax --url URL --token JWT` (not measured), then
#     `mtp upload <folder> --to panoramax` in live mode (MTP_SANDBOX=0): reads and plans the
#     folder, creates the upload set, sends the files (4 at a time), completes the set and
#     polls it until GeoVisio says it is ready; exits when the job is done.
#   - panoramax_cli: `panoramax_cli upload <folder> --api-url URL --token JWT --wait
#     [--parallel-uploads N]`, for each N in PNX_PARALLEL (1 is its default): its own local
#     checks, upload set, files, then `--wait` polls until every picture is ready.
# While each tool runs, the script polls GeoVisio every 0.25 s (GET
# /api/users/me/upload_sets?filter=, then GET /api/upload_sets/<id> of each) until every
# upload set is ready with COUNT pictures prepared: "ready s" is from the start of the
# tool to that moment (what the service confirms), "tool s" from its start to its exit.
# Table also written to target/bench-data/panoramax-real.md.
# Goal (issue #13): mtp ≥ 2× faster than panoramax_cli.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

COUNT="${COUNT:-200}"
SIZE_MB="${SIZE_MB:-5}"
RUNS="${RUNS:-1}"
PNX_PARALLEL="${PNX_PARALLEL:-1 4}"
PNX_VERSION=1.4.1
PNX_VENV="${PNX_VENV:-$ROOT/.venv-pnx}"
PNX="$PNX_VENV/bin/panoramax_cli"
GEOVISIO="$ROOT/scripts/geovisio.sh"
GV_STATE="$ROOT/target/geovisio"
TMP="$(mktemp -d)"
GV_OURS=0
POLLER=""
cleanup() {
  if [ -n "$POLLER" ]; then kill "$POLLER" 2>/dev/null || true; fi
  if [ "$GV_OURS" = 1 ]; then "$GEOVISIO" stop >/dev/null 2>&1 || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

ensure_gnu_time
build_mtp
if ! "$PNX" --version 2>/dev/null | grep -q "$PNX_VERSION"; then
  echo "Installing panoramax_cli $PNX_VERSION into $PNX_VENV…" >&2
  python3 -m venv "$PNX_VENV"
  "$PNX_VENV/bin/pip" install -q "panoramax_cli==$PNX_VERSION"
fi
[ -x "$ROOT/.venv-geovisio/bin/gunicorn" ] ||
  { echo "GeoVisio is not installed: scripts/geovisio.sh install (or symlink .venv-geovisio)" >&2; exit 1; }
if curl -fsS -m 2 "http://127.0.0.1:${GEOVISIO_PORT:-5055}/api" >/dev/null 2>&1; then
  echo "A GeoVisio already answers on port ${GEOVISIO_PORT:-5055}: stop it first (this script wipes its own)." >&2
  exit 1
fi

DIR="$DATA/panoramax-real-${COUNT}x$SIZE_MB"
if [ ! -f "$DIR.ok" ]; then
  rm -rf "$DIR"
  mkdir -p "$DATA"
  "$MTP" dev gen-photos "$DIR" --scenario walk --count "$COUNT" --size-mb "$SIZE_MB" >&2
  touch "$DIR.ok"
fi
BYTES="$(du -sb "$DIR" | awk '{print $1}')"

# fresh_geovisio: an empty GeoVisio; sets URL and TOKEN.
fresh_geovisio() {
  "$GEOVISIO" stop >/dev/null 2>&1 || true
  rm -rf "$GV_STATE"
  GV_OURS=1
  "$GEOVISIO" start >"$TMP/gv.json" 2>"$TMP/gv.log" || { cat "$TMP/gv.log" >&2; exit 1; }
  URL="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$TMP/gv.json")"
  TOKEN="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$TMP/gv.json")"
}

# ready_state: prints "ready prepared sets" from GeoVisio: the account's upload sets (all of
# them: the list's default filter hides dispatched ones), each read whole (the list does not
# say whether a set is ready).
ready_state() {
  python3 - "$URL" "$TOKEN" <<'PY'
import json, sys, urllib.request
url, token = sys.argv[1].rstrip("/"), sys.argv[2]
def get(path):
    req = urllib.request.Request(url + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
sets = [get(f"/api/upload_sets/{s['id']}") for s in get("/api/users/me/upload_sets?limit=100&filter=")["upload_sets"]]
prepared = sum((s.get("items_status") or {}).get("prepared", 0) for s in sets)
ready = bool(sets) and all(s["ready"] for s in sets)
print(int(ready), prepared, len(sets))
PY
}

# poll_ready <t0_ns>: polls every 0.25 s until GeoVisio lists every upload set ready with
# COUNT pictures prepared (or 600 s have passed); writes "<s since t0> <sets>" to
# $TMP/ready_at.
poll_ready() {
  local t0=$1 state r p s
  while :; do
    state="$(ready_state 2>/dev/null || echo "0 0 0")"
    read -r r p s <<<"$state"
    if [ "$r" = 1 ] && [ "$p" = "$COUNT" ]; then
      echo "$(( ($(date +%s%N) - t0) / 1000 )) $s" | awk '{printf "%.3f %d\n", $1 / 1e6, $2}' >"$TMP/ready_at"
      return
    fi
    if [ $(( ($(date +%s%N) - t0) / 1000000000 )) -gt 900 ]; then
      echo "timeout $s" >"$TMP/ready_at"
      return
    fi
    sleep 0.25
  done
}

# measured <tool> <cmd…>: one run from $TMP/run under bench/measure.py, with GeoVisio
# polled beside it (poll_ready); appends "<measure.py line> <ready_s> <sets>" to $TMP/<tool>.
measured() {
  local tool=$1 t0
  shift
  rm -f "$TMP/ready_at"
  t0=$(date +%s%N)
  poll_ready "$t0" &
  POLLER=$!
  if ! (cd "$TMP/run" && HOME="$TMP/run" python3 "$ROOT/bench/measure.py" "$TMP/m" -- "$@" >"$TMP/out" 2>"$TMP/err"); then
    echo "FAILED: $*" >&2
    tail -n 20 "$TMP/out" "$TMP/err" >&2
    exit 1
  fi
  wait "$POLLER"
  POLLER=""
  if grep -q timeout "$TMP/ready_at"; then
    echo "GeoVisio was not ready 900 s after $tool started" >&2
    exit 1
  fi
  echo "$(tail -1 "$TMP/m") $(cat "$TMP/ready_at")" >>"$TMP/$tool"
}

run_mtp() {
  fresh_geovisio
  rm -rf "$TMP/run" && mkdir -p "$TMP/run"
  local env=(env MTP_DATA_DIR="$TMP/run/data" MTP_SANDBOX=0 MTP_KEYCHAIN=off MTP_OPENER=true
    PANORAMAX_INSTANCE_URL="$URL")
  (cd "$TMP/run" && "${env[@]}" "$MTP" accounts panoramax --url "$URL" --token "$TOKEN" >/dev/null)
  measured mtp "${env[@]}" "$MTP" upload "$DIR" --to panoramax
}

run_pnx() { # run_pnx <parallel uploads>
  fresh_geovisio
  rm -rf "$TMP/run" && mkdir -p "$TMP/run"
  # panoramax_cli notes its upload set's id in the folder and reuses it next time (the
  # set would not be found on the fresh GeoVisio).
  rm -f "$DIR/_panoramax.txt"
  measured "pnx-$1" "$PNX" upload "$DIR" --api-url "$URL" --token "$TOKEN" --wait \
    --parallel-uploads "$1"
  rm -f "$DIR/_panoramax.txt"
}

echo "Load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
find "$DIR" -type f -exec cat {} + >/dev/null # warm the page cache
TOOLS=(mtp)
for p in $PNX_PARALLEL; do TOOLS+=("pnx-$p"); done
for ((r = 1; r <= RUNS; r++)); do
  for t in "${TOOLS[@]}"; do
    echo "  run $r/$RUNS: $t" >&2
    case $t in
      mtp) run_mtp ;;
      pnx-*) run_pnx "${t#pnx-}" ;;
    esac
  done
done
"$GEOVISIO" stop >/dev/null 2>&1 || true
GV_OURS=0
echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

label() {
  case $1 in
    mtp) echo 'mtp upload --to panoramax (4 at a time; reads and plans the folder too)' ;;
    pnx-1) echo "panoramax_cli $PNX_VERSION upload --wait (default: 1 at a time)" ;;
    pnx-*) echo "panoramax_cli $PNX_VERSION upload --wait --parallel-uploads ${1#pnx-}" ;;
  esac
}
{
  echo "Median of $RUNS run(s), $(date -u +%Y-%m-%d), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), shared: other builds may run). GeoVisio 2.15.1 on loopback (API: gunicorn, 2 workers; 1 picture worker; PostgreSQL 15, fsync off), empty before each run; warm page cache."
  echo "$COUNT photos of $SIZE_MB MB ($(awk -v b="$BYTES" 'BEGIN {printf "%.2f GB", b / 1e9}')). \"tool s\": start to exit of the tool. \"ready s\": start until GeoVisio lists every upload set ready with all $COUNT pictures prepared (polled every 0.25 s beside the tool). CPU: the tool's user + sys (GeoVisio's not counted). Speed-up: panoramax_cli's default ready s ÷ this row's."
  echo
  echo "| tool | tool s | ready s | upload sets | MB/s (to ready) | CPU s | peak RSS MB | speed-up (tool s) | speed-up (ready s) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for t in "${TOOLS[@]}"; do
    awk '{print $4 + $5}' "$TMP/$t" >"$TMP/$t.cpu"
  done
  base="$(median 1 "$TMP/pnx-1" 2>/dev/null || echo 0)"
  base_r="$(median 8 "$TMP/pnx-1" 2>/dev/null || echo 0)"
  for t in "${TOOLS[@]}"; do
    awk -v l="$(label "$t")" -v w="$(median 1 "$TMP/$t")" -v rd="$(median 8 "$TMP/$t")" \
      -v s="$(median 9 "$TMP/$t")" -v cpu="$(median 1 "$TMP/$t.cpu")" \
      -v m="$(median 6 "$TMP/$t")" -v b="$base" -v br="$base_r" -v bytes="$BYTES" 'BEGIN {
        printf "| %s | %.1f | %.1f | %d | %.1f | %.1f | %.1f | %s | %s |\n",
          l, w, rd, s, bytes / rd / 1e6, cpu, m / 1024, (b > 0 ? sprintf("%.2f×", b / w) : "–"), (br > 0 ? sprintf("%.2f×", br / rd) : "–")
      }'
  done
  if [ -f "$TMP/pnx-1" ]; then
    echo
    awk -v m="$(median 1 "$TMP/mtp")" -v mr="$(median 8 "$TMP/mtp")" -v b="$base" -v br="$base_r" 'BEGIN {
      printf "mtp against panoramax_cli (default settings): %.2f× faster to its own end, %.2f× to GeoVisio ready (≥ 2×: %s)\n", b / m, br / mr, (b / m >= 2 && br / mr >= 2 ? "met" : "MISSED")
    }'
  fi
} | tee "$DATA/panoramax-real.md"

if [ -z "${KEEP:-}" ]; then
  rm -rf "$DIR" "$DIR.ok"
fi
