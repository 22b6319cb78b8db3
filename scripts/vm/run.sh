#!/usr/bin/env bash
# Boot Debian's own kernel under QEMU (software emulation: nested KVM fails on these hosts) with
# a pure cgroup v2 hierarchy, run hezi's guest tests there, and exit non-zero unless they pass.
# usage: scripts/vm/run.sh [HEZI_BINARY [cgroupfs|systemd]]   (default target/debug/hezi cgroupfs)
# cgroupfs: busybox init, the cgroupfs driver's tests (guest-tests.sh).
# systemd: systemd as PID 1, the systemd driver's tests (systemd-tests.sh).
# bench: busybox init, bench/run.sh's rows against crun and runc (guest-bench.sh; CRUN=PATH picks
# the crun); prints `bench ROW RUNTIME MEAN_MS` lines.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
hezi=${1:-$repo/target/debug/hezi}
mode=${2:-cgroupfs}
case "$mode" in
    cgroupfs | bench) extra= ;;
    systemd) extra="hezi.systemd systemd.unit=hezi-test.target systemd.show_status=0" ;;
    *) echo "run.sh: mode $mode is neither cgroupfs nor systemd" >&2; exit 2 ;;
esac
# HEZI_VM_ONLY=WORD: only the guest tests whose names contain WORD (while working on them).
[ -n "${HEZI_VM_ONLY:-}" ] && extra="$extra hezi.only=$HEZI_VM_ONLY"
cache=${HEZI_VM_CACHE:-$repo/target/vm}
mkdir -p "$cache"

kernel=$(ls "$cache"/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
if [ -z "$kernel" ]; then
    # The kernel is unpacked from its package, never installed on the host.
    pkg=$(apt-cache depends -t bookworm-backports linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    (cd "$cache" && apt-get download -t bookworm-backports "$pkg" 2>/dev/null && dpkg-deb -x ./*.deb . && rm -f ./*.deb)
    kernel=$(ls "$cache"/boot/vmlinuz-* | head -n1)
fi
"$here/build-initramfs.sh" "$hezi" "$cache/initramfs-$mode.cpio.gz" "$mode"

log="$cache/console-$mode.log"
timeout 900 qemu-system-x86_64 -accel tcg -m 1536 -smp 2 -nographic -no-reboot \
    -kernel "$kernel" -initrd "$cache/initramfs-$mode.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init $extra" | tee "$log" | grep -E '^(guest|bench|PASS|FAIL|SKIP|[0-9]+ passed)' || true
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1 | tr -d '\r')
if [ -z "$summary" ]; then
    echo "cgroup v2 VM ($mode): no test summary; console log in $log" >&2
    exit 1
fi
echo "cgroup v2 VM ($mode): $summary"
case "$summary" in *" 0 failed"*) exit 0 ;; *) exit 1 ;; esac
