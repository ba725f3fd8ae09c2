#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for SECONDS (default 60) with libFuzzer and SanitizerCoverage, on the
# machine's toolchain (the flags cargo-fuzz passes with `--sanitizer none`; no nightly needed). Crashes are written
# to fuzz/artifacts/TARGET/; add each as a seed to src/tools/fuzzing.rs's tests once fixed.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (targets: id_number money date fact)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${1:-60}; shift || true
TARGETS=${*:-id_number money date fact}
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros (as cargo-fuzz does).
TRIPLE=$(rustc -vV | sed -n "s/^host: //p")
cargo build --release --quiet --bins --target "$TRIPLE"
for t in $TARGETS; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== fuzz $t for ${SECS}s"
  "target/$TRIPLE/release/$t" -max_total_time="$SECS" -artifact_prefix="artifacts/$t/" -print_final_stats=1 "corpus/$t" 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|.*panicked)" || true
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then echo "CRASH in $t: see fuzz/artifacts/$t/"; exit 1; fi
done
echo "fuzzing passed: $TARGETS, ${SECS}s each"
