"""Tests of scripts/package.py (the deployment package's allow-list): the zip's entries, modes
and reproducibility, the staging directory, and the committed .funcignore, matched the way git
matches ignore files and the way Azure Functions Core Tools does (a port of its parser)."""

import ast
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import unittest
import zipfile
from pathlib import Path

import package
from infra_checks.tests.fixtures import TempDirTestCase

REPO = Path(__file__).resolve().parents[3]
SCRIPT = Path(package.__file__)
ALLOWED = ["HttpRotate/function.json", "TimerRotate/function.json", "host.json", "stsbridge", "targets.json"]
# What else lies around in a working tree, and must never be published.
DECOYS = [".azurite/node_modules/.bin/azurite-blob", "bin/stsbridge", "scripts/__pycache__/x.pyc", "NEWFILE.txt",
          "src/main.rs", "docs/deploy.md", ".deploy/host.json", ".venv/bin/python", "target/debug/stsbridge",
          "Cargo.toml", "local.settings.json.example", "targets.example.json", "HttpRotate/notes.txt",
          "TimerRotate/host.json", "infra/azure/main.bicep", "stsbridge.zip", "stsbridge.new", "host.json.bak"]


def tree(root, names):
    for name in names:
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
        if name.endswith("stsbridge"):
            path.chmod(0o755)


class CoreToolsIgnore:
    """Azure Functions Core Tools' .funcignore matching, ported from its GitIgnoreParser (a C#
    reimplementation of codemix/gitignore-parser) and FileSystemHelpers.GetLocalFiles, as of
    Azure/azure-functions-core-tools commit 3ee97a6337055edd6afe48f9a51786a09772f427
    (2026-08-20), src/Cli/func/Common/. Not gitignore semantics: every pattern is a regex
    anchored at the start of the path only, and any negated pattern wins over every other."""

    ALWAYS_IGNORED_FILES = {".funcignore", ".gitignore", "local.settings.json", "project.lock.json"}
    ALWAYS_IGNORED_DIRS = {".git", ".vscode"}

    def __init__(self, content):
        positive, negative = [], []
        for line in (line.strip() for line in content.split("\n")):
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            line = line[1:] if negated else line
            line = line[1:] if line.startswith("/") else line
            (negative if negated else positive).append(line)
        self.positive, self.negative = self.compile(positive), self.compile(negative)

    @staticmethod
    def prepare(pattern):
        escaped = re.sub(r"[\-\[\]\/\{\}\(\)\+\?\.\\\^\$\|]", lambda m: "\\" + m.group(0), pattern)
        return escaped.replace("**", "(.+)").replace("*", "([^\\/]+)")

    def compile(self, patterns):
        if not patterns:
            return re.compile("$^")
        return re.compile("^((" + ")|(".join(self.prepare(p) for p in sorted(patterns)) + "))\\b", re.ASCII)

    def accepts(self, path):
        return bool(self.negative.search(path)) or not self.positive.search(path)

    def published(self, root):
        """The files `func azure functionapp publish` would zip from `root`, relative, sorted."""
        out = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d.lower() not in self.ALWAYS_IGNORED_DIRS]
            for f in files:
                if f.lower() in self.ALWAYS_IGNORED_FILES:
                    continue
                rel = os.path.relpath(os.path.join(folder, f), root).replace(os.sep, "/")
                if self.accepts(rel):
                    out.append(rel)
        return sorted(out)


