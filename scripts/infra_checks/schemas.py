"""Check `json schemas`: host.json, */function.json and local.settings.json.example against
SchemaStore's schemas, vendored in schemastore/ (nothing is downloaded; its README.md says which
upstream version each file is and how to update it).

The host resolves %Setting% binding expressions from app settings before it reads a binding;
SchemaStore's function.json schema only knows literal values (its NCRONTAB pattern rejects
"%TimerSchedule%"). So each function.json is checked as the host would see it, with the settings
of local.settings.json.example (resolve_bindings()).
Called by runner.py (the `json schemas` line) and self_test.py; unit-tested in
tests/test_schemas.py.
Binding expressions: https://learn.microsoft.com/azure/azure-functions/functions-bindings-expressions-patterns#binding-expressions---app-settings
"""

import json
import re
import tempfile
from pathlib import Path

from .common import CheckFailed, run, sorted_glob, tool

# SchemaStore's schemas of the three files, as vendored (schemastore/README.md).
SCHEMA_DIR = Path(__file__).resolve().parent / "schemastore"
SCHEMA_NAMES = ("host.json", "function.json", "local.settings.json")


def schema_paths():
    """name -> the vendored schema file (NAME with .schema.json for .json: a file named
    local.settings.json would be git-ignored), for host.json, function.json and
    local.settings.json."""
    return {name: str(SCHEMA_DIR / name.replace(".json", ".schema.json")) for name in SCHEMA_NAMES}


def resolve(node, values, missing):
    """`node` with every %Name% in its strings replaced by values[Name]; unknown names are
    left as they are and appended to `missing`."""
    if isinstance(node, str):
        def one(m):
            if m.group(1) not in values:
                missing.append(m.group(1))
                return m.group(0)
            return values[m.group(1)]
        return re.sub(r"%([A-Za-z0-9_]+)%", one, node)
    if isinstance(node, list):
        return [resolve(v, values, missing) for v in node]
    if isinstance(node, dict):
        return {k: resolve(v, values, missing) for k, v in node.items()}
    return node


def resolve_bindings(root, outdir):
    """Writes OUTDIR/<function>/function.json for every ROOT/*/function.json, with its binding
    expressions resolved from local.settings.json.example. Returns the written files; raises
    CheckFailed if an expression names a setting the example lacks."""
    root = Path(root)
    example = root / "local.settings.json.example"
    try:
        with open(example) as f:
            values = json.load(f)["Values"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckFailed("json schemas: function.json binding expressions",
                          "%s: no Values to resolve them with (%s: %s)" % (example, type(e).__name__, e)) from None
    missing, written = [], []
    for path in sorted_glob(root, "*/function.json"):
        out = Path(outdir) / path.parent.name / "function.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(path) as f:
            doc = resolve(json.load(f), values, missing)
        with open(out, "w") as f:
            json.dump(doc, f, indent=1)
        written.append(out)
    if missing:
        raise CheckFailed("json schemas: function.json binding expressions",
                          "binding expressions name settings that local.settings.json.example lacks: %s"
                          % sorted(set(missing)))
    return written


def validate(schema, files, filetype=None):
    """Runs the pinned check-jsonschema; returns (passed, its output)."""
    argv = [tool("check-jsonschema")]
    if filetype:
        argv += ["--default-filetype", filetype]
    rc, out = run(argv + ["--schemafile", schema, *map(str, files)])
    return rc == 0, out


def check_schemas(root, work):
    """root: holds host.json, the function folders and local.settings.json.example; work: a
    scratch directory. Returns the summary; raises CheckFailed."""
    root = Path(root)
    schemas = schema_paths()
    functions = resolve_bindings(root, tempfile.mkdtemp(prefix="resolved.", dir=work))
    results = [
        validate(schemas["host.json"], [root / "host.json"]),
        validate(schemas["function.json"], functions) if functions else (False, "no */function.json found\n"),
        # The .example suffix hides the format: say it is JSON.
        validate(schemas["local.settings.json"], [root / "local.settings.json.example"], filetype="json"),
    ]
    summary = ("json schemas: host.json, %d function.json (settings resolved), local.settings.json.example"
               % len(functions))
    if not all(passed for passed, _ in results):
        out = "".join(out for _, out in results)
        raise CheckFailed(summary, "\n".join(line for line in out.splitlines()
                                             if not line.startswith("ok -- validation done")))
    return summary
