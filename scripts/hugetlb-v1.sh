#!/usr/bin/env bash
# crun 1.8 refuses a hybrid cgroup host while its cgroup2 mount holds a controller (hugetlb on
# these machines). Binding hugetlb to a v1 hierarchy of its own lets crun run; that is the one
# host change the benchmarks and the conformance comparison may make, and `release` undoes it.
#
# usage: scripts/hugetlb-v1.sh bind      (prints "bound" when it mounted something)
#        scripts/hugetlb-v1.sh release
set -u
mnt=/sys/fs/cgroup/hugetlb

# The hierarchy number of hugetlb in /proc/cgroups: 0 while it is on the unified mount.
hierarchy() { awk '$1 == "hugetlb" { print $2 }' /proc/cgroups; }

case ${1:-} in
bind)
    [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && exit 0 # pure v2: nothing to do
    grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null || exit 0
    mountpoint -q "$mnt" && exit 0
    mkdir -p "$mnt"
    if ! mount -t cgroup -o hugetlb cgroup "$mnt"; then
        rmdir "$mnt"
        echo "hugetlb-v1: hugetlb is in use on the unified mount (a cgroup.subtree_control enables it); crun will refuse this host" >&2
        exit 1
    fi
    echo bound
    ;;
release)
    # An unmounted v1 hierarchy lives on while it has cgroups or a mount elsewhere pins it:
    # empty it, unmount it, and mount-and-unmount once more until hugetlb is back on v2.
    for _ in 1 2 3 4 5; do
        [ "$(hierarchy)" = 0 ] && break
        mountpoint -q "$mnt" || { mkdir -p "$mnt" && mount -t cgroup -o hugetlb cgroup "$mnt"; } || break
        find "$mnt" -mindepth 1 -type d | sort -r | xargs -r rmdir
        umount "$mnt"
        rmdir "$mnt"
        sleep 1
    done
    if [ "$(hierarchy)" != 0 ]; then
        echo "hugetlb-v1: hugetlb is still bound to a v1 hierarchy" >&2
        exit 1
    fi
    ;;
*)
    echo "usage: $0 bind|release" >&2
    exit 2
    ;;
esac
