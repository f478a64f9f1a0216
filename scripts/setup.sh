#!/usr/bin/env bash
# Installs what the tests and the local demo need beyond Rust, each from a locked file:
# - a Python venv in .venv with scripts/requirements-test.lock (moto, the Azure SDK for Python,
#   the AWS CLI ... and every package they pull in, each with its sha256), installed with
#   `pip install --require-hashes`; the top-level pins and why each is there are
#   scripts/requirements-test.txt (scripts/lock-requirements.sh turns one into the other);
# - Azurite (the Azure Storage emulator, for the rotation lease's tests) and its whole
#   dependency tree as scripts/azurite/package-lock.json pins it (sha512 integrity of every
#   package), installed with `npm ci` into .azurite/; the test bed runs
#   .azurite/node_modules/.bin/azurite-blob.
# Idempotent: each is reinstalled from scratch only when its locked file changed (a sha256 stamp
# inside the install), so a package dropped from a lock does not linger.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "setup: $python not found (Python 3.9+ is needed for moto)" >&2; exit 1; }

# Azurite 3.35.0 is the last release that runs on Node 20 (later ones need Node 22).
# --ignore-scripts: nothing in the tree has an install script (the lock says which would); a
# new one should be a decision, not a side effect.
azurite_lock=scripts/azurite
azurite_want=$(cat "$azurite_lock/package.json" "$azurite_lock/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ ! -x .azurite/node_modules/.bin/azurite-blob ] || [ "$(cat .azurite/.lock.sha256 2>/dev/null)" != "$azurite_want" ]; then
  command -v npm >/dev/null || { echo "setup: npm not found (Node 20+ is needed for Azurite, the storage emulator)" >&2; exit 1; }
  echo "setup: installing Azurite ($azurite_lock/package-lock.json) into .azurite" >&2
  rm -rf .azurite
  mkdir -p .azurite
  cp "$azurite_lock/package.json" "$azurite_lock/package-lock.json" .azurite/
  (cd .azurite && npm ci --no-audit --no-fund --silent --ignore-scripts)
  echo "$azurite_want" > .azurite/.lock.sha256
fi

lock=scripts/requirements-test.lock
stamp=.venv/.requirements.sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup: creating .venv from $lock ($(grep -vE '^\s*(#|$)' scripts/requirements-test.txt | tr '\n' ' ' | sed 's/ $//') and what they need)" >&2
"$python" -m venv --clear .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"
echo "$want" > "$stamp"
