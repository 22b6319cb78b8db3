#!/bin/sh
# Tests run inside the cgroup v2 VM (busybox sh). Each prints PASS or FAIL with its name; the
# last line is the summary `N passed, M failed` that scripts/vm/run.sh reads.
. /guest/lib.sh
. /guest/rootless.sh
. /guest/checkpoint.sh

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

t_cgroup2_mount() {
    bundle '"cat", "/proc/self/mountinfo"'
    line=$(hezi --root $ROOT run -b $B cg2mount | awk '$5 == "/sys/fs/cgroup"' | tail -n 1)
    fstype=$(echo "$line" | sed 's/.* - \([^ ]*\) .*/\1/')
    opts=$(echo "$line" | awk '{print $6}')
    [ "$fstype" = cgroup2 ] && pass cgroup2_mounted || fail cgroup2_mounted "$line"
    case ",$opts," in *,ro,*) pass cgroup2_mount_readonly ;; *) fail cgroup2_mount_readonly "$opts" ;; esac
}

# AppArmor, which Debian's kernel enables (this project's hosts have no LSM): the profile is
# applied at exec for the init and for exec'd processes, and enforced.
t_apparmor() {
    if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" != Y ] || [ ! -x /usr/sbin/apparmor_parser ]; then
        fail apparmor "AppArmor is not enabled in the guest kernel, or apparmor_parser is missing"
        return
    fi
    cat > /tmp/hezi-test.profile <<'PROFILE'
profile hezi-test flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  signal,
  ptrace,
  unix,
  mount,
  umount,
  pivot_root,
  deny /secret r,
}
PROFILE
    out=$(apparmor_parser -r /tmp/hezi-test.profile 2>&1) || { fail apparmor_profile_loads "$out"; return; }
    bundle '"sh", "-c", "cat /proc/self/attr/current; cat /secret 2>\&1; exit 0"'
    echo s3cret > $B/rootfs/secret
    out=$(hezi --root $ROOT run -b $B aa-off)
    case "$out" in "unconfined"*s3cret) pass apparmor_unconfined_by_default ;; *) fail apparmor_unconfined_by_default "$out" ;; esac
    sed -i -e 's|^  "process": {|  "process": {"apparmorProfile": "hezi-test",|' $B/config.json
    out=$(hezi --root $ROOT run -b $B aa-on)
    case "$out" in
        "hezi-test (enforce)"*"Permission denied"*) pass apparmor_profile_enforced ;;
        *) fail apparmor_profile_enforced "$out" ;;
    esac
    # exec --apparmor into a container running unconfined.
    sed -i -e 's|"apparmorProfile": "hezi-test",||' -e 's|"cat /proc/self/attr/current; cat /secret 2>&1; exit 0"|"sleep 100"|' $B/config.json
    hezi --root $ROOT run -d -b $B aa-exec || { fail apparmor_exec "run -d failed"; return; }
    out=$(hezi --root $ROOT exec --apparmor hezi-test aa-exec sh -c 'cat /proc/self/attr/current; cat /secret 2>&1')
    case "$out" in
        "hezi-test (enforce)"*"Permission denied"*) pass apparmor_exec_profile ;;
        *) fail apparmor_exec_profile "$out" ;;
    esac
    # A profile the kernel does not have is an error naming it, and leaves no container.
    out=$(hezi --root $ROOT exec --apparmor no-such-profile aa-exec true 2>&1) && fail apparmor_unknown_profile "exec succeeded"
    case "$out" in *no-such-profile*) pass apparmor_unknown_profile ;; *) fail apparmor_unknown_profile "$out" ;; esac
    hezi --root $ROOT delete -f aa-exec
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

