"""Step `unit tests`: the checks' own unit tests (scripts/infra_checks/tests), in a separate
interpreter, as `python -m unittest discover -s scripts/infra_checks/tests -t scripts` runs them.

Called by __main__.py before the checks, so scripts/validate-infra.sh (and CI) runs them; their
output is shown only under a FAIL line.
"""

import re
import sys
from pathlib import Path

from .common import CheckFailed, run

RAN = re.compile(r"^Ran (\d+) tests? in ([0-9.]+)s$", re.M)


def discover_command(scripts_dir):
    """The unittest command line running every test under SCRIPTS/infra_checks/tests."""
    scripts_dir = Path(scripts_dir)
    return [sys.executable, "-m", "unittest", "discover",
            "-s", str(scripts_dir / "infra_checks" / "tests"), "-t", str(scripts_dir)]


def summarize(rc, out, where):
    """The summary of a unittest run that exited `rc` and printed `out`; raises CheckFailed
    unless it passed and ran at least one test."""
    m = RAN.search(out)
    count = int(m.group(1)) if m else 0
    summary = "unit tests: %d test(s) in %s" % (count, where)
    if rc != 0 or count == 0:
        raise CheckFailed(summary + (" failed" if count else ", none ran"), out)
    return "%s passed (%.1f s)" % (summary, float(m.group(2)))


def check_unit_tests(scripts_dir, shown_as="scripts/infra_checks/tests"):
    """Runs the unit tests; returns the summary; raises CheckFailed."""
    rc, out = run(discover_command(scripts_dir))
    return summarize(rc, out, shown_as)
