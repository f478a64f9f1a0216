"""What every check shares: the failure type, the output lines, and running a pinned tool.

Imported by every check module, by runner.py (which prints the results) and by self_test.py.
A check returns its one-line summary (printed after `validate-infra: ok    `) or raises
CheckFailed with the summary and the details that explain it (printed indented under
`validate-infra: FAIL  `), the output format scripts/validate-infra.sh has always had.
Standard library only.
"""

import subprocess
import sysconfig
from pathlib import Path

PREFIX = "validate-infra: "
# The details under a FAIL line are indented by this much, so the line they explain stands out.
INDENT = " " * 8


class CheckFailed(Exception):
    """A check found a problem: `summary` is the FAIL line, `details` the lines explaining it."""

    def __init__(self, summary, details=""):
        super().__init__(summary)
        self.summary = summary
        self.details = details

    def output(self):
        """The summary and the details as one text, as the check's log shows them."""
        return self.summary + ("\n" + self.details if self.details else "")


def indent(text):
    """Every line of `text` indented under the FAIL line it explains; nothing for no text."""
    return "".join(INDENT + line + "\n" for line in text.splitlines())


def say_line(message):
    return PREFIX + message


def ok_line(summary):
    return PREFIX + "ok    " + summary


def failed_line(summary):
    return PREFIX + "FAIL  " + summary


def tool(name):
    """The path of a console script installed beside this interpreter (.venv-infra/bin/NAME)."""
    return str(Path(sysconfig.get_path("scripts")) / name)


def run(argv, cwd=None):
    """Runs a tool; returns (exit code, stdout and stderr as one text), as `cmd >out 2>&1`."""
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, text=True)
    return p.returncode, p.stdout


def sorted_glob(directory, pattern):
    """The files of `directory` matching `pattern`, sorted (like a shell glob), as Paths."""
    return sorted(Path(directory).glob(pattern))