t_more_limits() {
    bundle '"sleep", "100"' '{"memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432}, "cpu": {"quota": 50000, "period": 100000, "cpus": "0"}, "unified": {"pids.max": "7"}}'
    hezi --root $ROOT run -d -b $B more || { fail more_limits "run -d failed"; return; }
    dir=$CG/hezi/more
    swap=$(cat $dir/memory.swap.max 2>/dev/null || echo none)
    low=$(cat $dir/memory.low 2>/dev/null)
    cpumax=$(cat $dir/cpu.max 2>/dev/null)
    cpus=$(cat $dir/cpuset.cpus 2>/dev/null)
    pids=$(cat $dir/pids.max 2>/dev/null)
    hezi --root $ROOT delete -f more
    # v2 swap is memory.swap - memory.limit
    case "$swap" in 67108864|none) pass memory_swap_max ;; *) fail memory_swap_max "memory.swap.max=$swap" ;; esac
    [ "$low" = 33554432 ] && pass memory_low || fail memory_low "memory.low=$low"
    [ "$cpumax" = "50000 100000" ] && pass cpu_max || fail cpu_max "cpu.max=$cpumax"
    [ "$cpus" = 0 ] && pass cpuset_cpus || fail cpuset_cpus "cpuset.cpus=$cpus"
    [ "$pids" = 7 ] && pass unified_key || fail unified_key "pids.max=$pids"
}

# Freezing behind hezi's back (cgroup.freeze by hand): `state` reads the freezer, and delete -f
# kills a frozen container.
t_frozen_state_and_forced_delete() {
    bundle '"sleep", "100"'
    hezi --root $ROOT run -d -b $B frz || { fail state_paused_when_frozen "run -d failed"; return; }
    dir=$CG/hezi/frz
    echo 1 > $dir/cgroup.freeze
    wait_line $dir/cgroup.events "frozen 1"
    st=$(status_of frz)
    [ "$st" = paused ] && pass state_paused_when_frozen || fail state_paused_when_frozen "status $st"
    echo 0 > $dir/cgroup.freeze
    wait_line $dir/cgroup.events "frozen 0"
    st=$(status_of frz)
    [ "$st" = running ] && pass state_running_when_thawed || fail state_running_when_thawed "status $st"
    echo 1 > $dir/cgroup.freeze
    wait_line $dir/cgroup.events "frozen 1"
    if hezi --root $ROOT delete -f frz && [ ! -e "$dir" ]; then
        pass delete_force_frozen
    else
        fail delete_force_frozen "delete -f of a frozen container failed or left $dir"
    fi
}

t_kill_all() {
    bundle '"sh", "-c", "sleep 100 \& sleep 100 \& exec sleep 100"'
    hezi --root $ROOT run -d -b $B ka || { fail kill_all_term "run -d failed"; return; }
    dir=$CG/hezi/ka
    i=0
    while [ "$(wc -l < $dir/cgroup.procs)" -lt 3 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    # The container's init (pid 1 there) ignores SIGTERM; the two others die. Signalled one by
    # one inside a freeze that must be undone.
    hezi --root $ROOT kill --all ka TERM
    i=0
    while [ "$(wc -l < $dir/cgroup.procs)" -gt 1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    n=$(wc -l < $dir/cgroup.procs)
    fr=$(cat $dir/cgroup.freeze)
    [ "$n" = 1 ] && [ "$fr" = 0 ] && pass kill_all_term || fail kill_all_term "$n processes left, cgroup.freeze=$fr"
    hezi --root $ROOT kill --all ka KILL
    i=0
    while has_content $dir/cgroup.procs && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    has_content $dir/cgroup.procs && fail kill_all_kill "processes left: $(cat $dir/cgroup.procs)" || pass kill_all_kill
    hezi --root $ROOT delete -f ka
}

t_exec_joins_cgroup() {
    bundle '"sleep", "100"'
    hezi --root $ROOT run -d -b $B ex || { fail exec_joins_cgroup "run -d failed"; return; }
    out=$(hezi --root $ROOT exec ex cat /proc/self/cgroup 2>&1)
    hezi --root $ROOT delete -f ex
    [ "$out" = "0::/" ] && pass exec_joins_cgroup || fail exec_joins_cgroup "got '$out'"
}

t_oom_kill() {
    bundle '"sh", "-c", "x=$(head -c 40000000 /dev/urandom); echo survived"' '{"memory": {"limit": 16777216}}'
    out=$(hezi --root $ROOT run -b $B oom 2>&1)
    rc=$?
    case "$out" in *survived*) fail memory_limit_oom "no OOM kill (rc $rc)" ;; *) pass memory_limit_oom ;; esac
}

