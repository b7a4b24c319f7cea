#!/usr/bin/env bash
# Does `mtp prepare` keep, drop and split like `mapillary_tools process` (PROTOCOLS §2.5)?
# Usage: bench/agreement.sh [scenario ...]   (default: all; see bench/README.md)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
build_mtp
ensure_mly
exec python3 "$ROOT/bench/agreement.py" --mtp "$MTP" --mly "$MLY" \
  --work "$TARGET_DIR/bench-data/scenarios" "$@"
