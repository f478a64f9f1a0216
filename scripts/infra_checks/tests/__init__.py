"""Unit tests of the infra_checks package and of scripts/demo_helpers.py (standard-library
unittest, small inputs written into temporary directories).

Run by the `unit tests` step of `python -m infra_checks` (scripts/validate-infra.sh), or alone:
`.venv-infra/bin/python -m unittest discover -s scripts/infra_checks/tests -t scripts`.
"""
