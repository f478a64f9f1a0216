"""Check `policies`: every JSON policy document written as a `!Sub` string in INFRA/aws/*.yaml,
and every role trust policy written as a YAML object.

cfn-lint cannot see inside such a string (infra/aws/federation.yaml builds its trust policy
that way, because the tenant id is part of a condition KEY). So each one is rendered with
placeholder values for every variant of the template's AllowedValues / optional parameters,
checked for a valid IAM policy shape, and the templates with the rendered documents substituted
as objects go through cfn-lint, which validates them as policy objects. A trust policy written
as a YAML object (infra/aws/roles-anywhere.yaml) is validated by cfn-lint as it is; it is
rendered the same way for stsbridge's own trust rules (check_policy): a web-identity trust must
condition on aud AND sub, a Roles Anywhere trust on the certificate's subject AND the trust
anchor.

Called by runner.py (the `policies` line) and self_test.py; the pure parts (Context, variants,
json_subs, yaml_trusts, check_policy, render_templates) are unit-tested in tests/test_policies.py.
Fn::Sub: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-sub.html
IAM policy grammar: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
"""

import copy
import itertools
import json
import re
import tempfile
from pathlib import Path

from .cfn_lint import lint
from .common import CheckFailed, sorted_glob

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
    "-----BEGIN CERTIFICATE-----\nMIIBvalidate\n-----END CERTIFICATE-----\n",
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
# What `!Ref AWS::NoValue` leaves: the key or list item is dropped.
NO_VALUE = object()


class RenderError(Exception):
    """A template cannot be rendered (an intrinsic function or a name this renderer lacks)."""


class Context:
    """Evaluates intrinsic functions of one template `tpl` under parameter `values`."""

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

    def resolve(self, node):
        """A document written as YAML/JSON objects with its intrinsic functions evaluated: `!If`
        picks a branch, `!Ref AWS::NoValue` drops the key or list item, any other function is
        evaluated by value(); keys and plain values are kept as written."""
        if isinstance(node, list):
            return [v for v in (self.resolve(v) for v in node) if v is not NO_VALUE]
        if isinstance(node, dict):
            if len(node) == 1:
                (fn, arg), = node.items()
                if fn == "Ref" and arg == "AWS::NoValue":
                    return NO_VALUE
                if fn == "Fn::If":
                    return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
                if fn == "Ref" or fn.startswith("Fn::"):
                    return self.value(node)
            resolved = {k: self.resolve(v) for k, v in node.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        return node

    def sub(self, arg, json_text):
        """Fn::Sub; with json_text, each value is escaped for a JSON string literal."""
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
    """A value for parameter `name` (declaration `p`) that its constraints accept."""
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


def yaml_trusts(tpl):
    """Yields (path, document) for every AWS::IAM::Role trust policy written as YAML/JSON
    objects rather than as a `!Sub` string (json_subs finds those)."""
    for name, res in (tpl.get("Resources") or {}).items():
        if not isinstance(res, dict) or res.get("Type") != "AWS::IAM::Role":
            continue
        doc = (res.get("Properties") or {}).get("AssumeRolePolicyDocument")
        if isinstance(doc, dict) and "Fn::Sub" not in doc:
            yield ["Resources", name, "Properties", "AssumeRolePolicyDocument"], doc


def json_subs(node, path):
    """Yields (path, Fn::Sub argument) for every Fn::Sub whose text looks like JSON."""
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
ROLES_ANYWHERE = "rolesanywhere.amazonaws.com"
# What CreateSession needs the role's trust policy to allow (Roles Anywhere trust model:
# https://docs.aws.amazon.com/rolesanywhere/latest/userguide/trust-model.html).
ROLES_ANYWHERE_ACTIONS = ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity")
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                  "Resource", "NotResource", "Condition"}


def strings(v):
    """`v` as a list of strings if it is a string or a non-empty list of strings, else None."""
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return v
    return None


def check_policy(doc, kind):
    """The problems of one policy document; kind: trust (a role's AssumeRolePolicyDocument)
    or identity (any other policy)."""
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
        p += roles_anywhere_problems(at, s, actions, cond)
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


