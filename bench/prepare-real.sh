#!/usr/bin/env bash
# `mtp prepare` on a folder of camera-size photos (4–8 MB, one in five 360°), cold and warm
# page cache, next to mapillary_tools 0.14.7 `process` and to a floor that only reads the
# first 128 KiB of every file (bench/head-reader.c): wall time, bytes read per photo
# (/proc/<pid>/io rchar and read_bytes), CPU and peak RSS.
#
# Usage: bench/prepare-real.sh              (COUNT=2000 RUNS=3 by default)
#        COUNT=500 RUNS=1 bench/prepare-real.sh
#        KEEP=1 …                           (keep the photo folder; deleted at the end otherwise)
#        HEADER_KIB=48 …                    (headers 48 KiB larger, as a camera's preview and
#                                            profiles make them: another folder, real-<COUNT>-h48)
#        MTP_BIN=<an mtp binary> …          (measure another build)
# The folder, target/bench-data/real-<COUNT>, holds 10 sub-folders (like a camera's
# DCIM/100…): for each size of 4, 5, 6, 7 and 8 MB, one of COUNT/5 × 4/5 flat photos and
# one of COUNT/5 × 1/5 360° photos (GPano XMP), made with
# `mtp dev gen-photos --scenario walk --size-mb S [--pano]` (EXIF/XMP at the start, then
# the image data: pseudo-random padding). ~6 MB a photo on average: 12 GB at 2,000, so the
# script checks that the disk keeps 8 GB free.
#
# Every run of every tool: page cache dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`,
# needs root; without it only warm numbers are measured, and the table says so), the tool
# run once "cold", then at once again "warm" (what it read is now cached). Fresh empty
# MTP_DATA_DIR each run; no mapillary_image_description.json left in the folder.
# Each run is measured by bench/measure.py: wall time, /proc/<pid>/io of the exited process
# (rchar = bytes asked of read(), read_bytes = bytes fetched from the disk, readahead
# included), user+sys CPU, peak RSS (GNU time %M).
# Table also written to target/bench-data/prepare-real.md.
# Goals (issue #13): mtp reads ≤ 128 KiB a photo; ≥ 30× faster than mapillary_tools; within
# 2× of the 128 KiB floor.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

COUNT="${COUNT:-2000}"
RUNS="${RUNS:-3}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

ensure_gnu_time
build_mtp
ensure_mly
mkdir -p "$DATA"
HEAD_READER="$TMP/head-reader"
cc -O2 -o "$HEAD_READER" "$ROOT/bench/head-reader.c"

HEADER_KIB="${HEADER_KIB:-}"
MTP="${MTP_BIN:-$MTP}"
DIR="$DATA/real-$COUNT${HEADER_KIB:+-h$HEADER_KIB}"
PAD=()
[ -n "$HEADER_KIB" ] && PAD=(--header-pad-kib "$HEADER_KIB")
per_size=$((COUNT / 5))
pano=$((per_size / 5))
flat=$((per_size - pano))
if [ ! -f "$DIR.ok" ]; then
  need_mb=$((COUNT * 6 + 8000))
  free_mb=$(df -Pm "$DATA" | awk 'NR == 2 {print $4}')
  if [ "$free_mb" -lt "$need_mb" ]; then
    echo "Not enough disk: $free_mb MB free, need $need_mb MB (COUNT × 6 MB + 8 GB). Lower COUNT." >&2
    exit 1
  fi
  rm -rf "$DIR"
  echo "Generating $COUNT photos of 4–8 MB in $DIR…" >&2
  i=0
  for mb in 4 5 6 7 8; do
    # Different spacing and interval per sub-folder: no two tracks coincide.
    i=$((i + 1))
    "$MTP" dev gen-photos "$DIR/$((100 + 2 * i))CAMRA" --scenario walk --count "$flat" \
      --size-mb "$mb" --spacing "$((2 + i))" --interval "$i" "${PAD[@]}" >&2
    "$MTP" dev gen-photos "$DIR/$((101 + 2 * i))PANO_" --scenario walk --count "$pano" \
      --size-mb "$mb" --spacing "$((3 + i))" --interval "$((i + 1))" --pano "${PAD[@]}" >&2
  done
  touch "$DIR.ok"
fi
N="$(find "$DIR" -name '*.jpg' | wc -l)"
BYTES="$(du -sb "$DIR" | awk '{print $1}')"

CAN_DROP=1
drop_caches() {
  sync
  if ! echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then CAN_DROP=0; fi
}
drop_caches
[ "$CAN_DROP" = 1 ] || echo "Cannot drop the page cache (not root?): measuring warm only." >&2

TOOLS=(floor mtp-dry mtp-save mly-1 mly)
label() {
  case $1 in
    floor) echo 'floor: first 128 KiB of every file (bench/head-reader.c)' ;;
    mtp-dry) echo 'mtp prepare --dry-run --json' ;;
    mtp-save) echo 'mtp prepare --json (saves to SQLite)' ;;
    mly-1) echo 'mapillary_tools process --num_processes 0' ;;
    mly) echo 'mapillary_tools process (default: 1 worker per CPU)' ;;
  esac
}

