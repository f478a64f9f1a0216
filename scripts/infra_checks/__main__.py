"""`python -m infra_checks [--no-self-test]`: the whole offline validation of this repository.

Run by scripts/validate-infra.sh in .venv-infra (which has the pinned tools), with scripts/ on
PYTHONPATH: the unit tests of these checks, every check of runner.CHECKS, then the self-test of
broken copies; one `validate-infra: ok    ...` or `validate-infra: FAIL  ...` line each, then
`validate-infra: all checks passed (N s)` and exit 0, or `validate-infra: FAILED (N s)` and
exit 1.
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from .common import say_line
from .runner import Tree, run_check, validate
from .self_test import self_test
from .unit_tests import check_unit_tests

SCRIPTS = Path(__file__).resolve().parent.parent
REPO = SCRIPTS.parent


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m infra_checks", description=__doc__.split("\n")[0])
    p.add_argument("--no-self-test", action="store_true", help="skip the self-test of broken copies")
    p.add_argument("--started-at", type=float, metavar="EPOCH_SECONDS",
                   help="count the time in the last line from then (scripts/validate-infra.sh "
                        "passes its own start, so a first-run install counts too)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = args.started_at if args.started_at is not None else time.time()
    # Paths as the messages show them: relative to the current directory (the repository root,
    # where scripts/validate-infra.sh runs this), so they read `infra/aws`, not /home/...
    repo = Path(os.path.relpath(REPO))
    out = sys.stdout
    # The scratch directory goes on SIGTERM too (CI's timeout), as the shell's EXIT trap did.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="validate-infra."))
    try:
        ok, lines = run_check("unit_tests", check_unit_tests, SCRIPTS)
        out.write(lines)
        out.flush()
        ok = validate(Tree.of(repo, repo / "src", work), out) and ok
        if not args.no_self_test:
            passed, lines = run_check("self_test", self_test, repo, repo / "src", work, out)
            out.write(lines)
            ok = ok and passed
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = int(time.time() - started)
    if ok:
        print(say_line("all checks passed (%d s)" % elapsed), flush=True)
        return 0
    print(say_line("FAILED (%d s)" % elapsed), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
