#!/usr/bin/env bash
# Regenerates the locked Python requirements from their human-readable inputs:
#   scripts/requirements-test.txt   -> scripts/requirements-test.lock   (.venv, scripts/setup.sh)
#   scripts/requirements-infra.txt  -> scripts/requirements-infra.lock  (.venv-infra, scripts/validate-infra.sh)
#   scripts/requirements-deploy.txt -> scripts/requirements-deploy.lock (zig, scripts/build-deploy.sh)
# Each .lock pins the whole transitive set, every package with the sha256 of each of its files
# on PyPI, and the scripts install it with `pip install --require-hashes`: what CI installs is
# exactly what was reviewed, and a file changed on the index (or a new transitive release) fails
# the install instead of slipping in. The .txt files keep the top-level pins and why each is
# there; edit those, then run this script and commit both.
#
# pip-tools runs from a throw-away venv under /tmp (pinned below, nothing of it is committed).
# Existing pins of the .lock files are kept where the inputs still allow them (pip-compile's
# default); pass --upgrade to move every transitive pin to the newest allowed release. Resolved
# for the Python running this script (the lock's header names its version; CI uses 3.11) on
# Linux x86_64; the hashes cover every file of each pinned version, other platforms' wheels
# included.
#
# Usage: scripts/lock-requirements.sh [--upgrade] [test|infra|deploy]...   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."

PIP_TOOLS=pip-tools==7.7.0
PIP=pip==26.3
python=${PYTHON:-python3}
extra=()
sets=()
for arg in "$@"; do
  case "$arg" in
    --upgrade) extra+=(--upgrade) ;;
    test | infra | deploy) sets+=("$arg") ;;
    *) echo "usage: scripts/lock-requirements.sh [--upgrade] [test|infra|deploy]..." >&2; exit 2 ;;
  esac
done
[ ${#sets[@]} -gt 0 ] || sets=(test infra deploy)

tools=$(mktemp -d "${TMPDIR:-/tmp}/stsbridge-lock.XXXXXX")
trap 'rm -rf "$tools"' EXIT
"$python" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$PIP" "$PIP_TOOLS"

for set in "${sets[@]}"; do
  echo "lock-requirements: scripts/requirements-$set.txt -> scripts/requirements-$set.lock" >&2
  # --allow-unsafe: pin setuptools/pip too when something needs them, or --require-hashes
  # refuses the install; --strip-extras: pins the extras' packages themselves (moto[server]);
  # --no-emit-*: the lock names no index or local wheel directory of the machine that made it.
  # CUSTOM_COMPILE_COMMAND: the regeneration command the .lock's header names.
  CUSTOM_COMPILE_COMMAND="scripts/lock-requirements.sh $set  (edit scripts/requirements-$set.txt, not this file)" \
    "$tools/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-trusted-host --no-emit-find-links "${extra[@]}" \
    --output-file "scripts/requirements-$set.lock" "scripts/requirements-$set.txt"
done
