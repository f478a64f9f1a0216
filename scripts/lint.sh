#!/usr/bin/env bash
# Formatting and lints, as CI checks them besides scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
