#!/usr/bin/env bash
# hezi's whole test suite: formatting, lints, the pure cgroup v2 VMs, a minute of cargo-fuzz per
# target, then unit, integration, end-to-end and conformance tests with real containers (root). Run scripts/install-deps.sh first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "build"
cargo build --workspace

step "pure cgroup v2 host: Debian's kernel under QEMU (tcg)"
bash scripts/vm/run.sh target/debug/hezi cgroupfs

step "the systemd cgroup driver: the same kernel with systemd as PID 1"
bash scripts/vm/run.sh target/debug/hezi systemd

step "fuzzing (cargo-fuzz): config parsing and seccomp rule building, ${FUZZ_SECONDS:-60}s each"
FUZZ_SECONDS=${FUZZ_SECONDS:-60} bash scripts/fuzz.sh

step "unit, integration and end-to-end tests"
# The e2e tests start many short containers; two threads per core keeps a small VM responsive.
cargo test --workspace -- --test-threads="${HEZI_TEST_THREADS:-4}"
