#!/usr/bin/env bash
# `mtp prepare` against `mapillary_tools process` on synthetic folders of geotagged JPEGs:
# median wall time and peak RSS over RUNS runs, as a Markdown table.
#
# Usage: bench/prepare.sh                 (RUNS=5 SIZES="1000 10000" by default)
#        RUNS=3 SIZES="1000" bench/prepare.sh
# Folders are generated once with `mtp dev gen-photos --scenario walk` and cached in
# target/bench-data/walk-<n>. The table is also written to target/bench-data/prepare.md.
# Target (issue): at 10,000 photos `mtp prepare --dry-run` ≥ 30× faster than
# mapillary_tools (default settings) and ≤ 60 MB peak RSS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUNS="${RUNS:-5}"
SIZES="${SIZES:-1000 10000}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

ensure_gnu_time
build_mtp
ensure_mly
mkdir -p "$DATA"

# run_once <tool> <folder>: one timed run; appends "wall_s rss_kb" to $TMP/<tool>-<n>.
run_once() {
  local tool=$1 dir=$2 n=$3 data
  rm -f "$dir/mapillary_image_description.json"
  data="$(mktemp -d "$TMP/data.XXXX")"
  local cmd=()
  case $tool in
    mtp-dry) cmd=("$MTP" prepare "$dir" --dry-run --json) ;;
    mtp-save) cmd=("$MTP" prepare "$dir" --json) ;;
    mly-1) cmd=("$MLY" process "$dir" --skip_process_errors --num_processes 0) ;;
    mly) cmd=("$MLY" process "$dir" --skip_process_errors) ;;
  esac
  # A fresh, empty database each run; run from it so no .env is picked up.
  # Wall time from the clock in ns (GNU time's %e has only 10 ms resolution); peak RSS
  # (%M, KiB) from GNU time: the largest single process of the tree, not a sum.
  local t0 t1
  t0=$(date +%s%N)
  if ! (cd "$data" && MTP_DATA_DIR="$data" /usr/bin/time -f '%M' -o "$TMP/time" \
        "${cmd[@]}" >/dev/null 2>"$TMP/stderr"); then
    echo "FAILED: ${cmd[*]}" >&2
    tail -20 "$TMP/stderr" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000 )) $(tail -1 "$TMP/time")" | awk '{printf "%.4f %s\n", $1 / 1e6, $2}' >>"$TMP/$tool-$n"
  rm -rf "$data"
  rm -f "$dir/mapillary_image_description.json"
}

TOOLS=(mtp-dry mtp-save mly-1 mly)
label() {
  case $1 in
    mtp-dry) echo 'mtp prepare --dry-run --json' ;;
    mtp-save) echo 'mtp prepare --json (saves to SQLite)' ;;
    mly-1) echo 'mapillary_tools process --num_processes 0 (1 process)' ;;
    mly) echo 'mapillary_tools process (default: 1 worker per CPU)' ;;
  esac
}

echo "Load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for n in $SIZES; do
  dir="$(walk_folder "$n")"
  # Warm the page cache so every run reads from memory.
  find "$dir" -type f -exec cat {} + >/dev/null
  for ((r = 1; r <= RUNS; r++)); do
    echo "  $n photos, run $r/$RUNS" >&2
    for t in "${TOOLS[@]}"; do run_once "$t" "$dir" "$n"; done
  done
done
echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

{
  echo "Median of $RUNS runs, $(date -u +%Y-%m-%d), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), TZ=UTC, warm page cache."
  echo "Speed-up: mapillary_tools' wall time (default settings; and its faster setting) ÷ this row's, same folder."
  echo "Peak RSS: MiB, of the largest single process (mapillary_tools' default also runs one worker per CPU)."
  echo
  echo "| tool | photos | wall s | peak RSS MB | speed-up vs default | vs fastest mapillary_tools |"
  echo "|---|---:|---:|---:|---:|---:|"
  for n in $SIZES; do
    base="$(median 1 "$TMP/mly-$n")"
    one="$(median 1 "$TMP/mly-1-$n")"
    best="$(awk -v a="$base" -v b="$one" 'BEGIN {print (a < b ? a : b)}')"
    for t in "${TOOLS[@]}"; do
      w="$(median 1 "$TMP/$t-$n")"
      m="$(median 2 "$TMP/$t-$n")"
      awk -v l="$(label "$t")" -v n="$n" -v w="$w" -v m="$m" -v b="$base" -v f="$best" \
        'BEGIN {printf "| %s | %d | %.3f | %.1f | %.1f× | %.1f× |\n", l, n, w, m / 1024, b / w, f / w}'
    done
  done
} | tee "$DATA/prepare.md"

# Verdict on the largest size.
n="${SIZES##* }"
awk -v w="$(median 1 "$TMP/mtp-dry-$n")" -v m="$(median 2 "$TMP/mtp-dry-$n")" \
  -v b="$(median 1 "$TMP/mly-$n")" -v o="$(median 1 "$TMP/mly-1-$n")" -v n="$n" 'BEGIN {
    s = b / w; f = (o < b ? o : b) / w; mb = m / 1024
    printf "\nTarget at %d photos (mtp prepare --dry-run): %.1f× faster than default mapillary_tools, %.1f× than its fastest setting (≥ 30×: %s); %.1f MB (≤ 60 MB: %s)\n",
      n, s, f, (f >= 30 ? "met" : (s >= 30 ? "met against the default only" : "MISSED")), mb, (mb <= 60 ? "met" : "MISSED")
  }' | tee -a "$DATA/prepare.md"
