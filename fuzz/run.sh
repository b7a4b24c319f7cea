#!/usr/bin/env bash
# make fuzz: every target for FUZZ_SECONDS (default 600) each, on the stable toolchain
# (RUSTC_BOOTSTRAP lets cargo-fuzz pass its instrumentation flags). Inputs that crash or
# hang are minimised and copied into crates/mtp-core/fuzz-regressions/<target>/, which
# `make test` replays; commit them with the fix.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${FUZZ_SECONDS:-600}
TARGETS=${FUZZ_TARGETS:-"photo_bytes gpx rewrite deep_link"}
REG=../crates/mtp-core/fuzz-regressions
export RUSTC_BOOTSTRAP=1
status=0
for t in $TARGETS; do
  mkdir -p "corpus/$t" "artifacts/$t"
  cp -n "$REG/$t"/* "corpus/$t/" 2>/dev/null || true
  echo "== $t for ${SECONDS_EACH}s"
  if ! cargo fuzz run --sanitizer none "$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=512 -malloc_limit_mb=256 \
      -print_final_stats=1 2>&1 | tee "artifacts/$t.log" | grep -E "^(#[0-9]+ +DONE|stat::|==|SUMMARY|Done)"; then
    status=1
  fi
  for a in artifacts/"$t"/*; do
    [ -e "$a" ] || continue
    echo "found: $a -> $REG/$t/"
    cp "$a" "$REG/$t/"
    status=1
  done
done
exit $status
