#!/usr/bin/env bash
# Build hezi and containerd-shim-hezi-v2 in release, linked statically: glibc as static-pie and
# libseccomp from its archive (libseccomp-dev). No dynamic loader runs at start-up and no shared
# libc is mapped, which makes `hezi run` faster and a shim's resident memory smaller (README,
# "Static release binaries"). Output: target/release/{hezi,containerd-shim-hezi-v2}.
#
# The relative relocations of the position-independent binary (one per pointer in static data,
# some 16,000) are packed as RELR (glibc 2.36, binutils 2.38): start-up reads 3 KiB of them
# instead of 370 KiB, which were resident in every shim.
#
# crt-static goes to the final link only (`cargo rustc ... -- -C ...`): as a RUSTFLAGS setting it
# would also reach proc-macro crates, which cannot be built that way.
# usage: scripts/build-release.sh [-q]
set -euo pipefail
cd "$(dirname "$0")/.."
quiet=()
[ "${1:-}" = -q ] && quiet=(-q)
seccomp_a=$(cc -print-file-name=libseccomp.a)
if [ ! -f "$seccomp_a" ]; then
    echo "libseccomp.a not found (install libseccomp-dev)" >&2
    exit 1
fi
export LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=${seccomp_a%/*}
static=(-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs)
# hezi is linked by rust-lld with the functions its commands run laid out together
# (scripts/link-order/link.sh): a third less resident memory for `create`, fewer page faults.
# Cargo does not know the linker's inputs: a digest of them in the flags relinks when they change.
order_digest=$(cat scripts/link-order/link.sh scripts/link-order/hezi.txt | sha256sum | cut -c1-16)
cargo rustc "${quiet[@]}" --release -p hezi --bin hezi -- "${static[@]}" \
    -C "linker=$PWD/scripts/link-order/link.sh" -C linker-flavor=gcc --cfg "hezi_link_order=\"$order_digest\""
# The shim in its own profile (Cargo.toml, release-shim: optimised for size), next to hezi.
cargo rustc "${quiet[@]}" --profile release-shim -p containerd-shim-hezi-v2 --bin containerd-shim-hezi-v2 -- "${static[@]}"
cp target/release-shim/containerd-shim-hezi-v2 target/release/containerd-shim-hezi-v2.tmp
mv target/release/containerd-shim-hezi-v2.tmp target/release/containerd-shim-hezi-v2
for bin in hezi containerd-shim-hezi-v2; do
    # A dynamically linked binary names its loader in an INTERP program header.
    if readelf -lW "target/release/$bin" | grep -q INTERP; then
        echo "target/release/$bin is not statically linked" >&2
        exit 1
    fi
done
