#!/usr/bin/env bash
# A real Panoramax server (GeoVisio 2.15.1 + PostgreSQL 15/PostGIS) on loopback, for the
# tests in tests/tests/panoramax_geovisio.rs (PROTOCOLS §4.4).
#
#   scripts/geovisio.sh install   Debian packages + a venv at .venv-geovisio (idempotent)
#   scripts/geovisio.sh start     cluster, migrations, API and picture worker; prints
#                                 {"url": ..., "token": ...} (the default account's JWT)
#                                 and writes the same as MTP_GEOVISIO_URL/_TOKEN exports
#                                 to target/geovisio/env
#   scripts/geovisio.sh stop      stops the API, the worker and PostgreSQL
#   scripts/geovisio.sh status    what runs
#
# State lives in target/geovisio: pg/ (cluster, kept across runs), fs/ (pictures), pids/,
# *.log. `start` with everything already up reuses it; stale pid files are ignored.
# Ports: PostgreSQL 127.0.0.1:55432, API 127.0.0.1:5055 (GEOVISIO_PG_PORT, GEOVISIO_PORT).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
GEOVISIO_VERSION=2.15.1
GUNICORN_VERSION=25.3.0
VENV="$ROOT/.venv-geovisio"
STATE="$ROOT/target/geovisio"
PGDATA="$STATE/pg"
PIDS="$STATE/pids"
FS="$STATE/fs"
PG_PORT="${GEOVISIO_PG_PORT:-55432}"
API_PORT="${GEOVISIO_PORT:-5055}"
API_URL="http://127.0.0.1:$API_PORT"
PG_BIN=/usr/lib/postgresql/15/bin
APT_PACKAGES=(postgresql-15 postgresql-15-postgis-3 postgresql-15-postgis-3-scripts)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

log() { echo "geovisio: $*" >&2; }

