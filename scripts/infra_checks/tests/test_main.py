"""Tests of __main__.py with the steps stubbed: options, the closing line, the exit code."""

import io
import unittest
from contextlib import redirect_stdout
from unittest import mock

from infra_checks import __main__ as cli
from infra_checks.common import CheckFailed


def ok_step(*_args):
    return "step: fine"


def failing_step(*_args):
    raise CheckFailed("step: broken")


class Main(unittest.TestCase):
    def run_main(self, argv, unit=ok_step, valid=True, selftest=ok_step):
        calls = []

        def validate(tree, out):
            calls.append("validate")
            return valid

        def self_test(*args):
            calls.append("self_test")
            return selftest(*args)

        out = io.StringIO()
        with mock.patch.object(cli, "check_unit_tests", unit), mock.patch.object(cli, "validate", validate), \
                mock.patch.object(cli, "self_test", self_test), mock.patch.object(cli.signal, "signal"), \
                redirect_stdout(out):
            rc = cli.main(argv)
        return rc, out.getvalue().splitlines(), calls

    def test_all_passed(self):
        rc, lines, calls = self.run_main([])
        self.assertEqual(rc, 0)
        self.assertEqual(calls, ["validate", "self_test"])
        self.assertEqual(lines[0], "validate-infra: ok    step: fine")
        self.assertRegex(lines[-1], r"^validate-infra: all checks passed \(\d+ s\)$")

    def test_no_self_test(self):
        rc, _, calls = self.run_main(["--no-self-test"])
        self.assertEqual((rc, calls), (0, ["validate"]))

    def test_any_failure_fails_the_run_after_running_everything(self):
        for kwargs in ({"unit": failing_step}, {"valid": False}, {"selftest": failing_step}):
            rc, lines, calls = self.run_main([], **kwargs)
            self.assertEqual(rc, 1, kwargs)
            self.assertEqual(calls, ["validate", "self_test"], kwargs)
            self.assertRegex(lines[-1], r"^validate-infra: FAILED \(\d+ s\)$")

    def test_the_time_counts_from_started_at(self):
        with mock.patch.object(cli.time, "time", return_value=1000.0):
            _, lines, _ = self.run_main(["--started-at", "958", "--no-self-test"])
        self.assertEqual(lines[-1], "validate-infra: all checks passed (42 s)")

    def test_unknown_options_are_refused(self):
        with self.assertRaises(SystemExit) as cm, redirect_stdout(io.StringIO()), \
                mock.patch("sys.stderr", io.StringIO()):
            cli.parse_args(["--bogus"])
        self.assertEqual(cm.exception.code, 2)


if __name__ == "__main__":
    unittest.main()
