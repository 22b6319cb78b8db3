#!/usr/bin/env bash
# Make scripts/link-order/hezi.txt anew: the functions hezi's commands run, in the order they
# first run, for link.sh to lay out first. Root, perf and busybox-static; about three minutes.
#
# The release binary is built once (its objects kept), then linked again and again: each round
# runs create, state, start, delete, run, exec, list and kill under `perf record -e page-faults`
# and adds the function at every page fault in the binary's code (the faulting instruction's
# own: a function that ran). A function that shares its page with one already listed faults no
# more, so each round reveals the next ones; the rounds stop when one finds nothing new.
# usage: scripts/link-order/collect.sh [ROUNDS]   (default 30; HEZI_KEEP=1 keeps the work directory)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-30}
out=$PWD/scripts/link-order/hezi.txt
work=$(mktemp -d /tmp/hezi-link-order.XXXXXX)
trap "[ -n \"${HEZI_KEEP:-}\" ] || rm -rf $work" EXIT
command -v perf >/dev/null || { echo "collect.sh: perf is required (apt-get install linux-perf)" >&2; exit 1; }

# One release build whose final link link.sh saves (touched, so that cargo links again). The
# objects do not depend on the order; every round below links them with its own list.
touch runtime/src/main.rs
HEZI_LINK_SAVE=$work/link bash scripts/build-release.sh -q
toolchain_bin=$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin
mapfile -t link_args <"$work/link/args"
# Linked to $work/hezi, keeping the symbols (the release profile strips them) for perf.
for i in "${!link_args[@]}"; do
    [ "${link_args[$i]}" = -o ] && link_args[$((i + 1))]=$work/hezi
    [ "${link_args[$i]}" = -Wl,--strip-all ] && unset "link_args[$i]"
done
link_args=("${link_args[@]}")

# The bundles: busybox running /bin/true, and one that sleeps (for exec).
b=$work/bundle
mkdir -p "$b/rootfs/bin" "$work/sleeper"
cp /bin/busybox "$b/rootfs/bin/"
for l in true sh sleep; do ln -s busybox "$b/rootfs/bin/$l"; done
target/release/hezi spec --bundle "$b"
sed -i -e 's/"terminal": true/"terminal": false/' -e 's|^\( *\)"sh"$|\1"/bin/true"|' "$b/config.json"
sed -e 's|"/bin/true"|"/bin/sleep", "600"|' -e "s|\"path\": \"rootfs\"|\"path\": \"$b/rootfs\"|" \
    "$b/config.json" >"$work/sleeper/config.json"

normalize() { sed -E -e 's/17h[0-9a-f]{16}E$/E/' -e 's/Cs[0-9A-Za-z]+_/C/g'; }
: >"$work/list"
for round in $(seq "$rounds"); do
    PATH=$toolchain_bin:$PATH HEZI_LINK_ORDER=$work/list scripts/link-order/link.sh "${link_args[@]}"
    h=$work/hezi r=$work/root
    perf record -q -e page-faults -c 1 -d -o "$work/perf.data" -- sh -c "
        $h --root $r create -b $b c1; $h --root $r state c1; $h --root $r start c1; sleep 0.05
        $h --root $r delete -f c1; $h --root $r run -b $b c2
        $h --root $r run -d -b $work/sleeper c3 </dev/null; $h --root $r exec c3 /bin/true
        $h --root $r list; $h --root $r kill c3 KILL; sleep 0.1; $h --root $r delete -f c3
    " >/dev/null 2>&1
    perf script -i "$work/perf.data" --no-demangle -F ip,sym,dso 2>/dev/null |
        awk '$NF == "(" h ")" && $2 != "[unknown]" { print $2 }' h="$h" | normalize >"$work/seen"
    before=$(wc -l <"$work/list")
    cat "$work/list" "$work/seen" | awk '!seen[$0]++' >"$work/next"
    mv "$work/next" "$work/list"
    added=$(($(wc -l <"$work/list") - before))
    echo "round $round: $added new, $(wc -l <"$work/list") in all" >&2
    [ "$added" = 0 ] && break
done
cp "$work/list" "$out"
echo "wrote $out; scripts/build-release.sh links with it" >&2
