#!/usr/bin/env bash
# hezi's benchmarks against crun and runc, each comparison in one hyperfine run, with ratios.
# usage: [CRUN=/path/to/crun] [CRUN2=...] [HEZI=...] [RUNC=...] bench/run.sh [OUT.md]   (root)
# CRUN picks the crun to compare with (a newer one built elsewhere); the distribution's by default.
# CRUN2 adds a second crun column (the distribution's beside a newer one). HEZI runs a hezi
# binary built elsewhere (a machine without cargo); by default scripts/build-release.sh builds
# it. BENCH_JSON=DIR keeps hyperfine's results there. The table needs python3.
#
# crun 1.8 refuses a hybrid cgroup host while the v2 mount holds a controller (hugetlb here):
# scripts/hugetlb-v1.sh binds it to a v1 hierarchy for the run, the one host change allowed,
# and gives it back at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/dev/stdout}
if [ -n "${HEZI:-}" ]; then
    hezi=$(realpath "$HEZI")
else
    bash scripts/build-release.sh -q
    hezi=$PWD/target/release/hezi
fi
runtimes=(hezi crun runc)
[ -n "${CRUN2:-}" ] && runtimes=(hezi crun crun2 runc)
work=$(mktemp -d /tmp/hezi-bench.XXXXXX)
mounted_hugetlb=
cleanup() {
    for rt in "${runtimes[@]}"; do
        for id in $("$(rt_bin $rt)" --root "$work/root-$rt" list -q 2>/dev/null); do
            "$(rt_bin $rt)" --root "$work/root-$rt" delete -f "$id" >/dev/null 2>&1 || true
        done
    done
    if [ -n "$mounted_hugetlb" ]; then bash scripts/hugetlb-v1.sh release; fi
    rm -rf "$work"
}
rt_bin() {
    case $1 in
        hezi) echo "$hezi" ;;
        crun) echo "${CRUN:-$(command -v crun)}" ;;
        crun2) echo "$CRUN2" ;;
        runc) echo "${RUNC:-$(command -v runc)}" ;;
    esac
}
trap cleanup EXIT

if [ "$(bash scripts/hugetlb-v1.sh bind)" = bound ]; then mounted_hugetlb=1; fi

# One bundle: busybox-static running /bin/true, ociVersion 1.0.2 (crun 1.8 reads up to 1.1).
bundle=$work/bundle
mkdir -p "$bundle/rootfs/bin"
cp "${BUSYBOX:-/bin/busybox}" "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
ln -s busybox "$bundle/rootfs/bin/sh"
"$hezi" spec --bundle "$bundle"
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"ociVersion": "1.2.0"/"ociVersion": "1.0.2"/' \
    -e 's|^\( *\)"sh"$|\1"/bin/true"|' "$bundle/config.json"

cmd() { echo "$(rt_bin "$1") --root $work/root-$1 $2"; }

# A runtime that cannot run the bundle on this host is left out, saying why; hezi may not be.
working=()
for rt in "${runtimes[@]}"; do
    if why=$($(cmd "$rt" "run -b $bundle check-$rt") 2>&1 </dev/null); then
        working+=("$rt")
    elif [ "$rt" = hezi ]; then
        echo "bench: hezi cannot run the bundle here: $why" >&2
        exit 1
    else
        echo "bench: left out $rt ($(rt_bin "$rt")), which cannot run the bundle here: $why" >&2
    fi
done
runtimes=("${working[@]}")
json=${BENCH_JSON:-$work/json}
mkdir -p "$json"

# 1. run of /bin/true: create, start, wait, delete.
args=()
for rt in "${runtimes[@]}"; do args+=(-n "$rt" "$(cmd "$rt" "run -b $bundle b1-$rt")"); done
hyperfine -N -w 10 -r 100 --export-json "$json/run.json" "${args[@]}" >&2

# 2. create, start and delete on their own.
args=()
for rt in "${runtimes[@]}"; do
    args+=(-n "$rt" --prepare "$(cmd "$rt" "delete -f b2-$rt")" "$(cmd "$rt" "create -b $bundle b2-$rt")")
done
hyperfine -N -w 5 -r 60 --export-json "$json/create.json" "${args[@]}" >&2
args=()
for rt in "${runtimes[@]}"; do
    args+=(-n "$rt" --prepare "sh -c '$(cmd "$rt" "delete -f b3-$rt") && $(cmd "$rt" "create -b $bundle b3-$rt")'"
        "$(cmd "$rt" "start b3-$rt")")
