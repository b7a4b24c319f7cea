# Shared setup for bench/prepare.sh and bench/agreement.sh (sourced, not run).
# Sets ROOT, MTP (release binary, freshly built), MLY (mapillary_tools 0.14.7 in a venv).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
MTP="$TARGET_DIR/release/mtp"
MLY_VERSION=0.14.7
# Another venv with mapillary_tools 0.14.7 can be given with MLY_VENV=/path/to/venv.
MLY_VENV="${MLY_VENV:-$ROOT/.venv-mly}"
MLY="$MLY_VENV/bin/mapillary_tools"
# mapillary_tools reads times without an offset in the local zone: pin it for both tools.
export TZ=UTC

build_mtp() {
  echo "Building mtp (release)…" >&2
  (cd "$ROOT" && cargo build --release -p mtp-cli --quiet)
}

ensure_mly() {
  if ! "$MLY" --version 2>/dev/null | grep -q "$MLY_VERSION"; then
    echo "Installing mapillary_tools $MLY_VERSION into $MLY_VENV…" >&2
    python3 -m venv "$MLY_VENV"
    "$MLY_VENV/bin/pip" install -q "mapillary_tools==$MLY_VERSION"
  fi
}

# Synthetic photo folders, generated once and kept here (Git-ignored).
DATA="$TARGET_DIR/bench-data"

# walk_folder <n>: the path of a `walk` folder of n photos (`mtp dev gen-photos`, ~1 kB
# geotagged JPEGs, 3 m / 1 s apart), made on first use.
walk_folder() {
  local dir="$DATA/walk-$1"
  if [ ! -f "$dir.ok" ]; then
    rm -rf "$dir"
    mkdir -p "$DATA"
    "$MTP" dev gen-photos "$dir" --scenario walk --count "$1" >&2
    touch "$dir.ok"
  fi
  echo "$dir"
}

# median <column> <file>: the median of a column of numbers.
median() {
  awk -v c="$1" '{print $c}' "$2" | sort -g |
    awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'
}

# ensure_gnu_time: GNU time (for peak RSS), installed with apt-get if missing.
ensure_gnu_time() {
  if [ ! -x /usr/bin/time ]; then
    echo "Installing GNU time…" >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y -qq time >/dev/null; else sudo apt-get install -y -qq time >/dev/null; fi
  fi
}

# --- The emulators in a process of their own (mtp-sandbox-server), for the upload benches:
# what they keep in memory must not count in mtp's peak RSS. Scripts set TMP (a scratch dir)
# and `trap 'stop_server; rm -rf "$TMP"' EXIT`.
SERVER="${SERVER_BIN:-$TARGET_DIR/release/mtp-sandbox-server}"
SERVER_PID=""

build_mtp_and_server() {
  echo "Building mtp and mtp-sandbox-server (release)…" >&2
  (cd "$ROOT" && cargo build --release --quiet -p mtp-cli -p mtp-sandbox --bin mtp --bin mtp-sandbox-server)
}

# json <file> <key>: a top-level string of a JSON object, without trailing slash.
json() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]].rstrip("/"))' "$1" "$2"
}

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

# launch_server [server args…]: a fresh emulator (processing delay 0), its addresses in
# $TMP/urls.json; sets ADMIN (its control plane).
launch_server() {
  stop_server
  rm -f "$TMP/urls.json"
  "$SERVER" --processing-delay-ms 0 "$@" >"$TMP/urls.json" 2>"$TMP/server.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do [ -s "$TMP/urls.json" ] && break; sleep 0.05; done
  [ -s "$TMP/urls.json" ] || { cat "$TMP/server.log" >&2; echo "the emulator did not start" >&2; exit 1; }
  ADMIN="$(json "$TMP/urls.json" sandbox_admin)"
}

# live_env: sets PANORAMAX and ENV, mtp's settings in live mode (MTP_SANDBOX=0) pointing at
# the launched emulator, with its data in $TMP/run/data.
live_env() {
  local u="$TMP/urls.json"
  PANORAMAX="$(json "$u" panoramax_instance)"
  ENV=(env MTP_DATA_DIR="$TMP/run/data" MTP_SANDBOX=0 MTP_KEYCHAIN=off MTP_OPENER=true
    MAPILLARY_APP_ID=1001 MAPILLARY_SECRET='MLY|1001|sandboxsecret'
    MAPILLARY_GRAPH_URL="$(json "$u" mapillary_graph)" MAPILLARY_UPLOAD_URL="$(json "$u" mapillary_upload)"
    MAPILLARY_AUTHORIZE_URL="$(json "$u" mapillary_authorize)"
    KARTAVIEW_API_URL="$(json "$u" kartaview_api)" KARTAVIEW_OSM_CLIENT_ID=mtp-sandbox-osm-client
    KARTAVIEW_OSM_CLIENT_SECRET=mtp-sandbox-osm-secret OSM_AUTHORIZE_URL="$(json "$u" osm_authorize)"
    OSM_TOKEN_URL="$(json "$u" osm_token)" PANORAMAX_INSTANCE_URL="$PANORAMAX"
    MTPW_URL="$(json "$u" mtpw_base)" MTPW_CLIENT_ID=mtp-sandbox-mtpw-client)
}

# token <service>: a fresh access token of the emulator's first user.
token() {
  curl -fsS -X POST "$ADMIN/tokens?service=$1&user=0" >"$TMP/token.json"
  json "$TMP/token.json" access_token
}

# mapillary_endpoints: sets GRAPH, UPLOAD, AUTHORIZE (the launched emulator's Mapillary) and
# TOKEN (a fresh token of its first user), for pointing mapillary_tools at it.
mapillary_endpoints() {
  GRAPH="$(json "$TMP/urls.json" mapillary_graph)"
  UPLOAD="$(json "$TMP/urls.json" mapillary_upload)"
  AUTHORIZE="$(json "$TMP/urls.json" mapillary_authorize)"
  TOKEN="$(token mapillary)"
}

# check_uploaded <n>: the emulator holds n photos from mapillary_tools with handles (and
# nothing half-sent).
check_uploaded() {
  curl -fsS "$ADMIN/state" >"$TMP/state.json"
  python3 - "$TMP/state.json" "$1" <<'PY'
import json, sys
files = json.load(open(sys.argv[1]))["mapillary"]["files"]
photos = [f for f in files if f["key"].startswith("mly_tools_")]
done = [f for f in photos if f["handle"]]
if len(done) != int(sys.argv[2]) or len(done) != len(photos):
    sys.exit(f"the emulator holds {len(done)} complete photos of {len(photos)}, expected {sys.argv[2]}")
PY
}
