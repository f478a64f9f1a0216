#!/usr/bin/env bash
# Formatting and lints: cargo fmt --check and cargo clippy -D warnings. CI (.ci/run) runs this
# before scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
