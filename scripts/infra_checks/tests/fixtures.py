"""Shared by the tests of this directory: a TestCase with a temporary directory to write small
input files into.
"""

import shutil
import tempfile
import textwrap
import unittest
from pathlib import Path


class TempDirTestCase(unittest.TestCase):
    """self.dir: a fresh temporary directory, removed after each test."""

    def setUp(self):
        super().setUp()
        self.dir = Path(tempfile.mkdtemp(prefix="infra-checks-test."))
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, relative, text):
        """Writes `text` (dedented) to DIR/relative, creating its folders; returns the path."""
        path = self.dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def subdir(self, name):
        path = self.dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path
