"""Tests of checkov_scan.py: judging checkov's JSON report (small hand-written reports), and the
check's handling of checkov's exit codes with the scan stubbed (checkov itself takes seconds; the
self-test runs it on real broken copies)."""

import json
import unittest
from unittest import mock

from infra_checks import checkov_scan
from infra_checks.checkov_scan import expected_files, judge_report
from infra_checks.common import CheckFailed
from infra_checks.tests.fixtures import TempDirTestCase

REASON = "a reason long enough to count"


def result(file_path, check_id="CKV_AZURE_1", **extra):
    r = {"check_id": check_id, "check_name": "Ensure something", "resource": "Microsoft.Web/sites.app",
         "file_path": file_path, "file_line_range": [1, 9]}
    r.update(extra)
    return r


def report(kind="bicep", passed=(), failed=(), skipped=(), parsing_errors=(), summary=None):
    return {"check_type": kind,
            "results": {"passed_checks": list(passed), "failed_checks": list(failed),
                        "skipped_checks": list(skipped), "parsing_errors": list(parsing_errors)},
            "summary": summary or {}}


class JudgeReport(unittest.TestCase):
    def test_all_passed_and_every_template_reported(self):
        data = [report(passed=[result("/azure/main.bicep")]),
                report("cloudformation", passed=[result("/aws/a.yaml")],
                       skipped=[result("/aws/a.yaml", check_result={"suppress_comment": REASON})])]
        self.assertEqual(judge_report(data, ["/azure/main.bicep", "/aws/a.yaml"]),
                         ([], "2 template(s), 2 passed, 1 skipped with a reason, 0 failed"))

    def test_a_single_framework_report_is_an_object(self):
        problems, summary = judge_report(report(passed=[result("/azure/main.bicep")]), ["/azure/main.bicep"])
        self.assertEqual(problems, [])
        self.assertEqual(summary, "1 template(s), 1 passed, 0 skipped with a reason, 0 failed")

    def test_a_failed_check_is_a_problem(self):
        problems, summary = judge_report(report(failed=[result("/azure/main.bicep", "CKV_AZURE_70")]),
                                         ["/azure/main.bicep"])
        self.assertEqual(problems, ["bicep: CKV_AZURE_70 failed: Ensure something -- Microsoft.Web/sites.app "
                                    "in /azure/main.bicep lines [1, 9]"])
        self.assertTrue(summary.endswith("1 failed"))

    def test_a_skip_needs_a_written_reason(self):
        skips = [result("/azure/main.bicep", "CKV_A", check_result={"suppress_comment": "No comment provided"}),
                 result("/azure/main.bicep", "CKV_B", check_result={"suppress_comment": "too short"}),
                 result("/azure/main.bicep", "CKV_C"),
                 result("/azure/main.bicep", "CKV_D", check_result={"suppress_comment": REASON})]
        problems, _ = judge_report(report(skipped=skips), ["/azure/main.bicep"])
        self.assertEqual([p.split()[1] for p in problems], ["CKV_A", "CKV_B", "CKV_C"])
        self.assertIn("skipped without a reason (write checkov:skip=CKV_A:<why>)", problems[0])

    def test_parsing_errors_and_missing_templates_are_problems(self):
        data = [report(parsing_errors=["/abs/infra/azure/main.bicep"]),
                report("cloudformation", summary={"parsing_errors": 2})]
        problems, _ = judge_report(data, ["/azure/main.bicep"])
        self.assertEqual(problems, [
            "bicep: could not parse /abs/infra/azure/main.bicep",
            "cloudformation: could not parse 2 file(s)",
            "no checkov result for /azure/main.bicep (not parsed, or not recognised as a template)",
        ])

    def test_entries_without_results_are_ignored(self):
        self.assertEqual(judge_report([{"check_type": "x"}, "junk"], []),
                         ([], "0 template(s), 0 passed, 0 skipped with a reason, 0 failed"))


class CheckCheckov(TempDirTestCase):
    def setUp(self):
        super().setUp()
        self.write("infra/azure/main.bicep", "param a string\n")
        self.write("infra/aws/b.yaml", "Resources: {}\n")
        self.infra = self.dir / "infra"

    def scan(self, rc, out, err=""):
        return mock.patch.object(checkov_scan, "scan", return_value=(rc, out, err))

    def test_expected_files_are_named_as_checkov_names_them(self):
        self.assertEqual(expected_files(self.infra), ["/azure/main.bicep", "/aws/b.yaml"])

    def test_a_clean_report_passes(self):
        data = [report(passed=[result("/azure/main.bicep")]), report("cloudformation", passed=[result("/aws/b.yaml")])]
        with self.scan(0, json.dumps(data)):
            self.assertEqual(checkov_scan.check_checkov(self.infra),
                             "checkov: 2 template(s), 2 passed, 0 skipped with a reason, 0 failed")

    def test_exit_1_is_judged_by_the_report(self):
        data = [report(failed=[result("/azure/main.bicep")]), report("cloudformation", passed=[result("/aws/b.yaml")])]
        with self.scan(1, json.dumps(data)), self.assertRaises(CheckFailed) as cm:
            checkov_scan.check_checkov(self.infra)
        self.assertEqual(cm.exception.summary, "checkov: 2 template(s), 1 passed, 0 skipped with a reason, 1 failed")
        self.assertIn("CKV_AZURE_1 failed", cm.exception.details)

    def test_a_crash_shows_stderr(self):
        with self.scan(2, "", "Traceback: boom"), self.assertRaises(CheckFailed) as cm:
            checkov_scan.check_checkov(self.infra)
        self.assertEqual((cm.exception.summary, cm.exception.details), ("checkov crashed (exit 2)", "Traceback: boom"))

    def test_no_json_report_fails(self):
        with self.scan(0, "not json"), self.assertRaises(CheckFailed) as cm:
            checkov_scan.check_checkov(self.infra)
        self.assertTrue(cm.exception.summary.startswith("checkov: checkov wrote no JSON report"))


if __name__ == "__main__":
    unittest.main()
