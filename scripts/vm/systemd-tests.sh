#!/bin/sh
# The systemd cgroup driver, in the VM booted with systemd as PID 1 (scripts/vm/run.sh systemd).
# Runs as a oneshot service; each test prints PASS or FAIL, the last line is the summary
# `N passed, M failed` that run.sh reads. systemctl reads systemd's own view of each scope.
. /guest/lib.sh
. /guest/rootless.sh
# The rootless user's runtime directory is its systemd's (hezi-user-manager.service).
RL_RUN=/run/user/$RL_UID
RL_ROOT=$RL_RUN/hezi

H="hezi --root $ROOT --systemd-cgroup --debug --log /tmp/hezi.log"

# systemctl show -p PROP --value UNIT
prop() {
    systemctl show -p "$2" --value "$1" 2>/dev/null
}

# hezi delete ARGS..., saying what failed.
del() {
    out=$($H delete "$@" 2>&1) || { echo "  delete $*: $out"; return 1; }
}

# The pid of the container's init, from `hezi state`.
init_pid() {
    hezi --root $ROOT state "$1" | grep '"pid"' | sed 's/[^0-9]//g'
}

t_scope_holds_the_container() {
    bundle '"sleep", "300"' '{"memory": {"limit": 67108864}, "pids": {"limit": 20}, "cpu": {"shares": 1024, "quota": 50000, "period": 100000}}' 'machine.slice:hezi:sd1'
    $H run -d -b $B sd1 || { fail scope_created "run -d failed"; return; }
    unit=hezi-sd1.scope
    dir=$CG/machine.slice/$unit
    pid=$(init_pid sd1)
    grep -qx "$pid" $dir/cgroup.procs 2>/dev/null && pass scope_holds_init || fail scope_holds_init "pid $pid not in $dir/cgroup.procs"
    [ "$(prop $unit ActiveState)" = active ] && pass scope_active || fail scope_active "$(prop $unit ActiveState)"
    [ "$(prop $unit Delegate)" = yes ] && pass scope_delegated || fail scope_delegated "Delegate=$(prop $unit Delegate)"
    [ "$(prop $unit Slice)" = machine.slice ] && pass scope_slice || fail scope_slice "Slice=$(prop $unit Slice)"
    # The limits are in cgroupfs and in systemd's view of the unit alike.
    [ "$(cat $dir/memory.max)" = 67108864 ] && pass scope_memory_max || fail scope_memory_max "memory.max=$(cat $dir/memory.max)"
    [ "$(prop $unit MemoryMax)" = 67108864 ] && pass unit_memory_max || fail unit_memory_max "MemoryMax=$(prop $unit MemoryMax)"
    [ "$(cat $dir/pids.max)" = 20 ] && pass scope_pids_max || fail scope_pids_max "pids.max=$(cat $dir/pids.max)"
    [ "$(prop $unit TasksMax)" = 20 ] && pass unit_tasks_max || fail unit_tasks_max "TasksMax=$(prop $unit TasksMax)"
    [ "$(cat $dir/cpu.weight)" = 39 ] && pass scope_cpu_weight || fail scope_cpu_weight "cpu.weight=$(cat $dir/cpu.weight)"
    [ "$(prop $unit CPUWeight)" = 39 ] && pass unit_cpu_weight || fail unit_cpu_weight "CPUWeight=$(prop $unit CPUWeight)"
    [ "$(cat $dir/cpu.max)" = "50000 100000" ] && pass scope_cpu_max || fail scope_cpu_max "cpu.max=$(cat $dir/cpu.max)"
    [ "$(prop $unit CPUQuotaPerSecUSec)" = 500ms ] && pass unit_cpu_quota || fail unit_cpu_quota "CPUQuotaPerSecUSec=$(prop $unit CPUQuotaPerSecUSec)"

    # update goes to both as well.
    $H update --memory 134217728 --pids-limit 30 sd1 || fail update "update failed"
    [ "$(cat $dir/memory.max)" = 134217728 ] && [ "$(prop $unit MemoryMax)" = 134217728 ] \
        && pass update_memory || fail update_memory "memory.max=$(cat $dir/memory.max) MemoryMax=$(prop $unit MemoryMax)"
    [ "$(cat $dir/pids.max)" = 30 ] && [ "$(prop $unit TasksMax)" = 30 ] \
        && pass update_pids || fail update_pids "pids.max=$(cat $dir/pids.max) TasksMax=$(prop $unit TasksMax)"
    # A daemon-reload re-applies the unit's properties: the updated limit must survive it.
    systemctl daemon-reload
    [ "$(cat $dir/memory.max)" = 134217728 ] && pass limit_survives_daemon_reload \
        || fail limit_survives_daemon_reload "memory.max=$(cat $dir/memory.max)"

    $H pause sd1 && [ "$(cat $dir/cgroup.freeze)" = 1 ] && [ "$(status_of sd1)" = paused ] \
        && pass pause || fail pause "cgroup.freeze=$(cat $dir/cgroup.freeze) status=$(status_of sd1)"
    $H resume sd1 && [ "$(cat $dir/cgroup.freeze)" = 0 ] && [ "$(status_of sd1)" = running ] \
        && pass resume || fail resume "cgroup.freeze=$(cat $dir/cgroup.freeze) status=$(status_of sd1)"
    $H exec sd1 sh -c 'cat /proc/self/cgroup' > /tmp/exec.out 2>&1
    [ "$(cat /tmp/exec.out)" = "0::/" ] && pass exec_in_scope || fail exec_in_scope "$(cat /tmp/exec.out)"

    $H kill sd1 KILL
    i=0
    while [ "$(status_of sd1)" != stopped ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    del sd1 || fail delete "delete failed"
    [ ! -e $dir ] && pass scope_cgroup_removed || fail scope_cgroup_removed "$dir left"
    state=$(prop $unit ActiveState)
    [ "$state" = inactive ] && pass scope_unit_gone || fail scope_unit_gone "ActiveState=$state"
    # The slice is systemd's, not hezi's: it stays.
    [ -d $CG/machine.slice ] && pass slice_kept || fail slice_kept "machine.slice removed"
}

t_default_cgroups_path() {
    bundle '"sleep", "300"'
    $H run -d -b $B sd2 || { fail default_path "run -d failed"; return; }
    pid=$(init_pid sd2)
    got=$(grep '^0::' /proc/$pid/cgroup)
    del -f sd2 && pass forced_delete || fail forced_delete "delete -f failed"
    [ "$got" = "0::/system.slice/hezi-sd2.scope" ] && pass default_path || fail default_path "$got"
    [ ! -e $CG/system.slice/hezi-sd2.scope ] && pass forced_delete_removes_scope \
        || fail forced_delete_removes_scope "scope dir left"
}

t_nested_slice_and_exit_code() {
    bundle '"sh", "-c", "cat /proc/self/cgroup > /dev/null; exit 7"' '{}' 'hezi-test.slice:pfx:sd3'
    $H run -b $B sd3
    rc=$?
    [ $rc = 7 ] && pass foreground_exit_code || fail foreground_exit_code "exit $rc"
    [ -d $CG/hezi.slice/hezi-test.slice ] && pass nested_slice || fail nested_slice "$(ls $CG)"
    [ ! -e $CG/hezi.slice/hezi-test.slice/pfx-sd3.scope ] && pass exited_scope_removed \
        || fail exited_scope_removed "scope left"
}

t_same_scope_twice_is_refused() {
    bundle '"sleep", "300"' '{}' 'system.slice:dup:one'
    $H run -d -b $B dup1 || { fail duplicate_scope "first run failed"; return; }
    out=$($H run -d -b $B dup2 2>&1) && { fail duplicate_scope "second run succeeded"; del -f dup1; return; }
    case "$out" in
        *"is not empty"* | *"already exists"*) pass duplicate_scope_refused ;;
        *) fail duplicate_scope_refused "$out" ;;
    esac
    [ -z "$(hezi --root $ROOT list -q | grep dup2)" ] && pass duplicate_leaves_no_state \
        || fail duplicate_leaves_no_state "dup2 listed"
    # The first container is untouched.
    [ "$(status_of dup1)" = running ] && pass duplicate_keeps_first || fail duplicate_keeps_first "$(status_of dup1)"
    del -f dup1 && pass forced_delete_after_refusal || fail forced_delete_after_refusal "delete -f failed"
}

