#!/usr/bin/env bash
# `mtp upload` against `mapillary_tools upload`, both sending the same folder to the
# Mapillary emulator (mtp-sandbox-server, processing delay 0): median wall time, throughput
# and peak RSS over RUNS runs, as a Markdown table.
#
# Usage: bench/upload.sh                  (RUNS=3 SIZES="1000 10000" by default)
#        RUNS=1 SIZES="1000" bench/upload.sh
# Each run of each tool gets a freshly started emulator (nothing already uploaded), a fresh
# account token from its control plane (POST /sandbox/tokens), and fresh local state:
#   - mtp: a new MTP_DATA_DIR, the token given with `mtp accounts token mapillary`, then
#     `mtp upload <folder> --to mapillary` in live mode (MTP_SANDBOX=0) pointed at the
#     emulator; timed from start to exit, so it includes reading and planning the folder.
#   - mapillary_tools 0.14.7 (default settings): `authenticate --jwt`, `process` (not
#     timed; its description file written outside the folder), then `upload` timed, with a
#     new upload history and upload cache directory, so it really sends every image.
# Every run is checked: the emulator must hold every photo with a handle.
# Folders: target/bench-data/walk-<n> (see bench/prepare.sh). Table also written to
# target/bench-data/upload.md.
# Targets: mtp ≥ 5× mapillary_tools' throughput; mtp's peak RSS < 150 MB and about the
# same at 1,000 and 10,000 photos.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUNS="${RUNS:-3}"
SIZES="${SIZES:-1000 10000}"
TMP="$(mktemp -d)"
trap 'stop_server; rm -rf "$TMP"' EXIT

ensure_gnu_time
build_mtp_and_server
ensure_mly

# start_server: a fresh emulator; sets GRAPH, UPLOAD, AUTHORIZE, ADMIN and TOKEN.
start_server() {
  launch_server
  mapillary_endpoints
}

# timed <tool> <n> <cmd…>: runs the command from $TMP/run, appends "wall_s rss_kb" to
# $TMP/<tool>-<n>. Wall time from the clock in ns; peak RSS (%M, KiB) from GNU time.
timed() {
  local tool=$1 n=$2 t0 t1
  shift 2
  t0=$(date +%s%N)
  if ! (cd "$TMP/run" && /usr/bin/time -f '%M' -o "$TMP/time" "$@" >"$TMP/out" 2>"$TMP/err"); then
    echo "FAILED: $*" >&2
    tail -20 "$TMP/out" "$TMP/err" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000 )) $(tail -1 "$TMP/time")" |
    awk '{printf "%.4f %s\n", $1 / 1e6, $2}' >>"$TMP/$tool-$n"
}

run_mtp() { # run_mtp <folder> <n>
  start_server
  rm -rf "$TMP/run" && mkdir -p "$TMP/run"
  local env=(env MTP_DATA_DIR="$TMP/run/data" MTP_SANDBOX=0 MAPILLARY_APP_ID=1001
    MAPILLARY_SECRET='MLY|1001|sandboxsecret' MAPILLARY_GRAPH_URL="$GRAPH"
    MAPILLARY_UPLOAD_URL="$UPLOAD" MAPILLARY_AUTHORIZE_URL="$AUTHORIZE")
  (cd "$TMP/run" && "${env[@]}" "$MTP" accounts token mapillary "$TOKEN" >/dev/null)
  timed mtp "$2" "${env[@]}" "$MTP" upload "$1" --to mapillary
  check_uploaded "$2"
}

run_mly() { # run_mly <folder> <n>
  start_server
  rm -rf "$TMP/run" && mkdir -p "$TMP/run"
  local env=(env MAPILLARY_GRAPH_API_ENDPOINT="$GRAPH" MAPILLARY_UPLOAD_ENDPOINT="$UPLOAD"
    MAPILLARY_CONFIG_PATH="$TMP/run/config" MAPILLARY_UPLOAD_HISTORY_PATH="$TMP/run/history"
    MAPILLARY_TOOLS_UPLOAD_CACHE_DIR="$TMP/run/cache" MAPILLARY_TOOLS_PROMPT_DISABLED=YES)
  local desc="$TMP/run/mapillary_image_description.json"
  (cd "$TMP/run" &&
    "${env[@]}" "$MLY" authenticate --user_name bench --jwt "$TOKEN" >/dev/null 2>&1 &&
    "${env[@]}" "$MLY" process "$1" --skip_process_errors --desc_path "$desc" >/dev/null 2>&1) ||
    { echo "mapillary_tools authenticate/process failed" >&2; exit 1; }
  timed mly "$2" "${env[@]}" "$MLY" upload "$1" --desc_path "$desc" --user_name bench
  check_uploaded "$2"
}

echo "Load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for n in $SIZES; do
  dir="$(walk_folder "$n")"
  # Warm the page cache so every run reads from memory.
  find "$dir" -type f -exec cat {} + >/dev/null
  for ((r = 1; r <= RUNS; r++)); do
    echo "  $n photos, run $r/$RUNS" >&2
    run_mtp "$dir" "$n"
    run_mly "$dir" "$n"
  done
done
stop_server
echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

label() {
  case $1 in
    mtp) echo 'mtp upload (live mode; reads and plans the folder too)' ;;
    mly) echo 'mapillary_tools upload (default: 4 workers)' ;;
  esac
}
{
  echo "Median of $RUNS runs, $(date -u +%Y-%m-%d), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), Mapillary emulator on loopback (processing delay 0), warm page cache."
  echo "Speed-up: mapillary_tools' wall time ÷ this row's, same folder. Peak RSS: MiB, GNU time %M."
  echo
  echo "| tool | photos | wall s | photos/s | MB/s | peak RSS MB | speed-up |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for n in $SIZES; do
    dir="$DATA/walk-$n"
    mb="$(du -sb "$dir" | awk '{print $1 / 1e6}')"
    base="$(median 1 "$TMP/mly-$n")"
    for t in mtp mly; do
      w="$(median 1 "$TMP/$t-$n")"
      m="$(median 2 "$TMP/$t-$n")"
      awk -v l="$(label "$t")" -v n="$n" -v w="$w" -v m="$m" -v b="$base" -v mb="$mb" \
        'BEGIN {printf "| %s | %d | %.2f | %.0f | %.2f | %.1f | %.1f× |\n", l, n, w, n / w, mb / w, m / 1024, b / w}'
    done
  done
} | tee "$DATA/upload.md"

# Verdict: throughput at every size; memory at the largest, and its growth from the smallest.
first="${SIZES%% *}"
last="${SIZES##* }"
{
  echo
  for n in $SIZES; do
    awk -v n="$n" -v w="$(median 1 "$TMP/mtp-$n")" -v b="$(median 1 "$TMP/mly-$n")" 'BEGIN {
      printf "Throughput at %d photos: %.1f× mapillary_tools (≥ 5×: %s)\n", n, b / w, (b / w >= 5 ? "met" : "MISSED")
    }'
  done
  awk -v a="$(median 2 "$TMP/mtp-$first")" -v z="$(median 2 "$TMP/mtp-$last")" -v f="$first" -v l="$last" 'BEGIN {
    printf "Peak RSS of mtp: %.1f MB at %d photos, %.1f MB at %d (< 150 MB: %s)\n", a / 1024, f, z / 1024, l, (z / 1024 < 150 ? "met" : "MISSED")
  }'
} | tee -a "$DATA/upload.md"
