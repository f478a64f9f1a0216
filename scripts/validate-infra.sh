#!/usr/bin/env bash
# Offline validation of the infrastructure code and the Functions host files, as CI runs it
# (scripts/test.sh): cfn-lint, the rendered !Sub policies, checkov, the Bicep parameters, the
# SchemaStore schemas, app settings against the docs, alert texts against src/, and a self-test
# of deliberately broken copies. The checks are the Python package scripts/infra_checks/ (its
# __init__.py describes each; its unit tests run first, in scripts/infra_checks/tests).
#
# Tools: pinned in scripts/requirements-infra.txt, installed into .venv-infra (its own venv:
# checkov's pins conflict with the test venv's awscli and moto). Reinstalled only when that file
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
REQUIREMENTS=scripts/requirements-infra.txt
PY=$VENV/bin/python
stamp=$VENV/.requirements.sha256
want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if ! [ -x "$PY" ] || ! [ -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python=${PYTHON:-python3}
  command -v "$python" >/dev/null || { echo "validate-infra: $python not found" >&2; exit 1; }
  echo "validate-infra: installing $REQUIREMENTS into $VENV (first run only: a minute or two)"
  "$python" -m venv "$VENV"
  printf '*\n' >"$VENV/.gitignore" # the venv ignores itself, so git never lists it as untracked
  "$PY" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  echo "$want" >"$stamp"
fi
# No __pycache__ left in scripts/ (the checks run once per CI run, so caching gains nothing).
PYTHONPATH=scripts PYTHONDONTWRITEBYTECODE=1 exec "$PY" -m infra_checks --started-at "$START" "$@"
