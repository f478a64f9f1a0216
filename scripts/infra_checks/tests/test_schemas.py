"""Tests of schemas.py: binding expression resolution, the vendored schema files (as their
README.md records them), and the check with the pinned check-jsonschema on tiny host files
(three runs of a third of a second each)."""

import hashlib
import json
import os
import re
import unittest

from infra_checks.common import CheckFailed
from infra_checks.schemas import SCHEMA_DIR, check_schemas, resolve, resolve_bindings, schema_paths
from infra_checks.tests.fixtures import TempDirTestCase

HOST = {"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "app"}}}
TIMER = {"bindings": [{"name": "timer", "type": "timerTrigger", "direction": "in", "schedule": "%Schedule%"}]}
SETTINGS = {"IsEncrypted": False, "Values": {"FUNCTIONS_WORKER_RUNTIME": "custom", "Schedule": "0 0 * * * *"}}


class Resolve(unittest.TestCase):
    def test_expressions_are_replaced_in_every_string(self):
        missing = []
        got = resolve({"a": ["%X%/%Y%", 1, None], "b": {"c": "%Z%"}}, {"X": "x", "Y": "y"}, missing)
        self.assertEqual(got, {"a": ["x/y", 1, None], "b": {"c": "%Z%"}})
        self.assertEqual(missing, ["Z"])


class SchemaPaths(unittest.TestCase):
    def test_the_three_schemas_are_vendored(self):
        paths = schema_paths()
        self.assertEqual(sorted(paths), ["function.json", "host.json", "local.settings.json"])
        for path in paths.values():
            self.assertTrue(os.path.isfile(path), path)
        with open(paths["host.json"]) as f:
            self.assertIn("customHandler", f.read())

    def test_each_file_is_the_one_its_readme_records(self):
        # The README's table row of each file: | `name` | URL | `sha256` |
        readme = (SCHEMA_DIR / "README.md").read_text()
        for name, path in schema_paths().items():
            m = re.search(r"^\| `%s` \| https://json\.schemastore\.org/%s \| `([0-9a-f]{64})` \|$"
                          % (re.escape(os.path.basename(path)), re.escape(name)), readme, re.M)
            self.assertIsNotNone(m, "README.md has no row for %s" % name)
            with open(path, "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), m.group(1), name)

    def test_no_schema_refers_to_a_url(self):
        # check-jsonschema would download a remote $ref, and the check must stay offline.
        for name, path in schema_paths().items():
            with open(path) as f:
                refs = re.findall(r'"\$ref"\s*:\s*"([^"]*)"', f.read())
            self.assertEqual([r for r in refs if not r.startswith("#")], [], name)


class Host(TempDirTestCase):
    def setUp(self):
        super().setUp()
        self.write("root/host.json", json.dumps(HOST))
        self.write("root/Timer/function.json", json.dumps(TIMER))
        self.write("root/local.settings.json.example", json.dumps(SETTINGS))
        self.root = self.dir / "root"

    def test_resolve_bindings_writes_the_resolved_copies(self):
        out = self.subdir("out")
        written = resolve_bindings(self.root, out)
        self.assertEqual(written, [out / "Timer" / "function.json"])
        self.assertEqual(json.loads(written[0].read_text())["bindings"][0]["schedule"], "0 0 * * * *")

    def test_a_setting_the_example_lacks_fails(self):
        self.write("root/Timer/function.json", json.dumps(TIMER).replace("%Schedule%", "%Nope%"))
        with self.assertRaises(CheckFailed) as cm:
            resolve_bindings(self.root, self.subdir("out"))
        self.assertEqual(cm.exception.summary, "json schemas: function.json binding expressions")
        self.assertIn("lacks: ['Nope']", cm.exception.details)

    def test_an_example_without_values_fails(self):
        self.write("root/local.settings.json.example", "{}")
        with self.assertRaises(CheckFailed) as cm:
            resolve_bindings(self.root, self.subdir("out"))
        self.assertIn("no Values", cm.exception.details)

    def test_valid_files_pass_and_an_invalid_one_fails(self):
        self.assertEqual(check_schemas(self.root, self.subdir("work")),
                         "json schemas: host.json, 1 function.json (settings resolved), local.settings.json.example")
        self.write("root/local.settings.json.example", json.dumps(dict(SETTINGS, IsEncrypted="no")))
        with self.assertRaises(CheckFailed) as cm:
            check_schemas(self.root, self.subdir("work"))
        self.assertIn("IsEncrypted", cm.exception.details)
        self.assertNotIn("ok -- validation done", cm.exception.details)


if __name__ == "__main__":
    unittest.main()
