#!/usr/bin/env bash
# Builds MTP Desktop's AppImage from the release build, offline: the AppDir (the app, its
# desktop entry and icon, AppRun), packed by squashfs-tools' mksquashfs, behind our own
# runtime (crates/mtp-appimage-runtime), with the type-2 AppImage mark ("AI", 2) at byte 8.
# `make bundle` runs it after the release build.
#
#   scripts/appimage.sh <mtp-desktop binary> <runtime binary> <out dir>
#
# Tauri's own AppImage step downloads linuxdeploy and AppImageKit's runtime from GitHub,
# which this project cannot reach. Like Tauri's, the AppImage does not carry WebKitGTK: it
# runs where WebKitGTK 4.1 is installed (Debian 12 and Ubuntu 22.04 on), and registers the
# app.mtp.desktop:// handler for the user on its first start.
set -euo pipefail

APP=${1:?mtp-desktop binary}
RUNTIME=${2:?runtime binary}
OUT=${3:?out dir}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
ARCH=$(uname -m)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
APPDIR="$WORK/MTP_Desktop.AppDir"
mkdir -p "$APPDIR/usr/bin" "$APPDIR/usr/share/applications"
install -m 755 "$APP" "$APPDIR/usr/bin/mtp-desktop"
for size in 32x32 64x64 128x128; do
  install -D -m 644 "$ROOT/src-tauri/icons/$size.png" \
    "$APPDIR/usr/share/icons/hicolor/$size/apps/mtp-desktop.png"
done
install -D -m 644 "$ROOT/src-tauri/icons/128x128@2x.png" \
  "$APPDIR/usr/share/icons/hicolor/256x256/apps/mtp-desktop.png"
cp "$ROOT/src-tauri/icons/128x128@2x.png" "$APPDIR/mtp-desktop.png"
ln -s mtp-desktop.png "$APPDIR/.DirIcon"
# The entry AppImage tools show; the scheme handler itself is written by the app at its
# first start (Exec= this AppImage's path, which only the running app knows).
cat >"$APPDIR/usr/share/applications/mtp-desktop.desktop" <<EOF
[Desktop Entry]
Type=Application
Name=MTP Desktop
Comment=Upload street-level imagery to Mapillary, KartaView and Panoramax
Exec=mtp-desktop %u
Icon=mtp-desktop
Categories=Photography;
Terminal=false
MimeType=x-scheme-handler/app.mtp.desktop;
EOF
desktop-file-validate "$APPDIR/usr/share/applications/mtp-desktop.desktop"
ln -s usr/share/applications/mtp-desktop.desktop "$APPDIR/mtp-desktop.desktop"
ln -s usr/bin/mtp-desktop "$APPDIR/AppRun"

mksquashfs "$APPDIR" "$WORK/app.squashfs" -root-owned -noappend -comp gzip -quiet >/dev/null
cp "$RUNTIME" "$WORK/runtime"
strip "$WORK/runtime"
# The AppImage type-2 mark in the ELF header's padding (e_ident[8..11]): "AI", 2.
printf 'AI\002' | dd of="$WORK/runtime" bs=1 seek=8 conv=notrunc status=none

mkdir -p "$OUT"
IMAGE="$OUT/MTP_Desktop-$VERSION-$ARCH.AppImage"
cat "$WORK/runtime" "$WORK/app.squashfs" >"$IMAGE.part"
chmod 755 "$IMAGE.part"
mv "$IMAGE.part" "$IMAGE"
# It must find its own image, as it will on a user's machine.
offset=$("$IMAGE" --appimage-offset)
[ "$offset" = "$(stat -c %s "$WORK/runtime")" ] ||
  { echo "appimage: the runtime finds its image at $offset, not after its $(stat -c %s "$WORK/runtime") bytes" >&2; exit 1; }
echo "$IMAGE: $(du -k "$IMAGE" | cut -f1) KiB (runtime $(du -k "$WORK/runtime" | cut -f1) KiB)"
