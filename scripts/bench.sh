#!/usr/bin/env bash
# The benchmarks (BENCHMARKS.md): builds the release binary, timing its builds (cold, from an
# empty target directory, and warm, after a change to the crate), reports its size, then runs
# bench/ against the local test bed, which writes the whole report from that one run: the
# commit built, the date, the machine's load, every table. Not part of the test suite.
#
# Usage: scripts/bench.sh [--write] [--no-cold-build] [--quick] [--only NAME[,NAME]]
#          NAMEs: ready, memory, trips, side, concurrency, targets, paced, endpoint, ra
#        scripts/bench.sh --soak [--seed N] [--hours H] [--keep-logs]   (issues #21, #25: the soak
#                         under random faults; default seed 21, 200 hours, about 19 minutes)
#        scripts/bench.sh --soak --self-test   (the soak against deliberate defects, about 4 minutes)
# The soak exits 1 when an invariant was violated (the self-test: when an injected defect went
# unreported); RELIABILITY.md has its figures. Neither is part of CI.
#
# The report goes to $CARGO_TARGET_DIR/bench/BENCHMARKS.md; --write also copies it to
# ./BENCHMARKS.md. Measure a committed tree: the report names the commit, and says so when the
# tree has uncommitted changes. A full run (no --quick, --only or --no-cold-build) also builds
# the release binary once more in an empty target directory (about 10 minutes and 3 GB on two
# cores, deleted afterwards) to time a cold build.
set -euo pipefail
cd "$(dirname "$0")/.."

write=false cold=true args=()
for a in "$@"; do
  case "$a" in
    --write) write=true ;;
    --no-cold-build) cold=false ;;
    --quick | --only | --soak) cold=false; args+=("$a") ;;
    *) args+=("$a") ;;
  esac
done

scripts/setup.sh
TARGET_DIR=${CARGO_TARGET_DIR:-target}
export CARGO_TARGET_DIR=$TARGET_DIR

# Busy and total CPU ticks of all cores (/proc/stat).
cpu() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# timed LABEL COMMAND...: runs it, then sets TIMED to "value|how" for the report: wall time,
# its own CPU time, how busy the cores were meanwhile and how much of that was other work.
timed() {
  local label=$1; shift
  local l0 c0 c1 t
  l0=$(load); c0=$(cpu)
  t=$(mktemp)
  { TIMEFORMAT='%R %U %S'; time "$@" 2>&3; } 3>&2 2>"$t"
  c1=$(cpu)
  TIMED=$(awk -v c0="$c0" -v c1="$c1" -v l0="$l0" -v l1="$(load)" -v label="$label" -v cores="$(nproc)" '
    { wall=$1; own=$2+$3 }
    END {
      split(c0, a, " "); split(c1, b, " ")
      busy=b[1]-a[1]; total=b[2]-a[2]; if (total < 1) total=1
      others=busy/100 - own; if (others < 0) others=0
      printf "%d min %02d s|%s; its own CPU time %d min %02d s; meanwhile the %d cores were %.0f %% busy, other work %.0f %% of them (%.0f CPU-s); load average %s before, %s after\n",
        wall/60, wall%60, label, own/60, own%60, cores, busy/total*100, others/(total/100)*100, others, l0, l1
    }' "$t")
  rm -f "$t"
  echo "build: ${TIMED%%|*} (${TIMED#*|})"
}

if [[ " ${args[*]-} " == *" --soak "* ]]; then
  cargo build --release --locked -p stsbridge --bin stsbridge -p stsbridge-bench --bin stsbridge-bench
  STSBRIDGE_BIN=$TARGET_DIR/release/stsbridge exec "$TARGET_DIR/release/stsbridge-bench" "${args[@]}"
fi

export BENCH_COMMIT BENCH_DIRTY BENCH_RUSTC BENCH_PROFILE BENCH_BUILD_COLD BENCH_BUILD_WARM BENCH_BUILD_RUN BENCH_BINARY_BYTES
BENCH_COMMIT=$(git rev-parse HEAD)
BENCH_DIRTY=$(git status --porcelain --untracked-files=no | awk '{print $2}' | paste -sd, - | sed 's/,/, /g')
BENCH_RUSTC=$(rustc -V)
# The release profile as Cargo.toml sets it: `strip = true, lto = "thin", …`.
BENCH_PROFILE=$(sed -n '/^\[profile.release\]/,/^\[/{/^[a-z]/p}' Cargo.toml | sed 's/^/`/; s/$/`/' | paste -sd, - | sed 's/,/, /g')
[[ -n $BENCH_DIRTY ]] && echo "bench: uncommitted changes ($BENCH_DIRTY): the report will say so"

if $cold; then
  # Cold: the product's release build with nothing cached (dependencies included).
  cold_dir=$TARGET_DIR/bench-cold-build
  rm -rf "$cold_dir"
  timed "\`cargo build --release --locked -p stsbridge --bin stsbridge\` into an empty target directory (every dependency compiled)" \
    env CARGO_TARGET_DIR="$cold_dir" cargo build --release --locked -p stsbridge --bin stsbridge
  BENCH_BUILD_COLD=$TIMED
  rm -rf "$cold_dir"
fi

# The binary measured (and the benchmark): its cache may be warm or cold; the report says which.
deps=$(find "$TARGET_DIR/release/deps" -name '*.rlib' 2>/dev/null | wc -l)
state="the release cache held $deps compiled dependencies beforehand"
[[ $deps -eq 0 ]] && state="the release cache was empty (cold)"
timed "\`cargo build --release --locked -p stsbridge --bin stsbridge -p stsbridge-bench --bin stsbridge-bench\`; $state" \
  cargo build --release --locked -p stsbridge --bin stsbridge -p stsbridge-bench --bin stsbridge-bench
BENCH_BUILD_RUN=$TIMED

if $cold; then
  # Warm: what an edit costs — the crate (library and binary) recompiled and linked with thin LTO.
  touch src/lib.rs
  timed "\`touch src/lib.rs\`, then the same build of stsbridge: the crate recompiled and linked (thin LTO), its dependencies cached" \
    cargo build --release --locked -p stsbridge --bin stsbridge
  BENCH_BUILD_WARM=$TIMED
fi

BIN=$TARGET_DIR/release/stsbridge
BENCH_BINARY_BYTES=$(stat -c %s "$BIN")
echo "binary: $BENCH_BINARY_BYTES bytes ($(numfmt --to=iec-i --suffix=B "$BENCH_BINARY_BYTES"), stripped by the release profile)"
mkdir -p "$TARGET_DIR/bench"
report=$TARGET_DIR/bench/BENCHMARKS.md
STSBRIDGE_BIN=$BIN "$TARGET_DIR/release/stsbridge-bench" ${args[@]+"${args[@]}"} --markdown "$report"
if $write; then
  cp "$report" BENCHMARKS.md
  echo "bench: wrote BENCHMARKS.md"
fi
