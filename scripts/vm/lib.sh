#!/bin/sh
# Helpers shared by the guest test scripts (busybox sh): PASS/FAIL counting, busybox bundles
# from `hezi spec`, and waiting on files. Sourced, never run.
passed=0
failed=0
B=/tmp/bundle
ROOT=/run/hezi-test
CG=/sys/fs/cgroup

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# config.json from `hezi spec`, with terminal off, the given args, optional resources JSON and
# optional cgroupsPath.
bundle() {
    rm -rf "$B"
    mkdir -p "$B"
    cp -a /guest/rootfs "$B/rootfs"
    hezi spec --bundle "$B"
    args=$1
    resources=${2:-'{}'}
    # busybox has no JSON tool: rewrite the few fields with sed on hezi's pretty-printed spec.
    sed -i -e 's/"terminal": true/"terminal": false/' \
        -e "s|\"sh\"$|$args|" \
        -e "s|\"resources\": {|\"resources\": $resources, \"x-unused\": {|" "$B/config.json"
    if [ -n "$3" ]; then
        sed -i -e "s|^  \"linux\": {|  \"linux\": {\"cgroupsPath\": \"$3\",|" "$B/config.json"
    fi
}

# Wait until FILE has the line LINE (up to 10 s).
wait_line() {
    i=0
    while ! grep -qx "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 100 ] && return 1
        sleep 0.1
    done
}

# cgroupfs files report size 0, so `test -s` cannot tell whether one has content.
has_content() {
    [ -n "$(cat "$1" 2>/dev/null)" ]
}

status_of() {
    hezi --root $ROOT state "$1" 2>/dev/null | grep '"status"' | sed 's/.*: "\(.*\)".*/\1/'
}

# The last check of a guest run: no container state left under $ROOT.
check_no_state_left() {
    leftover=$(ls $ROOT)
    [ -z "$leftover" ] && pass no_state_left || fail no_state_left "$leftover"
}
