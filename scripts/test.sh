#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the Python side (moto, Azure SDK for
# Python), validates the infrastructure code offline, checks formatting, runs every Rust test
# (unit, end-to-end against the local test bed, and the test bed's fidelity tests against the
# official SDKs), and checks that the deployment build runs on the Functions workers' glibc.
# Lints (cargo fmt --check, cargo clippy -D warnings) are scripts/lint.sh; CI (.ci/run) runs it
# before this script.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/validate-infra.sh
cargo fmt --all --check
cargo test --workspace --locked
scripts/build-deploy.sh --check