done
hyperfine -N -w 5 -r 60 --export-json "$json/start.json" "${args[@]}" >&2
args=()
for rt in "${runtimes[@]}"; do
    args+=(-n "$rt" --prepare "sh -c '$(cmd "$rt" "create -b $bundle b4-$rt") && $(cmd "$rt" "start b4-$rt") && sleep 0.05'"
        "$(cmd "$rt" "delete -f b4-$rt")")
done
hyperfine -N -w 5 -r 60 --export-json "$json/delete.json" "${args[@]}" >&2

# 2b. The same run, and exec into a running container, after 100 ms of quiet each: a start that
# does not follow another one closely, where the kernel's cgroup migration lock waits for an
# RCU grace period (cgroups/join.rs); back-to-back runs above mostly find it already open.
args=()
for rt in "${runtimes[@]}"; do args+=(-n "$rt" --prepare "sleep 0.1" "$(cmd "$rt" "run -b $bundle i1-$rt")"); done
hyperfine -N -w 3 -r 40 --export-json "$json/run-idle.json" "${args[@]}" >&2
sleeper=$work/sleeper
mkdir -p "$sleeper"
ln -s busybox "$bundle/rootfs/bin/sleep"
# The same rootfs by its absolute path (runc refuses a rootfs that is a symlink).
sed -e 's|"/bin/true"|"/bin/sleep", "600"|' -e "s|\"path\": \"rootfs\"|\"path\": \"$bundle/rootfs\"|" \
    "$bundle/config.json" >"$sleeper/config.json"
for rt in "${runtimes[@]}"; do $(cmd "$rt" "run -d -b $sleeper e-$rt") </dev/null >/dev/null 2>&1; done
args=()
for rt in "${runtimes[@]}"; do args+=(-n "$rt" "$(cmd "$rt" "exec e-$rt /bin/true")"); done
hyperfine -N -w 5 -r 60 --export-json "$json/exec.json" "${args[@]}" >&2
args=()
for rt in "${runtimes[@]}"; do args+=(-n "$rt" --prepare "sleep 0.1" "$(cmd "$rt" "exec e-$rt /bin/true")"); done
hyperfine -N -w 3 -r 40 --export-json "$json/exec-idle.json" "${args[@]}" >&2
for rt in "${runtimes[@]}"; do $(cmd "$rt" "delete -f e-$rt") >/dev/null 2>&1; done

# The kernel's floor for the same work without cgroups, mounts or state: new namespaces, a
# chroot, /bin/true.
hyperfine -N -w 5 -r 80 --export-json "$json/floor.json" -n floor \
    "unshare --fork --pid --mount --uts --ipc --net chroot $bundle/rootfs /bin/true" >&2

# 3. 100 containers one after another; 4. 50 at once.
args=()
for rt in "${runtimes[@]}"; do
    args+=(-n "$rt" "sh -c 'for i in \$(seq 100); do $(cmd "$rt" "run -b $bundle s\$i-$rt") || exit 1; done'")
done
hyperfine -N -w 1 -r 10 --export-json "$json/seq100.json" "${args[@]}" >&2
args=()
for rt in "${runtimes[@]}"; do
    args+=(-n "$rt" "sh -c 'seq 50 | xargs -P 50 -I{} $(cmd "$rt" "run -b $bundle p{}-$rt")'")
done
hyperfine -N -w 1 -r 10 --export-json "$json/par50.json" "${args[@]}" >&2

# 6. Peak resident memory of the runtime process during create (GNU time's maximum RSS).
peak() {
    local rt=$1 kb
    # The container's init inherits create's stdio: no pipes here, or the read never ends.
    "${GNU_TIME:-/usr/bin/time}" -o "$work/peak-$rt" -f %M $(cmd "$rt" "create -b $bundle m-$rt") >/dev/null 2>&1
    $(cmd "$rt" "delete -f m-$rt") >/dev/null 2>&1
    tail -n1 "$work/peak-$rt"
}

# What the table is made of, beside hyperfine's results: bench/table.py reads it there.
printf '%s\n' "${runtimes[@]}" >"$json/names"
for rt in "${runtimes[@]:1}"; do "$(rt_bin "$rt")" --version | head -1; done >"$json/versions"
for rt in "${runtimes[@]}"; do peak "$rt"; done >"$json/peaks"
if command -v python3 >/dev/null; then
    python3 bench/table.py "$json" >"$out"
else
    echo "no python3 here: the results are in $json (bench/table.py $json makes the table)" >&2
fi
