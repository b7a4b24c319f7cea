#!/usr/bin/env bash
# `mtp upload` against `mapillary_tools upload` with camera-size photos (500 × 5 MB by
# default) to the Mapillary emulator (mtp-sandbox-server in its own process, processing
# delay 0), over a 100 Mbit/s link shared by all of a tool's parallel uploads, and
# unthrottled: wall time, throughput, link use, CPU seconds per GB sent, peak RSS.
#
# Usage: bench/upload-real.sh               (COUNT=500 SIZE_MB=5 RUNS=1 LINK_MBIT=100)
#        COUNT=100 MODES=link bench/upload-real.sh
#        KEEP=1 …                            (keep the photo folder; deleted at the end otherwise)
# MODES: "link" (the emulator reads every upload body through one shared link of LINK_MBIT:
# the fault `mapillary.upload:link_kbps=K`, K = LINK_MBIT × 10^6 / 8 / 1024 KiB/s) and/or
# "free" (no limit: loopback, and the emulator shares the 2 CPUs with the tool).
# Every run gets a fresh emulator, a fresh token and fresh local state, as in bench/upload.sh:
#   - mtp: `mtp accounts token mapillary`, then `mtp upload <folder> --to mapillary` in live
#     mode (MTP_SANDBOX=0), measured from start to exit (reading and planning included);
#   - mapillary_tools 0.14.7 (default settings): `authenticate`, `process` (not measured),
#     then `upload` measured, with a new upload history and cache (so it sends every image).
# Each is measured by bench/measure.py (wall, user+sys CPU, GNU time %M) and checked: the
# emulator must hold every photo, complete, with a handle.
# Folder: target/bench-data/upload-real-<COUNT>x<SIZE_MB> (`mtp dev gen-photos --scenario
# walk --size-mb`). Table also written to target/bench-data/upload-real.md.
# Goal (issue #13): on the link, mtp uses ≥ 95 % of it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

COUNT="${COUNT:-500}"
SIZE_MB="${SIZE_MB:-5}"
RUNS="${RUNS:-1}"
LINK_MBIT="${LINK_MBIT:-100}"
MODES="${MODES:-link free}"
LINK_KBPS=$((LINK_MBIT * 1000000 / 8 / 1024))
LINK_BPS=$((LINK_KBPS * 1024))
TMP="$(mktemp -d)"
trap 'stop_server; rm -rf "$TMP"' EXIT

ensure_gnu_time
build_mtp_and_server
ensure_mly

DIR="$DATA/upload-real-${COUNT}x$SIZE_MB"
if [ ! -f "$DIR.ok" ]; then
  need_mb=$(awk -v c="$COUNT" -v s="$SIZE_MB" 'BEGIN {printf "%d", c * s + 8000}')
  free_mb=$(df -Pm "$DATA" 2>/dev/null | awk 'NR == 2 {print $4}' || df -Pm "$ROOT" | awk 'NR == 2 {print $4}')
  if [ "$free_mb" -lt "$need_mb" ]; then
    echo "Not enough disk: $free_mb MB free, need $need_mb MB. Lower COUNT." >&2
    exit 1
  fi
  rm -rf "$DIR"
  mkdir -p "$DATA"
  "$MTP" dev gen-photos "$DIR" --scenario walk --count "$COUNT" --size-mb "$SIZE_MB" >&2
  touch "$DIR.ok"
fi
BYTES="$(du -sb "$DIR" | awk '{print $1}')"

# start_server <mode>: a fresh emulator; sets GRAPH, UPLOAD, AUTHORIZE, ADMIN and TOKEN.
start_server() {
  local faults=()
  [ "$1" = link ] && faults=(--faults "mapillary.upload:link_kbps=$LINK_KBPS")
  launch_server "${faults[@]}"
  mapillary_endpoints
}

# measured <tool> <mode> <cmd…>: runs the command from $TMP/run under bench/measure.py.
measured() {
  local tool=$1 mode=$2
  shift 2
  if ! (cd "$TMP/run" && python3 "$ROOT/bench/measure.py" "$TMP/$tool-$mode" -- "$@" >"$TMP/out" 2>"$TMP/err"); then
    echo "FAILED: $*" >&2
    tail -n 20 "$TMP/out" "$TMP/err" >&2
    exit 1
  fi
}

run_mtp() { # run_mtp <mode>
  start_server "$1"
  rm -rf "$TMP/run" && mkdir -p "$TMP/run"
  local env=(env MTP_DATA_DIR="$TMP/run/data" MTP_SANDBOX=0 MTP_KEYCHAIN=off MAPILLARY_APP_ID=1001
    MAPILLARY_SECRET='MLY|1001|sandboxsecret' MAPILLARY_GRAPH_URL="$GRAPH"
    MAPILLARY_UPLOAD_URL="$UPLOAD" MAPILLARY_AUTHORIZE_URL="$AUTHORIZE")
  (cd "$TMP/run" && "${env[@]}" "$MTP" accounts token mapillary "$TOKEN" >/dev/null)
  measured mtp "$1" "${env[@]}" "$MTP" upload "$DIR" --to mapillary
  check_uploaded "$COUNT"
}

