"""Tests of bicep_parameters.py, with checkov's Bicep parser (pycep) on a tiny template."""

import json
import unittest

from infra_checks.bicep_parameters import check_bicep_parameters, check_parameters_file, check_value
from infra_checks.common import CheckFailed
from infra_checks.tests.fixtures import TempDirTestCase

BICEP = """\
@allowed([
  'a'
  'b'
])
param mode string = 'a'

@minValue(1)
@maxValue(10)
param count int = 5

@minLength(3)
@maxLength(5)
param name string

param enabled bool = true
param extra object = {}
"""


class CheckValue(unittest.TestCase):
    def test_types_allowed_values_and_bounds(self):
        self.assertEqual(check_value("p", 3, {"type": "int"}), [])
        self.assertEqual(check_value("p", True, {"type": "int"}), ["p: True is not of type int"])
        self.assertEqual(check_value("p", "3", {"type": "int"}), ["p: '3' is not of type int"])
        allowed = {"type": "string", "decorators": [{"type": "allowed", "argument": ["a", "b"]}]}
        self.assertEqual(check_value("p", "c", allowed), ["p: 'c' is not one of ['a', 'b']"])
        bounds = {"type": "int", "decorators": [{"type": "min_value", "argument": 1},
                                                {"type": "max_value", "argument": 10}]}
        self.assertEqual(check_value("p", 0, bounds), ["p: 0 is outside min_value 1"])
        self.assertEqual(check_value("p", 11, bounds), ["p: 11 is outside max_value 10"])
        self.assertEqual(check_value("p", 10, bounds), [])
        length = {"type": "string", "decorators": [{"type": "max_length", "argument": 2}]}
        self.assertEqual(check_value("p", "abc", length), ["p: 'abc' breaks max_length 2"])
        self.assertEqual(check_value("p", "x", {"type": "unknown"}), [])


class CheckParametersFile(TempDirTestCase):
    def setUp(self):
        super().setUp()
        self.write("azure/main.bicep", BICEP)

    def params(self, parameters, name="main.parameters.json"):
        return self.write("azure/" + name, json.dumps({"parameters": parameters}))

    def test_a_matching_file_passes(self):
        path = self.params({"mode": {"value": "b"}, "count": {"value": 10}, "name": {"value": "abcd"},
                            "enabled": {"value": False}, "extra": {"value": {"k": "v"}}})
        self.assertEqual(check_parameters_file(path), [])

    def test_a_key_vault_reference_needs_no_value(self):
        path = self.params({"name": {"reference": {"keyVault": {"id": "x"}, "secretName": "s"}}})
        self.assertEqual(check_parameters_file(path), [])

    def test_every_problem_is_reported(self):
        path = self.params({"mode": {"value": "c"}, "count": {"value": 0}, "bogus": {"value": 1},
                            "enabled": "yes", "extra": {"value": []}}, name="main.parameters.dev.json")
        problems = check_parameters_file(path)
        at = str(path)
        self.assertEqual(problems, [
            "%s: mode: 'c' is not one of ['a', 'b']" % at,
            "%s: count: 0 is outside min_value 1" % at,
            "%s: bogus is not a parameter of %s" % (at, self.dir / "azure" / "main.bicep"),
            '%s: enabled: needs {"value": ...} (or a Key Vault "reference")' % at,
            "%s: extra: [] is not of type object" % at,
            "%s: required parameter name is missing" % at,
        ])

    def test_no_template_beside_it(self):
        path = self.write("azure/other.parameters.json", "{}")
        self.assertEqual(check_parameters_file(path), ["%s: no other.bicep beside it" % path])

    def test_not_json(self):
        path = self.write("azure/main.parameters.json", "{")
        self.assertIn("not JSON", check_parameters_file(path)[0])

    def test_check_bicep_parameters(self):
        self.params({"name": {"value": "abc"}})
        self.assertEqual(check_bicep_parameters(self.dir),
                         "bicep parameters: 1 parameters file(s) match the declared parameters")
        self.params({"name": {"value": "ab"}})
        with self.assertRaises(CheckFailed) as cm:
            check_bicep_parameters(self.dir)
        self.assertEqual(cm.exception.summary, "bicep parameters: 1 parameters file(s)")
        self.assertIn("'ab' breaks min_length 3", cm.exception.details)


if __name__ == "__main__":
    unittest.main()
