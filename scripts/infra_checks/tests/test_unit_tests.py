"""Tests of unit_tests.py: the discovery command and reading unittest's closing lines."""

import sys
import unittest

from infra_checks.common import CheckFailed
from infra_checks.unit_tests import discover_command, summarize


class Summarize(unittest.TestCase):
    def test_passed(self):
        self.assertEqual(summarize(0, "....\n---\nRan 4 tests in 1.234s\n\nOK\n", "t"),
                         "unit tests: 4 test(s) in t passed (1.2 s)")
        self.assertEqual(summarize(0, "Ran 1 test in 0.001s\n\nOK (skipped=1)\n", "t"),
                         "unit tests: 1 test(s) in t passed (0.0 s)")

    def test_failed(self):
        with self.assertRaises(CheckFailed) as cm:
            summarize(1, "F\nRan 1 test in 0.1s\n\nFAILED (failures=1)\n", "t")
        self.assertEqual(cm.exception.summary, "unit tests: 1 test(s) in t failed")
        self.assertIn("FAILED (failures=1)", cm.exception.details)

    def test_none_ran(self):
        with self.assertRaises(CheckFailed) as cm:
            summarize(0, "\nRan 0 tests in 0.000s\n\nOK\n", "t")
        self.assertEqual(cm.exception.summary, "unit tests: 0 test(s) in t, none ran")
        with self.assertRaises(CheckFailed):
            summarize(1, "ImportError: Start directory is not importable", "t")


class DiscoverCommand(unittest.TestCase):
    def test_same_interpreter_and_the_documented_arguments(self):
        self.assertEqual(discover_command("scripts"), [
            sys.executable, "-m", "unittest", "discover", "-s", "scripts/infra_checks/tests", "-t", "scripts"])


if __name__ == "__main__":
    unittest.main()
