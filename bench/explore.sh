#!/usr/bin/env bash
# Explore at scale: `mtp search all` over a 10 × 10 km area holding N emulated images (default
# 50,000) spread over Mapillary, KartaView and Panoramax (the sandbox's seeded world,
# MTP_SANDBOX_WORLD=<n>@<lat>,<lon>,<km>, served by mtp-sandbox-server in its own process).
# Measures, per run: time to the first images, time to all of them, and peak RSS (GNU time
# %M) of mtp alone.
#
#   bench/explore.sh                 RUNS=5 IMAGES=50000
#   RUNS=3 IMAGES=10000 bench/explore.sh
#
# The map side (frames while 50,000 points are drawn) is measured by the ignored e2e test
# `explore_draws_fifty_thousand_points_without_a_long_frame` (see bench/README.md).
set -euo pipefail
source "$(dirname "$0")/common.sh"

RUNS="${RUNS:-5}"
IMAGES="${IMAGES:-50000}"
LAT=48.8566
LON=2.3522
KM=10
# The same 10 × 10 km square as the world's dense area (5 km each side of its centre).
BBOX="$(python3 -c "import math;d=5000/111320;e=5000/(111320*math.cos(math.radians($LAT)));print(f'{$LON-e:.6f},{$LAT-d:.6f},{$LON+e:.6f},{$LAT+d:.6f}')")"

command -v /usr/bin/time >/dev/null || { echo "Installing GNU time…" >&2; apt-get install -y -q time >/dev/null; }
build_mtp_and_server

OUT="$DATA/explore"
TMP="$(mktemp -d)"
trap 'stop_server; rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

results="$OUT/runs.tsv"
: > "$results"
for run in $(seq 1 "$RUNS"); do
  # The emulators in a process of their own (they hold the world and answer the queries), so
  # that the RSS measured is the client's alone; mtp in live mode, pointed at them.
  export MTP_SANDBOX_WORLD="$IMAGES@$LAT,$LON,$KM"
  launch_server
  unset MTP_SANDBOX_WORLD
  rm -rf "$TMP/run"
  mkdir -p "$TMP/run"
  live_env
  "${ENV[@]}" "$MTP" accounts token mapillary "$(token mapillary)" >/dev/null
  "${ENV[@]}" "$MTP" accounts token kartaview "$(token kartaview)" >/dev/null
  "${ENV[@]}" "$MTP" accounts panoramax --url "$PANORAMAX" --token "$(token panoramax)" >/dev/null
  /usr/bin/time -f "rss_kb=%M" -o "$OUT/time.txt" "${ENV[@]}" \
    "$MTP" search all --bbox "$BBOX" --timings -o "$OUT/found.geojson" 2> "$OUT/stderr.txt" || true
  timing="$(grep '^timings:' "$OUT/stderr.txt" || { cat "$OUT/stderr.txt" >&2; exit 1; })"
  first="$(sed -E 's/.*first_ms=([0-9.]+).*/\1/' <<<"$timing")"
  all="$(sed -E 's/.*all_ms=([0-9.]+).*/\1/' <<<"$timing")"
  images="$(sed -E 's/.*images=([0-9]+).*/\1/' <<<"$timing")"
  rss="$(sed -E 's/rss_kb=//' "$OUT/time.txt")"
  printf '%s\t%s\t%s\t%s\n' "$first" "$all" "$images" "$rss" >> "$results"
  echo "run $run: first ${first} ms, all ${all} ms, ${images} images, ${rss} kB" >&2
  grep -E '^(Mapillary|KartaView|Panoramax):' "$OUT/stderr.txt" >&2 || true
done
stop_server

python3 - "$results" "$IMAGES" <<'EOF' | tee "$OUT/explore.md"
import statistics, sys
rows = [list(map(float, l.split('\t'))) for l in open(sys.argv[1]) if l.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
first, total, images, rss = med(0), med(1), med(2), med(3) / 1024
print(f"| world | images found | first results s | all results s | peak RSS MB |")
print(f"|---|---:|---:|---:|---:|")
print(f"| {int(sys.argv[2]):,} in 10 × 10 km | {int(images):,} | {first/1000:.3f} | {total/1000:.3f} | {rss:.1f} |")
ok = first < 1000 and total < 10000 and rss < 200
print()
print(f"Targets (first < 1 s, all < 10 s, RSS < 200 MB): {'met' if ok else 'NOT met'} (medians of {len(rows)} runs)")
EOF

# The map side: the real window (debug build, Xvfb) with the same crowded world, through the
# e2e test that searches it, zooms in and out, and prints the layer's own measurements
# (images held, DOM nodes in the map, the longest redraw, the last cluster-index build).
if [ "${UI:-1}" = 1 ]; then
  echo "Measuring the map (make build, then the e2e test under Xvfb)…" >&2
  (cd "$ROOT" && make -s build >/dev/null)
  (cd "$ROOT" && xvfb-run -a -s "-screen 0 1920x1200x24" dbus-run-session -- \
    cargo nextest run -p mtp-tests --test e2e --run-ignored only --no-capture \
    explore_stays_light_with_fifty_thousand_images 2>&1) | grep '50,000 images:' | tee -a "$OUT/explore.md"
fi
