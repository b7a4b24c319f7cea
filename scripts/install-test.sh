#!/usr/bin/env bash
# The .deb as a user gets it: installs it with apt-get, checks that the desktop hands
# app.mtp.desktop:// links to the installed app (a cold start through xdg-open, then a
# second xdg-open handed over to the running app by single-instance), removes the package
# and checks the user's database is still there. `make install-test` runs it after
# `make bundle`.
#
#   scripts/install-test.sh [path/to/mtp-desktop_<version>_amd64.deb]
#
# The app runs under Xvfb and a private D-Bus session, with a throwaway HOME (its default
# data dir, ~/.local/share/app.mtp.desktop, and the user's mimeapps.list live there) and a
# clean environment. The package is removed and the app stopped on every exit. Not root:
# apt-get goes through sudo (SUDO= to override). The app's log and a screenshot of the
# window land in artifacts/install-test/.
set -euo pipefail

SCHEME=app.mtp.desktop
MIME="x-scheme-handler/$SCHEME"
BIN=/usr/bin/mtp-desktop

TEST_NAME=install-test
# shellcheck source=scripts/desktop-test-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/desktop-test-lib.sh"

# The installed app's processes started by this test.
app_pids() {
  local pid exe
  marked_processes | while read -r pid exe; do
    # After apt-get remove the link reads "/usr/bin/mtp-desktop (deleted)".
    [ "${exe% (deleted)}" = "$BIN" ] && echo "$pid"
  done
  return 0
}

# ---------------------------------------------------------------------------------------
# Inside Xvfb + dbus-run-session, with HOME=$WORK/home: the deep links.
gui() {
  local desktop_id=$1 log=$ARTIFACTS/app.log
  cd "$WORK"

  local default
  default=$(xdg-mime query default "$MIME")
  [ "$default" = "$desktop_id" ] ||
    fail "xdg-mime query default $MIME says '$default', not the installed $desktop_id"
  say "xdg-mime: $MIME is handled by $default"

  # 1. Nothing running: the desktop starts the installed app with the link as argument.
  # xdg-open without a desktop environment runs the Exec line in the foreground, so its
  # output is the app's log.
  # Checked again on every poll, hence functions.
  app_running() { [ -n "$(app_pids)" ]; }
  refused_at_least() { [ "$(grep -c 'refused a deep link with an unknown or expired state' "$log")" -ge "$1" ]; }

  local cold="$SCHEME://app?code=install-test&state=cold-start"
  xdg-open "$cold" >"$log" 2>&1 &
  wait_until 30 "xdg-open started no $BIN (see $log)" app_running
  local pid
  pid=$(app_pids)
  say "xdg-open started $BIN (pid $pid)"
  # The state matches no sign-in, so the app refuses the link: that it says so proves the
  # link arrived (and the window shows the same as a notice).
  wait_until 30 "the app never received the link it was started with (see $log)" \
    refused_at_least 1
  say "the app received the link it was started with"
  wait_until 30 "the app's window never appeared" \
    xdotool search --onlyvisible --name '^MTP Desktop( \(sandbox\))?$' >/dev/null

  # 2. The app is running: a second xdg-open starts a second instance, which hands the link
  # over through D-Bus and exits.
  local warm="$SCHEME://app?code=install-test&state=running-app"
  timeout 30 xdg-open "$warm" >"$WORK/second.log" 2>&1 ||
    fail "the second xdg-open did not hand over and exit ($(cat "$WORK/second.log"))"
  wait_until 15 "the running app never got the second link (see $log)" \
    grep -qF "state=running-app" "$log"
  wait_until 15 "the running app did not handle the second link (see $log)" \
    refused_at_least 2
  [ "$(app_pids)" = "$pid" ] || fail "a second app stayed running: $(app_pids | xargs)"
  say "a second xdg-open handed its link to the running app (pid $pid) and exited"
  sleep 1
  import -window root "$ARTIFACTS/window.png" 2>/dev/null || true

  # The installed app must not register a handler of its own over the package's.
  default=$(xdg-mime query default "$MIME")
  [ "$default" = "$desktop_id" ] ||
    fail "after the app ran, $MIME is handled by '$default', not $desktop_id"
  [ ! -e "$HOME/.local/share/applications/mtp-desktop-handler.desktop" ] ||
    fail "the installed app wrote ~/.local/share/applications/mtp-desktop-handler.desktop"

  stop_apps
}

