#!/usr/bin/env bash
# The linker of hezi's static release build (scripts/build-release.sh passes it to rustc as
# `-C linker=`): rustc's own link line, linked by the toolchain's lld with the functions that
# hezi's commands run laid out first, in the order they first run (hezi.txt).
#
# Why: `create` touches a few hundred functions spread over the 5.6 MiB of code, and the kernel
# maps up to 15 neighbouring pages around each page fault (fault-around). The pages of a short
# run were most of the binary: 4.9 MiB peak RSS for `create`. Laid out together they are a few
# hundred KiB (bench/run.sh measures both RSS and time; README, "Benchmarks").
#
# hezi.txt holds the symbols with what changes between builds taken out (the hash of a legacy
# Rust symbol, the crate disambiguators of a v0 one), so it survives code changes; a function
# it does not name is placed as lld would place it anyway. scripts/link-order/collect.sh makes
# it anew. Where the toolchain has no rust-lld, the link is the ordinary one.
#
# HEZI_LINK_ORDER=FILE: another list. HEZI_LINK_SAVE=DIR: also copy the objects and the link
# line to DIR, for collect.sh to link again with other lists.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list=${HEZI_LINK_ORDER:-$here/hezi.txt}

args=("$@")
if [ -n "${HEZI_LINK_SAVE:-}" ]; then
    mkdir -p "$HEZI_LINK_SAVE"
    for i in "${!args[@]}"; do
        a=${args[$i]}
        case $a in
        *.o | *.rlib)
            cp "$a" "$HEZI_LINK_SAVE/$i-${a##*/}"
            args[$i]=$HEZI_LINK_SAVE/$i-${a##*/}
            ;;
        esac
    done
    printf '%s\n' "${args[@]}" >"$HEZI_LINK_SAVE/args"
fi

# rustc puts its toolchain's bin directory first in PATH; its gcc-ld/ld.lld is rust-lld.
lld_dir=
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
    if [ -x "$d/gcc-ld/ld.lld" ]; then
        lld_dir=$d/gcc-ld
        break
    fi
done
if [ -z "$lld_dir" ]; then
    echo "link-order: the toolchain has no rust-lld (gcc-ld/ld.lld); linking without the order" >&2
    exec cc "${args[@]}"
fi
[ -f "$list" ] || list=/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
objs=()
for a in "${args[@]}"; do
    case $a in *.o) objs+=("$a") ;; esac
done
normalize() { sed -E -e 's/17h[0-9a-f]{16}E$/E/' -e 's/Cs[0-9A-Za-z]+_/C/g'; }
# Every function the objects define, beside its name as the list writes it.
nm --defined-only "${objs[@]}" 2>/dev/null | awk 'NF == 3 && $2 ~ /^[tTwW]$/ { print $3 }' | sort -u >"$work/syms"
normalize <"$work/syms" | paste "$work/syms" - >"$work/map"
# The list's order; a name no object defines (glibc's, from libc.a) is passed on as it is.
awk -F '\t' 'NR == FNR { of[$2] = of[$2] " " $1; next }
    $0 in of { n = split(substr(of[$0], 2), s, " "); for (i = 1; i <= n; i++) print s[i]; next }
    { print }' "$work/map" "$list" >"$work/order"
status=0
cc "${args[@]}" "-B$lld_dir" -fuse-ld=lld "-Wl,--symbol-ordering-file=$work/order" \
    -Wl,--no-warn-symbol-ordering || status=$?
exit $status
