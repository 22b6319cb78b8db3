#!/usr/bin/env bash
# From a fresh Debian 12 machine (as root) to a running container: install what is needed, build
# hezi, make the demo image from busybox-static, and run a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build-release.sh
hezi=target/release/hezi
"$hezi" image demo
"$hezi" run --image hezi.local/demo:latest "demo-$$"