t_bad_resources_leave_nothing() {
    bundle '"true"' '{"unified": {"../x": "1"}}'
    out=$(hezi --root $ROOT run -b $B bad 2>&1) && { fail unified_key_rejected "run succeeded"; return; }
    case "$out" in
        *"not a cgroup file name"*) [ -e $CG/hezi/bad ] && fail unified_key_rejected "left $CG/hezi/bad" || pass unified_key_rejected ;;
        *) fail unified_key_rejected "$out" ;;
    esac
    bundle '"true"' '{}' 'system.slice:hezi:sd'
    out=$(hezi --root $ROOT run -b $B sd 2>&1) && { fail systemd_path_refused "run succeeded"; return; }
    case "$out" in *systemd*) pass systemd_path_refused ;; *) fail systemd_path_refused "$out" ;; esac
}

t_cgroups_paths() {
    mkdir -p $CG/keep
    bundle '"sleep", "100"' '{}' '/keep/c'
    hezi --root $ROOT run -d -b $B abs || { fail cgroups_path_absolute "run -d failed"; return; }
    has_content $CG/keep/c/cgroup.procs && ok=yes || ok=no
    hezi --root $ROOT delete -f abs
    if [ $ok = yes ] && [ -d $CG/keep ] && [ ! -e $CG/keep/c ]; then
        pass cgroups_path_absolute
    else
        fail cgroups_path_absolute "placed=$ok, keep/ or keep/c wrong after delete"
    fi
    rmdir $CG/keep
    # Relative: below the parent of hezi's own cgroup (/init here), so /rel/x.
    bundle '"sleep", "100"' '{}' 'rel/x'
    hezi --root $ROOT run -d -b $B rel || { fail cgroups_path_relative "run -d failed"; return; }
    has_content $CG/rel/x/cgroup.procs && ok=yes || ok=no
    hezi --root $ROOT delete -f rel
    [ $ok = yes ] && [ ! -e $CG/rel ] && pass cgroups_path_relative || fail cgroups_path_relative "placed=$ok; $(ls -d $CG/rel 2>&1)"
}

t_pause_resume() {
    bundle '"sleep", "100"'
    hezi --root $ROOT run -d -b $B pr || { fail pause_resume "run -d failed"; return; }
    dir=$CG/hezi/pr
    hezi --root $ROOT pause pr
    st=$(status_of pr)
    if [ "$st" = paused ] && grep -qx "frozen 1" $dir/cgroup.events; then
        pass pause
    else
        fail pause "status $st, $(grep frozen $dir/cgroup.events)"
    fi
    hezi --root $ROOT pause pr 2>/dev/null && fail pause_twice "a paused container paused again" || pass pause_twice
    # exec --ignore-paused: the process joins the frozen cgroup and runs once resumed.
    if timeout 10 hezi --root $ROOT exec --ignore-paused -d pr sh -c 'echo ran > /dev/shm/ran'; then
        pass exec_ignore_paused
    else
        fail exec_ignore_paused "exec into the paused container failed or hung"
    fi
    hezi --root $ROOT resume pr
    sleep 0.5
    [ "$(hezi --root $ROOT exec pr cat /dev/shm/ran)" = ran ] && pass exec_ran_after_resume \
        || fail exec_ran_after_resume "no output of the exec'd process"
    st=$(status_of pr)
    if [ "$st" = running ] && grep -qx "frozen 0" $dir/cgroup.events; then
        pass resume
    else
        fail resume "status $st, $(grep frozen $dir/cgroup.events)"
    fi
    hezi --root $ROOT resume pr 2>/dev/null && fail resume_running "resumed a running container" || pass resume_running
    hezi --root $ROOT delete -f pr
}

