#!/usr/bin/env bash
# Formatting and lints: cargo fmt --check and cargo clippy -D warnings. CI (.ci/run) runs this
# before scripts/test.sh. Clippy checks the workspace for the same target scripts/test.sh builds
# (the Functions workers' glibc floor, scripts/zig-cargo.sh), so the two share the dependencies'
# build scripts (aws-lc-sys's C among them) instead of building them once per target.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
scripts/zig-cargo.sh clippy --workspace --all-targets --locked -- -D warnings
