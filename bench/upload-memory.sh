#!/usr/bin/env bash
# Peak memory of `mtp upload` sending one folder to all four destinations at once
# (Mapillary, KartaView, Panoramax, Map the Paths Web), for small and for large photos:
# with uploads streamed from disk, the large photos must not cost more than the small ones.
#
# Usage: bench/upload-memory.sh                      (COUNT=60, SIZES="0.001 30", PANO=1)
#        COUNT=20 SIZES="30" bench/upload-memory.sh
#        MTP_BIN=/path/to/other/mtp bench/upload-memory.sh   (e.g. an older build, to compare)
#        FAULTS='mapillary_bundles=refuse' bench/upload-memory.sh   (the emulators' faults:
#          here Mapillary refuses bundles, so its photos go again as one zip a sequence)
# SIZES are photo sizes in MB: 0.001 = the ~1 kB JPEGs of `mtp dev gen-photos`, larger
# ones are padded to that size (`--size-mb`); PANO=1 makes 360° photos (GPano XMP).
# Folders: target/bench-data/memory-<count>x<size>[-pano] (made on first use; ~COUNT×size
# MB of disk each: delete them when done). Table also written to target/bench-data/upload-memory.md.
#
# Every run gets a fresh emulator process (mtp-sandbox-server, processing delay 0), fresh
# tokens from its control plane and a fresh MTP_DATA_DIR; mtp runs in live mode
# (MTP_SANDBOX=0) pointed at it. The emulators keep what they receive in memory, which is
# why they run in their own process: the peak RSS (GNU time %M) is mtp's alone, from reading
# the folder to the end of every job (4 photos at a time per destination, the default).
# Target: < 150 MB with 30 MB 360° photos.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

COUNT="${COUNT:-60}"
SIZES="${SIZES:-0.001 30}"
PANO="${PANO:-1}"
MTP="${MTP_BIN:-$MTP}"
GEN="${GEN_BIN:-$TARGET_DIR/release/mtp}" # makes the folders: needs --size-mb (this tree's mtp)
TMP="$(mktemp -d)"
trap 'stop_server; rm -rf "$TMP"' EXIT

ensure_gnu_time
if [ -z "${SKIP_BUILD:-}" ]; then
  build_mtp_and_server
fi


# folder <size>: the path of the folder of COUNT photos of <size> MB, made on first use.
folder() {
  local pano="" flags=() dir
  [ "$PANO" = 1 ] && pano="-pano" && flags+=(--pano)
  dir="$DATA/memory-${COUNT}x$1$pano"
  if [ "$1" != 0.001 ]; then flags+=(--size-mb "$1"); fi
  if [ ! -f "$dir.ok" ]; then
    rm -rf "$dir"
    mkdir -p "$DATA"
    "$GEN" dev gen-photos "$dir" --scenario walk --count "$COUNT" "${flags[@]}" >&2
    touch "$dir.ok"
  fi
  echo "$dir"
}

# start_server: a fresh emulator; sets ADMIN, PANORAMAX and ENV (mtp's settings pointing at it).
start_server() {
  launch_server
  live_env
  if [ -n "${FAULTS:-}" ]; then
    curl -fsS -X POST --data-binary "$FAULTS" "$ADMIN/faults" >/dev/null
  fi
}

# run <folder> <size>: one upload; appends "wall_s rss_kb" to $TMP/<size>.
run() {
  start_server
  rm -rf "$TMP/run" && mkdir -p "$TMP/run"
  (
    cd "$TMP/run"
    "${ENV[@]}" "$MTP" accounts token mapillary "$(token mapillary)" >/dev/null
    "${ENV[@]}" "$MTP" accounts token kartaview "$(token kartaview)" >/dev/null
    "${ENV[@]}" "$MTP" accounts panoramax --url "$PANORAMAX" --token "$(token panoramax)" >/dev/null
    "${ENV[@]}" "$MTP" accounts token mtpw "$(token mtpw)" >/dev/null
  )
  local t0 t1
  t0=$(date +%s%N)
  # Map the Paths Web ends waiting for the user's consent to receive their Mapillary token
  # (asked on its card): mtp exits 1 for that. The photo services must all be done.
  (cd "$TMP/run" && /usr/bin/time -f '%M' -o "$TMP/time" "${ENV[@]}" "$MTP" upload "$1" \
    --to mapillary,kartaview,panoramax,mtpw --transport Walk --timeout 900 >"$TMP/out" 2>"$TMP/err") || true
  t1=$(date +%s%N)
  for service in Mapillary KartaView Panoramax; do
    if ! grep -Eq "^ *$service +done +done +$COUNT/$COUNT photos" "$TMP/out"; then
      echo "FAILED: mtp upload $1 ($service is not done)" >&2
      tail -n 20 "$TMP/out" "$TMP/err" >&2
      exit 1
    fi
  done
  # Every photo on each photo service.
  curl -fsS "$ADMIN/state" >"$TMP/state.json"
  python3 - "$TMP/state.json" "$COUNT" "${FAULTS:-}" <<'PY'
import json, sys
s, n = json.load(open(sys.argv[1])), int(sys.argv[2])
types = sorted({c["file_type"] for c in s["mapillary"]["clusters"]})
want = ["zip"] if "mapillary_bundles=refuse" in sys.argv[3] else ["mly_bundle_manifest"]
if types != want:
    sys.exit(f"Mapillary's clusters are {types}, expected {want}")
mly = [f for f in s["mapillary"]["files"] if f["key"].startswith("mly_tools_") and f["key"].endswith(".jpg") and f["handle"]]
if len(mly) != n:
    sys.exit(f"Mapillary holds {len(mly)} complete photos, expected {n}")
PY
  echo "$(( (t1 - t0) / 1000 )) $(tail -1 "$TMP/time")" |
    awk '{printf "%.2f %s\n", $1 / 1e6, $2}' >>"$TMP/$2"
}

echo "mtp: $MTP" >&2
for size in $SIZES; do
  dir="$(folder "$size")"
  echo "  $COUNT photos of $size MB" >&2
  run "$dir" "$size"
done
stop_server

{
  echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, \`$(basename "$MTP")\` $("$MTP" --version 2>/dev/null | head -1). $COUNT photos$([ "$PANO" = 1 ] && echo ' (360°)') to Mapillary, KartaView, Panoramax and Map the Paths Web at once; emulators in their own process (processing delay 0). Peak RSS: MiB, GNU time %M, of mtp alone.${FAULTS:+ Faults: \`$FAULTS\`.}"
  echo
  echo "| photo size MB | folder MB | wall s | peak RSS MB |"
  echo "|---:|---:|---:|---:|"
  for size in $SIZES; do
    dir="$(folder "$size")"
    mb="$(du -sb "$dir" | awk '{print $1 / 1e6}')"
    awk -v s="$size" -v mb="$mb" '{printf "| %s | %.1f | %.1f | %.1f |\n", s, mb, $1, $2 / 1024}' "$TMP/$size"
  done
} | tee -a "$DATA/upload-memory.md"
