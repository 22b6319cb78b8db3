#!/usr/bin/env bash
# Run the OCI runtime-spec conformance suite (oci-conformance/) against hezi, runc and crun, and
# print a markdown table of the results plus the failing tests of each runtime.
#
# Usage: scripts/conformance.sh [runtime...]   (default: hezi runc crun; needs root)
# Full logs: target/conformance/<runtime>.log
set -u
cd "$(dirname "$0")/.."

cargo build -p hezi || exit 1
cargo test -p oci-conformance --no-run || exit 1

declare -A BIN=([hezi]="$PWD/target/debug/hezi" [runc]=/usr/sbin/runc [crun]=/usr/bin/crun)
RUNTIMES=("$@")
[ ${#RUNTIMES[@]} -eq 0 ] && RUNTIMES=(hezi runc crun)
LOGS=target/conformance
mkdir -p "$LOGS"

# crun 1.8 refuses a hybrid cgroup host while the cgroup2 mount holds a controller (hugetlb
# here): scripts/hugetlb-v1.sh binds it to a v1 hierarchy for crun's run and gives it back.
crun_cgroup_fixup() {
    [ "$(bash scripts/hugetlb-v1.sh bind)" = bound ] && trap 'bash scripts/hugetlb-v1.sh release' EXIT
    return 0
}

TABLE="| runtime | passed | failed | total |
| --- | --- | --- | --- |"
FAILURES=""
for rt in "${RUNTIMES[@]}"; do
    bin=${BIN[$rt]:-$rt}
    if [ ! -x "$bin" ]; then
        echo "skipping $rt: $bin not found" >&2
        continue
    fi
    [ "$rt" = crun ] && crun_cgroup_fixup
    echo "running the suite against $rt ($bin)" >&2
    RUNTIME="$bin" RUST_BACKTRACE=0 cargo test -p oci-conformance --no-fail-fast -- --include-ignored --test-threads=2 \
        >"$LOGS/$rt.log" 2>&1
    passed=$(grep -cE '^test .* \.\.\. ok$' "$LOGS/$rt.log")
    failed=$(grep -cE '^test .* \.\.\. FAILED$' "$LOGS/$rt.log")
    TABLE+="
| $rt | $passed | $failed | $((passed + failed)) |"
    names=$(grep -E '^test .* \.\.\. FAILED$' "$LOGS/$rt.log" | awk '{print $2}' | sort)
    if [ -n "$names" ]; then
        FAILURES+="
**$rt** failing:
$(sed 's/^/- /' <<<"$names")
"
    else
        FAILURES+="
**$rt** failing: none
"
    fi
done

echo
echo "$TABLE"
echo "$FAILURES"
