#!/bin/sh
# The guest's checkpoint and restore tests (CRIU works on the VM's Debian kernel, not on the
# host's newer one). Sourced by guest-tests.sh after lib.sh; checkpoint_tests runs them all.

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

# Helpers of the tests below: a counter bundle (COUNTER_OUT: where its output goes inside the
# container), which joins the host's network namespace (CRIU 3.17 fails to dump a network
# namespace's links on this kernel: "Dumping netns links", EINVAL) and has a writable rootfs.
counter_bundle() {
    bundle "\"sh\", \"-c\", \"$1\""
    sed -i -e 's|"type": "network"|"type": "network", "path": "/proc/1/ns/net"|' \
        -e 's|"readonly": true|"readonly": false|' $B/config.json
}

# Wait until FILE holds a number of at least N (its last line; up to 20 s under emulation).
wait_count() {
    i=0
    while [ $i -lt 200 ]; do
        # (a terminal ends its lines with \r\n)
        n=$(tail -n1 "$1" 2>/dev/null | tr -d '\r')
        [ "${n:-0}" -ge "$2" ] 2>/dev/null && return 0
        i=$((i + 1))
        sleep 0.1
    done
    return 1
}

need_criu() {
    [ "$criu_ok" = yes ] && return 0
    fail "$1" "criu check failed (see criu_check)"
    return 1
}

