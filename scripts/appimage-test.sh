#!/usr/bin/env bash
# The AppImage as a user gets it: a file in ~/Downloads, started once, after which the
# desktop hands app.mtp.desktop:// links to it (to the running app, and with a cold start
# when it is not running). `make install-test` runs it after the .deb's test.
#
#   scripts/appimage-test.sh [path/to/MTP_Desktop-<version>-x86_64.AppImage]
#
# The app runs under Xvfb and a private D-Bus session, with a throwaway HOME and TMPDIR (the
# runtime unpacks the app there) and a clean environment; it is stopped on every exit. The
# app's log and a screenshot land in artifacts/appimage-test/.
set -euo pipefail

SCHEME=app.mtp.desktop
MIME="x-scheme-handler/$SCHEME"
HANDLER=mtp-desktop-handler.desktop

TEST_NAME=appimage-test
# shellcheck source=scripts/desktop-test-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/desktop-test-lib.sh"

# The app's processes started by this test: run from the folder the runtime unpacked under
# this test's TMPDIR.
app_pids() {
  local pid exe
  marked_processes | while read -r pid exe; do
    case $exe in "$WORK/tmp/.mount_"*/usr/bin/mtp-desktop) echo "$pid" ;; esac
  done
  return 0
}

# ---------------------------------------------------------------------------------------
# Inside Xvfb + dbus-run-session, with HOME=$WORK/home and TMPDIR=$WORK/tmp.
gui() {
  local image=$1 log=$ARTIFACTS/app.log
  cd "$WORK"
  app_running() { [ -n "$(app_pids)" ]; }
  refused_at_least() { [ "$(cat "$ARTIFACTS"/*.log | grep -c 'refused a deep link with an unknown or expired state')" -ge "$1" ]; }
  handler_registered() { [ "$(xdg-mime query default "$MIME")" = "$HANDLER" ]; }

  [ -z "$(xdg-mime query default "$MIME")" ] || fail "$MIME has a handler before the AppImage ran"

  # 1. First start, from the file manager (no link): the app registers itself.
  "$image" >"$log" 2>&1 &
  wait_until 30 "the AppImage started no app (see $log)" app_running
  local pid
  pid=$(app_pids)
  say "the AppImage started the app (pid $pid) from $(dirname "$(dirname "$(dirname "$(readlink "/proc/$pid/exe")")")")"
  wait_until 30 "the app's window never appeared" \
    xdotool search --onlyvisible --name '^MTP Desktop( \(sandbox\))?$' >/dev/null
  wait_until 30 "the app did not make itself the handler of $MIME (xdg-mime says '$(xdg-mime query default "$MIME")')" \
    handler_registered
  local entry="$HOME/.local/share/applications/$HANDLER"
  grep -qxF "Exec=$image %u" "$entry" ||
    fail "$entry does not start this AppImage with the link: $(grep ^Exec= "$entry")"
  say "on its first start the app made $entry the handler of $MIME"

  # 2. The app is running: xdg-open starts the AppImage again, whose app hands the link to
  # the running one over D-Bus and exits.
  timeout 30 xdg-open "$SCHEME://app?code=appimage-test&state=running-app" >"$ARTIFACTS/second.log" 2>&1 ||
    fail "the second start did not hand over and exit ($(cat "$ARTIFACTS/second.log"))"
  wait_until 15 "the running app never got the link (see $log)" grep -qF "state=running-app" "$log"
  wait_until 15 "the running app did not handle the link (see $log)" refused_at_least 1
  [ "$(app_pids)" = "$pid" ] || fail "a second app stayed running: $(app_pids | xargs)"
  say "xdg-open handed its link to the running app (pid $pid)"
  sleep 3 # the window's content, not only its frame
  import -window root "$ARTIFACTS/window.png" 2>/dev/null || true
  stop_apps

  # 3. Nothing running: xdg-open starts the AppImage with the link (from its unpacked folder,
  # which is kept).
  xdg-open "$SCHEME://app?code=appimage-test&state=cold-start" >"$ARTIFACTS/cold.log" 2>&1 &
  wait_until 30 "xdg-open started no app (see $ARTIFACTS/cold.log)" app_running
  wait_until 30 "the app never received the link it was started with (see $ARTIFACTS/cold.log)" \
    refused_at_least 2
  say "xdg-open started the AppImage with its link (pid $(app_pids))"
  stop_apps

  # 4. A newer download (here the same file touched, which names a new folder) is unpacked
  # anew, and the folder of the one before, which nothing runs from, is removed.
  local before now
  before=$(find "$TMPDIR" -maxdepth 1 -name '.mount_mtp-desktop-*')
  touch "$image"
  "$image" >>"$log" 2>&1 &
  wait_until 30 "the touched AppImage started no app (see $log)" app_running
  now=$(dirname "$(dirname "$(dirname "$(readlink "/proc/$(app_pids)/exe")")")")
  [ "$now" != "$before" ] || fail "the touched AppImage ran from the folder of the one before"
  [ ! -e "$before" ] || fail "the folder of the AppImage before was left in TMPDIR: $before"
  say "a newer AppImage unpacked into $(basename "$now") and removed $(basename "$before")"
  stop_apps
}

