#!/usr/bin/env bash
# containerd-shim-hezi-v2 against containerd's runc shim (containerd-shim-runc-v2 + runc), on a
# private containerd: resident memory of one shim serving one container, and `ctr run --rm` of
# /bin/true side by side with hyperfine, with the ratio.
# usage: bench/shim.sh [RUNS]   (root; builds the shim in release first (scripts/build-release.sh); needs containerd, ctr,
# runc, hyperfine, busybox-static, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
bash scripts/build-release.sh -q
shimdir=$PWD/target/release
work=$(mktemp -d /tmp/hezi-shim-bench.XXXXXX)
ns=bench
image=hezi.bench/busybox:latest
ctrd_pid=

ctr_() { ctr --address "$work/containerd.sock" --namespace "$ns" "$@"; }

cleanup() {
    set +e
    if [ -n "$ctrd_pid" ]; then
        for id in $(ctr_ containers list -q 2>/dev/null); do
            ctr_ tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1
            ctr_ tasks delete -f "$id" >/dev/null 2>&1
            ctr_ containers delete "$id" >/dev/null 2>&1
        done
        kill "$ctrd_pid" 2>/dev/null
        wait "$ctrd_pid" 2>/dev/null
    fi
    # Shims of this containerd that outlived it: ours, ended by pid.
    for pid in $(pgrep -f -- "-address $work/containerd.sock" || true); do kill -9 "$pid" 2>/dev/null; done
    grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/config.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
[ttrpc]
  address = "$work/containerd.sock.ttrpc"
EOF
PATH="$shimdir:$PATH" containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
ctrd_pid=$!
for _ in $(seq 100); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done

# The image: one uncompressed layer with busybox and two applets, as an OCI layout archive.
l=$work/layer
mkdir -p "$l/bin" "$l/etc" "$l/proc" "$l/sys" "$l/dev" "$l/tmp"
cp /bin/busybox "$l/bin/"
ln -s busybox "$l/bin/true"
ln -s busybox "$l/bin/sleep"
ln -s busybox "$l/bin/sh"
echo 'root:x:0:0:root:/root:/bin/sh' >"$l/etc/passwd"
o=$work/oci
mkdir -p "$o/blobs/sha256"
tar -C "$l" --owner=0 --group=0 -cf "$work/layer.tar" .
blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$o/blobs/sha256/$d"; echo "$d"; }
size() { stat -c %s "$1"; }
ld=$(blob "$work/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/true"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$ld" >"$work/config.json"
cd_=$(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$cd_" "$(size "$work/config.json")" "$ld" "$(size "$work/layer.tar")" >"$work/manifest.json"
md=$(blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s"}}]}' \
    "$md" "$(size "$work/manifest.json")" "$image" >"$o/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$o/oci-layout"
tar -C "$o" -cf "$work/image.tar" .
ctr_ images import "$work/image.tar" >/dev/null

# Resident memory of the shim serving one running container.
rss_of() {
    local runtime=$1 shim=$2 id=$3 pid
    ctr_ run -d --runtime "$runtime" "$image" "$id" sleep 1000 >/dev/null
    sleep 1
    pid=$(pgrep -f -- "$shim .*-address $work/containerd.sock" | head -1)
    # Breakdown on stderr: anonymous (heap, stacks) versus file-backed (the binary's pages).
    # Pss shares the binary's and libc's pages among the processes mapping them; USS counts
    # only this process's own pages.
    { grep -E '^(RssAnon|RssFile|Threads)' "/proc/$pid/status"; grep -E '^Pss:' "/proc/$pid/smaps_rollup"
      awk '/^Private_(Clean|Dirty)/ {s += $2} END {print "USS: " s " kB"}' "/proc/$pid/smaps_rollup"; } |
        tr -s ' \t' ' ' | paste -sd' ' | sed "s/^/  $shim: /" >&2
    if [ -n "${SHIM_BENCH_SMAPS:-}" ]; then
        awk '/^[0-9a-f]+-/ {m=$6} /^Rss:/ && $2 > 100 {print "    " $2 " kB " m}' "/proc/$pid/smaps" >&2
    fi
    awk '/^VmRSS/ {print $2}' "/proc/$pid/status"
    ctr_ tasks kill -s SIGKILL "$id" >/dev/null
    sleep 0.5
    ctr_ tasks delete "$id" >/dev/null
    ctr_ containers delete "$id" >/dev/null
}
rss_hezi=$(rss_of io.containerd.hezi.v2 containerd-shim-hezi-v2 rss-hezi)
rss_runc=$(rss_of io.containerd.runc.v2 containerd-shim-runc-v2 rss-runc)

# ctr run --rm /bin/true, each run with a fresh id.
run_cmd() { echo "ctr --address $work/containerd.sock --namespace $ns run --rm --runtime $1 $image b\$(date +%s%N) /bin/true"; }
# Through the shell (for the fresh id); hyperfine subtracts the shell's own start-up.
hyperfine --warmup 3 --runs "$runs" --export-json "$work/h.json" \
    -n hezi-shim "$(run_cmd io.containerd.hezi.v2)" \
    -n runc-shim "$(run_cmd io.containerd.runc.v2)"

python3 - "$work/h.json" "$rss_hezi" "$rss_runc" <<'EOF'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
h, c = r["hezi-shim"], r["runc-shim"]
rh, rc = int(sys.argv[2]), int(sys.argv[3])
print(f"ctr run --rm /bin/true: hezi shim {h*1000:.1f} ms, runc shim + runc {c*1000:.1f} ms, ratio {h/c:.2f}x")
print(f"shim RSS serving one container: hezi {rh/1024:.2f} MiB, runc shim {rc/1024:.2f} MiB, ratio {rh/rc:.2f}x")
EOF
