#!/usr/bin/env bash
# Fidelity check of the Mapillary emulator: the real mapillary_tools (PyPI, unchanged) must
# authenticate against it, upload a folder of geotagged JPEGs into it — through injected
# connection cuts, a 503, a 429 with `backoff` and a 412 — and end with exit 0, every image
# stored byte-exact under `mly_tools_<md5>.jpg`, one cluster per sequence, and the images
# readable back through the Graph API once processed.
#
# Usage:
#   scripts/mapillary_tools_fidelity.sh [/path/to/venv/bin/mapillary_tools]
# or MTP_MAPILLARY_TOOLS=/path/to/venv/bin/mapillary_tools scripts/mapillary_tools_fidelity.sh
#
# Set up mapillary_tools once with:
#   python3 -m venv /tmp/mlyvenv && /tmp/mlyvenv/bin/pip install mapillary_tools==0.14.7 pillow piexif
# The JPEGs are made with Pillow + piexif from the same venv (installed on demand).
# Needs curl and jq. Uses $MTP_SANDBOX_SERVER, else target/debug/mtp-sandbox-server (built by
# `cargo test -p mtp-sandbox`, or here with `cargo build -p mtp-sandbox --bin mtp-sandbox-server`).
set -euo pipefail

MLY="${1:-${MTP_MAPILLARY_TOOLS:-/tmp/mlyvenv/bin/mapillary_tools}}"
[ -x "$MLY" ] || { echo "mapillary_tools not found at $MLY" >&2; exit 2; }
PY="$(dirname "$MLY")/python"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SERVER="${MTP_SANDBOX_SERVER:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/mtp-sandbox-server}"
if [ ! -x "$SERVER" ]; then
  (cd "$ROOT" && cargo build -p mtp-sandbox --bin mtp-sandbox-server)
fi
"$PY" -c 'import PIL, piexif' 2>/dev/null || "$(dirname "$MLY")/pip" install -q pillow piexif

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FIDELITY FAIL: $*" >&2; exit 1; }

# --- 1. Sandbox, with faults on the upload host ------------------------------------------
FAULTS='mapillary.upload:reset_after=3000,times=2'
FAULTS+=';mapillary.upload:fail_next=1,status=503,after=4'
FAULTS+=';mapillary.offset:rate_limit=1,backoff_ms=1000,after=6'
FAULTS+=';mapillary.upload:fail_next=1,status=412,after=8'
"$SERVER" --processing-delay-ms 1500 --auto-approve --faults "$FAULTS" > "$WORK/urls.json" &
SERVER_PID=$!
for _ in $(seq 100); do [ -s "$WORK/urls.json" ] && break; sleep 0.1; done
[ -s "$WORK/urls.json" ] || fail "sandbox did not start"
url() { jq -r ".$1" "$WORK/urls.json" | sed 's:/*$::'; }
GRAPH="$(url mapillary_graph)"; UPLOAD="$(url mapillary_upload)"
AUTHZ="$(url mapillary_authorize)"; ADMIN="$(url sandbox_admin)"
echo "sandbox: $(url base)"

# --- 2. A token through the real OAuth code flow (no scope: the app's registered ones, upload included) --
REDIRECT="http://127.0.0.1:8763/callback"
LOCATION="$(curl -sS -o /dev/null -w '%{redirect_url}' \
  "$AUTHZ?client_id=1001&response_type=code&state=fidelity&redirect_uri=$REDIRECT")"
CODE="$(printf '%s' "$LOCATION" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')"
[ -n "$CODE" ] || fail "no code in redirect: $LOCATION"
TOKEN="$(curl -sS -X POST "$GRAPH/token" -H 'Authorization: OAuth MLY|1001|sandboxsecret' \
  --data-urlencode grant_type=authorization_code --data-urlencode client_id=1001 \
  --data-urlencode "code=$CODE" | jq -r .access_token)"
[ -n "$TOKEN" ] && [ "$TOKEN" != null ] || fail "token exchange failed"

# --- 3. Geotagged JPEGs: 8 then, after a 5-minute gap, 6 more (two sequences) ------------
mkdir -p "$WORK/photos"
"$PY" - "$WORK/photos" <<'PYEOF'
import sys, random, datetime
from fractions import Fraction
from PIL import Image
import piexif

