"""Tests of common.py: the output lines, CheckFailed, running a tool."""

import os
import sys
import unittest
from pathlib import Path

from infra_checks.common import (CheckFailed, failed_line, indent, ok_line, run, say_line,
                                 sorted_glob, tool)
from infra_checks.tests.fixtures import TempDirTestCase


class OutputLines(unittest.TestCase):
    def test_line_formats_match_the_shell_script(self):
        self.assertEqual(ok_line("cfn-lint: 2 template(s)"), "validate-infra: ok    cfn-lint: 2 template(s)")
        self.assertEqual(failed_line("checkov: x"), "validate-infra: FAIL  checkov: x")
        self.assertEqual(say_line("all checks passed (3 s)"), "validate-infra: all checks passed (3 s)")

    def test_indent_indents_every_line_by_eight(self):
        self.assertEqual(indent("a\nb\n"), "        a\n        b\n")
        self.assertEqual(indent("a\nb"), "        a\n        b\n")

    def test_indent_of_nothing_is_nothing(self):
        self.assertEqual(indent(""), "")


class CheckFailedOutput(unittest.TestCase):
    def test_output_is_summary_then_details(self):
        e = CheckFailed("policies: 1 document", "first\nsecond")
        self.assertEqual(str(e), "policies: 1 document")
        self.assertEqual(e.output(), "policies: 1 document\nfirst\nsecond")

    def test_output_without_details_is_the_summary(self):
        self.assertEqual(CheckFailed("self-test: 1 of 13").output(), "self-test: 1 of 13")


class Tools(TempDirTestCase):
    def test_tool_is_beside_the_interpreter(self):
        # In .venv-infra: .venv-infra/bin/cfn-lint beside .venv-infra/bin/python.
        self.assertEqual(Path(tool("python")).parent, Path(sys.executable).parent)

    def test_run_merges_stdout_and_stderr_and_returns_the_exit_code(self):
        rc, out = run([sys.executable, "-c", "import sys; print('out'); sys.stderr.write('err\\n'); sys.exit(3)"])
        self.assertEqual(rc, 3)
        self.assertIn("out", out)
        self.assertIn("err", out)

    def test_run_in_a_directory(self):
        rc, out = run([sys.executable, "-c", "import os; print(os.getcwd())"], cwd=self.dir)
        self.assertEqual((rc, os.path.realpath(out.strip())), (0, os.path.realpath(self.dir)))

    def test_sorted_glob_sorts(self):
        for name in ("b.yaml", "a.yaml", "c.json"):
            self.write(name, "")
        self.assertEqual([p.name for p in sorted_glob(self.dir, "*.yaml")], ["a.yaml", "b.yaml"])
        self.assertEqual(sorted_glob(self.dir / "missing", "*.yaml"), [])


if __name__ == "__main__":
    unittest.main()
