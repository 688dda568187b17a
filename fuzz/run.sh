#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each) with cargo-fuzz on the stable
# toolchain (RUSTC_BOOTSTRAP=1 lets stable accept the nightly flags cargo-fuzz passes).
# Usage: fuzz/run.sh [seconds-per-target] [target...]
# Crashes land in fuzz/artifacts/<target>/; add each as a regression test in
# tests/it/props.rs (fuzz_regressions) and commit the corpus in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(exposition expr config state)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds+=("seeds/$t")
  # the do-agent fixtures seed the exposition target (read in place, never copied)
  [ "$t" = exposition ] && [ -d ../../shared/fixtures/do-agent ] && seeds+=(../../shared/fixtures/do-agent)
  echo "== fuzzing $t for ${secs}s"
  cargo fuzz run --sanitizer none "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -max_len=65536 -timeout=10 2>&1 | tail -n 3
done
