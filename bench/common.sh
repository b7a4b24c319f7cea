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
