"""Tests of alert_texts.py on a tiny template and source tree."""

import unittest

from infra_checks.alert_texts import alert_texts, check_alert_texts
from infra_checks.common import CheckFailed
from infra_checks.tests.fixtures import TempDirTestCase

BICEP = """\
query: 'traces | where message contains "rotation failed" or message has "expire in"'
other: 'traces | where message startswith "starting" | where message endswith "done"'
ignored: 'traces | where severityLevel == 3 and customDimensions contains "x"'
"""


class AlertTexts(TempDirTestCase):
    def setUp(self):
        super().setUp()
        self.bicep = self.write("infra/azure/main.bicep", BICEP)
        self.write("src/lib.rs", 'log("rotation failed"); log("starting");\n')
        self.write("src/rotation/mod.rs", 'warn!("the credentials expire in {left} s"); info!("all done")\n')

    def test_every_kql_string_operator_is_read(self):
        self.assertEqual([t for _, t in alert_texts(self.dir / "infra")],
                         ["rotation failed", "expire in", "starting", "done"])

    def test_texts_written_anywhere_in_src_pass(self):
        self.assertEqual(check_alert_texts(self.dir / "infra", self.dir / "src"),
                         "alert texts: 4 alert text(s), each written by %s/" % (self.dir / "src"))

    def test_a_reworded_message_fails(self):
        self.write("src/rotation/mod.rs", 'warn!("the credentials expire within {left} s"); info!("all done")\n')
        with self.assertRaises(CheckFailed) as cm:
            check_alert_texts(self.dir / "infra", self.dir / "src")
        self.assertEqual(cm.exception.summary, "alert texts: 4 alert text(s)")
        self.assertEqual(cm.exception.details, "%s: an alert searches the logs for 'expire in', which nothing in "
                                               "%s writes" % (self.bicep, self.dir / "src"))

    def test_a_text_split_across_two_files_does_not_count(self):
        self.write("src/rotation/mod.rs", "all done")
        self.write("src/a1.rs", "the credentials expire")  # read just before a2.rs
        self.write("src/a2.rs", " in {left} s")
        with self.assertRaises(CheckFailed):
            check_alert_texts(self.dir / "infra", self.dir / "src")


if __name__ == "__main__":
    unittest.main()
