#!/usr/bin/env bash
# Memory curve: peak RSS of mtp at 1,000, 5,000 and 10,000 photos for
#   - `mtp prepare <folder> --json` (read, plan, checks, saved to SQLite, JSON printed);
#   - `mtp upload <folder> --to mapillary`;
#   - `mtp upload <folder> --to mapillary,kartaview,panoramax,mtpw --transport Walk`.
# Goal: flat within 10 % (largest ÷ smallest peak ≤ 1.10 for each command).
#
# Usage: bench/memory-curve.sh                    (RUNS=3 SIZES="1000 5000 10000" by default)
#        RUNS=1 SIZES="1000 10000" bench/memory-curve.sh
#        MTP_BIN=/path/to/other/mtp SKIP_BUILD=1 bench/memory-curve.sh   (another build)
#        ONLY="prepare mly" bench/memory-curve.sh  (a subset of: prepare mly all)
# Folders: target/bench-data/walk-<n> (`mtp dev gen-photos --scenario walk`, ~1 kB
# JPEGs: uploads stream from disk, so the photos' size does not change mtp's memory).
# Every run gets a fresh MTP_DATA_DIR; the uploads get a freshly started emulator process
# (mtp-sandbox-server, processing delay 0; it keeps what it receives in memory, so it must
# not be in the measured process), fresh tokens from its control plane, and mtp in live
# mode (MTP_SANDBOX=0) pointed at it. Peak RSS: GNU time %M (KiB) of mtp alone; the
# median of RUNS runs. Table also written to target/bench-data/memory-curve.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RUNS="${RUNS:-3}"
SIZES="${SIZES:-1000 5000 10000}"
ONLY="${ONLY:-prepare mly all}"
MTP="${MTP_BIN:-$MTP}"
TMP="$(mktemp -d)"
trap 'stop_server; rm -rf "$TMP"' EXIT

ensure_gnu_time
if [ -z "${SKIP_BUILD:-}" ]; then
  build_mtp_and_server
fi


# start_server: a fresh emulator; sets ADMIN, PANORAMAX and ENV (mtp's settings pointing at it).
start_server() {
  launch_server
  live_env
}

# measure <case> <n> <cmd…>: runs the command from $TMP/run under GNU time; appends its
# peak RSS (KiB) and wall time (s) to $TMP/<case>-<n>. The command's exit status is not
# checked here (the callers check what was done).
measure() {
  local case=$1 n=$2 t0 t1
  shift 2
  t0=$(date +%s%N)
  (cd "$TMP/run" && /usr/bin/time -f '%M' -o "$TMP/time" "$@" >"$TMP/out" 2>"$TMP/err") || true
  t1=$(date +%s%N)
  echo "$(tail -1 "$TMP/time") $(( (t1 - t0) / 1000 ))" |
    awk '{printf "%s %.3f\n", $1, $2 / 1e6}' >>"$TMP/$case-$n"
}

fail() { echo "FAILED: $*" >&2; tail -n 20 "$TMP/out" "$TMP/err" >&2; exit 1; }

run_prepare() { # run_prepare <folder> <n>
  rm -rf "$TMP/run" && mkdir -p "$TMP/run"
  measure prepare "$2" env MTP_DATA_DIR="$TMP/run/data" MTP_SANDBOX=0 MTP_KEYCHAIN=off \
    "$MTP" prepare "$1" --json
  python3 - "$TMP/out" "$2" <<'PY' || fail "mtp prepare $1"
import json, sys
out, n = json.load(open(sys.argv[1])), int(sys.argv[2])
kept = sum(s["photo_count"] for s in out["plan"]["sequences"])
if kept != n or not out["saved"]:
    sys.exit(f"prepare kept {kept} photos of {n} (saved: {bool(out['saved'])})")
PY
}

