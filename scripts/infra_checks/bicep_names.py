"""Check `bicep names`: the names INFRA/azure/main.bicep derives are valid for every allowed
input, evaluated offline for representative ones.

A derived name is only checked by Azure at deployment time, for the inputs a deployer happens to
use: 'app-package-${take(appName, 32)}' was an invalid blob container name for a function app
name with an upper-case letter, or with a hyphen where take() cut it, and no offline check could
see that. So this check reads each `var` the names depend on out of the template, evaluates it
with a small evaluator of the Bicep expression language (the subset the template uses: string
interpolation, parameters and variables, the ternary, ==, !=, &&, ||, !, and the functions in
FUNCTIONS; uniqueString() is a fixed-length hash placeholder of 13 lowercase letters and digits,
as Azure's) for every case of CASES, and validates the result against the resource's naming
rules (RULES). An expression the evaluator cannot read fails the check: extend the evaluator
rather than let the name go unchecked.
Called by runner.py (the `bicep names` line) and self_test.py; unit-tested in
tests/test_bicep_names.py.
Naming rules: https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
Bicep operators: https://learn.microsoft.com/azure/azure-resource-manager/bicep/operators
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .common import CheckFailed

TEMPLATE = Path("azure") / "main.bicep"


class EvalError(Exception):
    """The evaluator cannot read or evaluate an expression."""


# --- the evaluator -----------------------------------------------------------------------------

def unique_string(*args):
    """A stand-in for Bicep's uniqueString(): a hash of its arguments, 13 lowercase letters and
    digits long, as Azure's."""
    digest = int.from_bytes(hashlib.sha256("\0".join(map(str, args)).encode()).digest()[:8], "big")
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "".join(alphabet[(digest >> (5 * i)) & 31] for i in range(13))


def _take(value, n):
    if not isinstance(n, int) or isinstance(n, bool):
        raise EvalError("take(): the count must be an integer, not %r" % (n,))
    return value[:max(n, 0)]


def _str_args(name, *args):
    for a in args:
        if not isinstance(a, str):
            raise EvalError("%s(): expects strings, got %r" % (name, a))
    return args


# name (as Bicep spells it; Bicep function names are case-insensitive) -> implementation.
FUNCTIONS = {
    "tolower": lambda s: _str_args("toLower", s)[0].lower(),
    "toupper": lambda s: _str_args("toUpper", s)[0].upper(),
    "take": _take,
    "replace": lambda s, old, new: str.replace(*_str_args("replace", s, old, new)),
    "contains": lambda s, item: item in s,
    "startswith": lambda s, prefix: str.startswith(*_str_args("startsWith", s, prefix)),
    "endswith": lambda s, suffix: str.endswith(*_str_args("endsWith", s, suffix)),
    "empty": lambda v: len(v) == 0,
    "length": len,
    "uniquestring": lambda *args: unique_string(*args),
    "resourcegroup": lambda: {"id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg",
                              "name": "rg", "location": "westeurope"},
}


