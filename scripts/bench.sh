#!/usr/bin/env bash
# The benchmarks (BENCHMARKS.md): builds the release binary (timing the build), reports its size,
# then runs bench/ against the local test bed and prints a table. Not part of the test suite.
#
# Usage: scripts/bench.sh [--quick] [--only ready,memory,trips,side,concurrency,targets,paced,endpoint]
#        scripts/bench.sh --soak [--seed N] [--hours H] [--keep-logs]   (issues #21, #25: the soak
#                         under random faults; default seed 21, 200 hours, about 19 minutes)
#        scripts/bench.sh --soak --self-test   (the soak against deliberate defects, about 4 minutes)
# The soak exits 1 when an invariant was violated (the self-test: when an injected defect went
# unreported); RELIABILITY.md has its figures. Neither is part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
TARGET_DIR=${CARGO_TARGET_DIR:-target}
start=$(date +%s)
cargo build --release --locked -p stsbridge --bin stsbridge
cargo build --release --locked -p stsbridge-bench
end=$(date +%s)
BIN=$TARGET_DIR/release/stsbridge
echo "build:  $((end - start)) s (release; 'cargo clean' first for a clean-build figure)"
echo "binary: $(stat -c %s "$BIN") bytes ($(numfmt --to=iec-i --suffix=B "$(stat -c %s "$BIN")"), stripped by the release profile)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
STSBRIDGE_BIN=$BIN "$TARGET_DIR/release/stsbridge-bench" "$@"
