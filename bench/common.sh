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
