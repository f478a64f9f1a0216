"""Check `targets schema`: ROOT/targets.example.json is valid against ROOT/targets.schema.json.

docs/targets.md shows the example and editors validate a targets file against the schema (its
`$schema` points there), so an example the schema rejects misleads both. The pinned
check-jsonschema validates it (and the schema against its draft-2020-12 metaschema); the
schema's $refs are all inside the file, so nothing is downloaded. That the schema describes the
settings stsbridge actually reads is tested on the Rust side (src/settings/table.rs).
Called by runner.py (the `targets schema` line) and self_test.py; unit-tested in
tests/test_targets_schema.py.
"""

from pathlib import Path

from .common import CheckFailed, run, tool

SCHEMA = "targets.schema.json"
EXAMPLE = "targets.example.json"


def check_targets_schema(root):
    """root: holds targets.schema.json and targets.example.json. Returns the summary; raises
    CheckFailed."""
    root = Path(root)
    summary = "targets schema: %s against %s" % (EXAMPLE, SCHEMA)
    missing = [name for name in (SCHEMA, EXAMPLE) if not (root / name).is_file()]
    if missing:
        raise CheckFailed(summary, "missing: %s" % ", ".join(str(root / m) for m in missing))
    rc, out = run([tool("check-jsonschema"), "--schemafile", str(root / SCHEMA), str(root / EXAMPLE)])
    if rc != 0:
        raise CheckFailed(summary, "\n".join(line for line in out.splitlines()
                                             if not line.startswith("ok -- validation done")))
    return summary + ": valid"