# The init's stdio is the caller's: stdin the host's /dev/null (a file on a mount the container
# cannot see), stdout and stderr a pipe to a reader, as a shell or a shim gives them. Restore
# hands the restoring caller's own stdio in their place (inherit_fd): the restored counter
# writes on into the new reader's pipe, from where it stopped.
t_checkpoint_stdio() {
    need_criu checkpoint_stdio || return
    counter_bundle 'i=0; while true; do i=\$((i+1)); echo \$i; sleep 0.1; done'
    rm -f /tmp/cio.out1 /tmp/cio.out2
    (hezi --root $ROOT run -d -b $B cio </dev/null 2>&1 | cat > /tmp/cio.out1) &
    reader=$!
    wait_count /tmp/cio.out1 10 || { fail checkpoint_stdio "no count in the pipe: $(head -c 300 /tmp/cio.out1)"; hezi --root $ROOT delete -f cio; return; }
    out=$(hezi --root $ROOT checkpoint --image-path /tmp/cio-img cio 2>&1) || {
        fail checkpoint_stdio "$out; $(cat /tmp/cio-img/*descriptors.json); $(grep -B8 -m1 Error /tmp/cio-img/dump.log)"
        hezi --root $ROOT delete -f cio
        return
    }
    pass checkpoint_stdio
    wait $reader
    last=$(tail -n1 /tmp/cio.out1)
    (hezi --root $ROOT restore -d --image-path /tmp/cio-img -b $B cio </dev/null 2>&1 | cat > /tmp/cio.out2) &
    reader=$!
    sleep 0.5
    if wait_count /tmp/cio.out2 $((last + 5)); then
        pass restore_stdio_new_pipe
    else
        fail restore_stdio_new_pipe "count $last at the dump; after restore the new pipe had: $(head -c 300 /tmp/cio.out2); $(grep -B8 -m1 Error /tmp/cio-img/restore.log)"
    fi
    first=$(head -n1 /tmp/cio.out2)
    # From memory: the first number after restore follows the last before (a fresh start says 1).
    [ "$first" -gt 5 ] 2>/dev/null && pass restore_stdio_continues || fail restore_stdio_continues "first line after restore: $first (count $last at the dump)"
    echo "  (count $last at the dump, first after restore $first)"
    pid=$(hezi --root $ROOT state cio 2>/dev/null | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
    in0=$(readlink /proc/$pid/fd/0)
    [ "$in0" = /dev/null ] && pass restore_stdio_stdin || fail restore_stdio_stdin "fd 0 of the restored init: $in0"
    hezi --root $ROOT delete -f cio
    wait $reader
}

# Restore under a new id: state, cgroup and delete are the new id's; nothing of the old one.
t_checkpoint_new_id() {
    need_criu checkpoint_new_id || return
    counter_bundle 'exec </dev/null >/dev/null 2>\&1; i=0; while true; do i=\$((i+1)); echo \$i > /count.new; mv /count.new /count; sleep 0.1; done'
    hezi --root $ROOT run -d -b $B cn1 </dev/null >/dev/null 2>&1 || { fail checkpoint_new_id "run -d failed"; return; }
    wait_count $B/rootfs/count 10
    out=$(hezi --root $ROOT checkpoint --image-path /tmp/cn-img cn1 2>&1) || { fail checkpoint_new_id "$out"; hezi --root $ROOT delete -f cn1; return; }
    at=$(cat $B/rootfs/count)
    out=$(hezi --root $ROOT restore -d --image-path /tmp/cn-img -b $B cn2 2>&1) || {
        fail restore_new_id "$out; $(grep -B8 -m1 Error /tmp/cn-img/restore.log)"
        return
    }
    st=$(status_of cn2)
    pid=$(hezi --root $ROOT state cn2 2>/dev/null | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
    if [ "$st" = running ] && [ -e $ROOT/cn2 ] && [ ! -e $ROOT/cn1 ]; then
        pass restore_new_id
    else
        fail restore_new_id "status $st; state dirs: $(ls $ROOT)"
    fi
    if grep -qx "$pid" $CG/hezi/cn2/cgroup.procs 2>/dev/null && [ ! -e $CG/hezi/cn1 ]; then
        pass restore_new_id_cgroup
    else
        fail restore_new_id_cgroup "init $pid: $(cat /proc/$pid/cgroup 2>&1); /hezi has $(ls $CG/hezi 2>&1)"
    fi
    sleep 1
    now=$(cat $B/rootfs/count)
    [ "$now" -gt "$at" ] && pass restore_new_id_continues || fail restore_new_id_continues "count $at at the dump, $now after"
    hezi --root $ROOT delete -f cn2
    [ -e $CG/hezi/cn2 ] || [ -e $ROOT/cn2 ] && fail restore_new_id_deleted "left: $(ls $CG/hezi $ROOT 2>&1)" || pass restore_new_id_deleted
}

# A pre-dump copies the memory while the container runs on; the dump after it names it as its
# parent and writes only what changed; restore reads both.
t_checkpoint_pre_dump() {
    need_criu checkpoint_pre_dump || return
    counter_bundle 'exec </dev/null >/dev/null 2>\&1; i=0; while true; do i=\$((i+1)); echo \$i > /count.new; mv /count.new /count; sleep 0.1; done'
    hezi --root $ROOT run -d -b $B cpd </dev/null >/dev/null 2>&1 || { fail checkpoint_pre_dump "run -d failed"; return; }
    wait_count $B/rootfs/count 10
    rm -rf /tmp/cpd
    out=$(hezi --root $ROOT checkpoint --pre-dump --image-path /tmp/cpd/pre cpd 2>&1) || {
        fail checkpoint_pre_dump "$out; $(grep -B8 -m1 Error /tmp/cpd/pre/pre-dump.log)"
        hezi --root $ROOT delete -f cpd
        return
    }
    at=$(cat $B/rootfs/count)
    sleep 0.5
    if [ "$(status_of cpd)" = running ] && [ "$(cat $B/rootfs/count)" -gt "$at" ] && ls /tmp/cpd/pre/pages-*.img >/dev/null 2>&1; then
        pass checkpoint_pre_dump
    else
        fail checkpoint_pre_dump "status $(status_of cpd), count $at then $(cat $B/rootfs/count); image: $(ls /tmp/cpd/pre)"
    fi
    out=$(hezi --root $ROOT checkpoint --parent-path ../pre --image-path /tmp/cpd/dump cpd 2>&1) || {
        fail checkpoint_after_pre_dump "$out; $(grep -B8 -m1 Error /tmp/cpd/dump/dump.log)"
        hezi --root $ROOT delete -f cpd
        return
    }
    [ -L /tmp/cpd/dump/parent ] && pass checkpoint_after_pre_dump || fail checkpoint_after_pre_dump "no parent link: $(ls /tmp/cpd/dump)"
    at=$(cat $B/rootfs/count)
    out=$(hezi --root $ROOT restore -d --image-path /tmp/cpd/dump -b $B cpd 2>&1) || {
        fail restore_after_pre_dump "$out; $(grep -B8 -m1 Error /tmp/cpd/dump/restore.log)"
        return
    }
    sleep 1
    now=$(cat $B/rootfs/count)
    [ "$now" -gt "$at" ] && pass restore_after_pre_dump || fail restore_after_pre_dump "count $at at the dump, $now after"
    hezi --root $ROOT delete -f cpd
    # A parent that is not there is refused before CRIU runs, and nothing is made.
    out=$(hezi --root $ROOT checkpoint --parent-path ../nothing --image-path /tmp/cpd/none cpd 2>&1)
    case "$out" in *"does not exist"*|*"no pre-dump"*) pass checkpoint_bad_parent ;; *) fail checkpoint_bad_parent "$out" ;; esac
}