if [ "${1:-}" = --gui ]; then
  WORK=$2 ARTIFACTS=$3
  gui "$4"
  exit 0
fi

# ---------------------------------------------------------------------------------------
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${SUDO+set}" ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
fi
DEB=${1:-$(ls -t "$ROOT"/artifacts/packages/mtp-desktop_*.deb 2>/dev/null | head -1)}
[ -f "$DEB" ] || fail "no .deb given or in artifacts/packages/: run \`make bundle\` first"
DEB=$(realpath "$DEB")
PKG=$(dpkg-deb -f "$DEB" Package)
if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'ok installed'; then
  fail "$PKG is already installed here; the test would replace and then remove it. Remove it first ($SUDO apt-get remove $PKG)."
fi

WORK=$(mktemp -d /tmp/mtp-install-test.XXXXXX)
ARTIFACTS="$ROOT/artifacts/install-test"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS" "$WORK/home"
INSTALLED=
cleanup() {
  local rc=$?
  stop_apps
  if [ -n "$INSTALLED" ] && dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'ok installed'; then
    say "removing $PKG"
    $SUDO apt-get remove -y -q "$PKG" >/dev/null 2>&1 || echo "install-test: could not remove $PKG" >&2
  fi
  rm -rf "$WORK"
  [ "$rc" = 0 ] && say "OK" || echo "install-test: failed; the app's log: $ARTIFACTS/app.log" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "installing $DEB"
INSTALLED=1
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "$DEB" >"$WORK/apt.log" 2>&1 ||
  fail "apt-get install failed: $(cat "$WORK/apt.log")"
[ -x "$BIN" ] || fail "$BIN is not there after installing $PKG"
DESKTOP_FILE=$(dpkg -L "$PKG" | grep '^/usr/share/applications/.*\.desktop$' | head -1)
[ -n "$DESKTOP_FILE" ] || fail "$PKG installs no desktop entry under /usr/share/applications"
grep -q "^MimeType=.*$MIME" "$DESKTOP_FILE" || fail "$DESKTOP_FILE does not declare $MIME"
grep -q '^Exec=.* %u$' "$DESKTOP_FILE" ||
  fail "$DESKTOP_FILE: its Exec line does not pass the link (%u): $(grep ^Exec= "$DESKTOP_FILE")"
desktop-file-validate "$DESKTOP_FILE" || fail "desktop-file-validate refuses $DESKTOP_FILE"
say "installed $BIN and $DESKTOP_FILE"

# A clean environment: the app must find everything in the package and the system, and
# nothing from this shell (a .env, service credentials, a dev build on PATH) may leak in.
# Real mode (MTP_SANDBOX=0) so the database is the user's own mtp.db; the links sent are
# refused before any service would be called. No keychain probe (nothing to unlock here).
CLEAN_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$WORK/home" LANG=C.UTF-8
  MTP_INSTALL_TEST="$WORK" MTP_SANDBOX=0 MTP_KEYCHAIN=off NO_AT_BRIDGE=1)
"${CLEAN_ENV[@]}" xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
  "$0" --gui "$WORK" "$ARTIFACTS" "$(basename "$DESKTOP_FILE")" 2>&1 |
  { grep -v 'Failed to set fd limit' || true; }

DB="$WORK/home/.local/share/$SCHEME/mtp.db"
[ -s "$DB" ] || fail "the app left no database at $DB"
SUM=$(sha256sum "$DB" | cut -d' ' -f1)
say "the database is at ${DB#"$WORK/home/"} in the throwaway HOME"

say "removing $PKG"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get remove -y -q "$PKG" >"$WORK/apt.log" 2>&1 ||
  fail "apt-get remove failed: $(cat "$WORK/apt.log")"
[ ! -e "$BIN" ] || fail "$BIN is still there after apt-get remove"
[ ! -e "$DESKTOP_FILE" ] || fail "$DESKTOP_FILE is still there after apt-get remove"
[ -s "$DB" ] || fail "apt-get remove took the user's database with it ($DB)"
[ "$(sha256sum "$DB" | cut -d' ' -f1)" = "$SUM" ] || fail "apt-get remove changed the user's database"
left=$("${CLEAN_ENV[@]}" xdg-mime query default "$MIME")
[ -z "$left" ] || fail "after removal, $MIME is still handled by '$left'"
say "removed: the binary and its handler are gone, the user's database is kept"