if [ "${1:-}" = --gui ]; then
  WORK=$2 ARTIFACTS=$3
  gui "$4"
  exit 0
fi

# ---------------------------------------------------------------------------------------
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC=${1:-$(ls -t "$ROOT"/artifacts/packages/MTP_Desktop-*.AppImage 2>/dev/null | head -1)}
[ -f "$SRC" ] || fail "no AppImage given or in artifacts/packages/: run \`make bundle\` first"

WORK=$(mktemp -d /tmp/mtp-appimage-test.XXXXXX)
ARTIFACTS="$ROOT/artifacts/appimage-test"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS" "$WORK/home/Downloads" "$WORK/tmp"
cleanup() {
  local rc=$?
  stop_apps
  rm -rf "$WORK"
  [ "$rc" = 0 ] && say "OK" || echo "appimage-test: failed; the app's log: $ARTIFACTS/app.log" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# As downloaded: a copy under ~/Downloads, made executable by the user.
IMAGE="$WORK/home/Downloads/$(basename "$SRC")"
cp "$SRC" "$IMAGE"
chmod +x "$IMAGE"
say "$(basename "$SRC"): $(du -k "$SRC" | cut -f1) KiB"

# What AppImage tools ask of it.
(cd "$WORK" && "$IMAGE" --appimage-extract >/dev/null) || fail "--appimage-extract failed"
[ -x "$WORK/squashfs-root/AppRun" ] || fail "--appimage-extract left no runnable squashfs-root/AppRun"
grep -q "^MimeType=.*$MIME" "$WORK/squashfs-root/mtp-desktop.desktop" ||
  fail "the AppImage's desktop entry does not declare $MIME"
rm -rf "$WORK/squashfs-root"
say "--appimage-extract unpacks the AppDir (AppRun, desktop entry)"

CLEAN_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$WORK/home" TMPDIR="$WORK/tmp"
  LANG=C.UTF-8 MTP_INSTALL_TEST="$WORK" MTP_SANDBOX=0 MTP_KEYCHAIN=off NO_AT_BRIDGE=1)
"${CLEAN_ENV[@]}" xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
  "$0" --gui "$WORK" "$ARTIFACTS" "$IMAGE" 2>&1 |
  { grep -v 'Failed to set fd limit' || true; }

# One private folder, unpacked once per version and used by every start of it.
mapfile -t unpacked < <(find "$WORK/tmp" -maxdepth 1 -name '.mount_mtp-desktop-*')
[ "${#unpacked[@]}" = 1 ] || fail "expected one unpacked folder in TMPDIR, found: ${unpacked[*]:-none}"
[ "$(stat -c %a "${unpacked[0]}")" = 700 ] || fail "${unpacked[0]} is not private (mode $(stat -c %a "${unpacked[0]}"))"
DB="$WORK/home/.local/share/$SCHEME/mtp.db"
[ -s "$DB" ] || fail "the app left no database at $DB"
say "one unpacked folder is left, and it is private; the database is in the user's data folder"