def roles_anywhere_problems(at, s, actions, cond):
    """stsbridge's rule for a statement allowing Roles Anywhere to assume the role: it trusts ONE
    certificate from ONE trust anchor. The subject alone would admit a certificate with that
    subject from ANY trust anchor of the account; the anchor alone, every certificate its CA
    issued. And it allows all three actions CreateSession needs."""
    principal = s.get("Principal")
    services = strings(principal.get("Service")) if isinstance(principal, dict) else None
    if s.get("Effect") != "Allow" or not services or ROLES_ANYWHERE not in services:
        return []
    p = []
    allowed = {a.lower() for a in actions}
    missing = [a for a in ROLES_ANYWHERE_ACTIONS if a.lower() not in allowed]
    if missing:
        p.append("%s: Roles Anywhere needs %s (missing %s)"
                 % (at, ", ".join(ROLES_ANYWHERE_ACTIONS), ", ".join(missing)))
    eq = cond.get("StringEquals") if isinstance(cond.get("StringEquals"), dict) else {}
    if not any(k.lower().startswith("aws:principaltag/x509subject/") for k in eq):
        p.append("%s: a Roles Anywhere trust must be conditioned on StringEquals "
                 "aws:PrincipalTag/x509Subject/<field> (the certificate)" % at)
    arn = cond.get("ArnEquals") if isinstance(cond.get("ArnEquals"), dict) else {}
    if not any(k.lower() == "aws:sourcearn" for k in arn):
        p.append("%s: a Roles Anywhere trust must be conditioned on ArnEquals aws:SourceArn "
                 "(the trust anchor)" % at)
    return p


def set_at(node, path, value):
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


def decode_template(path):
    """A CloudFormation template (YAML or JSON, short-form intrinsics) as plain JSON data."""
    from cfnlint.decode import decode  # the pinned cfn-lint's own reader of templates

    raw, errors = decode(str(path))
    if errors or raw is None:
        raise RenderError("cannot be read (%s)" % "; ".join(str(e) for e in errors))
    return json.loads(json.dumps(raw, default=str))


def check_yaml_trusts(path, ctx, trusts, values, seen):
    """The problems of the trust policies written as objects (`trusts`, from yaml_trusts) of
    template `path`, rendered in context `ctx` (parameters `values`). A problem already in
    `seen` (found with other parameters) is not repeated; `seen` gets the new ones."""
    problems = []
    for where, doc in trusts:
        label = "%s: %s" % (path, "/".join(map(str, where)))
        try:
            found = check_policy(ctx.resolve(doc), "trust")
        except RenderError as e:
            found = ["cannot render: %s" % e]
        for m in found:
            if (label, m) not in seen:
                seen.add((label, m))
                problems.append("%s: %s (parameters %s)" % (label, m, values))
    return problems


def render_templates(outdir, files):
    """Renders and checks every JSON-looking Fn::Sub string and every trust policy written as
    objects of the templates `files`.

    Writes OUTDIR/<template>.<n>.json (the template with each distinct rendering of its Fn::Sub
    strings substituted as objects) for cfn-lint. Returns (problems, summary line)."""
    problems, docs, yaml_docs, rendered = [], 0, 0, 0
    for path in files:
        try:
            tpl = decode_template(path)
        except RenderError as e:
            problems.append("%s: %s" % (path, e))
            continue
        subs = list(json_subs(tpl.get("Resources", {}), ["Resources"]))
        trusts = list(yaml_trusts(tpl))
        docs += len(subs)
        yaml_docs += len(trusts)
        if not subs and not trusts:
            continue
        seen, seen_yaml = set(), set()
        try:
            combos = variants(tpl.get("Parameters", {}))
        except RenderError as e:
            problems.append("%s: %s" % (path, e))
            continue
        for values in combos:
            ctx = Context(tpl, values)
            problems += check_yaml_trusts(path, ctx, trusts, values, seen_yaml)
            if not subs:
                continue
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
            name = Path(outdir) / ("%s.%d.json" % (Path(path).name.rsplit(".", 1)[0], len(seen)))
            with open(name, "w") as f:
                json.dump(out, f, indent=1)
    # Deduplicate (every variant repeats the same problem).
    problems = list(dict.fromkeys(problems))
    summary = ("%d JSON policy document(s) and %d YAML trust policy document(s) in %d template(s), "
               "%d distinct rendering(s)" % (docs, yaml_docs, len(files), rendered))
    return problems, summary


def check_policies(infra, work):
    """infra: holds aws/*.yaml; work: a scratch directory. Returns the summary; raises
    CheckFailed."""
    templates = sorted_glob(Path(infra) / "aws", "*.yaml")
    rendered = Path(tempfile.mkdtemp(prefix="rendered.", dir=work))
    problems, summary = render_templates(rendered, templates)
    if problems:
        raise CheckFailed("policies: " + summary, "\n".join(problems))
    renderings = sorted(rendered.glob("*.json"))
    if renderings:
        # W2001 (unused parameter) is expected: rendering replaced the references by values.
        passed, out = lint(renderings, ignore=["W2001"])
        if not passed:
            raise CheckFailed("policies: %s; cfn-lint rejects a rendered template" % summary, out)
    return "policies: %s; shapes valid, renderings cfn-lint clean" % summary
