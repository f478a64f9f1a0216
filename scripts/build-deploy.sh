#!/usr/bin/env bash
# Builds the stsbridge binary the Azure Functions Linux workers can run and puts it at the app
# root as ./stsbridge (host.json's defaultExecutablePath); with --zip, also the deployment
# package: stsbridge.zip, and the same files in .deploy/ for Core Tools (docs/deploy.md).
#
# Why zig, and where its pinned venv lives: scripts/zig-cargo.sh, which this script builds with
# (`cargo zigbuild --target x86_64-unknown-linux-gnu.2.28`: the binary needs at most GLIBC_2.28,
# whatever glibc the build machine has).
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
# --zip: the release build as without options, then the package from an explicit allow-list
# (scripts/package.py): host.json, TimerRotate/function.json, HttpRotate/function.json, the
# binary as `stsbridge` with mode 0755 in the zip, and targets.json when the root has one.
# Nothing else in the working tree can end up in it. It prints the package's files.
#
# --binary PATH: use a binary built elsewhere (CI passes its glibc-2.28 build): nothing is
# compiled and no venv is needed; the same checks run on PATH, then it is packaged (alone or
# with --zip) or only checked (with --check). ./stsbridge is left alone.
#
# Honours CARGO_TARGET_DIR (CI keeps it outside the clone); zig's output is its own
# x86_64-unknown-linux-gnu/ subfolder there.
#
# Usage: scripts/build-deploy.sh [--check | --zip] [--binary PATH]
set -euo pipefail
caller_dir=$PWD   # --binary PATH is relative to where the script was called from
cd "$(dirname "$0")/.."

TRIPLE=x86_64-unknown-linux-gnu
GLIBC_FLOOR=2.28
TARGET_DIR=${CARGO_TARGET_DIR:-target}
ZIP=stsbridge.zip
STAGE=.deploy

usage() { echo "usage: scripts/build-deploy.sh [--check | --zip] [--binary PATH]" >&2; exit 2; }
PROFILE=release
MODE=install     # install (./stsbridge), check, zip
BINARY=
while [ $# -gt 0 ]; do
  case "$1" in
    --check) [ "$MODE" = install ] || usage; MODE=check; PROFILE=debug ;;
    --zip) [ "$MODE" = install ] || usage; MODE=zip ;;
    --binary) [ $# -ge 2 ] && [ -n "$2" ] && [ -z "$BINARY" ] || usage
      case "$2" in /*) BINARY=$2 ;; *) BINARY=$caller_dir/$2 ;; esac
      shift ;;
    *) usage ;;
  esac
  shift
done
# --binary alone packages: there is nothing to build, and ./stsbridge is not replaced by it.
[ -n "$BINARY" ] && [ "$MODE" = install ] && MODE=zip

say() { printf 'build-deploy: %s\n' "$*"; }
die() { printf 'build-deploy: %s\n' "$*" >&2; exit 1; }

# Every GLIBC_x.y version the binary's dynamic symbols ask for must be at most the floor. A
# statically linked binary (the musl build of docs/deploy.md, given with --binary) needs none.
check_glibc_floor() {  # BINARY
  local needed newest
  needed=$(objdump -T "$1" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV) || true
  if [ -z "$needed" ]; then
    objdump -p "$1" >/dev/null 2>&1 || die "$1: objdump cannot read it: not an ELF binary?"
    if objdump -p "$1" | grep -qE '^\s*(NEEDED|INTERP)'; then
      die "objdump -T found no GLIBC_ symbol versions in $1, yet it is dynamically linked: not a glibc binary?"
    fi
    say "ok: $1 is statically linked: it needs no glibc"
    return 0
  fi
  newest=$(tail -n 1 <<<"$needed")
  if [ "$(printf '%s\n%s\n' "$newest" "$GLIBC_FLOOR" | sort -V | tail -n 1)" != "$GLIBC_FLOOR" ]; then
    die "$1 needs GLIBC_$newest, above the floor $GLIBC_FLOOR: $(objdump -T "$1" | grep -F "GLIBC_$newest" | head -n 5)"
  fi
  say "ok: newest glibc symbol version needed is GLIBC_$newest (floor $GLIBC_FLOOR)"
}

command -v objdump >/dev/null || die "objdump not found (Debian: binutils)"

if [ -n "$BINARY" ]; then
  [ -f "$BINARY" ] && [ -x "$BINARY" ] || die "--binary $BINARY: not an executable file"
  binary=$BINARY
  say "using $binary (nothing is compiled)"
else
  args=(zigbuild --locked -p stsbridge --bin stsbridge)
  [ "$PROFILE" = release ] && args+=(--release)
  say "scripts/zig-cargo.sh ${args[*]} ($PROFILE, target dir $TARGET_DIR)"
  start=$SECONDS
  scripts/zig-cargo.sh "${args[@]}"
  say "built in $((SECONDS - start)) s"
  binary=$TARGET_DIR/$TRIPLE/$PROFILE/stsbridge
  [ -x "$binary" ] || die "$binary was not built"
fi

check_glibc_floor "$binary"
version=$("$binary" --version) || die "$binary --version failed"
say "ok: $binary --version: ${version%%$'\n'*}"

if [ -z "$BINARY" ] && [ "$PROFILE" = release ]; then
  # Replace, never write into, a binary a local `func start` may be running.
  cp "$binary" stsbridge.new
  chmod 0755 stsbridge.new
  mv -f stsbridge.new stsbridge
  say "ok: ./stsbridge ($(du -h stsbridge | cut -f1)) is ready"
fi

if [ "$MODE" = zip ]; then
  command -v python3 >/dev/null || die "python3 not found"
  say "packaging $ZIP (and $STAGE/, the same files, for Core Tools) from the allow-list:"
  python3 scripts/package.py build --binary "$binary" --zip "$ZIP" --stage "$STAGE" \
    || die "packaging failed"
  say "ok: $ZIP ($(du -h "$ZIP" | cut -f1)): az functionapp deployment source config-zip -g RG -n APP --src $ZIP"
elif [ "$MODE" = install ]; then
  say "next: scripts/build-deploy.sh --zip, then publish it (docs/deploy.md)"
fi