t_update() {
    bundle '"sleep", "100"' '{"pids": {"limit": 50}}'
    hezi --root $ROOT run -d -b $B upd || { fail update_flags "run -d failed"; return; }
    dir=$CG/hezi/upd
    hezi --root $ROOT update --memory 64m --pids-limit 20 --cpu-share 1024 upd
    mem=$(cat $dir/memory.max); pids=$(cat $dir/pids.max); weight=$(cat $dir/cpu.weight)
    [ "$mem" = 67108864 ] && [ "$pids" = 20 ] && [ "$weight" = 39 ] && pass update_flags \
        || fail update_flags "memory.max=$mem pids.max=$pids cpu.weight=$weight"
    echo '{"pids": {"limit": 30}, "cpu": {"quota": 20000, "period": 100000}}' > /tmp/res.json
    hezi --root $ROOT update -r /tmp/res.json upd
    pids=$(cat $dir/pids.max); cpumax=$(cat $dir/cpu.max); mem=$(cat $dir/memory.max)
    # The memory limit of the first update stays: updates start from the saved resources.
    [ "$pids" = 30 ] && [ "$cpumax" = "20000 100000" ] && [ "$mem" = 67108864 ] && pass update_resources_file \
        || fail update_resources_file "pids.max=$pids cpu.max=$cpumax memory.max=$mem"
    echo '{"memory": {"limit": -1}}' | hezi --root $ROOT update -r - upd
    mem=$(cat $dir/memory.max)
    [ "$mem" = max ] && pass update_resources_stdin || fail update_resources_stdin "memory.max=$mem"
    hezi --root $ROOT delete -f upd
}

t_events_stats_and_ps() {
    bundle '"sh", "-c", "sleep 100 \& exec sleep 101"' '{"memory": {"limit": 67108864}, "pids": {"limit": 40}}'
    hezi --root $ROOT run -d -b $B ev || { fail events_stats "run -d failed"; return; }
    dir=$CG/hezi/ev
    i=0
    while [ "$(wc -l < $dir/cgroup.procs)" -lt 2 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    out=$(hezi --root $ROOT events --stats ev)
    case "$out" in
        '{"type":"stats","id":"ev","data":{"cpu":{"usage":{'*'"limit":67108864'*'"pids":{"current":2,"limit":40}'*) pass events_stats ;;
        *) fail events_stats "$out" ;;
    esac
    want=$(sort -n $dir/cgroup.procs | tr '\n' ',' | sed 's/,$//')
    json=$(hezi --root $ROOT ps --format json ev)
    [ "$json" = "[$want]" ] && pass ps_json || fail ps_json "got $json, cgroup.procs [$want]"
    table=$(hezi --root $ROOT ps ev)
    n=$(echo "$table" | grep -c "sleep 10[01]")
    lines=$(echo "$table" | wc -l)
    echo "$table" | head -n1 | grep -q PID && [ "$n" = 2 ] && [ "$lines" = 3 ] && pass ps_table || fail ps_table "$table"
    hezi --root $ROOT delete -f ev
}

