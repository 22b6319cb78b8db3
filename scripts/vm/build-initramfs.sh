#!/usr/bin/env bash
# Build the initramfs of the cgroup v2 test VM: busybox, hezi and the libraries ldd lists,
# the guest test scripts and a busybox bundle for them.
# usage: build-initramfs.sh HEZI_BINARY OUTPUT.cpio.gz [cgroupfs|systemd]
# (systemd: systemd from the host's package too, as PID 1, for the systemd driver's tests)
set -euo pipefail
hezi=$(readlink -f "$1")
out=$(readlink -f "$2")
mode=${3:-cgroupfs}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work"/{bin,sbin,etc,guest,usr/bin,usr/sbin}
cp /bin/busybox "$work/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ -e "$work/bin/$applet" ] || ln -s busybox "$work/bin/$applet"
done
cp "$hezi" "$work/bin/hezi"
# The dynamic loader and every library a binary links against, at the same paths as on the host.
copy_libs() {
    for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
        mkdir -p "$work$(dirname "$lib")"
        cp -L "$lib" "$work$lib"
    done
}
copy_libs "$hezi"
cp "$here/init" "$work/init"
chmod 755 "$work/init"
cp "$here/lib.sh" "$here/rootless.sh" "$here/checkpoint.sh" "$work/guest/"
# util-linux's setpriv, to run the rootless tests as an unprivileged user (busybox's cannot
# change ids).
mkdir -p "$work/usr/bin"
cp /usr/bin/setpriv "$work/usr/bin/"
copy_libs /usr/bin/setpriv
# AppArmor's profile compiler (package apparmor), for the guest's AppArmor tests.
if [ -x /usr/sbin/apparmor_parser ]; then
    mkdir -p "$work/usr/sbin"
    cp /usr/sbin/apparmor_parser "$work/usr/sbin/"
    copy_libs /usr/sbin/apparmor_parser
fi
if [ "$mode" = bench ]; then
    # The guest "tests" are the benchmark: the runtimes to compare and the tools it uses.
    cp "$here/guest-bench.sh" "$work/guest/tests.sh"
    for bin in "${CRUN:-/usr/bin/crun}" /usr/sbin/runc /usr/bin/hyperfine /usr/bin/time /usr/bin/unshare; do
        name=${bin##*/}
        case $bin in "${CRUN:-}") name=crun ;; esac
        cp "$bin" "$work/usr/bin/$name"
        copy_libs "$bin"
    done
else
    cp "$here/guest-tests.sh" "$work/guest/tests.sh"
fi
# CRIU (package criu) for the checkpoint/restore tests: Debian's 3.17 fails `criu check` on
# newer host kernels (vdso symtable), but works on the guest's Debian kernel.
if [ -x /usr/sbin/criu ]; then
    cp /usr/sbin/criu "$work/usr/sbin/"
    copy_libs /usr/sbin/criu
    # CRIU dumps and restores tmpfs mounts (a container's /dev) with GNU tar's options, which
    # busybox tar lacks.
    rm -f "$work/bin/tar"
    cp /bin/tar "$work/bin/tar"
    copy_libs /bin/tar
    # CRIU saves and restores a network namespace with iproute2's `ip ... save|restore` and the
    # iptables-save/restore tools (busybox ip has no save).
    rm -f "$work/bin/ip"
    for bin in /bin/ip /usr/sbin/iptables-save /usr/sbin/iptables-restore /usr/sbin/ip6tables-save \
        /usr/sbin/iptables-legacy-save /usr/sbin/iptables-legacy-restore \
        /usr/sbin/ip6tables-legacy-save /usr/sbin/ip6tables-legacy-restore \
        /usr/sbin/ip6tables-restore; do
        if [ -e "$bin" ]; then
            mkdir -p "$work$(dirname "$bin")"
            cp -L "$bin" "$work$bin"
            copy_libs "$bin"
        fi
    done
    # `criu check` probes socket diag, tun, veth and nftables, which Debian's kernel builds as
    # modules: the guest loads them in this (dependency) order, listed in modules/order
    # (busybox insmod cannot read .xz, so they go in decompressed).
    mkdir -p "$work/guest/modules"
    for m in inet_diag tcp_diag udp_diag raw_diag unix_diag netlink_diag af_packet_diag \
        tun veth crc32c_generic libcrc32c nfnetlink nf_tables; do
        ko=$(find "$(dirname "$out")"/lib/modules -name "$m.ko.xz" 2>/dev/null | head -n1)
        if [ -n "$ko" ]; then
            xz -dc "$ko" > "$work/guest/modules/$m.ko"
            echo "$m" >> "$work/guest/modules/order"
        fi
    done
fi

if [ "$mode" = systemd ]; then
    # systemd as PID 1 and systemctl, from the host's own package, and one target that runs
    # the driver's tests on the console and powers off.
    for bin in /lib/systemd/systemd /bin/systemctl; do
        mkdir -p "$work$(dirname "$bin")"
        cp -L "$bin" "$work$bin"
        copy_libs "$bin"
    done
    cp /etc/os-release "$work/etc/os-release"
    mkdir -p "$work/etc/systemd/system"
    cp "$here/hezi-test.target" "$here/hezi-tests.service" "$here/hezi-user-manager.service" \
        "$work/etc/systemd/system/"
    # The user manager's own default target (Debian's user units are not in the initramfs).
    mkdir -p "$work/etc/systemd/user"
    printf '[Unit]\nDescription=the rootless tests user manager\n' > "$work/etc/systemd/user/default.target"
    # The rootless user, whom `systemd --user` looks up.
    printf 'root:x:0:0:root:/root:/bin/sh\nhezi:x:1500:1500:hezi:/run/user/1500:/bin/sh\n' > "$work/etc/passwd"
    printf 'root:x:0:\nhezi:x:1500:\n' > "$work/etc/group"
    cp "$here/systemd-tests.sh" "$work/guest/systemd-tests.sh"
fi

# hezi's shim and the task API client that drives it (no containerd in the VM), and a console
# socket listener, from hezi's build directory (cargo build -p containerd-shim-hezi-v2 --example
# shimctl; cargo build -p hezi --example recvtty), and containerd's
# runc shim (package containerd) for running hezi as its BinaryName; the tests say if one is
# missing.
bindir=$(dirname "$hezi")
for bin in "$bindir/containerd-shim-hezi-v2" "$bindir/examples/shimctl" "$bindir/examples/recvtty" \
    /usr/bin/containerd-shim-runc-v2; do
    if [ -x "$bin" ]; then
        cp "$bin" "$work/bin/"
        copy_libs "$bin"
    fi
done

# podman and conmon (packages podman, conmon), for checkpointing through podman with hezi as
# its runtime; with the signature policy `podman load` and `import` ask for.
for bin in /usr/bin/podman /usr/bin/conmon; do
    if [ -x "$bin" ]; then
        cp "$bin" "$work/usr/bin/"
        copy_libs "$bin"
    fi
done
mkdir -p "$work/etc/containers"
echo '{"default": [{"type": "insecureAcceptAnything"}]}' > "$work/etc/containers/policy.json"

# A busybox bundle rootfs for the guest tests' containers.
rootfs="$work/guest/rootfs"
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in sh cat echo sleep true ls grep wc head id kill mv; do
    ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' > "$rootfs/etc/passwd"

(cd "$work" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$out"
echo "initramfs: $out ($(du -h "$out" | cut -f1))"
