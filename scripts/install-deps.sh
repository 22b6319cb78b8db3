#!/usr/bin/env bash
# Install everything hezi's build, demo and test suite need on a fresh Debian 12 machine (root).
# Idempotent: re-running installs nothing new.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run as root (apt-get)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# qemu-system-x86 and the kernel for the pure cgroup v2 VM come from bookworm-backports.
backports=/etc/apt/sources.list.d/hezi-backports.list
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > "$backports"
fi

apt-get update -q
apt-get install -y -q --no-install-recommends \
    build-essential pkg-config ca-certificates \
    libseccomp-dev busybox-static protobuf-compiler \
    runc crun containerd podman umoci skopeo docker-registry hyperfine \
    containernetworking-plugins iproute2 util-linux \
    cpio gzip time systemd apparmor strace uidmap passwd criu xz-utils
apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86

# The unprivileged user of the rootless tests (tests/src/rootless.rs): useradd gives it a home
# (podman's storage) and ranges in /etc/subuid and /etc/subgid (newuidmap).
if ! id hezi-rootless >/dev/null 2>&1; then
    useradd -m -s /bin/sh hezi-rootless
fi

if ! command -v cargo >/dev/null; then
    echo "install-deps.sh: cargo (Rust stable) is required and not on PATH" >&2
    exit 1
fi
