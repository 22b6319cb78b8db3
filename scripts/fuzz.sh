#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo-fuzz (libFuzzer + AddressSanitizer) of config.json parsing
# and seccomp profile translation: each target runs FUZZ_SECONDS (default 60) from the seed
# corpus in fuzz/corpus/<target>/, and a crash fails the run (cargo-fuzz exits non-zero and
# leaves the input under fuzz/cargo-fuzz/artifacts/<target>/).
#
# cargo-fuzz passes rustc -Z flags (-Zsanitizer=address). The machine's one toolchain is stable
# and no nightly can be fetched here, so RUSTC_BOOTSTRAP=1 lets stable rustc take them; the
# sanitizer runtimes ship with stable's standard library for x86_64 Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
for target in config seccomp; do
    found=$(mktemp -d)
    log=$(mktemp)
    echo "fuzz $target for ${seconds}s"
    status=0
    # New inputs go to the first directory, so the committed seeds stay as they are.
    cargo fuzz run --fuzz-dir fuzz/cargo-fuzz "$target" "$found" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss)' "$log" || true
    if [ "$status" != 0 ]; then
        tail -n 60 "$log" >&2
        echo "fuzz $target: failed (exit $status); a crashing input is in fuzz/cargo-fuzz/artifacts/$target/" >&2
        exit 1
    fi
    rm -rf "$found" "$log"
done