# run_once <tool> <cache>: one measured run; appends bench/measure.py's line to $TMP/<tool>-<cache>.
run_once() {
  local tool=$1 cache=$2 data cmd=()
  rm -f "$DIR/mapillary_image_description.json"
  data="$(mktemp -d "$TMP/data.XXXX")"
  case $tool in
    floor) cmd=("$HEAD_READER" "$DIR") ;;
    mtp-dry) cmd=("$MTP" prepare "$DIR" --dry-run --json) ;;
    mtp-save) cmd=("$MTP" prepare "$DIR" --json) ;;
    mly-1) cmd=("$MLY" process "$DIR" --skip_process_errors --num_processes 0) ;;
    mly) cmd=("$MLY" process "$DIR" --skip_process_errors) ;;
  esac
  if ! (cd "$data" && MTP_DATA_DIR="$data" python3 "$ROOT/bench/measure.py" "$TMP/$tool-$cache" -- \
        "${cmd[@]}" >"$TMP/stdout" 2>"$TMP/stderr"); then
    echo "FAILED: ${cmd[*]}" >&2
    tail -20 "$TMP/stderr" >&2
    exit 1
  fi
  rm -rf "$data"
  rm -f "$DIR/mapillary_image_description.json"
}

# Check once that every tool sees every photo.
(cd "$TMP" && "$HEAD_READER" "$DIR") | awk -v n="$N" '$1 != n {print "head-reader saw " $1 " files of " n; exit 1}'
(cd "$TMP" && MTP_DATA_DIR="$TMP/check" "$MTP" prepare "$DIR" --dry-run --json >"$TMP/plan.json")
python3 - "$TMP/plan.json" "$N" "$((5 * pano))" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["plan"]["summary"]
if (s["kept"], s["panoramas"]) != (int(sys.argv[2]), int(sys.argv[3])):
    sys.exit(f"mtp prepare kept {s['kept']} photos ({s['panoramas']} 360°), expected {sys.argv[2]} ({sys.argv[3]})")
PY
echo "Load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((r = 1; r <= RUNS; r++)); do
  for t in "${TOOLS[@]}"; do
    echo "  run $r/$RUNS: $t" >&2
    if [ "$CAN_DROP" = 1 ]; then
      drop_caches
      run_once "$t" cold
    fi
    run_once "$t" warm
  done
done
echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

CACHES=(warm)
[ "$CAN_DROP" = 1 ] && CACHES=(cold warm)
{
  echo "Median of $RUNS runs, $(date -u +%Y-%m-%d), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), shared: other builds may run), TZ=UTC."
  echo "$N photos, $(awk -v b="$BYTES" 'BEGIN {printf "%.1f GB", b / 1e9}') ($(awk -v b="$BYTES" -v n="$N" 'BEGIN {printf "%.1f MB", b / n / 1e6}') a photo on average, 4–8 MB, 1 in 5 360°${HEADER_KIB:+, headers $HEADER_KIB KiB larger}), 10 sub-folders; disk read-ahead $(cat /sys/block/"$(df -P "$DIR" | awk 'NR == 2 {print $1}' | sed 's|/dev/||; s|[0-9]*$||')"/queue/read_ahead_kb 2>/dev/null || echo '?') KiB."
  [ "$CAN_DROP" = 1 ] || echo "**The page cache could not be dropped: warm cache only.**"
  echo "cold = page cache dropped just before; warm = the same tool again right after. rchar: KiB a photo asked of read(); disk: KiB a photo fetched from the disk (readahead included)."
  echo
  echo "| tool | cache | wall s | rchar KiB/photo | disk KiB/photo | CPU s | peak RSS MB | ÷ floor | mapillary_tools default ÷ this | fastest mapillary_tools ÷ this |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in "${CACHES[@]}"; do
    floor="$(median 1 "$TMP/floor-$c")"
    base="$(median 1 "$TMP/mly-$c")"
    one="$(median 1 "$TMP/mly-1-$c")"
    best="$(awk -v a="$base" -v b="$one" 'BEGIN {print (a < b ? a : b)}')"
    for t in "${TOOLS[@]}"; do
      f="$TMP/$t-$c"
      awk '{print $4 + $5}' "$f" >"$f.cpu"
      awk -v l="$(label "$t")" -v c="$c" -v n="$N" -v w="$(median 1 "$f")" -v rc="$(median 2 "$f")" \
        -v rb="$(median 3 "$f")" -v cpu="$(median 1 "$f.cpu")" -v m="$(median 6 "$f")" \
        -v fl="$floor" -v b="$base" -v bs="$best" \
        'BEGIN {printf "| %s | %s | %.3f | %.0f | %.0f | %.2f | %.1f | %.1f× | %.1f× | %.1f× |\n",
          l, c, w, rc / n / 1024, rb / n / 1024, cpu, m / 1024, w / fl, b / w, bs / w}'
    done
  done
  echo
  for c in "${CACHES[@]}"; do
    awk -v c="$c" -v n="$N" -v w="$(median 1 "$TMP/mtp-dry-$c")" -v rc="$(median 2 "$TMP/mtp-dry-$c")" \
      -v fl="$(median 1 "$TMP/floor-$c")" -v b="$(median 1 "$TMP/mly-$c")" -v o="$(median 1 "$TMP/mly-1-$c")" 'BEGIN {
        k = rc / n / 1024; s = b / w; f = (o < b ? o : b) / w; x = w / fl
        printf "- %s cache, `mtp prepare --dry-run`: %.0f KiB read a photo (≤ 128: %s); %.1f× faster than mapillary_tools default, %.1f× than its fastest setting (≥ 30×: %s); %.2f× the floor (≤ 2×: %s)\n",
          c, k, (k <= 128 ? "met" : "MISSED"), s, f, (f >= 30 ? "met" : (s >= 30 ? "met against the default only" : "MISSED")), x, (x <= 2 ? "met" : "MISSED")
      }'
  done
} | tee "$DATA/prepare-real.md"

if [ -z "${KEEP:-}" ]; then
  rm -rf "$DIR" "$DIR.ok"
fi
