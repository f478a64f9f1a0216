"""Tests of targets_schema.py with the pinned check-jsonschema (a third of a second a run): this
repository's files, a tiny schema and example, and missing files."""

import json
import unittest
from pathlib import Path

from infra_checks.common import CheckFailed
from infra_checks.targets_schema import check_targets_schema
from infra_checks.tests.fixtures import TempDirTestCase

REPO = Path(__file__).resolve().parents[3]
SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
          "required": ["Targets"], "additionalProperties": False,
          "properties": {"Targets": {"type": "array", "items": {"$ref": "#/$defs/target"}}},
          "$defs": {"target": {"type": "object", "properties": {"Mode": {"enum": ["a", "b"]}}}}}


class CheckTargetsSchema(TempDirTestCase):
    def test_this_repository_passes(self):
        self.assertEqual(check_targets_schema(REPO),
                         "targets schema: targets.example.json against targets.schema.json: valid")

    def test_an_invalid_example_fails_with_the_validator_s_words(self):
        self.write("targets.schema.json", json.dumps(SCHEMA))
        self.write("targets.example.json", json.dumps({"Targets": [{"Mode": "a"}]}))
        check_targets_schema(self.dir)
        self.write("targets.example.json", json.dumps({"Targets": [{"Mode": "c"}]}))
        with self.assertRaises(CheckFailed) as cm:
            check_targets_schema(self.dir)
        self.assertIn("'c' is not one of ['a', 'b']", cm.exception.details)
        self.assertNotIn("ok -- validation done", cm.exception.details)

    def test_missing_files_fail(self):
        self.write("targets.schema.json", json.dumps(SCHEMA))
        with self.assertRaises(CheckFailed) as cm:
            check_targets_schema(self.dir)
        self.assertIn("targets.example.json", cm.exception.details)


if __name__ == "__main__":
    unittest.main()
