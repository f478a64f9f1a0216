#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the Python and npm side (moto, the Azure
# SDK for Python, Azurite; locked), validates the infrastructure code offline, checks formatting,
# builds the workspace ONCE for the Functions workers' glibc floor and runs every Rust test with
# it (unit, end-to-end against the local test bed, the test bed's fidelity tests against the
# official SDKs), checks that very stsbridge binary's glibc symbols (the deployment check, no
# second compilation), and runs the README's demo on the same binaries, which must leave no
# process behind.
# Lints (cargo fmt --check, cargo clippy -D warnings) are scripts/lint.sh; CI (.ci/run) runs it
# before this script.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/validate-infra.sh
cargo fmt --all --check
# One compilation (issue #28): the tests run the binary the deployment check reads.
scripts/zig-cargo.sh test --workspace --locked
bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/debug
scripts/build-deploy.sh --check --binary "$bin/stsbridge"

# The demo (the README's first command) on the binaries just built; then nothing it started may
# still run. It runs as a session of its own, so whatever it started and left behind is still in
# that session after it exits (other work on the machine is not).
log=$(mktemp)
sid_file=$(mktemp)
setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$sid_file" \
  env STSBRIDGE_BIN_DIR="$bin" scripts/demo.sh >"$log" 2>&1 </dev/null \
  || { cat "$log" >&2; echo "test: the demo failed" >&2; exit 1; }
grep -q '"Arn": "arn:aws:' "$log" || { cat "$log" >&2; echo "test: the demo did not end with an AWS call" >&2; exit 1; }
sleep 1
left=$(pgrep -s "$(cat "$sid_file")" || true)
rm -f "$log" "$sid_file"
if [ -n "$left" ]; then
  echo "test: the demo left processes behind:" >&2
  ps -o pid,args -p "$(echo "$left" | paste -sd,)" >&2 || true
  exit 1
fi
echo "test: the demo ran to its AWS call and left no process behind"
