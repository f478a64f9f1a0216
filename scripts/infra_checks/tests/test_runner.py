"""Tests of runner.py with stand-in checks: the output lines, a crash counted as a failure,
every check run after a failure."""

import io
import unittest
from pathlib import Path

from infra_checks.common import CheckFailed
from infra_checks.runner import CHECKS, Tree, run_check, validate
from infra_checks.self_test import CASES


def passes(_tree):
    return "first: fine"


def fails(_tree):
    raise CheckFailed("second: 1 thing", "line one\nline two")


def crashes(_tree):
    raise KeyError("boom")


class RunCheck(unittest.TestCase):
    def test_pass(self):
        self.assertEqual(run_check("first", passes, None), (True, "validate-infra: ok    first: fine\n"))

    def test_failure_with_details_indented(self):
        self.assertEqual(run_check("second", fails, None), (False, "validate-infra: FAIL  second: 1 thing\n"
                                                                   "        line one\n        line two\n"))

    def test_a_crash_is_a_failure_with_the_traceback(self):
        passed, lines = run_check("alert_texts", crashes, None)
        self.assertFalse(passed)
        self.assertTrue(lines.startswith("validate-infra: FAIL  alert texts: crashed: KeyError: 'boom'\n"))
        self.assertIn("        Traceback", lines)


class Validate(unittest.TestCase):
    def test_every_check_runs_after_a_failure(self):
        out = io.StringIO()
        ran = []

        def last(_tree):
            ran.append("last")
            return "last: fine"

        self.assertFalse(validate(None, out, {"a": fails, "b": crashes, "c": last}))
        self.assertEqual(ran, ["last"])
        lines = [line for line in out.getvalue().splitlines() if line.startswith("validate-infra")]
        self.assertEqual(len(lines), 3)
        self.assertEqual(lines[-1], "validate-infra: ok    last: fine")

    def test_all_passing(self):
        out = io.StringIO()
        self.assertTrue(validate(None, out, {"a": passes, "b": passes}))
        self.assertEqual(out.getvalue().count("ok    first: fine"), 2)


class Checks(unittest.TestCase):
    def test_the_order_is_the_shell_script_order(self):
        self.assertEqual(list(CHECKS), ["cfn_lint", "policies", "checkov", "bicep_parameters", "flex_site_config",
                                        "bicep_names", "certificate_policy", "schemas", "targets_schema",
                                        "settings", "alert_texts"])

    def test_every_self_test_case_names_a_check(self):
        for case in CASES:
            self.assertIn(case.check, list(CHECKS) + ["all"], case)

    def test_every_check_has_a_self_test_case(self):
        self.assertEqual({c.check for c in CASES} - {"all"}, set(CHECKS))

    def test_tree_of_a_root(self):
        t = Tree.of("repo", "repo/src", "/tmp/w")
        self.assertEqual((t.root, t.infra, t.src, t.work),
                         (Path("repo"), Path("repo/infra"), Path("repo/src"), Path("/tmp/w")))


if __name__ == "__main__":
    unittest.main()
