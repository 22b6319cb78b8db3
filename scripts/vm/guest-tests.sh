#!/bin/sh
# Tests run inside the cgroup v2 VM (busybox sh). Each prints PASS or FAIL with its name; the
# last line is the summary `N passed, M failed` that scripts/vm/run.sh reads.
passed=0
failed=0
B=/tmp/bundle
ROOT=/run/hezi-test
CG=/sys/fs/cgroup

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# config.json from `hezi spec`, with terminal off, the given args and optional resources JSON.
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
}

t_run_exit_code() {
    bundle '"sh", "-c", "exit 3"'
    hezi --root $ROOT run -b $B exit3
    rc=$?
    [ $rc = 3 ] && pass run_exit_code || fail run_exit_code "exit $rc, want 3"
}

t_cgroup_placement_and_cleanup() {
    bundle '"sleep", "100"'
    hezi --root $ROOT run -d -b $B place || { fail cgroup_placement "run -d failed"; return; }
    pid=$(cat /proc/*/stat 2>/dev/null | awk '$2=="(sleep)"{print $1; exit}')
    dir=$CG/hezi/place
    existed=no
    [ -d "$dir" ] && existed=yes
    if [ $existed = yes ] && grep -qx "$pid" "$dir/cgroup.procs"; then
        pass cgroup_placement
    else
        fail cgroup_placement "pid $pid not in $dir/cgroup.procs"
    fi
    inside=$(grep '^0::' /proc/$pid/cgroup)
    hezi --root $ROOT delete -f place
    if [ $existed = no ]; then
        fail cgroup_removed_on_delete "$dir was never created"
    elif [ -e "$dir" ]; then
        fail cgroup_removed_on_delete "$dir still exists"
    else
        pass cgroup_removed_on_delete
    fi
    echo "  (host view of the init's cgroup: $inside)"
}

t_cgroupns_root() {
    bundle '"cat", "/proc/self/cgroup"'
    out=$(hezi --root $ROOT run -b $B cgns)
    [ "$out" = "0::/" ] && pass cgroupns_root || fail cgroupns_root "got '$out'"
}

t_limits_applied() {
    bundle '"sleep", "100"' '{"memory": {"limit": 67108864}, "pids": {"limit": 20}, "cpu": {"shares": 1024}}'
    hezi --root $ROOT run -d -b $B limits || { fail limits_applied "run -d failed"; return; }
    dir=$CG/hezi/limits
    mem=$(cat $dir/memory.max 2>/dev/null)
    pids=$(cat $dir/pids.max 2>/dev/null)
    weight=$(cat $dir/cpu.weight 2>/dev/null)
    hezi --root $ROOT delete -f limits
    [ "$mem" = 67108864 ] && pass memory_max || fail memory_max "memory.max=$mem"
    [ "$pids" = 20 ] && pass pids_max || fail pids_max "pids.max=$pids"
    # runc's conversion: weight = 1 + ((shares - 2) * 9999) / 262142
    [ "$weight" = 39 ] && pass cpu_shares_to_weight || fail cpu_shares_to_weight "cpu.weight=$weight"
}

t_pids_limit_holds_fork_loop() {
    bundle '"sh", "-c", "for i in $(seq 1 50); do sleep 5 \& done; wait; echo done"' '{"pids": {"limit": 10}}'
    out=$(hezi --root $ROOT run -b $B forks 2>&1)
    echo "$out" | grep -q "can't fork\|Resource temporarily unavailable\|No child" \
        && pass pids_limit_holds_fork_loop || fail pids_limit_holds_fork_loop "no fork failure seen: $(echo "$out" | tail -n 2)"
}

mkdir -p $ROOT
t_run_exit_code
t_cgroup_placement_and_cleanup
t_cgroupns_root
t_limits_applied
t_pids_limit_holds_fork_loop
leftover=$(ls $ROOT)
[ -z "$leftover" ] && pass no_state_left || fail no_state_left "$leftover"
echo "$passed passed, $failed failed"
