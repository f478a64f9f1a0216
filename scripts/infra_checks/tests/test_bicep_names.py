"""Tests of bicep_names.py: the expression evaluator, reading declarations out of a template,
and the names of this repository's main.bicep for the representative inputs (including that
an app whose earlier container name was valid keeps it)."""

import re
import unittest
from pathlib import Path

from infra_checks.bicep_names import (BLOB_CONTAINER, CASES, EvalError, Parser, Template, check_bicep_names,
                                      declarations, invalid, problems_of, unique_string)
from infra_checks.common import CheckFailed
from infra_checks.tests.fixtures import TempDirTestCase

INFRA = Path(__file__).resolve().parents[3] / "infra"
MAIN = (INFRA / "azure" / "main.bicep").read_text()


def ev(text, **names):
    def lookup(name):
        if name not in names:
            raise EvalError("unknown " + name)
        return names[name]
    return Parser(text, lookup).parse()


class Evaluator(unittest.TestCase):
    def test_strings_interpolation_and_escapes(self):
        self.assertEqual(ev("'a-${x}-${take(y, 2)}'", x="X", y="long"), "a-X-lo")
        self.assertEqual(ev(r"'it\'s \${not} \\ ${1}'"), "it's ${not} \\ 1")
        self.assertEqual(ev("'${true}'"), "true")

    def test_functions_are_case_insensitive_and_as_bicep_defines_them(self):
        self.assertEqual(ev("toLower('AbC')"), "abc")
        self.assertEqual(ev("TOUPPER('abc')"), "ABC")
        self.assertEqual(ev("replace('a--b--c', '--', '-')"), "a-b-c")
        self.assertEqual(ev("take('abc', 10)"), "abc")
        self.assertEqual(ev("take('abc', 0)"), "")
        self.assertEqual((ev("contains('abc', 'b')"), ev("endsWith('abc', 'c')"), ev("startsWith('abc', 'b')")),
                         (True, True, False))
        self.assertEqual((ev("empty('')"), ev("empty('x')"), ev("length('abcd')")), (True, False, 4))
        self.assertEqual(ev("resourceGroup().name"), "rg")

    def test_unique_string_is_a_stable_13_character_hash(self):
        a = ev("uniqueString(resourceGroup().id, 'app')")
        self.assertRegex(a, r"^[a-z0-9]{13}$")
        self.assertEqual(a, unique_string(ev("resourceGroup().id"), "app"))
        self.assertNotEqual(a, ev("uniqueString(resourceGroup().id, 'other')"))

    def test_precedence_as_bicep(self):
        # == binds tighter than &&, which binds tighter than ||; ?: is lowest; ! is unary.
        self.assertIs(ev("'a' == 'a' && 'b' == 'c'"), False)
        self.assertIs(ev("true || false && false"), True)
        self.assertEqual(ev("1 == 1 && !false ? 'y' : 'n'"), "y")
        self.assertEqual(ev("false ? 'a' : true ? 'b' : 'c'"), "b")
        self.assertIs(ev("!(true && false)"), True)
        self.assertIs(ev("'a' != 'b'"), True)

    def test_a_trailing_comment_is_ignored(self):
        self.assertEqual(ev("'x' // the rest: 'y'"), "x")

    def test_what_it_cannot_read_is_an_error(self):
        for text in ("substring('abc', 1)", "'a' + 'b'", "x[0]", "'open", "1 =~ 1", "take('a', 1) take",
                     "'${[1]}'", "toLower(1)", "true ? 'a'"):
            with self.assertRaises(EvalError, msg=text):
                ev(text, x="x")

    def test_conditions_must_be_bools(self):
        with self.assertRaisesRegex(EvalError, "expected a bool"):
            ev("'a' ? 'b' : 'c'")


