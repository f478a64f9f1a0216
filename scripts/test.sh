#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the Python side (moto, Azure SDK for
# Python), checks formatting and lints, and runs every Rust test (unit, end-to-end against the
# local test bed, and the test bed's fidelity tests against the official SDKs).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
