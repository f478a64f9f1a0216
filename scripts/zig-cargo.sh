#!/usr/bin/env bash
# cargo for the Azure Functions Linux workers' glibc floor: `cargo-zigbuild SUBCOMMAND --target
# x86_64-unknown-linux-gnu.2.28 ARGS...` with the pinned zig (scripts/requirements-deploy.lock).
#
#   scripts/zig-cargo.sh zigbuild --locked -p stsbridge --bin stsbridge [--release]  # the deployment build
#   scripts/zig-cargo.sh test --workspace --locked                                   # what scripts/test.sh runs
#   scripts/zig-cargo.sh clippy --workspace --all-targets --locked -- -D warnings    # what scripts/lint.sh runs
#
# Why one target for all three (issue #28): the SDKs (and aws-lc-sys's C) compile once per target
# and compiler, so the tests, the lints and the deployment check built for the same target with
# the same zig share their dependencies' build scripts and, for the test build and the deployment
# check, the whole compilation: the e2e tests run the very binary the glibc check then reads
# ($CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/debug/stsbridge). A binary for an older glibc runs on
# this machine's newer one.
#
# Why zig: a binary linked on this machine asks for this machine's glibc, which may be newer than
# the workers'; `--target x86_64-unknown-linux-gnu.2.28` compiles and links (the C in aws-lc-sys
# too) against glibc 2.28 stubs instead. ziglang and cargo-zigbuild come from PyPI: their pins
# are scripts/requirements-deploy.txt, the locked set (sha256 hashes, `pip install
# --require-hashes`) scripts/requirements-deploy.lock. zig 0.16's `zig ar` cannot create archives,
# which breaks every crate that builds C: change the pin only after a full build.
#
# Their venv lives OUTSIDE the clone, at a path fixed by the top-level pins
# (~/.cache/stsbridge/venv-deploy-<hash>; STSBRIDGE_CACHE_DIR moves it): cargo-zigbuild's compiler
# and linker wrappers name the venv's absolute path, and that path is part of cargo's
# fingerprints, so a venv inside each fresh CI clone would rebuild every dependency every run. It
# is reinstalled in place (same path) whenever the lock changes.
#
# Outputs go to $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/{debug,release}/ (target/ by default).
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 1 ] || { echo "usage: scripts/zig-cargo.sh SUBCOMMAND [ARGS...]" >&2; exit 2; }
REQUIREMENTS=scripts/requirements-deploy.txt
LOCK=scripts/requirements-deploy.lock
# The venv's name follows the top-level pins only (not the comments, not the lock), so editing a
# comment or re-locking rebuilds nothing.
PINS=$(grep -v '^\s*#' "$REQUIREMENTS" | sha256sum | cut -c1-12)
VENV=${STSBRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stsbridge}/venv-deploy-$PINS
PY=$VENV/bin/python
TARGET=x86_64-unknown-linux-gnu.2.28

die() { printf 'zig-cargo: %s\n' "$*" >&2; exit 1; }
command -v cargo >/dev/null || die "cargo not found"

# The stamp (the lock's sha256) is written last: a venv without it, or with another lock's, is
# reinstalled from scratch at the same path.
want=$(sha256sum "$LOCK" | cut -d' ' -f1)
if ! [ -x "$PY" ] || [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$want" ]; then
  python=${PYTHON:-python3}
  command -v "$python" >/dev/null || die "$python not found"
  echo "zig-cargo: installing $LOCK into $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$python" -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$LOCK"
  echo "$want" >"$VENV/.installed"
fi
export PATH="$VENV/bin:$PATH"
# cargo-zigbuild runs zig as `$CARGO_ZIGBUILD_PYTHON_PATH -m ziglang` before it looks for a zig
# binary: this pins it to the venv's, never another zig that happens to be on PATH.
export CARGO_ZIGBUILD_PYTHON_PATH=$PY
"$PY" -m ziglang version >/dev/null || die "the pinned zig does not run ($VENV)"

subcommand=$1
shift
# Flags after `--` belong to the tool (clippy's lints, the test harness): the target goes before.
exec cargo-zigbuild "$subcommand" --target "$TARGET" "$@"