class Declarations(unittest.TestCase):
    def test_vars_and_params_with_and_without_defaults(self):
        text = ("@maxLength(60)\nparam a string = ''\nparam b int\nvar c = 'x' // note\n"
                "var d = [\n  1\n]\n  var indented = 1\n")
        self.assertEqual(declarations(text), {"a": ("param", "''"), "b": ("param", None),
                                              "c": ("var", "'x' // note"), "d": ("var", "[")})

    def test_template_evaluates_through_variables_and_defaults(self):
        t = Template("param p string = 'P'\nparam q string\nvar v = '${p}-${w}'\nvar w = toLower(q)\n"
                     "var loop = loop\nvar arr = [\n")
        self.assertEqual(t.evaluate("v", {"q": "Q"}), "P-q")
        self.assertEqual(t.evaluate("v", {"p": "x", "q": "Y"}), "x-y")
        with self.assertRaisesRegex(EvalError, "q has no default"):
            t.evaluate("v", {})
        with self.assertRaisesRegex(EvalError, "refers to itself"):
            t.evaluate("loop", {})
        with self.assertRaisesRegex(EvalError, "var arr"):
            t.evaluate("arr", {})
        with self.assertRaisesRegex(EvalError, "nope is not a single-line var or param"):
            Template("var a = nope\n").evaluate("a", {})


class Rules(unittest.TestCase):
    def test_blob_container_names(self):
        for ok in ("abc", "a-b-c", "9" * 63, "app-package-x1"):
            self.assertIsNone(invalid(ok, BLOB_CONTAINER), ok)
        for bad in ("ab", "a" * 64, "Abc", "-abc", "abc-", "a--b", "a_b"):
            self.assertIsNotNone(invalid(bad, BLOB_CONTAINER), bad)


class MainBicep(unittest.TestCase):
    def setUp(self):
        self.t = Template(MAIN)

    def test_every_case_gives_valid_names(self):
        count, problems = problems_of(MAIN, "main.bicep")
        self.assertEqual(problems, [])
        self.assertEqual(count, 2 * len(CASES))

    def test_an_app_whose_earlier_container_name_was_valid_keeps_it(self):
        # Redeploying must never move an existing app's package to a new container.
        for _, params in CASES:
            app = self.t.evaluate("appName", params)
            legacy = "app-package-" + app[:32]
            if invalid(legacy, BLOB_CONTAINER) is None:
                self.assertEqual(self.t.evaluate("deploymentContainerName", params), legacy, params)

    def test_other_apps_get_the_lower_case_name_and_a_hash(self):
        name = self.t.evaluate("deploymentContainerName", {"functionAppName": "My-Bridge"})
        self.assertRegex(name, r"^app-package-mybridge-[a-z0-9]{13}$")

    def test_the_cases_cover_what_broke_the_earlier_expression(self):
        old = re.sub(r"var deploymentContainerName = [^\n]*",
                     "var deploymentContainerName = 'app-package-${take(appName, 32)}'", MAIN)
        _, problems = problems_of(old, "old")
        labels = [label for label, _ in CASES if any(("for %s {" % label) in p for p in problems)]
        self.assertIn("an app name with upper-case letters", labels)
        self.assertIn("a hyphen at position 32 of the app name", labels)
        self.assertIn("the longest app name, upper-case with hyphens", labels)


class CheckBicepNames(TempDirTestCase):
    def test_this_repository_passes(self):
        self.assertTrue(check_bicep_names(INFRA).endswith("all valid"))

    def test_an_invalid_name_fails_with_the_case(self):
        self.write("infra/azure/main.bicep", "param functionAppName string = 'x'\nvar appName = functionAppName\n"
                   "var deploymentContainerName = 'pkg-${appName}'\nvar storageName = 'st123'\n")
        with self.assertRaises(CheckFailed) as cm:
            check_bicep_names(self.dir / "infra")
        self.assertIn("deploymentContainerName = 'pkg-MyStsBridge' is not a valid blob container name "
                      "(not only lowercase letters, digits and single hyphens, first and last a letter or digit) "
                      "for an app name with upper-case letters", cm.exception.details)

    def test_an_expression_it_cannot_read_fails(self):
        self.write("infra/azure/main.bicep", "var deploymentContainerName = format('{0}', 'x')\nvar storageName = 'st123'\n")
        with self.assertRaises(CheckFailed) as cm:
            check_bicep_names(self.dir / "infra")
        self.assertIn("cannot evaluate deploymentContainerName", cm.exception.details)
        self.assertIn("unsupported function format()", cm.exception.details)

    def test_a_missing_template_fails(self):
        with self.assertRaises(CheckFailed):
            check_bicep_names(self.dir / "infra")


if __name__ == "__main__":
    unittest.main()