tail_logs() {
  local f
  for f in "$STATE"/*.log; do
    [ -f "$f" ] || continue
    echo "----- last lines of $f -----" >&2
    tail -n 40 "$f" >&2
  done
}

die() {
  log "ERROR: $*"
  tail_logs
  exit 1
}

# The Unix socket path must stay under ~107 bytes; deep checkouts fall back to /tmp.
sock_dir() {
  local dir="$STATE/sock"
  if [ "${#dir}" -gt 80 ]; then dir="/tmp/mtp-geovisio-sock-$PG_PORT"; fi
  echo "$dir"
}

# ---------------------------------------------------------------------------------------
# install

cmd_install() {
  local started=$SECONDS missing=() p py
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
  done
  py=python3
  if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    py=/usr/bin/python3
    if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then missing+=(python3-venv); fi
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
  if [ -x "$VENV/bin/python" ] &&
    [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("geovisio"))' 2>/dev/null)" = "$GEOVISIO_VERSION" ] &&
    [ -x "$VENV/bin/gunicorn" ] && [ -x "$VENV/bin/flask" ]; then
    log "geovisio $GEOVISIO_VERSION already installed in $VENV"
  else
    log "installing geovisio $GEOVISIO_VERSION into $VENV"
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
      "geovisio==$GEOVISIO_VERSION" "gunicorn==$GUNICORN_VERSION"
  fi
  log "install done in $((SECONDS - started)) s"
}

# ---------------------------------------------------------------------------------------
# processes

# pid_alive NAME: the pid in $PIDS/NAME if that process still runs (and is not a zombie).
pid_alive() {
  local f="$PIDS/$1" pid
  [ -s "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != Z ] || return 1
  # A recycled pid is not ours: it must run from our venv.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$VENV/bin/" || return 1
  echo "$pid"
}

pg_running() {
  [ -f "$PGDATA/PG_VERSION" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

api_answers() {
  "$VENV/bin/python" - "$API_URL/api" <<'EOF' 2>/dev/null
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

port_busy() {
  "$VENV/bin/python" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

# stop_pids NAME...: TERM them all, wait up to 15 s, then KILL their process groups (the
# gunicorn workers share their master's group).
stop_pids() {
  local name pid i pids=()
  for name in "$@"; do
    if pid="$(pid_alive "$name")"; then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for pid in "${pids[@]}"; do
    for i in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "pid $pid did not stop, killing its group"; fi
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  for name in "$@"; do rm -f "$PIDS/$name"; done
}

# The environment GeoVisio reads (PROTOCOLS §4.4).
geovisio_env() {
  export DB_URL="postgresql://postgres@127.0.0.1:$PG_PORT/panoramax"
  export FS_URL="$FS"
  # Stable so that tokens survive restarts; a test-only secret on a loopback server.
  export FLASK_SECRET_KEY="mtp-desktop-local-geovisio-test-secret-0123456789"
  export API_FORCE_AUTH_ON_UPLOAD=false
  export PICTURE_PROCESS_THREADS_LIMIT=0
  export PICTURE_PROCESS_DERIVATES_STRATEGY=ON_DEMAND
  export API_PICTURES_LICENSE_SPDX_ID=CC-BY-SA-4.0
  export API_PICTURES_LICENSE_URL=https://spdx.org/licenses/CC-BY-SA-4.0.html
  export API_WEBSITE_URL=false
  # Byte-identical files keep answering 409 (the client treats it as "already there").
  export API_ACCEPT_DUPLICATE="${API_ACCEPT_DUPLICATE:-false}"
  unset OAUTH_PROVIDER API_BLUR_URL
  export PYTHONUNBUFFERED=1
  # flask would read any .env above target/geovisio (e.g. the repo's own).
  export FLASK_SKIP_DOTENV=1
}

flask() { (cd "$STATE" && "$VENV/bin/flask" --app geovisio "$@"); }

# spawn NAME LOG CMD...: a detached process in its own session, pid in $PIDS/NAME.
spawn() {
  local name="$1" logfile="$2"
  shift 2
  (cd "$STATE" && exec setsid "$@" </dev/null >>"$logfile" 2>&1) &
  echo $! >"$PIDS/$name"
}

start_postgres() {
  local sock d
  sock="$(sock_dir)"
  # The postgres user has to reach the cluster: every parent directory traversable.
  d="$STATE"
  while [ "$d" != / ]; do
    case "$(stat -c %A "$d")" in *[xt]) ;; *) chmod o+x "$d" ;; esac
    d="$(dirname "$d")"
  done
  mkdir -p "$PGDATA" "$sock"
  touch "$STATE/postgres.log"
  chown postgres:postgres "$PGDATA" "$sock" "$STATE/postgres.log"
  chmod 700 "$PGDATA"
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    log "initdb $PGDATA"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 \
      --locale=C.UTF-8 >>"$STATE/postgres.log" 2>&1 || die "initdb failed"
  fi
  if pg_running; then
    log "postgres already running"
  else
    rm -f "$PGDATA/postmaster.pid"
    if port_busy "$PG_PORT"; then die "port $PG_PORT is taken by another program"; fi
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$STATE/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$sock -c timezone=UTC -c fsync=off" \
      start >/dev/null || die "postgres did not start"
  fi
  head -1 "$PGDATA/postmaster.pid" >"$PIDS/postgres"
  local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
  if [ "$("${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname='panoramax'")" != 1 ]; then
    "${psql[@]}" -d postgres -c "CREATE DATABASE panoramax" || die "createdb failed"
  fi
  "${psql[@]}" -d panoramax >>"$STATE/postgres.log" 2>&1 <<'EOF' || die "database setup failed"
ALTER DATABASE panoramax SET TIMEZONE TO 'UTC';
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS pg_trgm;
EOF
}

print_url_and_token() {
  local token
  token="$(flask default-account-tokens get 2>>"$STATE/flask.log" |
    grep -oE 'ey[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+' | tail -1)" || true
  [ -n "$token" ] || die "no default account token (flask default-account-tokens get)"
  # The same for shells: `. target/geovisio/env` (what `make geovisio-test` does).
  printf 'export MTP_GEOVISIO_URL=%s\nexport MTP_GEOVISIO_TOKEN=%s\n' "$API_URL" "$token" >"$STATE/env"
  printf '{"url": "%s", "token": "%s"}\n' "$API_URL" "$token"
}

cmd_start() {
  local started=$SECONDS i
  [ -x "$VENV/bin/gunicorn" ] || die "not installed: run scripts/geovisio.sh install"
  mkdir -p "$STATE" "$PIDS" "$FS"
  geovisio_env
  if pid_alive api >/dev/null && pid_alive worker >/dev/null && pg_running && api_answers; then
    log "already running at $API_URL"
    print_url_and_token
    return
  fi
  # Something half-up from an earlier run: start over (the data stays).
  stop_pids api worker
  start_postgres
  log "postgres up after $((SECONDS - started)) s; migrating"
  flask db upgrade >>"$STATE/flask.log" 2>&1 || die "flask db upgrade failed"
  if port_busy "$API_PORT"; then die "port $API_PORT is taken by another program"; fi
  log "starting the API and the picture worker"
  spawn api "$STATE/api.log" "$VENV/bin/gunicorn" -b "127.0.0.1:$API_PORT" -w 2 --timeout 120 \
    --graceful-timeout 5 --no-control-socket 'geovisio:create_api()'
  spawn worker "$STATE/worker.log" "$VENV/bin/flask" --app geovisio picture-worker
  for i in $(seq 1200); do
    api_answers && break
    pid_alive api >/dev/null || die "the API exited"
    pid_alive worker >/dev/null || die "the picture worker exited"
    sleep 0.1
  done
  api_answers || die "the API did not answer in 120 s"
  log "up at $API_URL in $((SECONDS - started)) s"
  print_url_and_token
}

cmd_stop() {
  stop_pids api worker
  if pg_running; then
    log "stopping postgres"
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null ||
      log "pg_ctl stop failed"
  fi
  rm -f "$PIDS/postgres"
}

cmd_status() {
  local name pid rc=0
  for name in api worker; do
    if pid="$(pid_alive "$name")"; then echo "$name: running (pid $pid)"; else echo "$name: stopped"; rc=1; fi
  done
  if pg_running; then echo "postgres: running (port $PG_PORT)"; else echo "postgres: stopped"; rc=1; fi
  if [ -x "$VENV/bin/python" ] && api_answers; then echo "api: answers at $API_URL"; else echo "api: not answering"; rc=1; fi
  return $rc
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 install|start|stop|status" >&2
    exit 2
    ;;
esac
