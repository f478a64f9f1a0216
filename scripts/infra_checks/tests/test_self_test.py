"""Tests of self_test.py: breaking a copy (mutate, make_copy) and judging a case, with
stand-in checks (the real checks run on the real broken copies in the self-test itself)."""

import io
import unittest

from infra_checks.common import CheckFailed
from infra_checks.self_test import CASES, CannotBreak, Case, make_copy, mutate, run_case, self_test
from infra_checks.tests.fixtures import TempDirTestCase


class Mutate(TempDirTestCase):
    def test_replaces_the_first_match_only(self):
        path = self.write("f", "a: 1\na: 1\n")
        mutate(path, r"a: (\d)", r"b: \1")
        self.assertEqual(path.read_text(), "b: 1\na: 1\n")

    def test_newlines_in_the_replacement(self):
        path = self.write("f", "x\n    Properties:\n")
        mutate(path, r"(\n    Properties:\n)", r"\1      Extra: true\n")
        self.assertEqual(path.read_text(), "x\n    Properties:\n      Extra: true\n")

    def test_a_pattern_that_no_longer_matches(self):
        path = self.write("f", "abc")
        with self.assertRaisesRegex(CannotBreak, "no longer matches .*: update the self-test case"):
            mutate(path, "xyz", "q")

    def test_a_replacement_that_changes_nothing(self):
        path = self.write("f", "abc")
        with self.assertRaises(CannotBreak):
            mutate(path, "b", "b")


class MakeCopy(TempDirTestCase):
    def test_copies_what_the_checks_read_and_nothing_else(self):
        repo = self.subdir("repo")
        for name in ("infra/aws/a.yaml", "infra/azure/main.bicep", "host.json", "local.settings.json.example",
                     "targets.schema.json", "targets.example.json", "README.md", "docs/settings.md", "docs/img.png",
                     "HttpRotate/function.json", "src/lib.rs", "target/x", "Cargo.toml"):
            self.write("repo/" + name, name)
        make_copy(repo, self.dir / "copy")
        copied = sorted(str(p.relative_to(self.dir / "copy")) for p in (self.dir / "copy").rglob("*") if p.is_file())
        self.assertEqual(copied, ["HttpRotate/function.json", "README.md", "docs/settings.md", "host.json",
                                  "infra/aws/a.yaml", "infra/azure/main.bicep", "local.settings.json.example",
                                  "targets.example.json", "targets.schema.json"])

    def test_without_readme_or_docs(self):
        self.write("repo/infra/aws/a.yaml", "")
        self.write("repo/host.json", "{}")
        make_copy(self.dir / "repo", self.dir / "copy")
        self.assertTrue((self.dir / "copy" / "host.json").exists())


def rejects_with(marker):
    def check(_tree):
        raise CheckFailed("stand-in: rejected", "because of %s" % marker)
    return check


def accepts(_tree):
    return "stand-in: fine"


class BrokenCopy(TempDirTestCase):
    """A tiny repository and one case breaking it."""

    def setUp(self):
        super().setUp()
        self.write("repo/infra/azure/main.bicep", "httpsOnly: true\n")
        self.write("repo/host.json", "{}")
        self.repo, self.work = self.dir / "repo", self.subdir("work")
        self.case = Case("x", "https off", "infra/azure/main.bicep", "httpsOnly: true", "httpsOnly: false", "MARK")


class RunCase(BrokenCopy):
    def run_case(self, checks, case=None):
        return run_case(case or self.case, self.repo, self.repo / "src", self.work, checks)

    def test_rejected_for_the_expected_reason(self):
        self.assertIsNone(self.run_case({"x": rejects_with("MARK")}))

    def test_the_check_sees_the_broken_copy_not_the_repository(self):
        seen = []

        def check(tree):
            seen.append((tree.infra / "azure" / "main.bicep").read_text())
            raise CheckFailed("MARK")

        self.assertIsNone(self.run_case({"x": check}))
        self.assertEqual(seen, ["httpsOnly: false\n"])
        self.assertEqual((self.repo / "infra/azure/main.bicep").read_text(), "httpsOnly: true\n")

    def test_a_broken_copy_that_passes(self):
        got = self.run_case({"x": accepts})
        self.assertTrue(got.startswith("validate-infra: FAIL  self-test 'x: https off': the broken copy PASSED\n"))
        self.assertIn("        validate-infra: ok    stand-in: fine", got)

    def test_rejected_for_another_reason(self):
        got = self.run_case({"x": rejects_with("OTHER")})
        self.assertIn("rejected, but not for the expected reason ('MARK')", got)
        self.assertIn("because of OTHER", got)

    def test_a_case_that_cannot_break_its_copy(self):
        case = Case("x", "stale", "infra/azure/main.bicep", "nothing like it", "", "MARK")
        self.assertIn("self-test 'x: stale': cannot break the copy", self.run_case({"x": accepts}, case))

    def test_the_all_case_runs_every_check(self):
        case = Case("all", "whole run", "host.json", "{}", "[]", "MARK")
        self.assertIsNone(self.run_case({"a": accepts, "b": rejects_with("MARK")}, case))
        self.assertIn("PASSED", self.run_case({"a": accepts}, case))


class SelfTest(BrokenCopy):
    def test_summary_when_every_case_is_caught(self):
        out = io.StringIO()
        got = self_test(self.repo, self.repo / "src", self.work, out, [self.case, self.case], {"x": rejects_with("MARK")})
        self.assertEqual(got, "self-test: all 2 deliberately broken copies rejected for the expected reason")
        self.assertEqual(out.getvalue(), "")

    def test_failure_counts_the_cases_not_caught(self):
        out = io.StringIO()
        with self.assertRaises(CheckFailed) as cm:
            self_test(self.repo, self.repo / "src", self.work, out, [self.case, self.case], {"x": accepts})
        self.assertEqual(cm.exception.summary, "self-test: 2 of 2 broken copies not caught")
        self.assertEqual(out.getvalue().count("the broken copy PASSED"), 2)


class Cases(unittest.TestCase):
    def test_twenty_cases_with_distinct_names(self):
        self.assertEqual(len(CASES), 20)
        self.assertEqual(len({(c.check, c.name) for c in CASES}), 20)
        self.assertEqual([c.check for c in CASES].count("all"), 1)


if __name__ == "__main__":
    unittest.main()