# events follows memory.events (inotify) and reports an OOM kill, then ends with the container.
t_events_oom() {
    bundle '"sh", "-c", "sleep 1; x=$(head -c 40000000 /dev/urandom); sleep 100"' '{"memory": {"limit": 16777216, "swap": 16777216}}'
    hezi --root $ROOT run -d -b $B oomev || { fail events_oom "run -d failed"; return; }
    hezi --root $ROOT events --interval 10s oomev > /tmp/events.out 2>&1 &
    evpid=$!
    i=0
    while ! grep -q '"type":"oom"' /tmp/events.out && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
    hezi --root $ROOT kill oomev KILL 2>/dev/null
    wait $evpid
    rc=$?
    grep -qx '{"type":"oom","id":"oomev"}' /tmp/events.out && [ $rc = 0 ] && pass events_oom \
        || fail events_oom "rc $rc: $(cat /tmp/events.out | cut -c1-200)"
    hezi --root $ROOT delete -f oomev
}

# Device rules on pure v2 are an eBPF program on the container's cgroup. /dev/mem (1:1) is made
# in the container from linux.devices but not allowed by the rules; /dev/null is in the default
# allow list. The containers get CAP_SYS_RAWIO, which opening /dev/mem needs, so an EPERM there
# comes from the device program alone.
mem_device() {
    sed -i -e 's|^  "linux": {|  "linux": {"devices": [{"path": "/dev/mem", "type": "c", "major": 1, "minor": 1}],|' \
        -e 's|"CAP_KILL"|"CAP_KILL", "CAP_SYS_RAWIO"|' "$B/config.json"
}

t_device_program() {
    bundle '"sh", "-c", "cat /dev/null \&\& echo null-ok; head -c1 /dev/mem; echo x > /dev/null \&\& echo write-ok"' \
        '{"devices": [{"allow": false, "access": "rwm"}]}'
    mem_device
    out=$(hezi --root $ROOT run -b $B devs 2>&1)
    case "$out" in
        *null-ok*"Operation not permitted"*write-ok*) pass device_program_denies ;;
        *) fail device_program_denies "$out" ;;
    esac
    # A later rule opens read access to /dev/mem but not write.
    bundle '"sh", "-c", "head -c1 /dev/mem > /dev/null \&\& echo read-ok; echo x > /dev/mem"' \
        '{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 1, "access": "r"}]}'
    mem_device
    out=$(hezi --root $ROOT run -b $B devs2 2>&1)
    case "$out" in
        *read-ok*"Operation not permitted"*) pass device_program_access ;;
        *) fail device_program_access "$out" ;;
    esac
    # A hole punched in a wildcard allow is refused before anything runs.
    bundle '"true"' '{"devices": [{"allow": true, "type": "c", "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 1}]}'
    out=$(hezi --root $ROOT run -b $B devs3 2>&1) && { fail device_hole_refused "run succeeded"; return; }
    case "$out" in *"wider rule"*) pass device_hole_refused ;; *) fail device_hole_refused "$out" ;; esac
}

mkdir -p $ROOT
# `hezi.only=WORD` on the kernel command line (scripts/vm/run.sh: HEZI_VM_ONLY=WORD) runs only
# the tests whose names contain WORD, for a quick turn while working on them.
only=$(sed -n 's/.*hezi\.only=\([^ ]*\).*/\1/p' /proc/cmdline)
selected() { case "$1" in *"$only"*) return 0 ;; *) return 1 ;; esac; }
checkpoint_tests
for t in t_run_exit_code \
    t_cgroup_placement_and_cleanup \
    t_cgroupns_root \
    t_cgroup2_mount \
    t_apparmor \
    t_limits_applied \
    t_pids_limit_holds_fork_loop \
    t_more_limits \
    t_frozen_state_and_forced_delete \
    t_kill_all \
    t_exec_joins_cgroup \
    t_oom_kill \
    t_bad_resources_leave_nothing \
    t_cgroups_paths \
    t_pause_resume \
    t_update \
    t_events_stats_and_ps \
    t_events_oom \
    t_device_program; do
    selected $t && $t
done
selected rootless && rootless_tests
check_no_state_left
# hezi made /hezi for its containers and removes it with the last one.
[ -e $CG/hezi ] && fail no_cgroup_left "$(ls $CG/hezi)" || pass no_cgroup_left
echo "$passed passed, $failed failed"
