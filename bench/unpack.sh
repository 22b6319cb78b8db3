#!/bin/sh
# Unpack speed: the containerd-bridge unpacker against `umoci unpack`, on one large gzip layer
# (20,000 small files in 200 directories, plus a few large incompressible files), with hyperfine.
# Also times a whole `hezi image import` (store, verify, unpack) for reference.
#
#   bench/unpack.sh [WORKDIR]      (needs root, umoci, hyperfine, python3; builds release bits)
#
# Environment: SMALL (default 20000) small files, LARGE (default 4) files of LARGE_MB (32) MiB,
# RUNS (default 5) hyperfine runs.
set -eu

SMALL=${SMALL:-20000}
LARGE=${LARGE:-4}
LARGE_MB=${LARGE_MB:-32}
RUNS=${RUNS:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /var/tmp/hezi-bench.XXXXXX)}
mkdir -p "$work"

for t in umoci hyperfine python3; do
    command -v "$t" >/dev/null || { echo "bench: needs $t (apt-get install umoci hyperfine python3)" >&2; exit 1; }
done

echo "== building (release): hezi and the unpack example" >&2
(cd "$here" && bash scripts/build-release.sh -q && cargo build --release -q -p containerd-bridge --example unpack)
hezi=$here/target/release/hezi
unpack=$here/target/release/examples/unpack

if [ ! -f "$work/img.tar" ]; then
    echo "== making the image: $SMALL small files, $LARGE x $LARGE_MB MiB" >&2
    rm -rf "$work/src" "$work/layout"
    python3 - "$work/src" "$SMALL" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "usr/share/many", "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.txt" % i), "w") as f:
        f.write(("file %d\n" % i) * (1 + i % 64))
    if i % 1000 == 0:
        os.symlink("f%05d.txt" % i, os.path.join(d, "link%05d" % i))
PY
    mkdir -p "$work/src/opt/big"
    i=0
    while [ $i -lt "$LARGE" ]; do
        head -c "$((LARGE_MB * 1024 * 1024))" /dev/urandom > "$work/src/opt/big/blob$i"
        i=$((i + 1))
    done
    tar -C "$work/src" -cf "$work/layer.tar" .
    umoci init --layout "$work/layout"
    umoci new --image "$work/layout:bench"
    umoci raw add-layer --image "$work/layout:bench" "$work/layer.tar"
    tar -C "$work/layout" -cf "$work/img.tar" .
    rm -rf "$work/src" "$work/layer.tar"
fi

manifest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' "$work/layout/index.json")
layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"].split(":")[1])' "$work/layout/blobs/sha256/$manifest")
blob=$work/layout/blobs/sha256/$layer
echo "== layer: $(du -h "$blob" | cut -f1) compressed" >&2

hyperfine --runs "$RUNS" --export-json "$work/result.json" \
    -n hezi-unpack --prepare "rm -rf $work/out-hezi && mkdir $work/out-hezi" \
        "$unpack $blob $work/out-hezi" \
    -n umoci-unpack --prepare "rm -rf $work/out-umoci" \
        "umoci unpack --image $work/layout:bench $work/out-umoci" \
    -n hezi-image-import --prepare "rm -rf $work/root" \
        "$hezi --root $work/root image import --name bench/unpack:1 $work/img.tar"

python3 - "$work/result.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
h, u, i = r["hezi-unpack"], r["umoci-unpack"], r["hezi-image-import"]
print(f"hezi unpack {h:.3f}s, umoci unpack {u:.3f}s: umoci/hezi = {u / h:.2f}x")
print(f"hezi image import (copy into the store, verify, unpack): {i:.3f}s")
PY
rm -rf "$work/out-hezi" "$work/out-umoci" "$work/root"
