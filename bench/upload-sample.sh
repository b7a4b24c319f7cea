#!/usr/bin/env bash
# Where an upload's memory goes over time: runs `mtp upload walk-<n> --to <to>` against a
# fresh emulator process (as bench/memory-curve.sh does) and samples the mtp process's
# /proc/<pid>/status every 100 ms: VmHWM, VmRSS, RssAnon, RssFile, RssShmem, Threads.
#
#   bench/upload-sample.sh 10000                       # to Mapillary
#   bench/upload-sample.sh 10000 mapillary,kartaview,panoramax,mtpw
#   ENV_EXTRA="MALLOC_ARENA_MAX=1" bench/upload-sample.sh 10000   # an allocator setting
#   PREFIX="heaptrack -o /tmp/up" bench/upload-sample.sh 10000    # under heaptrack (then
#                                   read heaptrack's output: the samples are of its process)
#
# Samples: target/bench-data/upload-sample-<n>-<to>.txt, one line per sample; the last one
# (the peak, VmHWM, and what it is made of at the end) is printed. Builds the release mtp
# and emulator first unless SKIP_BUILD is set; the walk folder is made on first use.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

N="${1:?number of photos (a walk folder of that size is made on first use)}"
TO="${2:-mapillary}"
TMP="$(mktemp -d)"
trap 'stop_server; rm -rf "$TMP"' EXIT
[ -n "${SKIP_BUILD:-}" ] || build_mtp_and_server
dir="$(walk_folder "$N")"

launch_server
live_env
mkdir -p "$TMP/run"
cd "$TMP/run"
"${ENV[@]}" "$MTP" accounts token mapillary "$(token mapillary)" >/dev/null
if [ "$TO" != mapillary ]; then
  "${ENV[@]}" "$MTP" accounts token kartaview "$(token kartaview)" >/dev/null
  "${ENV[@]}" "$MTP" accounts panoramax --url "$PANORAMAX" --token "$(token panoramax)" >/dev/null
  "${ENV[@]}" "$MTP" accounts token mtpw "$(token mtpw)" >/dev/null
fi
# shellcheck disable=SC2086 # ENV_EXTRA and PREFIX are word lists on purpose
"${ENV[@]}" ${ENV_EXTRA:-} ${PREFIX:-} "$MTP" upload "$dir" --to "$TO" --transport Walk \
  --timeout 1800 >"$TMP/out" 2>&1 &
pid=$!
out="$DATA/upload-sample-$N-${TO//,/_}.txt"
: >"$out"
while kill -0 "$pid" 2>/dev/null; do
  awk '/^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem|Threads)/ {printf "%s %s ", $1, $2} END {print ""}' \
    "/proc/$pid/status" >>"$out" 2>/dev/null || true
  sleep 0.1
done
wait "$pid" || echo "mtp upload exited with $? (Map the Paths Web waits for consent: 1 is expected with mtpw)" >&2
grep -v '^$' "$out" | tail -1
echo "samples: $out" >&2
