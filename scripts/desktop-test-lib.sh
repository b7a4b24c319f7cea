# shellcheck shell=bash
# Shared by scripts/install-test.sh and scripts/appimage-test.sh, which source it after
# setting TEST_NAME and WORK and defining app_pids (the app processes the test started,
# picked from marked_processes by their executable).

say() { echo "$TEST_NAME: $*"; }
fail() {
  echo "$TEST_NAME: FAIL: $*" >&2
  exit 1
}

# wait_until <seconds> <what> <command…>: polls the command every 0.2 s.
wait_until() {
  local limit=$1 deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what (waited ${limit} s)"
    sleep 0.2
  done
}

# marked_processes: "<pid> <executable>" of each process carrying the marker every process
# the test starts inherits (MTP_INSTALL_TEST=$WORK), so other copies of the app on this
# machine are never touched.
marked_processes() {
  local f pid exe
  for f in /proc/[0-9]*/environ; do
    pid=${f#/proc/}
    pid=${pid%/environ}
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    grep -qzxF "MTP_INSTALL_TEST=$WORK" "$f" 2>/dev/null && echo "$pid $exe"
  done
  return 0
}

# stop_apps: TERM to the test's app processes, KILL to those still there after 5 s.
stop_apps() {
  local pids
  pids=$(app_pids)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 50); do
    [ -n "$(app_pids)" ] || return 0
    sleep 0.1
  done
  # shellcheck disable=SC2046
  kill -KILL $(app_pids) 2>/dev/null || true
}
