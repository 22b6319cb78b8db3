#!/bin/sh
# Rootless containers in the cgroup v2 VM (busybox sh), sourced after lib.sh by guest-tests.sh
# (cgroupfs driver). An unprivileged user, uid RL_UID, runs hezi through util-linux's setpriv
# (/usr/bin/setpriv; busybox's cannot change ids) on bundles it made with `hezi spec --rootless`
# (its own uid mapped to root). The guest has no /etc/subuid: single-id maps only; the host's
# tests (tests/tests/rootless.rs) cover newuidmap ranges.

RL_UID=1500
RL_GID=1500
RL_RUN=/tmp/rl-run
RL_ROOT=$RL_RUN/hezi
RB=/tmp/rl-bundle

# `CMD ARGS...` as the user, with a clean environment and its runtime dir.
as_user() {
    /usr/bin/setpriv --reuid $RL_UID --regid $RL_GID --clear-groups -- \
        env -i PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=$RL_RUN XDG_RUNTIME_DIR=$RL_RUN "$@"
}

# hezi as the user, in its default root ($XDG_RUNTIME_DIR/hezi).
rl_hezi() {
    as_user hezi "$@"
}

rl_setup() {
    mkdir -p $RL_RUN
    chown $RL_UID:$RL_GID $RL_RUN
    chmod 700 $RL_RUN
}

# A bundle from `hezi spec --rootless` run as the user, without a terminal, running ARGS (JSON
# list items), with optional resources JSON and cgroupsPath. The rootfs belongs to root and is
# readable by all, as a system-wide image would be.
rl_bundle() {
    rm -rf $RB
    mkdir -p $RB
    chown $RL_UID:$RL_GID $RB
    cp -a /guest/rootfs $RB/rootfs
    as_user hezi spec --rootless --bundle $RB
    linux="\"resources\": ${2:-\{\}},"
    [ -n "$3" ] && linux="$linux \"cgroupsPath\": \"$3\","
    sed -i -e 's/"terminal": true/"terminal": false/' \
        -e "s|\"sh\"$|$1|" \
        -e "s|^  \"linux\": {|  \"linux\": {$linux|" $RB/config.json
}

rl_status() {
    rl_hezi state "$1" 2>/dev/null | grep '"status"' | sed 's/.*: "\(.*\)".*/\1/'
}

# Every process of the user, killed (what a failed test may leave).
rl_kill_leftovers() {
    for p in $(ps -o pid,user | awk -v u=$RL_UID '$2 == u {print $1}'); do
        kill -9 "$p" 2>/dev/null
    done
}

# A user who owns no cgroup: the container runs without one, said at debug level (runc's
# behaviour), and a limit that cannot be applied is an error that says why, leaving nothing.
t_rootless_without_a_cgroup() {
    rl_bundle '"sh", "-c", "id -u; cat /proc/self/uid_map"'
    out=$(rl_hezi --debug run -b $RB rl-nocg 2>/tmp/rl.err)
    rc=$?
    set -- $out
    if [ $rc = 0 ] && [ "$1 $2 $3 $4" = "0 0 $RL_UID 1" ]; then
        pass rootless_run_maps_user_to_root
    else
        fail rootless_run_maps_user_to_root "rc $rc, out '$out', $(tail -n 3 /tmp/rl.err)"
    fi
    grep -q "running without a cgroup" /tmp/rl.err && pass rootless_no_cgroup_debug_log \
        || fail rootless_no_cgroup_debug_log "$(grep -i cgroup /tmp/rl.err | tail -n 3)"
    [ -e $CG/hezi/rl-nocg ] && fail rootless_no_cgroup_made "$CG/hezi/rl-nocg exists" || pass rootless_no_cgroup_made

    rl_bundle '"true"' '{"pids": {"limit": 10}}'
    out=$(rl_hezi run -b $RB rl-limit 2>&1) && { fail rootless_limit_without_cgroup_refused "run succeeded"; return; }
    case "$out" in
        *"cannot apply linux.resources pids"*"may not make one"*) pass rootless_limit_without_cgroup_refused ;;
        *) fail rootless_limit_without_cgroup_refused "$out" ;;
    esac
    left="$(ls $RL_ROOT 2>/dev/null)$(ls -d $CG/hezi/rl-limit 2>/dev/null)"
    [ -z "$left" ] && pass rootless_refused_leaves_nothing || fail rootless_refused_leaves_nothing "$left"
}

