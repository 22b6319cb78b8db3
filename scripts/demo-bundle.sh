#!/usr/bin/env bash
# Make the demo bundle DIR (default ./demo): a busybox-static root filesystem and a config.json
# from `hezi spec` that runs a short greeting without a terminal.
set -euo pipefail
dir=${1:-demo}
hezi=${HEZI:-target/release/hezi}
rm -rf "$dir"
mkdir -p "$dir"/rootfs/{bin,etc,proc,sys,dev,tmp}
cp /bin/busybox "$dir/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' > "$dir/rootfs/etc/passwd"
echo 'root:x:0:' > "$dir/rootfs/etc/group"
"$hezi" spec --bundle "$dir"
sed -i -e 's/"terminal": true/"terminal": false/' \
    -e 's|^\( *\)"sh"$|\1"sh", "-c", "echo hello from hezi: $(hostname), pid $$, $(id)"|' "$dir/config.json"
