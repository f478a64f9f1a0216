"""Check `cfn-lint`: every CloudFormation template in INFRA/aws, as cfn-lint judges it.

Called by runner.py (the `cfn-lint` line) and by self_test.py. policies.py runs cfn-lint again,
on the rendered copies of the templates, through lint().
"""

from pathlib import Path

from .common import CheckFailed, run, sorted_glob, tool


def lint(files, ignore=()):
    """Runs the pinned cfn-lint on `files`; returns (passed, its output)."""
    argv = [tool("cfn-lint")]
    if ignore:
        argv += ["--ignore-checks", *ignore]
    rc, out = run(argv + ["--", *map(str, files)])
    return rc == 0, out


def check_cfn_lint(infra):
    """infra: the directory holding aws/*.yaml. Returns the summary; raises CheckFailed."""
    infra = Path(infra)
    templates = sorted_glob(infra / "aws", "*.yaml")
    summary = "cfn-lint: %d template(s) in %s" % (len(templates), infra / "aws")
    if not templates:
        raise CheckFailed(summary, "no *.yaml template to lint")
    passed, out = lint(templates)
    if not passed:
        raise CheckFailed(summary, out)
    return summary