def git_admitted(root, ignore_file):
    """The files of `root` that gitignore rules in `ignore_file` (at the root) leave in: git
    ls-files --others in a throw-away repository, with no global excludes."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    p = subprocess.run(["git", "-c", "core.excludesFile=/dev/null", "-C", str(root), "ls-files", "--others",
                        "--exclude-per-directory=" + ignore_file], check=True, capture_output=True, text=True)
    return sorted(line for line in p.stdout.splitlines() if line)


class Entries(TempDirTestCase):
    def setUp(self):
        super().setUp()
        tree(self.dir, ["host.json", "TimerRotate/function.json", "HttpRotate/function.json", "bin/stsbridge"])
        self.binary = self.dir / "bin" / "stsbridge"

    def test_the_allow_list_with_modes(self):
        got = [(name, source.relative_to(self.dir).as_posix(), oct(mode))
               for name, source, mode in package.entries(self.dir, self.binary)]
        self.assertEqual(got, [("host.json", "host.json", "0o644"),
                               ("TimerRotate/function.json", "TimerRotate/function.json", "0o644"),
                               ("HttpRotate/function.json", "HttpRotate/function.json", "0o644"),
                               ("stsbridge", "bin/stsbridge", "0o755")])

    def test_targets_json_only_when_present(self):
        tree(self.dir, ["targets.json"])
        self.assertEqual([e[0] for e in package.entries(self.dir, self.binary)][-1], "targets.json")

    def test_a_missing_required_file_is_an_error(self):
        (self.dir / "HttpRotate" / "function.json").unlink()
        with self.assertRaisesRegex(package.PackageError, "HttpRotate/function.json is missing"):
            package.entries(self.dir, self.binary)

    def test_the_binary_must_be_an_executable_file(self):
        self.binary.chmod(0o644)
        with self.assertRaisesRegex(package.PackageError, "is not executable"):
            package.entries(self.dir, self.binary)
        with self.assertRaisesRegex(package.PackageError, "stsbridge is missing"):
            package.entries(self.dir, self.dir / "nope")


class Zip(TempDirTestCase):
    def setUp(self):
        super().setUp()
        tree(self.dir, ["host.json", "TimerRotate/function.json", "HttpRotate/function.json", "bin/stsbridge",
                        "targets.json"])
        self.items = package.entries(self.dir, self.dir / "bin" / "stsbridge")

    def test_entries_contents_and_unix_modes(self):
        package.write_zip(self.items, self.dir / "p.zip")
        with zipfile.ZipFile(self.dir / "p.zip") as z:
            infos = {i.filename: i for i in z.infolist()}
            self.assertEqual(sorted(infos), ALLOWED)
            for name, info in infos.items():
                self.assertEqual(info.create_system, 3, name)
                want = 0o100755 if name == "stsbridge" else 0o100644
                self.assertEqual(info.external_attr >> 16, want, name)
                self.assertEqual(z.read(name).decode(), "bin/stsbridge" if name == "stsbridge" else name)

    def test_the_same_inputs_give_the_same_bytes(self):
        package.write_zip(self.items, self.dir / "a.zip")
        os.utime(self.dir / "host.json", (1, 1))
        package.write_zip(self.items, self.dir / "b.zip")
        self.assertEqual((self.dir / "a.zip").read_bytes(), (self.dir / "b.zip").read_bytes())

    @unittest.skipUnless(shutil.which("unzip"), "no unzip")
    def test_unzip_restores_the_execute_bit(self):
        package.write_zip(self.items, self.dir / "p.zip")
        subprocess.run(["unzip", "-q", str(self.dir / "p.zip"), "-d", str(self.dir / "out")], check=True)
        self.assertEqual(stat.S_IMODE((self.dir / "out" / "stsbridge").stat().st_mode), 0o755)
        self.assertEqual(stat.S_IMODE((self.dir / "out" / "host.json").stat().st_mode), 0o644)

    def test_a_failed_write_leaves_no_temporary_file_and_the_old_zip(self):
        (self.dir / "p.zip").write_text("old")
        broken = self.items + [("x", self.dir / "missing", 0o644)]
        with self.assertRaises(OSError):
            package.write_zip(broken, self.dir / "p.zip")
        self.assertEqual((self.dir / "p.zip").read_text(), "old")
        self.assertEqual([p.name for p in self.dir.glob("p.zip.*")], [])

    def test_the_stage_holds_exactly_the_items_and_replaces_what_was_there(self):
        tree(self.dir, ["stage/stale.txt"])
        package.write_stage(self.items, self.dir / "stage")
        files = sorted(p.relative_to(self.dir / "stage").as_posix()
                       for p in (self.dir / "stage").rglob("*") if p.is_file())
        self.assertEqual(files, ALLOWED)
        self.assertEqual(stat.S_IMODE((self.dir / "stage" / "stsbridge").stat().st_mode), 0o755)
        self.assertEqual(stat.S_IMODE((self.dir / "stage" / "host.json").stat().st_mode), 0o644)

    def test_listing(self):
        self.assertEqual(package.listing(self.items[:1]), "  0644          9  host.json\n")


class Funcignore(TempDirTestCase):
    def test_the_committed_funcignore_is_the_generated_one(self):
        self.assertEqual((REPO / ".funcignore").read_text(), package.funcignore())

    def test_gitignore_rules_admit_exactly_the_allow_list(self):
        tree(self.dir, ALLOWED + DECOYS)
        (self.dir / ".funcignore").write_text(package.funcignore())
        self.assertEqual(git_admitted(self.dir, ".funcignore"), ALLOWED)

    def test_core_tools_from_the_staging_directory_publishes_the_zip_s_files(self):
        tree(self.dir, ["host.json", "TimerRotate/function.json", "HttpRotate/function.json", "bin/stsbridge",
                        "targets.json"])
        package.write_stage(package.entries(self.dir, self.dir / "bin" / "stsbridge"), self.dir / ".deploy")
        self.assertEqual(CoreToolsIgnore("").published(self.dir / ".deploy"), ALLOWED)

    def test_core_tools_from_the_root_keeps_the_work_tree_out_but_matches_prefixes(self):
        # Why the guide publishes from .deploy/: Core Tools' parser keeps folders like .azurite/,
        # bin/ and __pycache__/ and new files out, but a negated pattern is a prefix (stsbridge
        # admits stsbridge.zip), and re-including a folder re-includes all of it.
        tree(self.dir, ALLOWED + DECOYS)
        published = CoreToolsIgnore(package.funcignore()).published(self.dir)
        leaks = ["HttpRotate/notes.txt", "TimerRotate/host.json", "host.json.bak", "stsbridge.new", "stsbridge.zip"]
        self.assertEqual(published, sorted(ALLOWED + leaks))


class CoreToolsParserPort(unittest.TestCase):
    """The port against the behaviour of its source, case by case."""

    def test_patterns(self):
        p = CoreToolsIgnore("# comment\n*.md\n/target\nbin/**\n!docs/keep.md\n")
        self.assertFalse(p.accepts("README.md"))
        self.assertFalse(p.accepts("target/x"))
        self.assertFalse(p.accepts("bin/a/b"))
        self.assertTrue(p.accepts("docs/keep.md"))
        self.assertTrue(p.accepts("docs/other.md"))  # *.md: [^/]+ cannot cross the slash
        self.assertTrue(p.accepts("src/main.rs"))


class AsBuildDeployRunsIt(TempDirTestCase):
    def test_build_writes_both_and_prints_the_list(self):
        tree(self.dir, ["host.json", "TimerRotate/function.json", "HttpRotate/function.json", "bin/stsbridge"])
        p = subprocess.run([sys.executable, str(SCRIPT), "build", "--root", str(self.dir),
                            "--binary", str(self.dir / "bin" / "stsbridge"), "--zip", str(self.dir / "s.zip"),
                            "--stage", str(self.dir / "stage")], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([line.split()[-1] for line in p.stdout.splitlines()],
                         ["host.json", "TimerRotate/function.json", "HttpRotate/function.json", "stsbridge"])
        self.assertTrue((self.dir / "s.zip").is_file() and (self.dir / "stage" / "stsbridge").is_file())

    def test_errors_are_one_line_and_exit_1(self):
        p = subprocess.run([sys.executable, str(SCRIPT), "build", "--root", str(self.dir), "--binary", "/nope",
                            "--zip", str(self.dir / "s.zip")], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stderr.count("\n")), (1, 1))
        self.assertIn("package: host.json is missing", p.stderr)

    def test_funcignore_subcommand(self):
        out = io.StringIO()
        self.assertEqual(package.main(["funcignore"], out), 0)
        self.assertEqual(out.getvalue(), package.funcignore())

    def test_standard_library_only(self):
        # build-deploy.sh runs it with the system python3, before (or without) any venv.
        parsed = ast.parse(SCRIPT.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(parsed) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(parsed) if isinstance(n, ast.ImportFrom)}
        self.assertTrue(imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names)


if __name__ == "__main__":
    unittest.main()
