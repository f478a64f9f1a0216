"""The deployment package, from an allow-list: exactly the files the Functions host needs.

  python3 scripts/package.py build --binary PATH [--zip stsbridge.zip] [--stage .deploy]
      writes the zip (and/or the staging directory holding the same files) and prints its list
  python3 scripts/package.py funcignore
      prints the .funcignore that admits exactly the allow-list (the committed one is this)

The package is host.json, TimerRotate/function.json, HttpRotate/function.json, the stsbridge
binary (the file host.json's defaultExecutablePath names) and targets.json when the repository
root has one (docs/targets.md). Nothing else, whatever else lies around in the working tree
(.azurite/, bin/, __pycache__/, a stray file): an allow-list, not a deny-list.
- The zip stores Unix modes (0755 for the binary, 0644 for the rest; "created by" Unix): the
  host runs the binary straight from the package, so its execute bit must be in the zip, as
  Core Tools' own zips have it. Entries carry a fixed timestamp, so the same inputs give the
  same bytes (the same package twice is one deployment, and a diff of two packages shows a
  real change).
- The staging directory is what Core Tools publishes (`func azure functionapp publish` from
  inside it): Core Tools' .funcignore matching is a prefix match (`!stsbridge` also admits
  stsbridge.zip and stsbridge.new), so from the repository root it would publish more than the
  zip; from the staging directory it publishes the same files.
Called by scripts/build-deploy.sh (--zip, --binary) with the system python3: standard library
only. Unit-tested in scripts/infra_checks/tests/test_package.py.
Zip deployment's package layout: https://learn.microsoft.com/azure/azure-functions/deployment-zip-push
"""

import argparse
import os
import shutil
import stat
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name in the package, required): the binary's source is --binary, the others' the repo root.
BINARY = "stsbridge"
ALLOW_LIST = [
    ("host.json", True),
    ("TimerRotate/function.json", True),
    ("HttpRotate/function.json", True),
    (BINARY, True),
    ("targets.json", False),  # many targets from one app (docs/targets.md), when there is one
]
EXECUTABLE, REGULAR = 0o755, 0o644
# Zip timestamps cannot be older than 1980; a fixed one makes the zip reproducible.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class PackageError(Exception):
    pass


def entries(root, binary):
    """[(name in the package, source path, mode)] for the allow-list: the optional files only
    when present. Raises PackageError for a required file missing or a binary that is not an
    executable file."""
    root, binary = Path(root), Path(binary)
    out = []
    for name, required in ALLOW_LIST:
        source = binary if name == BINARY else root / name
        if not source.is_file():
            if required:
                raise PackageError("%s is missing (%s)" % (name, source))
            continue
        if name == BINARY and not os.access(source, os.X_OK):
            raise PackageError("the binary %s is not executable" % source)
        out.append((name, source, EXECUTABLE if name == BINARY else REGULAR))
    return out


def write_zip(items, path):
    """Writes the zip `path` (atomically: a temporary file renamed over it)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for name, source, mode in items:
                info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
                info.create_system = 3  # Unix: unzip and the Functions host honour the mode bits
                info.external_attr = (stat.S_IFREG | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(source, "rb") as src, z.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_stage(items, directory):
    """Replaces `directory` with one holding exactly `items`, with their modes."""
    directory = Path(directory)
    tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        for name, source, mode in items:
            dest = tmp / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
            os.chmod(dest, mode)
        os.chmod(tmp, 0o755)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def listing(items):
    """The lines build-deploy.sh prints: mode, size, name."""
    return "".join("  %04o %10d  %s\n" % (mode, os.path.getsize(source), name) for name, source, mode in items)


def funcignore():
    """The .funcignore admitting exactly the allow-list under gitignore rules: ignore
    everything, then re-include each file (and each folder on its way: git cannot re-include a
    file whose folder is ignored). Rooted with a leading /, so a host.json in a subfolder stays
    out."""
    lines = [
        "# Generated by `python3 scripts/package.py funcignore` from the package's allow-list (the",
        "# files of stsbridge.zip); a unit test keeps the two equal. Everything is ignored except:",
        "*",
    ]
    folders = set()
    for name, _ in ALLOW_LIST:
        parts = name.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder not in folders:
                folders.add(folder)
                lines.append("!/%s/" % folder)
        lines.append("!/%s" % name)
    return "\n".join(lines) + "\n"


def main(argv, out=sys.stdout):
    p = argparse.ArgumentParser(prog="scripts/package.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the zip and/or the staging directory")
    b.add_argument("--binary", required=True, help="the stsbridge binary to package")
    b.add_argument("--zip", help="the zip to write")
    b.add_argument("--stage", help="the staging directory to (re)create")
    b.add_argument("--root", default=str(ROOT), help="where host.json and the function folders are")
    sub.add_parser("funcignore", help="print the .funcignore of the allow-list")
    args = p.parse_args(argv)
    if args.command == "funcignore":
        out.write(funcignore())
        return 0
    if not args.zip and not args.stage:
        p.error("build: give --zip, --stage or both")
    try:
        items = entries(args.root, args.binary)
        if args.zip:
            write_zip(items, args.zip)
        if args.stage:
            write_stage(items, args.stage)
    except (PackageError, OSError) as e:
        print("package: %s" % e, file=sys.stderr)
        return 1
    out.write(listing(items))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
