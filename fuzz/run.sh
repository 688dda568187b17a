#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, one target at a time, one libFuzzer job each
# (the machines have 2 cores shared with other work).
#
# Usage: fuzz/run.sh [seconds-per-target] [target...]      (default: 60 s, all five targets)
#   e.g. fuzz/run.sh 30              # each of exposition expr config state for 30 s
#        fuzz/run.sh 480 expr        # only expr, 8 minutes
# Environment:
#   SANITIZER=none|address   default none (see below)
#   FIXTURES=DIR             the do-agent pages that seed `exposition`, read in place
#                            (default: tests/fixtures/do-agent of this repository)
#
# Toolchain: the stable toolchain. cargo-fuzz passes nightly-only flags (-Zsanitizer,
# -Cpasses=sancov-module, ...); RUSTC_BOOTSTRAP=1 makes stable rustc accept them. Both
# `--sanitizer none` and `--sanitizer address` build and run here; `none` is the default
# because it runs ~5x faster (exposition: ~2000 vs ~400 exec/s) and the code the targets reach
# has no unsafe code (`unsafe_code = "deny"`; the two allowed blocks, the simulator's rlimit
# call and the state file's read-only map, are not on their paths), so ASan adds little. cargo-fuzz's default build is
# optimised WITH debug assertions and overflow checks, so arithmetic overflow is a finding.
#
# Output: the full libFuzzer log of each target in fuzz/logs/<target>.log (git-ignored), and
# a summary line per target (final coverage, executions). New inputs go to
# fuzz/corpus/<target>/; crashes to fuzz/artifacts/<target>/. Minimise a crash with
#   RUSTC_BOOTSTRAP=1 cargo fuzz tmin --sanitizer none <target> <artifact>
# and save it as fuzz/regressions/<target>-<short-name>: tests/it/props.rs (fuzz_regressions)
# replays every file there. Exit status: non-zero if any target found something.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(exposition expr config state api)
sanitizer=${SANITIZER:-none}
fixtures=${FIXTURES:-../tests/fixtures/do-agent}

if ! command -v cargo-fuzz >/dev/null; then
  cargo install --locked cargo-fuzz@0.13.2 || exit 2
fi
export RUSTC_BOOTSTRAP=1
# fuzz/target (git-ignored) unless the caller chose another target dir
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

mkdir -p logs
failed=()
for t in "${targets[@]}"; do
  case "$t" in
    exposition) max_len=8192 ;;   # the do-agent pages (5-17 KB) are truncated to this
    state) max_len=16384 ;;       # whole state files with evaluation + plan are ~3 KB
    api) max_len=8192 ;;          # a few list pages of a few droplets each
    *) max_len=4096 ;;
  esac
  mkdir -p "corpus/$t" "artifacts/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds+=("seeds/$t")
  # the do-agent fixtures seed the exposition target (read in place, never copied)
  if [ "$t" = exposition ] && [ -d "$fixtures" ]; then seeds+=("$fixtures"); fi
  dict=()
  [ -f "dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
  echo "== fuzzing $t for ${secs}s (sanitizer $sanitizer, max_len $max_len)"
  log="logs/$t.log"
  rm -f fuzz-0.log
  cargo fuzz run --sanitizer "$sanitizer" "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -jobs=1 -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" >"$log" 2>&1
  rc=$?
  # with -jobs=1 libFuzzer runs one worker that logs to ./fuzz-0.log (also echoed above)
  rm -f fuzz-0.log
  grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb' "$log" | tail -n 3
  if [ $rc -ne 0 ] || grep -qE '^==[0-9]+== ERROR|panicked at|Test unit written to' "$log"; then
    echo "!! $t: libFuzzer exited $rc — see $log"
    grep -E 'panicked at|^thread|Test unit written to|SUMMARY|==ERROR|ERROR: libFuzzer' "$log" | head -n 8
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "findings in: ${failed[*]}"
  exit 1
fi
echo "no findings"
