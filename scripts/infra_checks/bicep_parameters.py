"""Check `bicep parameters`: every INFRA/azure/*.parameters*.json against its .bicep.

Each file beside a .bicep may name declared parameters only, with values of the declared type,
allowed values and bounds (@allowed, @minValue/@maxValue, @minLength/@maxLength), and must give
every parameter without a default. The template is parsed with checkov's own Bicep parser
(pycep-parser, pinned by checkov), so no Bicep CLI is needed.
Called by runner.py (the `bicep parameters` line) and self_test.py; check_parameters_file() is
unit-tested in tests/test_bicep_parameters.py.
Parameters file format: https://learn.microsoft.com/azure/azure-resource-manager/bicep/parameter-files
"""

import functools
import json
import os
import re
from pathlib import Path

from .common import CheckFailed, sorted_glob

TYPES = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}


@functools.lru_cache(maxsize=1)
def parser():
    """One Bicep parser for every file: building its grammar takes a quarter of a second."""
    from pycep import BicepParser  # pinned by checkov

    return BicepParser()


def declared_parameters(bicep):
    """The `parameters` section of a .bicep file as pycep parses it (name -> declaration)."""
    with open(bicep) as f:
        return parser().parse(text=f.read()).get("parameters", {})


def check_value(at, v, d):
    """The problems of value `v` against declaration `d`; `at` names it in the messages."""
    want = TYPES.get(d.get("type"))
    if want and (not isinstance(v, want) or (want is int and isinstance(v, bool))):
        return ["%s: %r is not of type %s" % (at, v, d.get("type"))]
    problems = []
    for dec in d.get("decorators", []):
        t, a = dec.get("type"), dec.get("argument")
        if t == "allowed" and v not in a:
            problems.append("%s: %r is not one of %s" % (at, v, a))
        elif t == "min_value" and v < a or t == "max_value" and v > a:
            problems.append("%s: %r is outside %s %s" % (at, v, t, a))
        elif t == "min_length" and len(v) < a or t == "max_length" and len(v) > a:
            problems.append("%s: %r breaks %s %s" % (at, v, t, a))
    return problems


def check_parameters_file(path):
    """The problems of one parameters file (empty: it matches its template)."""
    path = str(path)
    bicep = re.sub(r"\.parameters[^/]*\.json$", ".bicep", path)
    if not os.path.exists(bicep):
        return ["%s: no %s beside it" % (path, os.path.basename(bicep))]
    try:
        declared = declared_parameters(bicep)
    except Exception as e:  # the parser's errors share no base class
        return ["%s: cannot parse: %s" % (bicep, str(e).splitlines()[0] if str(e) else type(e).__name__)]
    try:
        with open(path) as f:
            given = json.load(f).get("parameters", {})
    except ValueError as e:
        return ["%s: not JSON: %s" % (path, e)]
    problems = []
    for name, entry in given.items():
        at = "%s: %s" % (path, name)
        if name not in declared:
            problems.append("%s is not a parameter of %s" % (at, bicep))
            continue
        if not isinstance(entry, dict) or ("value" not in entry and "reference" not in entry):
            problems.append("%s: needs {\"value\": ...} (or a Key Vault \"reference\")" % at)
            continue
        if "value" in entry:
            problems += check_value(at, entry["value"], declared[name])
    for name, d in declared.items():
        # pycep gives every parameter a "default" key: None when the template declares none.
        if d.get("default") is None and name not in given:
            problems.append("%s: required parameter %s is missing" % (path, name))
    return problems


def check_bicep_parameters(infra):
    """infra: holds azure/*.parameters*.json. Returns the summary; raises CheckFailed."""
    files = sorted_glob(Path(infra) / "azure", "*.parameters*.json")
    problems = [m for f in files for m in check_parameters_file(f)]
    summary = "bicep parameters: %d parameters file(s)" % len(files)
    if problems:
        raise CheckFailed(summary, "\n".join(problems))
    return summary + " match the declared parameters"