class Parser:
    """Recursive descent over one expression's text; evaluates as it parses (every operand is
    evaluated, which is harmless for these pure functions)."""

    def __init__(self, text, lookup):
        self.text, self.pos, self.lookup = text, 0, lookup

    def fail(self, message):
        raise EvalError("%s at column %d of: %s" % (message, self.pos + 1, self.text))

    def skip(self):
        """Past blanks, and past a // comment (to the end: one line is parsed)."""
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1
        if self.text.startswith("//", self.pos):
            self.pos = len(self.text)

    def peek(self, token):
        self.skip()
        return self.text.startswith(token, self.pos)

    def eat(self, token):
        if self.peek(token):
            self.pos += len(token)
            return True
        return False

    def expect(self, token):
        if not self.eat(token):
            self.fail("expected %r" % token)

    def parse(self):
        value = self.ternary()
        self.skip()
        if self.pos != len(self.text):
            self.fail("unexpected text")
        return value

    # Precedence, lowest first, as Bicep's: ?:, ||, &&, == != (and the unsupported ones), !.
    def ternary(self):
        cond = self.or_()
        if self.eat("?"):
            a = self.ternary()
            self.expect(":")
            b = self.ternary()
            return a if self.boolean(cond) else b
        return cond

    def or_(self):
        value = self.and_()
        while self.eat("||"):
            right = self.and_()
            value = self.boolean(value) or self.boolean(right)
        return value

    def and_(self):
        value = self.equality()
        while self.eat("&&"):
            right = self.equality()
            value = self.boolean(value) and self.boolean(right)
        return value

    def equality(self):
        value = self.unary()
        while True:
            if self.eat("=="):
                value = value == self.unary()
            elif self.eat("!="):
                value = value != self.unary()
            elif any(self.peek(op) for op in ("=~", "!~", "<", ">", "??", "+", "-", "*", "/", "%")):
                self.fail("unsupported operator")
            else:
                return value

    def unary(self):
        if self.eat("!"):
            return not self.boolean(self.unary())
        return self.postfix()

    def postfix(self):
        value = self.primary()
        while True:
            if self.eat("."):
                name = self.identifier()
                if not isinstance(value, dict) or name not in value:
                    self.fail("no property %r" % name)
                value = value[name]
            elif self.peek("["):
                self.fail("unsupported indexing")
            else:
                return value

    def primary(self):
        self.skip()
        if self.eat("("):
            value = self.ternary()
            self.expect(")")
            return value
        if self.peek("'"):
            return self.string()
        m = re.compile(r"-?[0-9]+").match(self.text, self.pos)
        if m:
            self.pos = m.end()
            return int(m.group(0))
        name = self.identifier()
        if name in ("true", "false"):
            return name == "true"
        if self.eat("("):
            args = []
            if not self.eat(")"):
                args.append(self.ternary())
                while self.eat(","):
                    args.append(self.ternary())
                self.expect(")")
            fn = FUNCTIONS.get(name.lower())
            if fn is None:
                self.fail("unsupported function %s()" % name)
            try:
                return fn(*args)
            except TypeError as e:
                self.fail("%s(): %s" % (name, e))
        return self.lookup(name)

    def identifier(self):
        self.skip()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.pos)
        if not m:
            self.fail("expected an expression")
        self.pos = m.end()
        return m.group(0)

    def string(self):
        """A single-quoted string with ${...} interpolation and Bicep's escapes."""
        self.expect("'")
        out = []
        escapes = {"\\": "\\", "'": "'", "n": "\n", "r": "\r", "t": "\t", "$": "$"}
        while True:
            if self.pos >= len(self.text):
                self.fail("unterminated string")
            c = self.text[self.pos]
            if c == "'":
                self.pos += 1
                return "".join(out)
            if c == "\\":
                e = self.text[self.pos + 1:self.pos + 2]
                if e not in escapes:
                    self.fail("unsupported escape \\%s" % e)
                out.append(escapes[e])
                self.pos += 2
            elif self.text.startswith("${", self.pos):
                self.pos += 2
                value = self.ternary()
                self.expect("}")
                if isinstance(value, bool):
                    value = "true" if value else "false"
                if not isinstance(value, (str, int)):
                    self.fail("cannot interpolate %r" % (value,))
                out.append(str(value))
            else:
                out.append(c)
                self.pos += 1

    def boolean(self, value):
        if not isinstance(value, bool):
            self.fail("expected a bool, got %r" % (value,))
        return value


# --- the template ------------------------------------------------------------------------------

DECLARATION = re.compile(r"^(var|param)\s+([A-Za-z_][A-Za-z0-9_]*)\b(.*)$", re.M)


def declarations(text):
    """name -> ('var', expression) or ('param', default expression or None) for every
    single-line declaration of a .bicep text. A declaration spanning lines (an array, an
    object) is kept with its first line, which the evaluator then refuses if it is used."""
    found = {}
    for kind, name, rest in DECLARATION.findall(text):
        if kind == "var":
            m = re.match(r"\s*=\s*(.+?)\s*$", rest)
            found[name] = ("var", m.group(1) if m else "")
        else:
            m = re.match(r"\s+[A-Za-z]+\s*=\s*(.+?)\s*$", rest)
            found[name] = ("param", m.group(1) if m else None)
    return found


