"""The list of checks and how a validation runs them: one line per check, every check run even
after a failure (so one run reports every problem).

Used by __main__.py (the validation of this repository) and self_test.py (the validation of
each broken copy); unit-tested in tests/test_runner.py with stand-in checks.
"""

import traceback
from dataclasses import dataclass
from pathlib import Path

from . import (alert_texts, bicep_names, bicep_parameters, certificate_policy, cfn_lint, checkov_scan,
               flex_site_config, policies, schemas, settings, targets_schema)
from .common import CheckFailed, failed_line, indent, ok_line


@dataclass(frozen=True)
class Tree:
    """What a validation looks at, and where it may write."""

    root: Path   # host.json, */function.json, local.settings.json.example, targets.*.json, README.md, docs/
    infra: Path  # aws/*.yaml, azure/*.bicep, azure/*.parameters*.json, azure/*certificate-policy*.json
    src: Path    # the app's source (the alert texts); always this repository's src/
    work: Path   # scratch space (rendered templates, resolved function.json), removed afterwards

    @classmethod
    def of(cls, root, src, work):
        root = Path(root)
        return cls(root=root, infra=root / "infra", src=Path(src), work=Path(work))


# name (as the self-test cases name them) -> the check applied to a Tree.
CHECKS = {
    "cfn_lint": lambda t: cfn_lint.check_cfn_lint(t.infra),
    "policies": lambda t: policies.check_policies(t.infra, t.work),
    "checkov": lambda t: checkov_scan.check_checkov(t.infra),
    "bicep_parameters": lambda t: bicep_parameters.check_bicep_parameters(t.infra),
    "flex_site_config": lambda t: flex_site_config.check_flex_site_config(t.infra),
    "bicep_names": lambda t: bicep_names.check_bicep_names(t.infra),
    "certificate_policy": lambda t: certificate_policy.check_certificate_policies(t.infra),
    "schemas": lambda t: schemas.check_schemas(t.root, t.work),
    "targets_schema": lambda t: targets_schema.check_targets_schema(t.root),
    "settings": lambda t: settings.check_settings(t.infra, t.root),
    "alert_texts": lambda t: alert_texts.check_alert_texts(t.infra, t.src),
}


def run_check(name, check, *args):
    """Runs one check; returns (passed, its output lines). A check that crashes fails, with the
    traceback as its details."""
    try:
        summary = check(*args)
    except CheckFailed as e:
        return False, failed_line(e.summary) + "\n" + indent(e.details)
    except Exception as e:  # a bug in the check, or a tool missing: report it like a failure
        return False, (failed_line("%s: crashed: %s: %s" % (name.replace("_", " "), type(e).__name__, e))
                       + "\n" + indent(traceback.format_exc()))
    return True, ok_line(summary) + "\n"


def validate(tree, out, checks=None):
    """Every check of `checks` (default CHECKS) on `tree`, each result written to `out` as it
    comes. Returns True if all passed."""
    passed = True
    for name, check in (checks or CHECKS).items():
        ok, lines = run_check(name, check, tree)
        out.write(lines)
        out.flush()
        passed = passed and ok
    return passed
