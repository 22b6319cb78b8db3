#!/usr/bin/env bash
# hezi's whole test suite: formatting, lints, the pure cgroup v2 VMs, a minute of cargo-fuzz per
# target, then unit, integration, end-to-end and conformance tests with real containers (root). Run scripts/install-deps.sh first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
# The free space where target/ grows, printed before each heavy step: a run that fails for lack
# of disk says so in its log.
disk() { df -h --output=avail,target . | tail -n 1 | awk '{print "disk: " $1 " free on " $2}'; }

if [ "${CI:-}" = true ]; then
    # A one-shot build gains nothing from incremental compilation, whose caches were a third of
    # target/ (2.2 of 6.8 GB), on machines whose free disk varies from run to run.
    export CARGO_INCREMENTAL=0
fi
disk

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "build"
cargo build --workspace

step "pure cgroup v2 host: Debian's kernel under QEMU (tcg)"
# The checkpoint tests drive hezi's shim with its example task API client, and take a
# container's terminal with the console socket listener example.
cargo build -p containerd-shim-hezi-v2 --example shimctl
cargo build -p hezi --example recvtty
bash scripts/vm/run.sh target/debug/hezi cgroupfs

step "the systemd cgroup driver: the same kernel with systemd as PID 1 (hezi, and hezi's shim driven by shimctl)"
bash scripts/vm/run.sh target/debug/hezi systemd

step "fuzzing (cargo-fuzz): config parsing and seccomp rule building, ${FUZZ_SECONDS:-60}s each"
FUZZ_SECONDS=${FUZZ_SECONDS:-60} bash scripts/fuzz.sh
# The sanitizer build of the fuzz targets (0.7 GB) is not used again in this run.
if [ "${CI:-}" = true ]; then rm -rf fuzz/cargo-fuzz/target; fi
disk

step "unit, integration and end-to-end tests"
# The e2e tests start many short containers; two threads per core keeps a small VM responsive.
cargo test --workspace -- --test-threads="${HEZI_TEST_THREADS:-4}"

step "SIGKILL at random points of create, run, start, exec and delete: a new schedule"
# cargo test above ran the fixed schedule; this one is new each run. A failure prints the seed.
seed=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
echo "HEZI_KILL_SEED=0x$seed"
HEZI_KILL_SEED=0x$seed HEZI_KILL_ROUNDS=${HEZI_KILL_ROUNDS:-100} cargo test -p hezi-e2e --test kill_points \
    -- --test-threads="${HEZI_TEST_THREADS:-4}"

step "the static release binaries (scripts/build-release.sh) through the CLI, podman and shim tests"
disk
bash scripts/build-release.sh -q
HEZI_BIN=$PWD/target/release/hezi cargo test -p hezi-e2e --test lifecycle --test exec --test process \
    --test stdio --test podman --test containerd_runc_shim -- --test-threads="${HEZI_TEST_THREADS:-4}"
HEZI_SHIM_BIN=$PWD/target/release/containerd-shim-hezi-v2 cargo test -p containerd-shim-hezi-v2 \
    --test containerd --test task_api -- --test-threads="${HEZI_TEST_THREADS:-4}"
