#!/usr/bin/env bash
# Installs what the tests and the local demo need beyond Rust: a Python venv in .venv with the
# pinned packages of scripts/requirements-test.txt (moto, the Azure SDK for Python, ...), and
# Azurite (the Azure Storage emulator, for the rotation lease's tests) from npm into .azurite.
# Idempotent: reinstalls only when the requirements file or the Azurite pin changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "setup: $python not found (Python 3.9+ is needed for moto)" >&2; exit 1; }
# Azurite 3.35.0 is the last release that runs on Node 20 (later ones need Node 22).
azurite=azurite@3.35.0
if [ ! -x .azurite/node_modules/.bin/azurite-blob ] || [ "$(cat .azurite/.pin 2>/dev/null)" != "$azurite" ]; then
  command -v npm >/dev/null || { echo "setup: npm not found (Node 20+ is needed for Azurite, the storage emulator)" >&2; exit 1; }
  echo "setup: installing $azurite into .azurite" >&2
  npm install --prefix .azurite --no-audit --no-fund --silent "$azurite"
  echo "$azurite" > .azurite/.pin
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum scripts/requirements-test.txt | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup: creating .venv with $(cut -d' ' -f1 <<<"$(grep -vE '^\s*(#|$)' scripts/requirements-test.txt | tr '\n' ' ')")" >&2
"$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
echo "$want" > "$stamp"
