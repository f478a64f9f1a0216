#!/usr/bin/env bash
# Offline validation of the infrastructure code and the Functions host files, as CI runs it
# (scripts/test.sh): cfn-lint, the rendered !Sub policies, checkov, the Bicep parameters, the
# SchemaStore schemas, app settings against the docs, alert texts against src/, and a self-test
# of deliberately broken copies. The checks are the Python package scripts/infra_checks/ (its
# __init__.py describes each; its unit tests run first, in scripts/infra_checks/tests).
#
# Tools: the top-level pins are scripts/requirements-infra.txt; the whole transitive set, each
# package with its sha256, is scripts/requirements-infra.lock (scripts/lock-requirements.sh),
# installed with `pip install --require-hashes` into .venv-infra (its own venv: checkov's pins
# conflict with the test venv's awscli and moto). Recreated from scratch only when the lock
# changes (sha256 stamp, like scripts/setup.sh). Needs python3 and nothing from the network
# after the first install. `bicep build` and `what-if` need Azure tooling and run in your
# deployment pipeline instead (docs/deploy.md).
#
# Usage: scripts/validate-infra.sh [--no-self-test]
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  --no-self-test | "") ;;
  *) echo "usage: scripts/validate-infra.sh [--no-self-test]" >&2; exit 2 ;;
esac
START=$(date +%s)
VENV=.venv-infra
LOCK=scripts/requirements-infra.lock
PY=$VENV/bin/python
stamp=$VENV/.requirements.sha256
want=$(sha256sum "$LOCK" | cut -d' ' -f1)
if ! [ -x "$PY" ] || ! [ -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python=${PYTHON:-python3}
  command -v "$python" >/dev/null || { echo "validate-infra: $python not found" >&2; exit 1; }
  echo "validate-infra: installing $LOCK into $VENV (first run only: a minute or two)"
  "$python" -m venv --clear "$VENV"
  printf '*\n' >"$VENV/.gitignore" # the venv ignores itself, so git never lists it as untracked
  "$PY" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$LOCK"
  echo "$want" >"$stamp"
fi
# No __pycache__ left in scripts/ (the checks run once per CI run, so caching gains nothing).
PYTHONPATH=scripts PYTHONDONTWRITEBYTECODE=1 exec "$PY" -m infra_checks --started-at "$START" "$@"