# A cgroup v2 subtree delegated to the user as systemd's Delegate= makes one: the directory and
# its cgroup.procs, cgroup.subtree_control and cgroup.threads chowned, nothing else (so the
# limits of the delegated cgroup itself stay the administrator's). The user's commands start in
# a leaf of it (`shell`): a process may move another only within a subtree whose common
# ancestor's cgroup.procs it may write.
delegate() {
    dir=$CG/$1
    mkdir -p $dir
    for f in "" /cgroup.procs /cgroup.subtree_control /cgroup.threads; do
        chown $RL_UID:$RL_GID $dir$f
    done
}

t_rootless_delegated_cgroup() {
    delegate rl
    as_user mkdir $CG/rl/shell || { fail rootless_delegated "the user cannot mkdir in its cgroup"; return; }
    # The test shell itself moves there (as root) before dropping to the user, and back after.
    echo $$ > $CG/rl/shell/cgroup.procs
    rl_bundle '"sleep", "300"' '{"memory": {"limit": 33554432}, "pids": {"limit": 8}, "cpu": {"quota": 50000, "period": 100000, "shares": 512}}' /rl/rl-deleg
    dir=$CG/rl/rl-deleg
    # The init inherits run -d's stdio: a pipe of $(...) would hold the shell until it exits.
    if ! rl_hezi run -d -b $RB rl-deleg </dev/null >/dev/null 2>$RL_RUN/run.err; then
        fail rootless_delegated_run "$(cat $RL_RUN/run.err)"
        echo $$ > $CG/init/cgroup.procs
        return
    fi
    pid=$(rl_hezi state rl-deleg | grep '"pid"' | sed 's/[^0-9]//g')
    grep -qx "$pid" $dir/cgroup.procs 2>/dev/null && pass rootless_delegated_holds_init \
        || fail rootless_delegated_holds_init "pid $pid not in $dir/cgroup.procs"
    [ "$(stat -c %u $dir)" = $RL_UID ] && pass rootless_cgroup_owned_by_user \
        || fail rootless_cgroup_owned_by_user "$dir owned by $(stat -c %u $dir)"
    [ "$(cat $dir/memory.max)" = 33554432 ] && pass rootless_memory_max || fail rootless_memory_max "$(cat $dir/memory.max)"
    [ "$(cat $dir/pids.max)" = 8 ] && pass rootless_pids_max || fail rootless_pids_max "$(cat $dir/pids.max)"
    [ "$(cat $dir/cpu.max)" = "50000 100000" ] && pass rootless_cpu_max || fail rootless_cpu_max "$(cat $dir/cpu.max)"
    # shares 512 is cpu.weight 20 by runc's formula (1 + (512 - 2) * 9999 / 262142).
    [ "$(cat $dir/cpu.weight)" = 20 ] && pass rootless_cpu_weight || fail rootless_cpu_weight "$(cat $dir/cpu.weight)"

    # From inside: the container is the root of its cgroup namespace, forks past pids.max fail
    # and an allocation past memory.max is OOM-killed.
    out=$(rl_hezi exec rl-deleg cat /proc/self/cgroup 2>&1)
    [ "$out" = "0::/" ] && pass rootless_exec_in_cgroup || fail rootless_exec_in_cgroup "$out"
    out=$(rl_hezi exec rl-deleg sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; wait' 2>&1)
    case "$out" in *"can't fork"*) pass rootless_pids_enforced ;; *) fail rootless_pids_enforced "$out" ;; esac
    # Last of the execs: the sleeps that did start outlive the failed shell, and the init
    # (sleep) never reaps them, so pids.max stays reached.
    rl_hezi pause rl-deleg
    [ "$(rl_status rl-deleg)" = paused ] && grep -qx "frozen 1" $dir/cgroup.events && pass rootless_pause \
        || fail rootless_pause "status $(rl_status rl-deleg), $(grep frozen $dir/cgroup.events)"
    rl_hezi resume rl-deleg
    [ "$(rl_status rl-deleg)" = running ] && grep -qx "frozen 0" $dir/cgroup.events && pass rootless_resume \
        || fail rootless_resume "status $(rl_status rl-deleg), $(grep frozen $dir/cgroup.events)"
    ps_out=$(rl_hezi ps rl-deleg 2>&1)
    case "$ps_out" in *"sleep 300"*) pass rootless_ps_reads_cgroup ;; *) fail rootless_ps_reads_cgroup "$ps_out" ;; esac

    out=$(rl_hezi delete -f rl-deleg 2>&1) || fail rootless_delete "$out"
    [ -e $dir ] && fail rootless_delete_removes_cgroup "$dir left" || pass rootless_delete_removes_cgroup
    [ -e $RL_ROOT/rl-deleg ] && fail rootless_delete_removes_state "state left" || pass rootless_delete_removes_state
    # The delegated cgroup itself is the administrator's: it stays.
    [ -d $CG/rl ] && pass rootless_delegated_parent_kept || fail rootless_delegated_parent_kept "$CG/rl removed"

    # memory.max enforced: a container of its own, whose init outgrows it and is OOM-killed
    # (in rl-deleg the kernel may pick its init as the victim, which would end the tests above).
    rl_bundle '"sh", "-c", "x=$(head -c 60000000 /dev/urandom); echo survived"' '{"memory": {"limit": 33554432}}' /rl/rl-oom
    out=$(rl_hezi run -b $RB rl-oom </dev/null 2>&1)
    rc=$?
    case "$out" in
        *survived*) fail rootless_memory_enforced "no OOM kill" ;;
        *) [ $rc = 137 ] && pass rootless_memory_enforced || fail rootless_memory_enforced "rc $rc: $out" ;;
    esac
    [ -e $CG/rl/rl-oom ] && fail rootless_oom_container_removed "$CG/rl/rl-oom left" || pass rootless_oom_container_removed

    echo $$ > $CG/init/cgroup.procs
    rl_kill_leftovers
    rmdir $CG/rl/shell $CG/rl 2>/dev/null
}