t_bad_path_is_refused() {
    bundle '"true"' '{}' '/not/a/slice'
    out=$($H run -b $B bad 2>&1) && { fail bad_path "run succeeded"; return; }
    case "$out" in *"slice:prefix:name"*) pass bad_path_refused ;; *) fail bad_path_refused "$out" ;; esac
}

# `start` of hezi's shim in $B for container ID with runtime options TOML; prints its address.
shim_start() {
    (cd $B && shimctl options "$2" | containerd-shim-hezi-v2 -namespace vm -address /run/vm.sock \
        -publish-binary /bin/true -id "$1" start)
}

# The shim on a systemd node, driven over its task API by shimctl (no containerd here): the
# systemd driver chosen by a cgroupsPath of the form slice:prefix:name (what CRI sends when the
# kubelet uses systemd), and by the runtime option SystemdCgroup = true.
t_shim_uses_the_systemd_driver() {
    if ! command -v containerd-shim-hezi-v2 >/dev/null || ! command -v shimctl >/dev/null; then
        fail shim_in_initramfs "build containerd-shim-hezi-v2 and its example shimctl next to hezi"
        return
    fi
    bundle '"sleep", "300"' '{"memory": {"limit": 67108864}}' 'machine.slice:hezi-shim:sh1'
    a1=$(shim_start sh1 '') || { fail shim_start "start failed"; return; }
    pid=$(shimctl $a1 create sh1 $B) && shimctl $a1 start sh1 || { fail shim_create "create/start failed"; shimctl $a1 shutdown; return; }
    unit=hezi-shim-sh1.scope
    dir=$CG/machine.slice/$unit
    grep -qx "$pid" $dir/cgroup.procs 2>/dev/null && pass shim_scope_holds_init || fail shim_scope_holds_init "pid $pid not in $dir/cgroup.procs"
    [ "$(prop $unit ActiveState)" = active ] && pass shim_scope_active || fail shim_scope_active "$(prop $unit ActiveState)"
    [ "$(cat $dir/memory.max)" = 67108864 ] && [ "$(prop $unit MemoryMax)" = 67108864 ] \
        && pass shim_scope_memory_max || fail shim_scope_memory_max "memory.max=$(cat $dir/memory.max) MemoryMax=$(prop $unit MemoryMax)"
    shimctl $a1 kill sh1 9
    st=$(shimctl $a1 wait sh1)
    [ "$st" = 137 ] && pass shim_exit_status || fail shim_exit_status "wait said $st"
    shimctl $a1 delete sh1 || fail shim_delete "delete failed"
    [ ! -e $dir ] && pass shim_scope_removed || fail shim_scope_removed "$dir left"
    [ "$(prop $unit ActiveState)" = inactive ] && pass shim_unit_gone || fail shim_unit_gone "ActiveState=$(prop $unit ActiveState)"
    shimctl $a1 shutdown

    # No cgroupsPath; the option alone: hezi's default scope, as `hezi --systemd-cgroup` makes it.
    bundle '"sleep", "300"'
    a2=$(shim_start sh2 'SystemdCgroup = true') || { fail shim_option_start "start failed"; return; }
    pid=$(shimctl $a2 create sh2 $B) && shimctl $a2 start sh2 || { fail shim_option_create "create/start failed"; shimctl $a2 shutdown; return; }
    got=$(grep '^0::' /proc/$pid/cgroup)
    [ "$got" = "0::/system.slice/hezi-sh2.scope" ] && pass shim_option_scope || fail shim_option_scope "$got"
    shimctl $a2 kill sh2 9
    shimctl $a2 wait sh2 >/dev/null
    shimctl $a2 delete sh2 || fail shim_option_delete "delete failed"
    [ ! -e $CG/system.slice/hezi-sh2.scope ] && pass shim_option_scope_removed || fail shim_option_scope_removed "scope left"
    shimctl $a2 shutdown
    left=$(ls /run/containerd/hezi/vm 2>/dev/null)
    [ -z "$left" ] && pass shim_no_state_left || fail shim_no_state_left "$left"
}