# An open TCP connection (both ends in the container, on the host's loopback): refused without
# --tcp-established (the container keeps running), carried across with it.
t_checkpoint_tcp() {
    need_criu checkpoint_tcp || return
    # busybox's small nc copies only its first line from a pipe; with -e the program's stdio is
    # the socket.
    counter_bundle 'exec </dev/null >/dev/null 2>\&1; nc -l -p 5501 -e sh /server.sh \& sleep 1; exec nc 127.0.0.1 5501 -e sh /client.sh'
    echo 'i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done' > $B/rootfs/client.sh
    echo 'while read -r l; do echo "$l" >> /recv; done' > $B/rootfs/server.sh
    rm -f $B/rootfs/recv
    hezi --root $ROOT run -d -b $B ctcp </dev/null >/dev/null 2>&1 || { fail checkpoint_tcp "run -d failed"; return; }
    wait_count $B/rootfs/recv 10 || { fail checkpoint_tcp "nothing came over the connection"; hezi --root $ROOT delete -f ctcp; return; }
    out=$(hezi --root $ROOT checkpoint --image-path /tmp/ctcp-img0 ctcp 2>&1)
    if [ $? != 0 ] && [ "$(status_of ctcp)" = running ]; then
        pass checkpoint_tcp_refused_without_flag
    else
        fail checkpoint_tcp_refused_without_flag "rc 0 or stopped ($(status_of ctcp)): $out"
    fi
    out=$(hezi --root $ROOT checkpoint --tcp-established --image-path /tmp/ctcp-img ctcp 2>&1) || {
        fail checkpoint_tcp "$out; $(grep -B8 -m1 Error /tmp/ctcp-img/dump.log)"
        hezi --root $ROOT delete -f ctcp
        return
    }
    pass checkpoint_tcp
    at=$(tail -n1 $B/rootfs/recv)
    out=$(hezi --root $ROOT restore -d --tcp-established --image-path /tmp/ctcp-img -b $B ctcp 2>&1) || {
        fail restore_tcp "$out; $(grep -B8 -m1 Error /tmp/ctcp-img/restore.log)"
        return
    }
    if wait_count $B/rootfs/recv $((at + 10)); then
        pass restore_tcp_connection_lives
    else
        fail restore_tcp_connection_lives "last line $at at the dump, $(tail -n1 $B/rootfs/recv) after"
        echo "  status $(status_of ctcp); $(hezi --root $ROOT ps ctcp)"
        grep -iE 'lock|nft' /tmp/ctcp-img/restore.log /tmp/ctcp-img/dump.log | tail -n 8
    fi
    hezi --root $ROOT delete -f ctcp
}

