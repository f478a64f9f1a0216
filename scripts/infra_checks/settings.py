"""Check `app settings`: the setting names the deployment uses are the ones the app documents.

The documentation's settings tables are the contract, and a misspelt name is silently ignored
by the app, which then runs on a default. So every setting that INFRA/azure/*.bicep (its app
settings arrays), the additionalAppSettings of INFRA/azure/*.parameters*.json and
local.settings.json.example set, and every setting an output of INFRA/aws/*.yaml gives the value
of (its Description says "... the Function App's RoleArn app setting"), must be one the docs
name in backticks (README.md and every docs/*.md page, whichever exist: a setting documented in
any of them counts), or a setting of the Functions host / the platform (PLATFORM). Such an
output is named after its setting (deployers look outputs up by the setting's name). And every
%Setting% a function.json binds to must be set by a Bicep template, or the deployed trigger
would have no value.
Nothing here lists stsbridge's own settings: they are read from the docs, so a new setting
needs only its documentation. A setting the Flex Consumption plan does not support (UNSUPPORTED:
the time zone ones) fails wherever it is set, documented or not.
Called by runner.py (the `app settings` line) and self_test.py; unit-tested in
tests/test_settings.py.
Platform settings: https://learn.microsoft.com/azure/azure-functions/functions-app-settings
"""

import json
import re
from pathlib import Path

from .common import CheckFailed, sorted_glob

# Read by the Functions host or the platform, not by stsbridge (the docs do not list them).
PLATFORM = {"AzureWebJobsStorage", "AzureWebJobsStorage__accountName", "FUNCTIONS_WORKER_RUNTIME",
            "APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}
# Set anywhere, these fail: Flex Consumption does not support them (the timer runs in UTC
# whatever they say, and Microsoft warns they can break TLS and metrics; docs/deploy.md,
# "What Flex Consumption means for stsbridge").
# https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-time-zones
UNSUPPORTED = {"TZ", "WEBSITE_TIME_ZONE"}
# How the docs name a setting: `SettingName` (also matches other identifiers in backticks,
# which is harmless: only names the deployment sets are looked up).
DOCUMENTED = re.compile(r"`([A-Za-z][A-Za-z0-9_]*)`")
# A Bicep app settings array entry: {name: '...', value: ...} over two lines.
BICEP_SETTING = re.compile(r"name:\s*'([A-Za-z0-9_]+)'\s*\n\s*value:")
BINDING_EXPRESSION = re.compile(r"%([A-Za-z0-9_]+)%")
# A CloudFormation output whose value is an app setting's says so in its Description.
OUTPUT_SETTING = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*) app setting\b")


def doc_files(root):
    """The documentation pages that may document settings: ROOT/README.md (if present) and
    every ROOT/docs/*.md, in that order."""
    root = Path(root)
    readme = [root / "README.md"] if (root / "README.md").is_file() else []
    return readme + [p for p in sorted_glob(root / "docs", "*.md") if p.is_file()]


def documented_names(files):
    """Every name written in backticks in `files`."""
    names = set()
    for path in files:
        with open(path, encoding="utf-8") as f:
            names.update(DOCUMENTED.findall(f.read()))
    return names


def template_settings(infra):
    """name -> the .bicep file that first sets it as an app setting."""
    used = {}
    for bicep in sorted_glob(Path(infra) / "azure", "*.bicep"):
        with open(bicep) as f:
            for name in BICEP_SETTING.findall(f.read()):
                used.setdefault(name, str(bicep))
    return used


def output_settings(infra):
    """(template, output name, setting) for every output of INFRA/aws/*.yaml whose Description
    says it is the value of an app setting ("... the Function App's RoleArn app setting")."""
    from .policies import RenderError, decode_template  # cfn-lint's reader of templates

    found = []
    for path in sorted_glob(Path(infra) / "aws", "*.yaml"):
        try:
            outputs = decode_template(path).get("Outputs") or {}
        except RenderError:
            continue  # the cfn-lint check reports a template that cannot be read
        for name, output in outputs.items():
            description = output.get("Description") if isinstance(output, dict) else None
            m = OUTPUT_SETTING.search(description) if isinstance(description, str) else None
            if m:
                found.append((str(path), name, m.group(1)))
    return found


def settings_used(infra, root):
    """name -> where it is first set: a Bicep template, a parameters file's
    additionalAppSettings, a CloudFormation output, or local.settings.json.example (in that
    order)."""
    used = template_settings(infra)
    for path in sorted_glob(Path(infra) / "azure", "*.parameters*.json"):
        with open(path) as f:
            extra = json.load(f).get("parameters", {}).get("additionalAppSettings", {}).get("value", {})
        for name in extra if isinstance(extra, dict) else ():
            used.setdefault(name, "%s (additionalAppSettings)" % path)
    for path, output, name in output_settings(infra):
        used.setdefault(name, "%s (output %s)" % (path, output))
    example = Path(root) / "local.settings.json.example"
    with open(example) as f:
        for name in json.load(f).get("Values", {}):
            used.setdefault(name, str(example))
    return used


def binding_settings(root):
    """(function.json, setting name) for every %Setting% in ROOT/*/function.json."""
    found = []
    for fj in sorted_glob(Path(root), "*/function.json"):
        with open(fj) as f:
            found += [(str(fj), name) for name in BINDING_EXPRESSION.findall(f.read())]
    return found


def check_settings(infra, root):
    """infra: holds azure/*.bicep and azure/*.parameters*.json; root: holds the docs,
    local.settings.json.example and the function folders. Returns the summary; raises
    CheckFailed."""
    docs = doc_files(root)
    if not docs:
        raise CheckFailed("app settings: no README.md or docs/*.md in %s to check the names against" % root)
    documented = documented_names(docs)
    used = settings_used(infra, root)
    problems = ["%s sets %s, which Flex Consumption does not support (the timer runs in UTC)" % (where, name)
                for name, where in sorted(used.items()) if name in UNSUPPORTED]
    problems += ["%s sets %s, which README.md and docs/*.md do not document as a setting" % (where, name)
                 for name, where in sorted(used.items())
                 if name not in documented and name not in PLATFORM and name not in UNSUPPORTED]
    problems += ["%s: output %s gives the %s app setting: name it %s (deployers look outputs up by the "
                 "setting's name)" % (path, output, name, name)
                 for path, output, name in output_settings(infra) if output != name]
    set_by_template = set(template_settings(infra))
    problems += ["%s binds to %%%s%%, which no Bicep template sets as an app setting" % (fj, name)
                 for fj, name in binding_settings(root) if name not in set_by_template]
    summary = "app settings: %d setting name(s) checked" % len(used)
    if problems:
        raise CheckFailed(summary, "\n".join(problems))
    return "%s against %s and the function.json bindings" % (summary, describe_docs(root, docs))


def describe_docs(root, docs):
    """`README.md + 3 docs/*.md page(s)`: what doc_files(root) found, in a few words."""
    readme = Path(root) / "README.md"
    parts = ["README.md"] if readme in docs else []
    pages = len([d for d in docs if d != readme])
    if pages:
        parts.append("%d docs/*.md page(s)" % pages)
    return " + ".join(parts)
