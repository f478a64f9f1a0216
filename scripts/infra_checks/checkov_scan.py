"""Check `checkov`: the policy-as-code scan of INFRA (Bicep and CloudFormation), offline.

Fails on any failed check, on any skip without a written reason (`checkov:skip=ID:<why>`), and
on a template checkov could not parse or did not recognise: checkov itself exits 0 then and
just leaves the file out of its report, so every template must show up in the results.
Called by runner.py (the `checkov` line) and self_test.py; judge_report() is unit-tested in
tests/test_checkov_scan.py on small reports.
Suppressing checks: https://www.checkov.io/2.Basics/Suppressing%20and%20Skipping%20Policies.html
"""

import json
import subprocess
from pathlib import Path

from .common import CheckFailed, sorted_glob, tool


def expected_files(infra):
    """The templates checkov must report on, as it names them: relative to the scanned
    directory, with a leading / (`/azure/main.bicep`)."""
    infra = Path(infra)
    found = sorted_glob(infra / "azure", "*.bicep") + sorted_glob(infra / "aws", "*.yaml")
    return ["/" + f.relative_to(infra).as_posix() for f in found]


def judge_report(data, expected):
    """checkov's JSON report `data` (one object or a list, one per framework) against the
    files it must cover. Returns (problems, summary line)."""
    problems, seen = [], set()
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for r in data if isinstance(data, list) else [data]:
        if not isinstance(r, dict) or "results" not in r:
            continue
        kind, res, summary = r.get("check_type"), r["results"], r.get("summary", {})
        errors = res.get("parsing_errors") or []
        problems += ["%s: could not parse %s" % (kind, f) for f in errors]
        if summary.get("parsing_errors") and not errors:
            problems.append("%s: could not parse %s file(s)" % (kind, summary["parsing_errors"]))
        for c in res.get("passed_checks", []):
            seen.add(c["file_path"])
            counts["passed"] += 1
        for c in res.get("failed_checks", []):
            seen.add(c["file_path"])
            counts["failed"] += 1
            problems.append("%s: %s failed: %s -- %s in %s lines %s" % (
                kind, c["check_id"], c["check_name"], c["resource"], c["file_path"], c.get("file_line_range")))
        for c in res.get("skipped_checks", []):
            seen.add(c["file_path"])
            counts["skipped"] += 1
            reason = ((c.get("check_result") or {}).get("suppress_comment") or "").strip()
            if reason == "No comment provided" or len(reason) < 15:
                problems.append("%s: %s skipped without a reason (write checkov:skip=%s:<why>) -- %s in %s" % (
                    kind, c["check_id"], c["check_id"], c["resource"], c["file_path"]))
    # checkov exits 0 and reports nothing for a file it could not parse or recognise: every
    # template must show up in the results.
    problems += ["no checkov result for %s (not parsed, or not recognised as a template)" % f
                 for f in expected if f not in seen]
    summary = "%d template(s), %d passed, %d skipped with a reason, %d failed" % (
        len(expected), counts["passed"], counts["skipped"], counts["failed"])
    return problems, summary


def scan(infra):
    """Runs the pinned checkov over `infra`; returns (exit code, JSON report text, stderr)."""
    p = subprocess.run(
        [tool("checkov"), "-d", str(infra), "--framework", "bicep", "cloudformation",
         "--skip-download", "--compact", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    return p.returncode, p.stdout, p.stderr


def check_checkov(infra):
    """infra: holds azure/*.bicep and aws/*.yaml. Returns the summary; raises CheckFailed."""
    rc, report, err = scan(infra)
    # Exit 1 just means "failed checks": the report says which. Anything else is a crash.
    if rc > 1 or rc < 0:
        raise CheckFailed("checkov crashed (exit %d)" % rc, err)
    expected = expected_files(infra)
    try:
        data = json.loads(report)
    except ValueError as e:
        raise CheckFailed("checkov: checkov wrote no JSON report (%s)" % e, err) from None
    problems, summary = judge_report(data, expected)
    if problems:
        raise CheckFailed("checkov: " + summary, "\n".join(problems))
    return "checkov: " + summary