# A migration's page server: the dump sends the memory to `criu page-server` (here on
# loopback) and writes the rest to its image directory; the two together restore.
t_checkpoint_page_server() {
    need_criu checkpoint_page_server || return
    counter_bundle 'exec </dev/null >/dev/null 2>\&1; i=0; while true; do i=\$((i+1)); echo \$i > /count.new; mv /count.new /count; sleep 0.1; done'
    hezi --root $ROOT run -d -b $B cps </dev/null >/dev/null 2>&1 || { fail checkpoint_page_server "run -d failed"; return; }
    wait_count $B/rootfs/count 10
    rm -rf /tmp/cps-pages /tmp/cps-dump
    mkdir -p /tmp/cps-pages
    criu page-server --images-dir /tmp/cps-pages --address 127.0.0.1 --port 27027 -o ps.log &
    ps_pid=$!
    sleep 1
    out=$(hezi --root $ROOT checkpoint --page-server 127.0.0.1:27027 --image-path /tmp/cps-dump cps 2>&1) || {
        fail checkpoint_page_server "$out; $(grep -B8 -m1 Error /tmp/cps-dump/dump.log)"
        kill $ps_pid; hezi --root $ROOT delete -f cps
        return
    }
    wait $ps_pid
    if ls /tmp/cps-pages/pages-*.img >/dev/null 2>&1 && ! ls /tmp/cps-dump/pages-*.img >/dev/null 2>&1; then
        pass checkpoint_page_server
    else
        fail checkpoint_page_server "pages at the server: $(ls /tmp/cps-pages); in the dump: $(ls /tmp/cps-dump)"
    fi
    at=$(cat $B/rootfs/count)
    cp -n /tmp/cps-dump/* /tmp/cps-pages/
    out=$(hezi --root $ROOT restore -d --image-path /tmp/cps-pages -b $B cps 2>&1) || {
        fail restore_page_server "$out; $(grep -B8 -m1 Error /tmp/cps-pages/restore.log)"
        return
    }
    sleep 1
    now=$(cat $B/rootfs/count)
    [ "$now" -gt "$at" ] && pass restore_page_server || fail restore_page_server "count $at at the dump, $now after"
    hezi --root $ROOT delete -f cps
}

# Lazy migration: the dump writes all but the memory and serves that from its page server
# (`--status-fd` says when it is up); a restore with --lazy-pages, beside `criu lazy-pages`
# fetching from that server, runs on while the pages arrive as they are touched; the dump
# returns once they all have. Restored under a new id: the dumped one is deleted only then.
t_checkpoint_lazy_pages() {
    need_criu checkpoint_lazy_pages || return
    counter_bundle 'exec </dev/null >/dev/null 2>\&1; i=0; while true; do i=\$((i+1)); echo \$i > /count.new; mv /count.new /count; sleep 0.1; done'
    hezi --root $ROOT run -d -b $B clz </dev/null >/dev/null 2>&1 || { fail checkpoint_lazy_pages "run -d failed"; return; }
    wait_count $B/rootfs/count 10
    rm -rf /tmp/clz-img /tmp/clz.status
    hezi --root $ROOT checkpoint --lazy-pages --page-server 127.0.0.1:27028 --status-fd 3 \
        --image-path /tmp/clz-img clz 3>/tmp/clz.status >/tmp/clz.dump.out 2>&1 &
    dump=$!
    i=0; while [ ! -s /tmp/clz.status ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.1; done
    if [ ! -s /tmp/clz.status ]; then
        fail checkpoint_lazy_pages "no status byte: $(cat /tmp/clz.dump.out); $(grep -B8 -m1 Error /tmp/clz-img/dump.log)"
        kill $dump; hezi --root $ROOT delete -f clz
        return
    fi
    pass checkpoint_lazy_pages_status_fd
    at=$(cat $B/rootfs/count)
    criu lazy-pages --page-server --address 127.0.0.1 --port 27028 -D /tmp/clz-img -o lazy.log &
    lazy=$!
    sleep 0.5
    out=$(hezi --root $ROOT restore -d --lazy-pages --image-path /tmp/clz-img -b $B clz2 2>&1) || {
        fail restore_lazy_pages "$out; $(grep -B8 -m1 Error /tmp/clz-img/restore.log /tmp/clz-img/lazy.log)"
        kill $dump $lazy; hezi --root $ROOT delete -f clz
        return
    }
    wait $dump && pass checkpoint_lazy_pages || fail checkpoint_lazy_pages "$(cat /tmp/clz.dump.out)"
    wait $lazy
    sleep 1
    now=$(cat $B/rootfs/count)
    [ "$now" -gt "$at" ] && [ "$(status_of clz2)" = running ] && [ ! -e $ROOT/clz ] && pass restore_lazy_pages \
        || fail restore_lazy_pages "count $at at the dump, $now after; clz2 $(status_of clz2); $(ls $ROOT)"
    hezi --root $ROOT delete -f clz2
}

# A container with a terminal (its pty master held by recvtty on the console socket, outside
# the dumped tree): CRIU dumps the slave alone, makes a new pty pair on restore and passes its
# master back, which restore sends to the new --console-socket; the counter goes on there.
t_checkpoint_terminal() {
    need_criu checkpoint_terminal || return
    command -v recvtty >/dev/null || { fail checkpoint_terminal "recvtty (hezi's example) is not in the initramfs"; return; }
    counter_bundle 'i=0; while true; do i=\$((i+1)); echo \$i; sleep 0.1; done'
    sed -i 's/"terminal": false/"terminal": true/' $B/config.json
    rm -f /tmp/tty1.sock /tmp/tty2.sock /tmp/tty.out1 /tmp/tty.out2
    recvtty /tmp/tty1.sock > /tmp/tty.out1 &
    r1=$!
    i=0; while [ ! -S /tmp/tty1.sock ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
    out=$(hezi --root $ROOT run -d --console-socket /tmp/tty1.sock -b $B ctty </dev/null 2>&1) \
        || { fail checkpoint_terminal "run -d: $out"; kill $r1; return; }
    wait_count /tmp/tty.out1 10 || { fail checkpoint_terminal "no count on the terminal: $(head -c 200 /tmp/tty.out1)"; hezi --root $ROOT delete -f ctty; return; }
    out=$(hezi --root $ROOT checkpoint --image-path /tmp/ctty-img ctty 2>&1) || {
        fail checkpoint_terminal "$out; $(grep -B8 -m1 Error /tmp/ctty-img/dump.log)"
        hezi --root $ROOT delete -f ctty
        return
    }
    pass checkpoint_terminal
    wait $r1
    last=$(tail -n1 /tmp/tty.out1 | tr -d '\r')
    recvtty /tmp/tty2.sock > /tmp/tty.out2 &
    r2=$!
    i=0; while [ ! -S /tmp/tty2.sock ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
    out=$(hezi --root $ROOT restore -d --console-socket /tmp/tty2.sock --image-path /tmp/ctty-img -b $B ctty 2>&1) || {
        fail restore_terminal "$out; $(grep -B8 -m1 Error /tmp/ctty-img/restore.log)"
        kill $r2
        return
    }
    if wait_count /tmp/tty.out2 $((last + 5)); then
        first=$(head -n1 /tmp/tty.out2 | tr -d '\r')
        [ "$first" -gt 5 ] 2>/dev/null && pass restore_terminal || fail restore_terminal "first line $first after restore, count $last at the dump"
        echo "  (count $last at the dump, $first first on the new terminal)"
    else
        fail restore_terminal "count $last at the dump; the new terminal: $(head -c 200 /tmp/tty.out2)"
    fi
    # Without a console socket the restored terminal has nowhere to go: refused, nothing left.
    hezi --root $ROOT delete -f ctty
    wait $r2
    out=$(hezi --root $ROOT restore -d --image-path /tmp/ctty-img -b $B ctty 2>&1)
    case "$out" in *console-socket*) pass restore_terminal_needs_console_socket ;; *) fail restore_terminal_needs_console_socket "$out" ;; esac
    [ -e $ROOT/ctty ] || [ -e $CG/hezi/ctty ] && fail restore_terminal_refusal_leaves_nothing "$(ls $ROOT $CG/hezi 2>&1)" || pass restore_terminal_refusal_leaves_nothing
}

# A shim's Checkpoint and restore, driven over its task API by shimctl (no containerd in the
# VM): the counter's stdout goes to a fifo (as ctr and CRI give it) read into a file; it is
# checkpointed with `exit`, and a Create naming the checkpoint then Start restore it, writing on
# into a new fifo from where it stopped. (containerd 1.6's runc shim crashes on a file:// stdout
# without stderr, so no log URI here.) $1: the test's name; $2: the shim binary; $3: shimctl's create flags; $4: where the
# shim keeps hezi's state.
shim_checkpoint_round() {
    name=$1 shim=$2 flags=$3 root=$4
    if ! command -v $shim >/dev/null || ! command -v shimctl >/dev/null; then
        fail $name "$shim or shimctl is not in the initramfs"
        return
    fi
    counter_bundle 'i=0; while true; do i=\$((i+1)); echo \$i; sleep 0.1; done'
    if [ "$5" = terminal ]; then
        sed -i 's/"terminal": false/"terminal": true/' $B/config.json
        flags="$flags --terminal"
    fi
    rm -rf /tmp/$name.out1 /tmp/$name.out2 /tmp/$name.fifo1 /tmp/$name.fifo2 /tmp/$name-img
    # containerd's shims log to a fifo named log in the bundle, which containerd reads.
    mkfifo $B/log
    cat $B/log > /tmp/$name.shim.log &
    a=$(cd $B && $shim -namespace vm -address /run/vm.sock -publish-binary /bin/true -id $name start </dev/null) \
        || { fail $name "shim start failed"; return; }
    mkfifo /tmp/$name.fifo1 /tmp/$name.fifo2
    cat /tmp/$name.fifo1 > /tmp/$name.out1 &
    cat /tmp/$name.fifo2 > /tmp/$name.out2 &
    out=$(shimctl $a create $name $B --stdout /tmp/$name.fifo1 --stderr /tmp/$name.fifo1 $flags 2>&1 && shimctl $a start $name 2>&1) \
        || { fail $name "create/start failed: $out; $(grep -a -m1 -A6 panic /tmp/$name.shim.log)"; shimctl $a shutdown; return; }
    wait_count /tmp/$name.out1 10 || { fail $name "no count in the log: $(head -c 200 /tmp/$name.out1)"; }
    out=$(shimctl $a checkpoint $name /tmp/$name-img --exit 2>&1) || {
        fail ${name}_checkpoint "$out; $(grep -B8 -m1 Error /tmp/$name-img/dump.log $B/criu-dump.log 2>/dev/null)"
        shimctl $a kill $name 9; shimctl $a wait $name >/dev/null; shimctl $a delete $name; shimctl $a shutdown
        return
    }
    st=$(shimctl $a wait $name)
    [ -n "$st" ] && [ "$st" != 0 ] && pass ${name}_checkpoint_exits || fail ${name}_checkpoint_exits "wait said $st"
    shimctl $a delete $name || fail ${name}_delete "delete after the checkpoint failed"
    last=$(tail -n1 /tmp/$name.out1 | tr -d '\r')
    pid=$(shimctl $a create $name $B --stdout /tmp/$name.fifo2 --stderr /tmp/$name.fifo2 --checkpoint /tmp/$name-img $flags) \
        || { fail ${name}_restore "create with the checkpoint failed"; shimctl $a shutdown; return; }
    out=$(shimctl $a start $name 2>&1) || {
        fail ${name}_restore "$out; $(grep -B8 -m1 Error /tmp/$name-img/restore.log 2>/dev/null)"
        shimctl $a delete $name; shimctl $a shutdown
        return
    }
    if wait_count /tmp/$name.out2 $((last + 5)); then
        first=$(head -n1 /tmp/$name.out2 | tr -d '\r')
        [ "$first" -gt 5 ] 2>/dev/null && pass ${name}_restore || fail ${name}_restore "first line after restore $first, count $last at the dump; $(head -n3 /tmp/$name.out2); $(grep -a -i nft /tmp/$name-img/restore.log | head -5)"
        echo "  (count $last at the dump, $first first after restore)"
    else
        fail ${name}_restore "count $last at the dump; the new log: $(head -c 200 /tmp/$name.out2)"
    fi
    [ "$(hezi --root $root state $name 2>/dev/null | grep '"status"' | sed 's/.*: "\(.*\)".*/\1/')" = running ] \
        && pass ${name}_restored_state || fail ${name}_restored_state "$(hezi --root $root state $name 2>&1)"
    shimctl $a kill $name 9
    shimctl $a wait $name >/dev/null
    shimctl $a delete $name || fail ${name}_delete "delete after restore failed"
    shimctl $a shutdown
    left=$(ls $root 2>/dev/null)
    [ -z "$left" ] && pass ${name}_no_state_left || fail ${name}_no_state_left "$left"
}