# A delegated cgroup without the pids controller (its parent, the administrator's, gives it
# memory only): a pids limit cannot be applied there, which is an error naming the controller's
# file, and nothing is left behind (state, the container's cgroup, a process).
t_rootless_limit_the_delegated_cgroup_lacks() {
    mkdir -p $CG/rlp
    echo +memory > $CG/rlp/cgroup.subtree_control
    delegate rlp/rl2
    as_user mkdir $CG/rlp/rl2/shell || { fail rootless_missing_controller "the user cannot mkdir"; return; }
    echo $$ > $CG/rlp/rl2/shell/cgroup.procs
    rl_bundle '"sleep", "300"' '{"pids": {"limit": 8}}' /rlp/rl2/c
    rl_hezi run -d -b $RB rl-nopids </dev/null >/dev/null 2>$RL_RUN/run.err
    rc=$?
    out=$(cat $RL_RUN/run.err)
    echo $$ > $CG/init/cgroup.procs
    if [ $rc = 0 ]; then
        fail rootless_missing_controller "run succeeded; pids.max: $(cat $CG/rlp/rl2/c/pids.max 2>&1)"
        rl_hezi delete -f rl-nopids
    else
        case "$out" in *pids.max*) pass rootless_missing_controller ;; *) fail rootless_missing_controller "$out" ;; esac
    fi
    left="$(ls $RL_ROOT 2>/dev/null)$(ls -d $CG/rlp/rl2/c 2>/dev/null)$(cat $CG/rlp/rl2/shell/cgroup.procs)"
    [ -z "$left" ] && pass rootless_missing_controller_leaves_nothing || fail rootless_missing_controller_leaves_nothing "$left"
    rl_kill_leftovers
    rmdir $CG/rlp/rl2/shell $CG/rlp/rl2 $CG/rlp 2>/dev/null
}

rootless_tests() {
    rl_setup
    t_rootless_without_a_cgroup
    t_rootless_delegated_cgroup
    t_rootless_limit_the_delegated_cgroup_lacks
    [ -z "$(ls $RL_ROOT 2>/dev/null)" ] && pass rootless_no_state_left || fail rootless_no_state_left "$(ls $RL_ROOT)"
}
