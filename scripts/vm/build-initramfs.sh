#!/usr/bin/env bash
# Build the initramfs of the cgroup v2 test VM: busybox, hezi and the libraries ldd lists,
# the guest test script and a busybox bundle for it.
# usage: build-initramfs.sh HEZI_BINARY OUTPUT.cpio.gz
set -euo pipefail
hezi=$(readlink -f "$1")
out=$(readlink -f "$2")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work"/{bin,sbin,etc,guest,usr/bin,usr/sbin}
cp /bin/busybox "$work/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ -e "$work/bin/$applet" ] || ln -s busybox "$work/bin/$applet"
done
cp "$hezi" "$work/bin/hezi"
# The dynamic loader and every library hezi links against, at the same paths as on the host.
for lib in $(ldd "$hezi" | grep -o '/[^ ]*'); do
    mkdir -p "$work$(dirname "$lib")"
    cp -L "$lib" "$work$lib"
done
cp "$here/init" "$work/init"
chmod 755 "$work/init"
cp "$here/guest-tests.sh" "$work/guest/tests.sh"

# A busybox bundle rootfs for the guest tests' containers.
rootfs="$work/guest/rootfs"
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in sh cat echo sleep true ls grep wc head id kill; do
    ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' > "$rootfs/etc/passwd"

(cd "$work" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$out"
echo "initramfs: $out ($(du -h "$out" | cut -f1))"