out = sys.argv[1]
random.seed(7)

def dms(v):
    v = abs(v); d = int(v); m = int((v - d) * 60); s = (v - d - m / 60) * 3600
    return ((d, 1), (m, 1), (int(s * 1000), 1000))

start = datetime.datetime(2024, 5, 17, 9, 30, 0)
lat0, lon0 = 46.5191, 6.6323
shots = [(i, i * 2) for i in range(8)] + [(8 + i, 300 + 16 + i * 2) for i in range(6)]
for n, sec in shots:
    t = start + datetime.timedelta(seconds=sec)
    lat, lon = lat0 + n * 0.00005, lon0 + n * 0.00004
    img = Image.new("RGB", (320, 240), tuple(random.randrange(256) for _ in range(3)))
    for _ in range(40):
        x, y = random.randrange(300), random.randrange(220)
        img.paste(tuple(random.randrange(256) for _ in range(3)), (x, y, x + 20, y + 20))
    exif = {
        "0th": {piexif.ImageIFD.Make: b"MTP", piexif.ImageIFD.Model: b"Sandbox Cam",
                piexif.ImageIFD.DateTime: t.strftime("%Y:%m:%d %H:%M:%S").encode()},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: t.strftime("%Y:%m:%d %H:%M:%S").encode(),
                 piexif.ExifIFD.OffsetTimeOriginal: b"+00:00"},
        "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: dms(lat),
                piexif.GPSIFD.GPSLongitudeRef: b"E", piexif.GPSIFD.GPSLongitude: dms(lon),
                piexif.GPSIFD.GPSAltitudeRef: 0, piexif.GPSIFD.GPSAltitude: (372000, 1000),
                piexif.GPSIFD.GPSImgDirectionRef: b"T",
                piexif.GPSIFD.GPSImgDirection: (int(38.5 * 100), 100),
                piexif.GPSIFD.GPSDateStamp: t.strftime("%Y:%m:%d").encode(),
                piexif.GPSIFD.GPSTimeStamp: ((t.hour, 1), (t.minute, 1), (t.second, 1))},
    }
    img.save(f"{out}/IMG_{n:04d}.jpg", "JPEG", quality=90, exif=piexif.dump(exif))
PYEOF
NUM_PHOTOS="$(ls "$WORK/photos" | wc -l)"

# --- 4. mapillary_tools, unchanged, pointed at the sandbox -------------------------------
export MAPILLARY_GRAPH_API_ENDPOINT="$GRAPH"
export MAPILLARY_UPLOAD_ENDPOINT="$UPLOAD"
export MAPILLARY_CONFIG_PATH="$WORK/mapillary_config"
export MAPILLARY_UPLOAD_HISTORY_PATH="$WORK/history"
export MAPILLARY_TOOLS_UPLOAD_CACHE_DIR="$WORK/cache"
export MAPILLARY_TOOLS_PROMPT_DISABLED=YES
"$MLY" authenticate --user_name sandbox --jwt "$TOKEN" > "$WORK/auth.log" 2>&1 \
  || { cat "$WORK/auth.log"; fail "mapillary_tools authenticate failed"; }
set +e
"$MLY" process_and_upload "$WORK/photos" --user_name sandbox > "$WORK/upload.log" 2>&1
RC=$?
set -e
tail -n 15 "$WORK/upload.log"
[ "$RC" = 0 ] || fail "mapillary_tools exited $RC"