t_checkpoint_hezi_shim() {
    need_criu checkpoint_hezi_shim || return
    shim_checkpoint_round hezishim containerd-shim-hezi-v2 "" /run/containerd/hezi/vm
    shim_checkpoint_round hezishimtty containerd-shim-hezi-v2 "" /run/containerd/hezi/vm terminal
}

# containerd 1.6's runc shim with hezi as its BinaryName (what containerd's and podman's users
# configure): it runs `hezi checkpoint` and `hezi restore --detach --pid-file --no-subreaper`.
t_checkpoint_runc_shim() {
    need_criu checkpoint_runc_shim || return
    export SHIMCTL_SERVICE=containerd.task.v2.Task
    shim_checkpoint_round runcshim containerd-shim-runc-v2 "--binary hezi" /run/containerd/runc/vm
    shim_checkpoint_round runcshimtty containerd-shim-runc-v2 "--binary hezi" /run/containerd/runc/vm terminal
    unset SHIMCTL_SERVICE
}

# podman with hezi as its runtime (`--runtime /bin/hezi`, conmon, vfs storage, the host's
# network: CRIU 3.17 cannot dump a network namespace on this kernel, "Dumping netns links"):
# `container checkpoint` and `restore` in place, then through `--export`/`--import` into a
# fresh container; the counter's log goes on from where it stopped each time.
t_checkpoint_podman() {
    need_criu checkpoint_podman || return
    if ! command -v podman >/dev/null || ! command -v conmon >/dev/null; then
        fail checkpoint_podman "podman or conmon is not in the initramfs"
        return
    fi
    rm -rf /tmp/pm
    mkdir -p /tmp/pm /dev/shm /var/tmp
    # podman keeps its locks in POSIX shared memory.
    grep -q " /dev/shm " /proc/mounts || mount -t tmpfs -o mode=1777 shm /dev/shm
    printf '[engine]\nruntime_supports_json = ["hezi"]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n' > /tmp/pm/containers.conf
    pm() {
        CONTAINERS_CONF=/tmp/pm/containers.conf podman --root /tmp/pm/storage --runroot /tmp/pm/run \
            --tmpdir /tmp/pm/tmp --storage-driver vfs --cgroup-manager cgroupfs --events-backend file \
            --runtime /bin/hezi "$@"
    }
    tar -C /guest/rootfs -cf /tmp/pm/rootfs.tar .
    out=$(pm import /tmp/pm/rootfs.tar localhost/counter 2>&1) || { fail checkpoint_podman "podman import: $out"; return; }
    out=$(pm run -d --name pc --network host localhost/counter sh -c 'i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done' 2>&1) \
        || { fail checkpoint_podman "podman run: $out"; return; }
    pm_count() { pm logs pc 2>/dev/null | tail -n1; }
    i=0; while [ "$(pm_count)" -lt 10 ] 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.2; done
    out=$(pm container checkpoint pc 2>&1) || {
        fail checkpoint_podman "$out; $(grep -B5 -m1 Error /tmp/pm/storage/vfs-containers/*/userdata/dump.log)"
        pm rm -f pc >/dev/null 2>&1
        return
    }
    at=$(pm_count)
    out=$(pm container restore pc 2>&1) || {
        fail restore_podman "$out; $(grep -B5 -m1 Error /tmp/pm/storage/vfs-containers/*/userdata/restore.log)"
        pm rm -f pc >/dev/null 2>&1
        return
    }
    i=0; while [ "$(pm_count)" -lt $((at + 5)) ] 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.2; done
    # The log's numbers run on without a restart at 1.
    if [ "$(pm_count)" -ge $((at + 5)) ] && [ "$(pm logs pc | grep -cx 1)" = 1 ]; then
        pass podman_checkpoint_restore
    else
        fail podman_checkpoint_restore "count $at at the checkpoint, $(pm_count) now; ones: $(pm logs pc | grep -cx 1)"
    fi
    out=$(pm container checkpoint --export /tmp/pm/pc.tar.gz pc 2>&1 && pm rm -f pc 2>&1 && pm container restore --import /tmp/pm/pc.tar.gz 2>&1) || {
        fail podman_export_import "$out; $(grep -B5 -m1 Error /tmp/pm/storage/vfs-containers/*/userdata/restore.log)"
        pm rm -f pc >/dev/null 2>&1
        return
    }
    out=$(pm exec pc cat /proc/1/cmdline 2>&1)
    case "$out" in *"while true"*) pass podman_export_import ;; *) fail podman_export_import "$out" ;; esac
    pm rm -f -t 0 pc >/dev/null 2>&1
    [ -z "$(hezi list -q 2>/dev/null)" ] && pass podman_no_state_left || fail podman_no_state_left "$(hezi list)"
}

# The tests `selected` (guest-tests.sh) picks, after criu check once.
checkpoint_tests() {
    for t in t_checkpoint_restore t_checkpoint_restore_readonly t_checkpoint_stdio t_checkpoint_new_id \
        t_checkpoint_pre_dump t_checkpoint_tcp t_checkpoint_page_server \
        t_checkpoint_lazy_pages t_checkpoint_terminal t_checkpoint_hezi_shim \
        t_checkpoint_runc_shim t_checkpoint_podman; do
        selected $t || continue
        [ -n "$criu_checked" ] || { criu_checked=1; t_criu_check; }
        $t
    done
}
