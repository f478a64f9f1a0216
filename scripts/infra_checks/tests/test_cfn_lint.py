"""Tests of cfn_lint.py, with the pinned cfn-lint on two tiny templates (about a second a run)."""

import unittest

from infra_checks.cfn_lint import check_cfn_lint
from infra_checks.common import CheckFailed
from infra_checks.tests.fixtures import TempDirTestCase

GOOD = """\
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Group:
    Type: AWS::IAM::Group
    Properties:
      Path: /stsbridge/
"""
# cfn-lint E3002: a property the resource type does not have.
BAD = GOOD + "      NotARealProperty: true\n"


class CheckCfnLint(TempDirTestCase):
    def test_a_clean_template_passes(self):
        self.write("infra/aws/good.yaml", GOOD)
        self.assertEqual(check_cfn_lint(self.dir / "infra"),
                         "cfn-lint: 1 template(s) in %s" % (self.dir / "infra" / "aws"))

    def test_a_bad_template_fails_naming_the_rule_and_the_file(self):
        self.write("infra/aws/good.yaml", GOOD)
        self.write("infra/aws/bad.yaml", BAD)
        with self.assertRaises(CheckFailed) as cm:
            check_cfn_lint(self.dir / "infra")
        self.assertEqual(cm.exception.summary, "cfn-lint: 2 template(s) in %s" % (self.dir / "infra" / "aws"))
        self.assertIn("E3002", cm.exception.details)
        self.assertIn("bad.yaml", cm.exception.details)
        self.assertNotIn("good.yaml", cm.exception.details)

    def test_no_template_fails(self):
        self.subdir("infra/aws")
        with self.assertRaises(CheckFailed) as cm:
            check_cfn_lint(str(self.dir / "infra"))
        self.assertIn("no *.yaml template", cm.exception.details)


if __name__ == "__main__":
    unittest.main()