# --- 5. What reached the emulator ----------------------------------------------------------
curl -sS "$ADMIN/state" > "$WORK/state.json"
curl -sS "$ADMIN/requests" > "$WORK/requests.json"
IMAGES="$(jq '[.mapillary.files[] | select(.key | test("^mly_tools_[0-9a-f]{32}\\.jpg$"))] | length' "$WORK/state.json")"
MATCHING="$(jq '[.mapillary.files[] | select(.key | test("^mly_tools_")) | select(.key == ("mly_tools_" + .md5 + ".jpg"))] | length' "$WORK/state.json")"
MANIFESTS="$(jq '[.mapillary.files[] | select(.key | test("^uuid_[0-9a-f]{32}\\.json$"))] | length' "$WORK/state.json")"
CLUSTERS="$(jq '.mapillary.clusters | length' "$WORK/state.json")"
IN_CLUSTERS="$(jq '[.mapillary.clusters[].image_count] | add' "$WORK/state.json")"
CANONICAL="$(jq '[.mapillary.clusters[] | select(.manifest_canonical == true and .file_type == "mly_bundle_manifest")] | length' "$WORK/state.json")"
RESETS="$(jq '[.[] | select(.endpoint == "mapillary.upload" and .status == null)] | length' "$WORK/requests.json")"
RESUMED="$(jq '[.mapillary.files[] | select(.posts > 1)] | length' "$WORK/state.json")"
FAULTED="$(jq '[.[] | select(.fault != null)] | length' "$WORK/requests.json")"
echo "images=$IMAGES key=md5:$MATCHING manifests=$MANIFESTS clusters=$CLUSTERS images_in_clusters=$IN_CLUSTERS canonical_manifests=$CANONICAL resets=$RESETS resumed_files=$RESUMED faulted_requests=$FAULTED"
[ "$IMAGES" = "$NUM_PHOTOS" ] || fail "expected $NUM_PHOTOS image files, got $IMAGES"
[ "$MATCHING" = "$NUM_PHOTOS" ] || fail "file keys do not match the md5 of their bytes"
[ "$CLUSTERS" = 2 ] || fail "expected 2 clusters (two sequences), got $CLUSTERS"
[ "$MANIFESTS" = 2 ] || fail "expected 2 manifests, got $MANIFESTS"
[ "$IN_CLUSTERS" = "$NUM_PHOTOS" ] || fail "clusters hold $IN_CLUSTERS images, expected $NUM_PHOTOS"
[ "$CANONICAL" = 2 ] || fail "manifests were not compact sorted JSON"
[ "$RESETS" = 2 ] || fail "expected 2 cut uploads, got $RESETS"
[ "$RESUMED" -ge 1 ] || fail "no upload resumed from a partial offset"
[ "$FAULTED" = 5 ] || fail "expected 5 faulted requests, got $FAULTED"
LOGGED="$(jq '[.[] | select(.endpoint == "mapillary.logging" and .status == 200)] | length' "$WORK/requests.json")"
[ "$LOGGED" -ge 1 ] || fail "mapillary_tools' telemetry POST /logging was not answered"
echo "requests by endpoint: $(jq -c 'group_by(.endpoint) | map({(.[0].endpoint // "none"): length}) | add' "$WORK/requests.json")"

# --- 6. Read-back after processing: find the images by position + time, as a client would --
sleep 2
CLUSTER="$(jq -r '.mapillary.clusters[0].id' "$WORK/state.json")"
STATUS="$(curl -sS -H "Authorization: OAuth $TOKEN" "$GRAPH/sandbox/clusters/$CLUSTER" | jq -r '.status + " " + ([.stages[].status] | join(","))')"
echo "cluster $CLUSTER: $STATUS"
[ "$STATUS" = "done success,success,success,success" ] || fail "cluster not processed: $STATUS"
DATA="$(curl -sS -H "Authorization: OAuth $TOKEN" \
  "$GRAPH/images?bbox=6.63,46.51,6.64,46.53&start_captured_at=2024-05-17T09:29:00Z&end_captured_at=2024-05-17T09:40:00Z&creator_username=sandbox-user&fields=id,sequence,captured_at,geometry,compass_angle")"
FOUND="$(printf '%s' "$DATA" | jq '.data | length')"
SEQS="$(printf '%s' "$DATA" | jq '[.data[].sequence] | unique | length')"
echo "read-back: images=$FOUND sequences=$SEQS"
[ "$FOUND" = "$NUM_PHOTOS" ] || fail "read-back found $FOUND images, expected $NUM_PHOTOS"
[ "$SEQS" = 2 ] || fail "read-back found $SEQS sequences, expected 2"
echo "FIDELITY OK: mapillary_tools 0.14.7 uploaded $NUM_PHOTOS images in 2 sequences into the sandbox"
