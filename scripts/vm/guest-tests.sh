#!/bin/sh
# Tests run inside the cgroup v2 VM (busybox sh). Each prints PASS or FAIL with its name; the
# last line is the summary `N passed, M failed` that scripts/vm/run.sh reads.
. /guest/lib.sh
. /guest/rootless.sh

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

t_criu_check() {
    if [ ! -x /usr/sbin/criu ]; then
        fail criu_check "criu is not in the initramfs (scripts/install-deps.sh installs it)"
        return
    fi
    for m in $(cat /guest/modules/order 2>/dev/null); do
        # (one already built in or loaded says so, which is fine)
        insmod /guest/modules/$m.ko 2>&1 | grep -v "File exists" | sed "s/^/  insmod $m: /"
    done
    mkdir -p /dev/net
    [ -e /dev/net/tun ] || mknod /dev/net/tun c 10 200
    mkdir -p /dev/pts
    grep -q " /dev/pts " /proc/mounts || mount -t devpts -o ptmxmode=0666 devpts /dev/pts
    [ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
    # kerndat probes TCP repair on a loopback connection.
    ifconfig lo 127.0.0.1 up 2>/dev/null
    out=$(criu check 2>&1) && { criu_ok=yes; pass criu_check; } || fail criu_check "$out"
}

# A busybox counter keeping its count in shell memory and writing it to /count: checkpointed
# (killed), restored, and counting on from where it stopped, not from 1; then checkpointed with
# --leave-running (still counting) and restored after a delete. The count is renamed into place,
# so a read never sees a half-written file.
t_checkpoint_restore() {
    [ "$criu_ok" = yes ] || { fail checkpoint_restore "criu check failed (see criu_check)"; return; }
    bundle '"sh", "-c", "exec </dev/null >/dev/null 2>\&1; i=0; while true; do i=$((i+1)); echo $i > /count.new; mv /count.new /count; sleep 0.1; done"'
    # A writable rootfs for /count, and the host's network namespace (joined by path): CRIU 3.17
    # fails to dump a network namespace's links on this kernel ("Dumping netns links": EINVAL).
    sed -i -e 's|"type": "network"|"type": "network", "path": "/proc/1/ns/net"|' \
        -e 's|"readonly": true|"readonly": false|' $B/config.json
    hezi --root $ROOT run -d -b $B cr </dev/null >/dev/null 2>&1 || { fail checkpoint_restore "run -d failed"; return; }
    # Counting past 10 (under emulation the shell may take a while to start).
    i=0
    while [ "$(cat $B/rootfs/count 2>/dev/null || echo 0)" -lt 10 ] && [ $i -lt 200 ]; do
        i=$((i + 1))
        sleep 0.1
    done
    out=$(hezi --root $ROOT checkpoint --image-path /tmp/cr-img --work-path /tmp/cr-work cr 2>&1)
    if [ $? != 0 ]; then
        fail checkpoint "$out; $(grep -B8 -m1 "Error" /tmp/cr-work/dump.log 2>/dev/null)"
        hezi --root $ROOT delete -f cr
        return
    fi
    pass checkpoint
    [ -e $ROOT/cr ] && fail checkpoint_deletes "state left: $(ls $ROOT/cr)" || pass checkpoint_deletes
    stopped=$(cat $B/rootfs/count)
    sleep 0.5
    [ "$(cat $B/rootfs/count)" = "$stopped" ] && pass checkpoint_stops_it || fail checkpoint_stops_it "count moved on from $stopped"
    out=$(hezi --root $ROOT restore --image-path /tmp/cr-img --work-path /tmp/cr-work -b $B -d cr 2>&1)
    if [ $? != 0 ]; then
        fail restore "$out; $(grep -E "Error|Warn" /tmp/cr-work/restore.log | tail -n 8 2>/dev/null)"
        hezi --root $ROOT delete -f cr 2>/dev/null
        return
    fi
    st=$(status_of cr)
    [ "$st" = running ] && pass restore_running || fail restore_running "status $st"
    sleep 1
    now=$(cat $B/rootfs/count)
    # From memory: on past the count at the dump. A fresh start counts at most 10 a second, so
    # could not pass a count of 10 or more in one.
    if [ "$stopped" -ge 10 ] && [ "$now" -gt "$stopped" ]; then
        pass restore_continues
    else
        fail restore_continues "count $stopped at the dump, $now a second after restore"
    fi
    echo "  (count $stopped at the dump, $now a second after restore)"
    # The restored init is hezi's like any other: exec joins it, state names its pid.
    out=$(hezi --root $ROOT exec cr cat /count 2>&1)
    [ "$out" -gt "$stopped" ] 2>/dev/null && pass restored_exec || fail restored_exec "$out"
    out=$(hezi --root $ROOT checkpoint --leave-running --image-path /tmp/cr-img2 --work-path /tmp/cr-work cr 2>&1)
    if [ $? != 0 ]; then
        fail checkpoint_leave_running "$out; $(grep -B8 -m1 "Error" /tmp/cr-work/dump.log 2>/dev/null)"
    else
        at=$(cat $B/rootfs/count)
        sleep 0.5
        st=$(status_of cr)
        if [ "$st" = running ] && [ "$(cat $B/rootfs/count)" -gt "$at" ]; then
            pass checkpoint_leave_running
        else
            fail checkpoint_leave_running "status $st, count $at then $(cat $B/rootfs/count)"
        fi
        hezi --root $ROOT delete -f cr
        out=$(hezi --root $ROOT restore --image-path /tmp/cr-img2 --work-path /tmp/cr-work -b $B -d cr 2>&1)
        if [ $? = 0 ]; then
            sleep 1
            now=$(cat $B/rootfs/count)
            [ "$now" -gt "$at" ] && pass restore_after_leave_running || fail restore_after_leave_running "count $now, was $at"
        else
            fail restore_after_leave_running "$out; $(grep -E "Error|Warn" /tmp/cr-work/restore.log | tail -n 8 2>/dev/null)"
        fi
    fi
    hezi --root $ROOT delete -f cr 2>/dev/null
    [ -e $ROOT/cr ] && fail restored_deleted "state left" || pass restored_deleted
}

# A read-only rootfs stays read-only after restore, and kill works on the restored init.
t_checkpoint_restore_readonly() {
    [ "$criu_ok" = yes ] || { fail checkpoint_restore_readonly "criu check failed (see criu_check)"; return; }
    # stdio inside the container: hezi does not yet describe the caller's fds to CRIU as
    # external (runc's inherit_fd), so an init holding the host's /dev/null cannot be dumped.
    bundle '"sh", "-c", "exec </dev/null >/dev/null 2>\&1; exec sleep 1000"'
    sed -i -e 's|"type": "network"|"type": "network", "path": "/proc/1/ns/net"|' $B/config.json
    hezi --root $ROOT run -d -b $B cro </dev/null >/dev/null 2>&1 || { fail checkpoint_restore_readonly "run -d failed"; return; }
    out=$(hezi --root $ROOT checkpoint --image-path /tmp/cro-img cro 2>&1) || { fail checkpoint_restore_readonly "$out"; hezi --root $ROOT delete -f cro; return; }
    out=$(hezi --root $ROOT restore --image-path /tmp/cro-img -b $B -d cro 2>&1) || { fail checkpoint_restore_readonly "$out; $(grep -B8 -m1 Error /tmp/cro-img/restore.log)"; return; }
    out=$(hezi --root $ROOT exec cro sh -c 'echo x > /written' 2>&1)
    [ -e $B/rootfs/written ] && fail restored_root_readonly "wrote /written: $out" || pass restored_root_readonly
    hezi --root $ROOT kill cro KILL
    i=0
    while [ "$(status_of cro)" != stopped ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
    [ "$(status_of cro)" = stopped ] && pass restored_kill || fail restored_kill "status $(status_of cro)"
    hezi --root $ROOT delete cro
    [ -e $ROOT/cro ] && fail restored_delete "state left" || pass restored_delete
}

mkdir -p $ROOT
t_criu_check
t_checkpoint_restore
t_checkpoint_restore_readonly
t_run_exit_code
t_cgroup_placement_and_cleanup
t_cgroupns_root
t_cgroup2_mount
t_apparmor
t_limits_applied
t_pids_limit_holds_fork_loop
t_more_limits
t_frozen_state_and_forced_delete
t_kill_all
t_exec_joins_cgroup
t_oom_kill
t_bad_resources_leave_nothing
t_cgroups_paths
t_pause_resume
t_update
t_events_stats_and_ps
t_events_oom
t_device_program
rootless_tests
check_no_state_left
# hezi made /hezi for its containers and removes it with the last one.
[ -e $CG/hezi ] && fail no_cgroup_left "$(ls $CG/hezi)" || pass no_cgroup_left
echo "$passed passed, $failed failed"