class Template:
    """The declarations of one .bicep text, evaluated for given parameter values."""

    def __init__(self, text):
        self.decls = declarations(text)

    def evaluate(self, name, params):
        """The value of variable `name` with the parameters `params` (name -> value; others
        take their default). Raises EvalError."""
        cache, active = {}, []

        def lookup(ident):
            if ident in cache:
                return cache[ident]
            if ident not in self.decls:
                raise EvalError("%s is not a single-line var or param of the template" % ident)
            kind, expr = self.decls[ident]
            if kind == "param" and ident in params:
                value = params[ident]
            elif expr is None:
                raise EvalError("parameter %s has no default and the case gives no value" % ident)
            else:
                if ident in active:
                    raise EvalError("%s refers to itself" % ident)
                active.append(ident)
                try:
                    value = Parser(expr, lookup).parse()
                except EvalError as e:
                    raise EvalError("%s %s: %s" % (kind, ident, e)) from None
                finally:
                    active.pop()
            cache[ident] = value
            return value

        return lookup(name)


# --- what is checked ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    what: str            # the resource type, as messages name it
    pattern: str         # a regex the whole name must match
    words: str           # the pattern, as messages say it
    min_length: int
    max_length: int


BLOB_CONTAINER = Rule("blob container", r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*",
                      "lowercase letters, digits and single hyphens, first and last a letter or digit", 3, 63)
STORAGE_ACCOUNT = Rule("storage account", r"[a-z0-9]+", "lowercase letters and digits", 3, 24)

# variable -> the rule its value must satisfy.
RULES = {
    "deploymentContainerName": BLOB_CONTAINER,
    "storageName": STORAGE_ACCOUNT,
}

# Representative inputs: App Service names are 2-60 letters, digits and hyphens, neither first
# nor last a hyphen; baseName is 3-12 characters. Each case: (what it shows, parameters).
CASES = [
    ("the defaults", {}),
    ("the longest baseName, with a hyphen", {"baseName": "my-stsbridge"}),
    ("an upper-case baseName", {"baseName": "StsBridge"}),
    ("the shortest app name", {"functionAppName": "ab"}),
    ("an app name with upper-case letters", {"functionAppName": "MyStsBridge"}),
    ("a hyphen at position 32 of the app name", {"functionAppName": "a" * 31 + "-" + "b" * 28}),
    ("two hyphens in a row in the app name", {"functionAppName": "sts--bridge"}),
    ("two hyphens at positions 31 and 32", {"functionAppName": "c" * 30 + "--" + "d" * 5}),
    ("the longest app name, lower-case", {"functionAppName": "e" * 60}),
    ("the longest app name, upper-case with hyphens", {"functionAppName": "Ab-" * 19 + "Cde"}),
    ("an app name starting with digits", {"functionAppName": "9to5-Bridge"}),
]


def invalid(name, rule):
    """Why `name` breaks `rule`, or None when it is valid."""
    if not isinstance(name, str):
        return "not a string: %r" % (name,)
    if not rule.min_length <= len(name) <= rule.max_length:
        return "%d characters, not %d-%d" % (len(name), rule.min_length, rule.max_length)
    if not re.fullmatch(rule.pattern, name):
        return "not only %s" % rule.words
    return None


def problems_of(text, where, rules=None, cases=None):
    """(number of names evaluated, the problems) for one .bicep text."""
    template = Template(text)
    rules, cases = rules or RULES, cases or CASES
    count, problems = 0, []
    for variable, rule in rules.items():
        for label, params in cases:
            try:
                value = template.evaluate(variable, params)
            except EvalError as e:
                problems.append("%s: cannot evaluate %s: %s" % (where, variable, e))
                break  # the same error for every case
            count += 1
            why = invalid(value, rule)
            if why:
                problems.append("%s: %s = %r is not a valid %s name (%s) for %s %s"
                                % (where, variable, value, rule.what, why, label, params))
    return count, problems


def check_bicep_names(infra):
    """infra: holds azure/main.bicep. Returns the summary; raises CheckFailed."""
    bicep = Path(infra) / TEMPLATE
    summary = "bicep names: %s for %d inputs" % (", ".join(RULES), len(CASES))
    try:
        text = bicep.read_text()
    except OSError as e:
        raise CheckFailed(summary, "%s: %s" % (bicep, e)) from None
    _, problems = problems_of(text, str(bicep))
    if problems:
        raise CheckFailed(summary, "\n".join(problems))
    return summary + " (upper case, hyphens where take() cuts, the longest): all valid"