run_mly() { # run_mly <mode>
  start_server "$1"
  rm -rf "$TMP/run" && mkdir -p "$TMP/run"
  local env=(env MAPILLARY_GRAPH_API_ENDPOINT="$GRAPH" MAPILLARY_UPLOAD_ENDPOINT="$UPLOAD"
    MAPILLARY_CONFIG_PATH="$TMP/run/config" MAPILLARY_UPLOAD_HISTORY_PATH="$TMP/run/history"
    MAPILLARY_TOOLS_UPLOAD_CACHE_DIR="$TMP/run/cache" MAPILLARY_TOOLS_PROMPT_DISABLED=YES)
  local desc="$TMP/run/mapillary_image_description.json"
  (cd "$TMP/run" &&
    "${env[@]}" "$MLY" authenticate --user_name bench --jwt "$TOKEN" >/dev/null 2>&1 &&
    "${env[@]}" "$MLY" process "$DIR" --skip_process_errors --desc_path "$desc" >/dev/null 2>&1) ||
    { echo "mapillary_tools authenticate/process failed" >&2; exit 1; }
  measured mly "$1" "${env[@]}" "$MLY" upload "$DIR" --desc_path "$desc" --user_name bench
  check_uploaded "$COUNT"
}

echo "Load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
find "$DIR" -type f -exec cat {} + >/dev/null # warm the page cache: the link is the limit, not the disk
for ((r = 1; r <= RUNS; r++)); do
  for mode in $MODES; do
    echo "  run $r/$RUNS, $mode: mtp" >&2
    run_mtp "$mode"
    echo "  run $r/$RUNS, $mode: mapillary_tools" >&2
    run_mly "$mode"
  done
done
stop_server
echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

label() {
  case $1 in
    mtp) echo 'mtp upload --to mapillary (reads and plans the folder too)' ;;
    mly) echo 'mapillary_tools upload (default settings)' ;;
  esac
}
mode_label() {
  case $1 in
    link) echo "$LINK_MBIT Mbit/s link" ;;
    free) echo 'unthrottled' ;;
  esac
}
{
  echo "Median of $RUNS run(s), $(date -u +%Y-%m-%d), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), shared: other builds may run), Mapillary emulator on loopback in its own process (processing delay 0), warm page cache."
  echo "$COUNT photos of $SIZE_MB MB ($(awk -v b="$BYTES" 'BEGIN {printf "%.2f GB", b / 1e9}')). Link: \`mapillary.upload:link_kbps=$LINK_KBPS\` = $(awk -v b="$LINK_BPS" 'BEGIN {printf "%.2f Mbit/s", b * 8 / 1e6}'), shared by all uploads of a run. Link use = throughput ÷ link rate. CPU s/GB = (user + sys) ÷ GB sent (photo bytes). Peak RSS: GNU time %M."
  echo
  echo "| tool | link | wall s | photos/s | MB/s | Mbit/s | link use | CPU s/GB | peak RSS MB | speed-up |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for mode in $MODES; do
    base="$(median 1 "$TMP/mly-$mode")"
    for t in mtp mly; do
      f="$TMP/$t-$mode"
      awk '{print $4 + $5}' "$f" >"$f.cpu"
      awk -v l="$(label "$t")" -v ml="$(mode_label "$mode")" -v mode="$mode" -v n="$COUNT" \
        -v w="$(median 1 "$f")" -v cpu="$(median 1 "$f.cpu")" -v m="$(median 6 "$f")" \
        -v b="$base" -v bytes="$BYTES" -v link="$LINK_BPS" 'BEGIN {
          bps = bytes / w
          use = (mode == "link" ? sprintf("%.1f %%", 100 * bps / link) : "–")
          printf "| %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %.2f | %.1f | %.2f× |\n",
            l, ml, w, n / w, bps / 1e6, bps * 8 / 1e6, use, cpu / (bytes / 1e9), m / 1024, b / w
        }'
    done
  done
  if [[ " $MODES " == *" link "* ]]; then
    echo
    awk -v w="$(median 1 "$TMP/mtp-link")" -v bytes="$BYTES" -v link="$LINK_BPS" 'BEGIN {
      u = 100 * bytes / w / link
      printf "Link use of mtp on the %s: %.1f %% (≥ 95 %%: %s)\n", "link", u, (u >= 95 ? "met" : "MISSED")
    }'
  fi
} | tee "$DATA/upload-real.md"

if [ -z "${KEEP:-}" ]; then
  rm -rf "$DIR" "$DIR.ok"
fi