run_upload() { # run_upload <case: mly|all> <folder> <n>
  start_server
  rm -rf "$TMP/run" && mkdir -p "$TMP/run"
  local to=mapillary services=(Mapillary)
  (cd "$TMP/run" && "${ENV[@]}" "$MTP" accounts token mapillary "$(token mapillary)" >/dev/null)
  if [ "$1" = all ]; then
    to=mapillary,kartaview,panoramax,mtpw
    services=(Mapillary KartaView Panoramax)
    (
      cd "$TMP/run"
      "${ENV[@]}" "$MTP" accounts token kartaview "$(token kartaview)" >/dev/null
      "${ENV[@]}" "$MTP" accounts panoramax --url "$PANORAMAX" --token "$(token panoramax)" >/dev/null
      "${ENV[@]}" "$MTP" accounts token mtpw "$(token mtpw)" >/dev/null
    )
  fi
  # Map the Paths Web ends waiting for the user's consent to receive their Mapillary token
  # (asked on its card): mtp exits 1 for that. The photo services must all be done.
  measure "$1" "$3" "${ENV[@]}" "$MTP" upload "$2" --to "$to" --transport Walk --timeout 1800
  # A walk is cut into sequences (500 photos of 12 MP reach Mapillary's 6 Gpx): each line
  # of a service must say done, and their photos add up to all of them.
  for service in "${services[@]}"; do
    awk -v s="$service" -v n="$3" '$1 == s { lines++; if ($2 == "done" && $3 == "done") { split($4, a, "/"); if (a[1] == a[2]) done += a[1] } }
      END { exit !(lines > 0 && done == n) }' "$TMP/out" ||
      fail "mtp upload $2 --to $to ($service is not done)"
  done
  curl -fsS "$ADMIN/state" >"$TMP/state.json"
  python3 - "$TMP/state.json" "$3" <<'PY' || fail "mtp upload $2 --to $to"
import json, sys
s, n = json.load(open(sys.argv[1])), int(sys.argv[2])
mly = [f for f in s["mapillary"]["files"] if f["key"].startswith("mly_tools_") and f["handle"]]
if len(mly) != n:
    sys.exit(f"Mapillary holds {len(mly)} complete photos, expected {n}")
PY
}

echo "mtp: $MTP" >&2
echo "Load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for n in $SIZES; do
  dir="$(walk_folder "$n")"
  find "$dir" -type f -exec cat {} + >/dev/null # warm the page cache
  for ((r = 1; r <= RUNS; r++)); do
    for case in $ONLY; do
      echo "  $n photos, $case, run $r/$RUNS" >&2
      case $case in
        prepare) run_prepare "$dir" "$n" ;;
        mly | all) run_upload "$case" "$dir" "$n" ;;
        *) echo "unknown case $case (prepare, mly, all)" >&2; exit 2 ;;
      esac
    done
  done
done
stop_server
echo "Load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

label() {
  case $1 in
    prepare) echo 'mtp prepare <folder> --json (saved to SQLite)' ;;
    mly) echo 'mtp upload <folder> --to mapillary' ;;
    all) echo 'mtp upload <folder> --to mapillary,kartaview,panoramax,mtpw' ;;
  esac
}
first="${SIZES%% *}"
last="${SIZES##* }"
{
  echo "Median of $RUNS runs, $(date -u +%Y-%m-%d), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), \`$("$MTP" --version 2>/dev/null | head -1)\` ($MTP). Peak RSS: MiB, GNU time %M, of mtp alone (emulators in their own process, processing delay 0)."
  echo
  printf '| command |'
  for n in $SIZES; do printf ' %s photos |' "$n"; done
  printf ' %s → %s |\n|---|' "$first" "$last"
  for _ in $SIZES; do printf -- '---:|'; done
  printf -- '---:|\n'
  for case in $ONLY; do
    printf '| %s |' "$(label "$case")"
    for n in $SIZES; do
      awk -v m="$(median 1 "$TMP/$case-$n")" -v w="$(median 2 "$TMP/$case-$n")" \
        'BEGIN {printf " %.1f MB (%.2f s) |", m / 1024, w}'
    done
    awk -v a="$(median 1 "$TMP/$case-$first")" -v z="$(median 1 "$TMP/$case-$last")" \
      'BEGIN {printf " %+.0f %% (%s) |\n", (z / a - 1) * 100, (z / a <= 1.10 ? "flat within 10 %" : "grows")}'
  done
} | tee "$DATA/memory-curve.md"
