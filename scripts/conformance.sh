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

# crun 1.8 refuses a hybrid cgroup host while the cgroup2 mount holds a controller (here:
# hugetlb). Binding hugetlb to a v1 hierarchy of its own frees the v2 mount. Only done for crun,
# and only when needed: nothing else on the host is touched.
crun_cgroup_fixup() {
    local controllers=/sys/fs/cgroup/unified/cgroup.controllers
    [ -s "$controllers" ] || return 0
    grep -qw hugetlb "$controllers" || return 0
    mountpoint -q /sys/fs/cgroup/hugetlb && return 0
    echo "crun: binding hugetlb to a v1 hierarchy (/sys/fs/cgroup/hugetlb) until the end of this run" >&2
    mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb &&
        trap crun_cgroup_undo EXIT
}

# Give hugetlb back to the unified mount: empty the v1 hierarchy first, since an unmounted v1
# hierarchy that still has cgroups lives on and keeps the controller.
crun_cgroup_undo() {
    find /sys/fs/cgroup/hugetlb -mindepth 1 -type d | sort -r | xargs -r rmdir
    umount /sys/fs/cgroup/hugetlb && rmdir /sys/fs/cgroup/hugetlb
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