# Rootless with the user's own systemd (`systemd --user` for uid RL_UID, started as a service
# the way user@.service starts one): `--systemd-cgroup` asks that manager for the scope, in
# user.slice below the manager's own cgroup, where the limits hold; delete stops the scope.
t_rootless_user_manager() {
    # The initramfs's /tmp is root's alone; a user's systemd makes temporary files there.
    chmod 1777 /tmp
    out=$(systemctl start hezi-user-manager.service 2>&1) || {
        fail user_manager_started "$out; $(tail -n 5 /run/hezi-user-manager.log)"
        return
    }
    mgr=$CG/system.slice/hezi-user-manager.service
    i=0
    while [ ! -S $RL_RUN/systemd/private ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
    rl_bundle '"sleep", "300"' '{"memory": {"limit": 33554432}, "pids": {"limit": 20}}'
    # The caller sits in the user's own subtree, as a login's processes do (PID 1 moves them
    # there when the user's manager asks, over a system bus this VM has not): the manager can
    # then move the init into its scope.
    mkdir -p $mgr/hezi-caller
    chown $RL_UID:$RL_GID $mgr/hezi-caller $mgr/hezi-caller/cgroup.procs
    out=$(sh -c "echo \$\$ > $mgr/hezi-caller/cgroup.procs && exec /usr/bin/setpriv --reuid $RL_UID --regid $RL_GID \
        --clear-groups -- env -i PATH=/bin:/usr/bin HOME=$RL_RUN XDG_RUNTIME_DIR=$RL_RUN \
        hezi --systemd-cgroup --debug --log /tmp/ru.log run -d -b $RB ru1" </dev/null >/tmp/ru.out 2>&1) \
        || { fail rootless_user_scope "run -d: $(cat /tmp/ru.out)"; return; }
    unit=hezi-ru1.scope
    dir=$mgr/user.slice/$unit
    pid=$(rl_hezi state ru1 | grep '"pid"' | sed 's/[^0-9]//g')
    got=$(grep '^0::' /proc/$pid/cgroup)
    [ "$got" = "0::/system.slice/hezi-user-manager.service/user.slice/$unit" ] && pass rootless_user_scope \
        || fail rootless_user_scope "init $pid in $got; $(rl_hezi state ru1 2>&1 | head -c 300); $(grep -iE 'systemd|cgroup|error|warn' /tmp/ru.log | tail -n 8)"
    state=$(as_user systemctl --user show -p ActiveState --value $unit 2>&1)
    [ "$state" = active ] && pass rootless_user_scope_active || fail rootless_user_scope_active "$state"
    [ "$(cat $dir/memory.max 2>&1)" = 33554432 ] && [ "$(cat $dir/pids.max 2>&1)" = 20 ] && pass rootless_user_scope_limits \
        || fail rootless_user_scope_limits "memory.max $(cat $dir/memory.max 2>&1), pids.max $(cat $dir/pids.max 2>&1)"
    out=$(rl_hezi delete -f ru1 2>&1) || fail rootless_user_scope_delete "$out"
    [ ! -e $dir ] && [ "$(as_user systemctl --user show -p ActiveState --value $unit)" = inactive ] \
        && pass rootless_user_scope_removed || fail rootless_user_scope_removed "$(ls $dir 2>&1 | head -n 3)"
    [ -z "$(ls $RL_ROOT 2>/dev/null)" ] && pass rootless_user_no_state_left || fail rootless_user_no_state_left "$(ls $RL_ROOT)"
    rmdir $mgr/hezi-caller 2>/dev/null
    systemctl stop hezi-user-manager.service
}

mkdir -p $ROOT
echo "guest: systemd $(systemctl --version | head -n1), cgroup2 controllers: $(cat $CG/cgroup.subtree_control)"
t_scope_holds_the_container
t_default_cgroups_path
t_nested_slice_and_exit_code
t_same_scope_twice_is_refused
t_bad_path_is_refused
t_shim_uses_the_systemd_driver
rl_setup
t_rootless_user_manager
check_no_state_left
left=$(systemctl list-units --all --plain --no-legend '*.scope' 2>/dev/null | grep -v '^init.scope' | grep -v '^$')
[ -z "$left" ] && pass no_unit_left || fail no_unit_left "$left"
echo "guest: requests systemd left waiting until pinged: $(grep -c 'no answer yet' /tmp/hezi.log)"
if [ $failed != 0 ]; then
    echo "guest: hezi's debug log (systemd lines and errors):"
    grep -E 'systemd|level=(error|warn)' /tmp/hezi.log | grep -v PropertiesChanged | tail -n 80 | sed 's/^/  | /'
    echo "guest: systemd jobs and scopes:"
    systemctl list-jobs --no-pager | sed 's/^/  | /'
    systemctl list-units --all --no-pager '*.scope' | sed 's/^/  | /'
fi
echo "$passed passed, $failed failed"
