"""The self-test: copies of the repository's checked files with one deliberate defect each.

The check concerned must fail on its copy, and for the expected reason (the case's marker must
appear in its output), or the check has stopped checking. Running only that check keeps the
self-test quick; the case marked `all` runs the whole validation instead, proving that one
failing check fails the run (checkov itself exits 0 on a file it cannot parse, so that is the
case chosen).
Called by __main__.py (the `self-test` line; --no-self-test skips it); mutate() and the copy
are unit-tested in tests/test_self_test.py.
"""

import io
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .common import CheckFailed, failed_line, indent
from .runner import CHECKS, Tree, run_check, validate


@dataclass(frozen=True)
class Case:
    check: str        # a key of runner.CHECKS, or "all" for the whole validation
    name: str
    file: str         # relative to the copy's root
    pattern: str      # a Python regex; its first match is replaced
    replacement: str  # re.sub's replacement (\1 and \n work)
    marker: str       # must appear in the failing check's output


CASES = [
    Case("cfn_lint", "unknown resource property", "infra/aws/federation.yaml",
         r"(\n    Properties:\n)", r"\1      NotARealProperty: true\n", "E3002"),
    Case("cfn_lint", "policy effect not Allow or Deny", "infra/aws/minter-user.yaml",
         r"(Sid: RotateOwnAccessKeyOnly\n\s*Effect: )Allow", r"\1Permit", "E3510"),
    Case("policies", "JSON policy syntax", "infra/aws/federation.yaml",
         r'"Effect": "Allow",', r'"Effect": "Allow"', "not valid JSON"),
    Case("policies", "trust without the sub condition", "infra/aws/federation.yaml",
         r',\s*"\$\{IssuerKey\}:sub": "[^"]*"', r"", "StringEquals <issuer>:sub"),
    Case("policies", "Roles Anywhere trust without the trust anchor condition", "infra/aws/roles-anywhere.yaml",
         r"\n +ArnEquals:\n +aws:SourceArn: [^\n]*", r"", "ArnEquals aws:SourceArn"),
    Case("all", "Bicep syntax error (checkov exits 0)", "infra/azure/main.bicep",
         r"param baseName string = '(\w+)'", r"param baseName string = '\1", "could not parse"),
    Case("checkov", "a failing check", "infra/azure/main.bicep",
         r"httpsOnly: true", r"httpsOnly: false", "CKV_AZURE_70"),
    Case("checkov", "skip without a reason", "infra/azure/main.bicep",
         r"checkov:skip=(CKV\w+):[^\n]*", r"checkov:skip=\1", "skipped without a reason"),
    Case("bicep_parameters", "value not allowed", "infra/azure/main.parameters.example.json",
         r'"value": "web-identity"', r'"value": "web-identities"', "is not one of"),
    Case("flex_site_config", "ftpsState on the Flex site (ARM error 51021)", "infra/azure/main.bicep",
         r"(\n      http20Enabled: true\n)", r"\n      FtpsState: 'Disabled'\1", "siteConfig.FtpsState"),
    Case("bicep_names", "container name invalid for upper-case or hyphen-cut app names", "infra/azure/main.bicep",
         r"var deploymentContainerName = [^\n]*", r"var deploymentContainerName = 'app-package-${take(appName, 32)}'",
         "is not a valid blob container name"),
    Case("certificate_policy", "an exportable signing key", "infra/azure/roles-anywhere-certificate-policy.json",
         r'"exportable": false', r'"exportable": true', "keyProperties.exportable must be false"),
    Case("schemas", "host.json version", "host.json",
         r'"version": "2.0"', r'"version": "3.0"', "'version': '3.0'"),
    Case("schemas", "function.json authLevel", "HttpRotate/function.json",
         r'"authLevel": "function"', r'"authLevel": "functions"', "authLevel"),
    Case("schemas", "local.settings.json.example type", "local.settings.json.example",
         r'"IsEncrypted": false', r'"IsEncrypted": "no"', "IsEncrypted"),
    Case("targets_schema", "credential mode not allowed", "targets.example.json",
         r'"CredentialMode": "session-token"', r'"CredentialMode": "session-tokens"', "'session-tokens' is not one of"),
    Case("settings", "misspelt app setting", "infra/azure/main.bicep",
         r"name: 'TimerSchedule'", r"name: 'TimerSchedul'", "TimerSchedul"),
    Case("settings", "a time zone setting (unsupported on Flex)", "infra/azure/main.parameters.example.json",
         r'"ExpiryWarningSeconds": "1800"', r'"ExpiryWarningSeconds": "1800",\n        "WEBSITE_TIME_ZONE": "UTC"',
         "which Flex Consumption does not support"),
    Case("settings", "a CloudFormation output not named after its setting", "infra/aws/roles-anywhere.yaml",
         r"\n  RolesAnywhereProfileArn:\n", r"\n  ProfileArn:\n", "name it RolesAnywhereProfileArn"),
    Case("alert_texts", "alert on words the app never logs", "infra/azure/main.bicep",
         r'credentials expire in"', r'credentials expire within"', "expire within"),
]


