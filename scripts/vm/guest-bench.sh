#!/bin/sh
# bench/run.sh's rows on the VM's pure cgroup v2 hierarchy (scripts/vm/run.sh HEZI bench): hezi,
# crun and runc run the same busybox bundle, each row one hyperfine run. Under QEMU's software
# emulation every time is many times the hardware's: compare the ratios, not the times.
# Prints `bench ROW RUNTIME MEAN_MS` lines.
B=/tmp/bench
mkdir -p $B/rootfs/bin
cp /bin/busybox $B/rootfs/bin/busybox
for l in true sleep; do ln -s busybox $B/rootfs/bin/$l; done
hezi spec --bundle $B
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"ociVersion": "1.2.0"/"ociVersion": "1.0.2"/' \
    -e 's|^\( *\)"sh"$|\1"/bin/true"|' $B/config.json
mkdir -p /tmp/sleeper
sed -e 's|"/bin/true"|"/bin/sleep", "600"|' -e "s|\"path\": \"rootfs\"|\"path\": \"$B/rootfs\"|" \
    $B/config.json > /tmp/sleeper/config.json
cmd() { echo "$1 --root /tmp/root-$1 $2"; }
rts=
for rt in hezi crun runc; do
    if out=$($(cmd $rt "run -b $B check") 2>&1); then rts="$rts $rt"; else echo "bench: left out $rt: $out"; fi
done
echo "guest: $(for rt in $rts; do $rt --version | head -n1; done | tr '\n' ';')"
row() { # row NAME RUNS PREPARE COMMAND, with @ for the runtime's name
    name=$1 runs=$2 prep=$3 what=$4
    set --
    for rt in $rts; do
        [ -n "$prep" ] && set -- "$@" --prepare "$(echo "$prep" | sed "s/@/$rt/g")"
        set -- "$@" -n $rt "$(echo "$what" | sed "s/@/$rt/g")"
    done
    hyperfine -N -w 2 -r "$runs" --export-csv /tmp/row.csv "$@" >/tmp/row.log 2>&1 ||
        echo "bench: row $name failed: $(grep -i -A3 error /tmp/row.log | tr '\n' ' ')"
    tail -n +2 /tmp/row.csv | awk -F, -v n="$name" '{ printf "bench %s %s %.2f\n", n, $1, $2 * 1000 }'
}
row run 30 "" "@ --root /tmp/root-@ run -b $B b1"
row create 20 "@ --root /tmp/root-@ delete -f b2" "@ --root /tmp/root-@ create -b $B b2"
row start 20 "sh -c '@ --root /tmp/root-@ delete -f b3; @ --root /tmp/root-@ create -b $B b3'" \
    "@ --root /tmp/root-@ start b3"
row delete 20 "sh -c '@ --root /tmp/root-@ create -b $B b4 && @ --root /tmp/root-@ start b4 && sleep 0.05'" \
    "@ --root /tmp/root-@ delete -f b4"
for rt in $rts; do $(cmd $rt "run -d -b /tmp/sleeper e") </dev/null >/dev/null 2>&1; done
row exec 30 "" "@ --root /tmp/root-@ exec e /bin/true"
for rt in $rts; do $(cmd $rt "delete -f e") >/dev/null 2>&1; done
hyperfine -N -w 2 -r 30 --export-csv /tmp/row.csv -n floor \
    "/usr/bin/unshare --fork --pid --mount --uts --ipc --net chroot $B/rootfs /bin/true" >/dev/null 2>&1
tail -n +2 /tmp/row.csv | awk -F, '{ printf "bench floor floor %.2f\n", $2 * 1000 }'
for rt in $rts; do
    /usr/bin/time -o /tmp/peak -f %M $(cmd $rt "create -b $B m") >/dev/null 2>&1
    $(cmd $rt "delete -f m") >/dev/null 2>&1
    echo "bench peak-rss-kib $rt $(tail -n1 /tmp/peak)"
done
echo "0 passed, 0 failed (bench)"
