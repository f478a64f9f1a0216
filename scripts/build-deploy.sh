#!/usr/bin/env bash
# Builds the stsbridge binary the Azure Functions Linux workers can run and puts it at the app
# root as ./stsbridge (host.json's defaultExecutablePath; .funcignore keeps sources, target/ and
# the venvs out of the package). Then `func azure functionapp publish APP` (docs/deploy.md).
#
# Why zig: a binary linked on this machine asks for this machine's glibc, which may be newer than
# the workers'. `cargo zigbuild --target x86_64-unknown-linux-gnu.2.28` compiles and links (the
# C in aws-lc-sys and ring too) against glibc 2.28 stubs instead, so the binary needs at most
# GLIBC_2.28 whatever the build machine has. ziglang and cargo-zigbuild come from PyPI, pinned in
# scripts/requirements-deploy.txt. The pinned zig was verified with this project's dependency
# tree (aws-lc-sys, ring); zig 0.16's `zig ar` cannot create archives, which breaks every crate
# that builds C: change the pin only after a full build.
#
# Their venv lives OUTSIDE the clone, at a path fixed by the pins
# (~/.cache/stsbridge/venv-deploy-<hash>; STSBRIDGE_CACHE_DIR moves it): cargo-zigbuild's
# compiler and linker wrappers name the venv's absolute path, and that path is part of cargo's
# fingerprints, so a venv inside each fresh CI clone would rebuild every dependency every run.
#
# Where a musl Rust standard library exists (`rustup target add x86_64-unknown-linux-musl`), a
# static binary is the alternative, independent of any glibc (docs/deploy.md):
#   cargo zigbuild --locked --release --target x86_64-unknown-linux-musl -p stsbridge --bin stsbridge
#   cp "${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release/stsbridge" stsbridge
# (this machine has no musl standard library, so this script builds the glibc one).
#
# --check (what CI runs): a debug build with the same command and the same checks, without
# touching ./stsbridge: every GLIBC_ symbol version the binary needs is at most 2.28, and it
# runs (`stsbridge --version`). A release build (thin LTO) takes about twice as long.
#
# Honours CARGO_TARGET_DIR (CI keeps it outside the clone); zig's output is its own
# x86_64-unknown-linux-gnu/ subfolder there.
#
# Usage: scripts/build-deploy.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."

REQUIREMENTS=scripts/requirements-deploy.txt
# The venv's name follows the pins only (not the comments), so editing a comment rebuilds nothing.
PINS=$(grep -v '^\s*#' "$REQUIREMENTS" | sha256sum | cut -c1-12)
VENV=${STSBRIDGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stsbridge}/venv-deploy-$PINS
PY=$VENV/bin/python
TRIPLE=x86_64-unknown-linux-gnu
GLIBC_FLOOR=2.28
TARGET_DIR=${CARGO_TARGET_DIR:-target}

PROFILE=release
case "${1:-}" in
  --check) PROFILE=debug ;;
  "") ;;
  *) echo "usage: scripts/build-deploy.sh [--check]" >&2; exit 2 ;;
esac

say() { printf 'build-deploy: %s\n' "$*"; }
die() { printf 'build-deploy: %s\n' "$*" >&2; exit 1; }

setup_venv() {
  # The stamp is written last: a venv without it is an interrupted install, redone from scratch.
  [ -x "$PY" ] && [ -f "$VENV/.installed" ] && return 0
  local python=${PYTHON:-python3}
  command -v "$python" >/dev/null || die "$python not found"
  say "installing $REQUIREMENTS into $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$python" -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  touch "$VENV/.installed"
}

# Every GLIBC_x.y version the binary's dynamic symbols ask for must be at most the floor.
check_glibc_floor() {  # BINARY
  local needed newest
  needed=$(objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV) || true
  [ -n "$needed" ] || die "objdump -T found no GLIBC_ symbol versions in $1: not a glibc binary?"
  newest=$(tail -n 1 <<<"$needed")
  if [ "$(printf '%s\n%s\n' "$newest" "$GLIBC_FLOOR" | sort -V | tail -n 1)" != "$GLIBC_FLOOR" ]; then
    die "$1 needs GLIBC_$newest, above the floor $GLIBC_FLOOR: $(objdump -T "$1" | grep -F "GLIBC_$newest" | head -n 5)"
  fi
  say "ok: newest glibc symbol version needed is GLIBC_$newest (floor $GLIBC_FLOOR)"
}

command -v cargo >/dev/null || die "cargo not found"
command -v objdump >/dev/null || die "objdump not found (Debian: binutils)"
setup_venv
export PATH="$VENV/bin:$PATH"
# cargo-zigbuild runs zig as `$CARGO_ZIGBUILD_PYTHON_PATH -m ziglang` before it looks for a zig
# binary: this pins it to the venv's, never another zig that happens to be on PATH.
export CARGO_ZIGBUILD_PYTHON_PATH=$PY
zig_version=$("$PY" -m ziglang version) || die "the pinned zig does not run ($VENV)"

args=(zigbuild --locked --target "$TRIPLE.$GLIBC_FLOOR" -p stsbridge --bin stsbridge)
[ "$PROFILE" = release ] && args+=(--release)
say "cargo ${args[*]} (zig $zig_version, $PROFILE, target dir $TARGET_DIR)"
start=$SECONDS
cargo "${args[@]}"
say "built in $((SECONDS - start)) s"

binary=$TARGET_DIR/$TRIPLE/$PROFILE/stsbridge
[ -x "$binary" ] || die "$binary was not built"
check_glibc_floor "$binary"
version=$("$binary" --version) || die "$binary --version failed"
say "ok: $binary --version: $version"

if [ "$PROFILE" = release ]; then
  # Replace, never write into, a binary a local `func start` may be running.
  cp "$binary" stsbridge.new
  chmod 0755 stsbridge.new
  mv -f stsbridge.new stsbridge
  say "ok: ./stsbridge ($(du -h stsbridge | cut -f1)) is ready: func azure functionapp publish APP"
fi
