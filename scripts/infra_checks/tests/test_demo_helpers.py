"""Tests of scripts/demo_helpers.py (scripts/demo.sh's helpers): each subcommand on answers
shaped like the custom handler's, in process and as demo.sh runs it."""

import ast
import io
import json
import socket
import subprocess
import sys
import unittest
from pathlib import Path
from unittest import mock

import demo_helpers

SCRIPT = Path(demo_helpers.__file__)
HTTP_ANSWER = {"Outputs": {"res": {"statusCode": 200, "body": json.dumps({"rotated": False, "targets": [1]})}},
               "Logs": [], "ReturnValue": None}
TIMER_ANSWER = {"Outputs": {}, "Logs": ["reading the source key", "published AKIA...", "rotation done in 1 s"]}


class Helpers(unittest.TestCase):
    def test_free_port_can_be_bound(self):
        port = demo_helpers.free_port()
        self.assertIsInstance(port, int)
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))

    def test_show_res(self):
        self.assertEqual(demo_helpers.show_res(HTTP_ANSWER),
                         'statusCode 200\n{\n  "rotated": false,\n  "targets": [\n    1\n  ]\n}')

    def test_show_res_of_a_malformed_answer_fails(self):
        with self.assertRaises(KeyError):
            demo_helpers.show_res({"Outputs": {}})

    def test_timer_logs_leave_out_the_last_line(self):
        self.assertEqual(demo_helpers.timer_logs(TIMER_ANSWER), "  reading the source key\n  published AKIA...\n")
        self.assertEqual(demo_helpers.timer_logs({"Logs": []}), "")

    def test_main_dispatches_and_refuses_unknown_subcommands(self):
        out = io.StringIO()
        self.assertEqual(demo_helpers.main(["timer-logs"], io.StringIO(json.dumps(TIMER_ANSWER)), out), 0)
        self.assertEqual(out.getvalue(), "  reading the source key\n  published AKIA...\n")
        err = io.StringIO()
        with mock.patch("sys.stderr", err):
            self.assertEqual(demo_helpers.main(["bogus"]), 2)
            self.assertEqual(demo_helpers.main([]), 2)
        self.assertIn("usage: scripts/demo_helpers.py", err.getvalue())


class AsDemoRunsIt(unittest.TestCase):
    def run_script(self, *args, stdin=""):
        return subprocess.run([sys.executable, str(SCRIPT), *args], input=stdin, capture_output=True, text=True)

    def test_show_res_and_free_port(self):
        p = self.run_script("show-res", stdin=json.dumps(HTTP_ANSWER))
        self.assertEqual((p.returncode, p.stdout.splitlines()[0]), (0, "statusCode 200"))
        p = self.run_script("free-port")
        self.assertEqual(p.returncode, 0)
        self.assertTrue(0 < int(p.stdout) < 65536)

    def test_a_malformed_answer_fails_the_pipeline(self):
        self.assertNotEqual(self.run_script("show-res", stdin="not json").returncode, 0)

    def test_standard_library_only(self):
        # demo.sh runs it with the system python3, before any venv exists.
        tree = ast.parse(SCRIPT.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        self.assertTrue(imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names)


if __name__ == "__main__":
    unittest.main()