class CannotBreak(Exception):
    """A case's pattern no longer matches its file: the case needs updating."""


def mutate(path, pattern, replacement):
    """Replaces the first match of `pattern` in the file `path`; raises CannotBreak if that
    changes nothing."""
    with open(path) as f:
        text = f.read()
    new, n = re.subn(pattern, replacement.replace("\\n", "\n"), text, count=1)
    if n == 0 or new == text:
        raise CannotBreak("the pattern %r no longer matches %s: update the self-test case" % (pattern, path))
    with open(path, "w") as f:
        f.write(new)


def make_copy(repo, dest):
    """Copies what the checks read from `repo` into `dest`: infra/, host.json,
    local.settings.json.example, targets.schema.json, targets.example.json, the docs
    (README.md, docs/*.md) and */function.json."""
    repo, dest = Path(repo), Path(dest)
    shutil.copytree(repo / "infra", dest / "infra")
    for name in ("host.json", "local.settings.json.example", "targets.schema.json", "targets.example.json",
                 "README.md"):
        if (repo / name).exists():
            shutil.copy2(repo / name, dest / name)
    for path in [*sorted(repo.glob("docs/*.md")), *sorted(repo.glob("*/function.json"))]:
        (dest / path.parent.relative_to(repo)).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / path.relative_to(repo))


def run_case(case, repo, src, work, checks=None):
    """Breaks a copy as `case` says and runs its check. Returns None when the copy is rejected
    for the expected reason, else the FAIL lines saying what went wrong."""
    checks = checks or CHECKS
    label = "%s: %s" % (case.check, case.name)
    copy = Path(tempfile.mkdtemp(prefix="self-test.", dir=work))
    make_copy(repo, copy)
    try:
        mutate(copy / case.file, case.pattern, case.replacement)
    except (CannotBreak, OSError) as e:
        return failed_line("self-test '%s': cannot break the copy" % label) + "\n" + indent(str(e))
    tree = Tree.of(copy, src, tempfile.mkdtemp(prefix="scratch.", dir=work))
    if case.check == "all":
        log = io.StringIO()
        passed = validate(tree, log, checks)
        log = log.getvalue()
    else:
        passed, log = run_check(case.check, checks[case.check], tree)
    if passed:
        return failed_line("self-test '%s': the broken copy PASSED" % label) + "\n" + indent(log)
    if case.marker not in log:
        return (failed_line("self-test '%s': rejected, but not for the expected reason ('%s')" % (label, case.marker))
                + "\n" + indent(log))
    return None


def self_test(repo, src, work, out, cases=None, checks=None):
    """Runs every case (default CASES), writing each one that is not caught to `out` as it
    comes. Returns the summary; raises CheckFailed if any case was not caught."""
    cases = CASES if cases is None else cases
    missed = 0
    for case in cases:
        failure = run_case(case, repo, src, work, checks)
        if failure is not None:
            missed += 1
            out.write(failure)
            out.flush()
    if missed:
        raise CheckFailed("self-test: %d of %d broken copies not caught" % (missed, len(cases)))
    return "self-test: all %d deliberately broken copies rejected for the expected reason" % len(cases)
