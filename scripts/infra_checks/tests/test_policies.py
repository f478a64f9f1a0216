"""Tests of policies.py: the intrinsic-function renderer, the parameter variants, the IAM policy
shape rules, and the rendering of tiny templates (cfn-lint's reader, in process; cfn-lint runs
once, on the renderings of the passing template)."""

import json
import unittest

from infra_checks import policies
from infra_checks.common import CheckFailed
from infra_checks.policies import (Context, RenderError, check_policy, json_subs, render_templates,
                                   sample_for, strings, variants, yaml_trusts)
from infra_checks.tests.fixtures import TempDirTestCase

TPL = {
    "Parameters": {"Name": {"Type": "String"}},
    "Conditions": {
        "IsA": {"Fn::Equals": [{"Ref": "Name"}, "a"]},
        "NotA": {"Fn::Not": [{"Condition": "IsA"}]},
        "Both": {"Fn::And": [{"Condition": "IsA"}, {"Condition": "NotA"}]},
        "Either": {"Fn::Or": [{"Condition": "IsA"}, {"Condition": "NotA"}]},
    },
    "Resources": {
        "Provider": {"Type": "AWS::IAM::OIDCProvider"},
        "Role": {"Type": "AWS::IAM::Role"},
        "Bucket": {"Type": "AWS::S3::Bucket"},
    },
}


class Rendering(unittest.TestCase):
    def ctx(self, **values):
        return Context(TPL, values)

    def test_ref_of_pseudo_parameter_parameter_and_resources(self):
        c = self.ctx(Name="a")
        self.assertEqual(c.ref("AWS::AccountId"), "123456789012")
        self.assertEqual(c.ref("Name"), "a")
        self.assertEqual(c.ref("Provider"), "arn:aws:iam::123456789012:oidc-provider/validate.example/Provider")
        self.assertEqual(c.ref("Role"), "validate-Role")
        with self.assertRaisesRegex(RenderError, "unknown name 'Nope'"):
            c.ref("Nope")

    def test_getatt(self):
        c = self.ctx()
        self.assertEqual(c.getatt("Role", "Arn"), "arn:aws:iam::123456789012:role/Role")
        self.assertEqual(c.getatt("Bucket", "Arn"), "validate-Bucket-Arn")
        self.assertEqual(c.value({"Fn::GetAtt": "Role.Arn"}), c.value({"Fn::GetAtt": ["Role", "Arn"]}))
        with self.assertRaises(RenderError):
            c.getatt("Nope", "Arn")

    def test_conditions(self):
        a, b = self.ctx(Name="a"), self.ctx(Name="b")
        self.assertTrue(a.condition("IsA"))
        self.assertFalse(b.condition("IsA"))
        self.assertTrue(b.condition("NotA"))
        self.assertFalse(a.condition("Both"))
        self.assertTrue(a.condition("Either") and b.condition("Either"))
        with self.assertRaisesRegex(RenderError, "unknown condition"):
            a.condition("Nope")

    def test_values(self):
        c = self.ctx(Name="a")
        self.assertEqual(c.value(True), "true")
        self.assertEqual(c.value(3), "3")
        self.assertEqual(c.value({"Fn::If": ["IsA", "yes", "no"]}), "yes")
        self.assertEqual(c.value({"Fn::Join": ["-", ["x", {"Ref": "Name"}]]}), "x-a")
        self.assertEqual(c.value({"Fn::Select": ["1", ["x", "y"]]}), "y")
        self.assertEqual(c.value({"Fn::Sub": "n=${Name}"}), "n=a")
        with self.assertRaisesRegex(RenderError, "cannot render"):
            c.value({"Fn::Base64": "x"})

    def test_sub_escapes_values_inside_json_and_keeps_literal_dollar_braces(self):
        c = self.ctx(Name='say "hi"')
        self.assertEqual(c.sub('{"a": "${Name}"}', json_text=True), '{"a": "say \\"hi\\""}')
        self.assertEqual(c.sub("${!Literal} ${Role.Arn}", json_text=False),
                         "${Literal} arn:aws:iam::123456789012:role/Role")
        self.assertEqual(c.sub(["${X}-${Name}", {"X": "x"}], json_text=False), 'x-say "hi"')

    def test_sub_of_a_list_value_fails(self):
        with self.assertRaisesRegex(RenderError, "is a list"):
            self.ctx(Name=["a", "b"]).sub("${Name}", json_text=False)

    def test_resolve_evaluates_functions_inside_objects_and_drops_no_value(self):
        doc = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Condition": {"StringEquals": {"k:name": {"Ref": "Name"}},
                                              "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["Role", "Arn"]}}}},
            {"Fn::If": ["IsA", {"Sid": "OnlyForA"}, {"Ref": "AWS::NoValue"}]},
        ], "Extra": {"Fn::If": ["NotA", "x", {"Ref": "AWS::NoValue"}]}}
        self.assertEqual(self.ctx(Name="a").resolve(doc), {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Condition": {"StringEquals": {"k:name": "a"},
                                              "ArnEquals": {"aws:SourceArn": "arn:aws:iam::123456789012:role/Role"}}},
            {"Sid": "OnlyForA"}]})
        self.assertEqual(len(self.ctx(Name="b").resolve(doc)["Statement"]), 1)
        self.assertEqual(self.ctx(Name="b").resolve(doc)["Extra"], "x")
        with self.assertRaisesRegex(RenderError, "unknown name 'Nope'"):
            self.ctx(Name="a").resolve({"a": [{"Ref": "Nope"}]})


class Variants(unittest.TestCase):
    def test_every_allowed_value_and_empty_or_sample_for_optional_parameters(self):
        got = variants({
            "Version": {"Type": "String", "AllowedValues": ["v1", "v2"]},
            "Optional": {"Type": "String", "Default": ""},
            "Fixed": {"Type": "String", "Default": "x"},
            "List": {"Type": "CommaDelimitedList", "Default": "a,b"},
        })
        self.assertEqual(len(got), 4)
        self.assertEqual({(v["Version"], v["Optional"]) for v in got},
                         {("v1", ""), ("v2", ""), ("v1", "validate-Optional"), ("v2", "validate-Optional")})
        self.assertTrue(all(v["Fixed"] == "x" and v["List"] == ["a", "b"] for v in got))

    def test_the_number_of_variants_is_capped(self):
        params = {"P%d" % i: {"Type": "String", "AllowedValues": ["a", "b"]} for i in range(8)}
        self.assertEqual(len(variants(params)), policies.MAX_VARIANTS)

    def test_samples_follow_the_allowed_pattern(self):
        guid = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
        self.assertEqual(sample_for("T", {"AllowedPattern": guid}), "00000000-0000-0000-0000-000000000000")
        self.assertEqual(sample_for("N", {"Type": "Number", "MinValue": 3600}), "3600")
        self.assertEqual(sample_for("S", {}), "validate-S")
        with self.assertRaisesRegex(RenderError, "give it a Default"):
            sample_for("Z", {"AllowedPattern": "^zzz$"})


class JsonSubs(unittest.TestCase):
    def test_finds_json_looking_subs_only(self):
        node = {"A": {"Fn::Sub": ' {"x": 1}'}, "B": [{"Fn::Sub": ["[1]", {}]}], "C": {"Fn::Sub": "arn:${X}"}}
        self.assertEqual([p for p, _ in json_subs(node, ["R"])], [["R", "A"], ["R", "B", 0]])


class YamlTrusts(unittest.TestCase):
    def test_finds_role_trust_policies_written_as_objects_only(self):
        doc = {"Version": "2012-10-17", "Statement": []}
        tpl = {"Resources": {
            "Yaml": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": doc}},
            "Sub": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Fn::Sub": "{}"}}},
            "Bare": {"Type": "AWS::IAM::Role"},
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"AssumeRolePolicyDocument": doc}},
        }}
        self.assertEqual(list(yaml_trusts(tpl)), [(["Resources", "Yaml", "Properties", "AssumeRolePolicyDocument"], doc)])


def trust(condition):
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/x"},
        "Action": "sts:AssumeRoleWithWebIdentity", "Condition": condition}]}


def roles_anywhere(condition, actions=("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity")):
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "rolesanywhere.amazonaws.com"},
        "Action": list(actions), "Condition": condition}]}


CERTIFICATE = {"StringEquals": {"aws:PrincipalTag/x509Subject/CN": "stsbridge"}}
ANCHOR = {"ArnEquals": {"aws:SourceArn": "arn:aws:rolesanywhere:us-east-1:1:trust-anchor/x"}}


class PolicyShape(unittest.TestCase):
    def test_a_roles_anywhere_trust_on_the_certificate_and_the_trust_anchor_passes(self):
        self.assertEqual(check_policy(roles_anywhere(dict(CERTIFICATE, **ANCHOR)), "trust"), [])

    def test_a_roles_anywhere_trust_without_the_trust_anchor_fails(self):
        self.assertEqual(check_policy(roles_anywhere(CERTIFICATE), "trust"),
                         ["Statement[0]: a Roles Anywhere trust must be conditioned on ArnEquals aws:SourceArn "
                          "(the trust anchor)"])

    def test_a_roles_anywhere_trust_without_the_certificate_fails(self):
        issuer_only = {"StringEquals": {"aws:PrincipalTag/x509Issuer/CN": "My CA"}}
        self.assertEqual(check_policy(roles_anywhere(dict(issuer_only, **ANCHOR)), "trust"),
                         ["Statement[0]: a Roles Anywhere trust must be conditioned on StringEquals "
                          "aws:PrincipalTag/x509Subject/<field> (the certificate)"])

    def test_a_roles_anywhere_trust_needs_all_three_actions(self):
        doc = roles_anywhere(dict(CERTIFICATE, **ANCHOR), actions=["sts:AssumeRole"])
        self.assertEqual(check_policy(doc, "trust"),
                         ["Statement[0]: Roles Anywhere needs sts:AssumeRole, sts:TagSession, sts:SetSourceIdentity "
                          "(missing sts:TagSession, sts:SetSourceIdentity)"])

    def test_the_roles_anywhere_rule_leaves_other_services_and_denies_alone(self):
        doc = roles_anywhere({})
        doc["Statement"][0]["Principal"] = {"Service": ["lambda.amazonaws.com"]}
        self.assertEqual(check_policy(doc, "trust"), [])
        doc = roles_anywhere({})
        doc["Statement"][0]["Effect"] = "Deny"
        self.assertEqual(check_policy(doc, "trust"), [])

    def test_a_web_identity_trust_on_aud_and_sub_passes(self):
        self.assertEqual(check_policy(trust({"StringEquals": {"iss/:aud": "a", "iss/:sub": "s"}}), "trust"), [])

    def test_a_web_identity_trust_without_sub_fails(self):
        self.assertEqual(check_policy(trust({"StringEquals": {"iss/:aud": "a"}}), "trust"),
                         ["Statement[0]: AssumeRoleWithWebIdentity must be conditioned on StringEquals <issuer>:sub"])

    def test_an_identity_policy_needs_a_resource_and_valid_actions(self):
        doc = {"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow", "Action": ["s3:Get", "bad"]}]}
        problems = check_policy(doc, "identity")
        self.assertIn("Statement[0]: needs exactly one of Resource / NotResource", problems)
        self.assertIn("Statement[0]: 'bad' is not an IAM action (service:Name)", problems)

    def test_document_level_problems(self):
        self.assertEqual(check_policy([], "identity"), ["the document is not a JSON object"])
        problems = check_policy({"Version": "2008-10-17", "Statement": [], "Extra": 1}, "identity")
        self.assertEqual(len(problems), 3)
        self.assertIn("Statement must be a non-empty list of statements", problems)

    def test_statement_level_problems(self):
        s = {"Sid": "a-b", "Effect": "Permit", "Action": "sts:AssumeRole", "Principal": {"Bogus": "x"},
             "Resource": "*", "Condition": {"Like": {"nocolon": 1}}}
        problems = check_policy({"Version": "2012-10-17", "Statement": [s, dict(s, Sid="a-b")]}, "trust")
        for expected in ("Sid must be alphanumeric", "Effect must be Allow or Deny", "has no Resource",
                         "Principal must be", "'Like' is not a condition operator", "is not a condition key",
                         "the value must be a string", "Sids must be unique"):
            self.assertTrue(any(expected in p for p in problems), (expected, problems))

    def test_unresolved_substitution_is_reported(self):
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get", "Resource": "${X}"}]}
        self.assertEqual(check_policy(doc, "identity"), ["unresolved ${...} left after substitution"])

    def test_strings(self):
        self.assertEqual(strings("a"), ["a"])
        self.assertEqual(strings(["a", "b"]), ["a", "b"])
        self.assertIsNone(strings([]))
        self.assertIsNone(strings(["a", 1]))
        self.assertIsNone(strings({"a": 1}))


TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Audience:
    Type: String
    AllowedValues: [one, two]
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: !Sub |
        {
          "Version": "2012-10-17",
          "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "lambda.amazonaws.com" },
            "Action": "sts:AssumeRole",
            "Condition": { "StringEquals": { "aws:SourceAccount": "${AWS::AccountId}", "x:aud": "${Audience}" } }
          }]
        }
"""


YAML_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  CommonName:
    Type: String
  Accept:
    Type: String
    AllowedValues: ['false', 'true']
Resources:
  Anchor:
    Type: AWS::RolesAnywhere::TrustAnchor
    Properties:
      Name: a
      Source: { SourceType: CERTIFICATE_BUNDLE, SourceData: { X509CertificateData: x } }
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement:
          - Effect: Allow
            Principal: { Service: rolesanywhere.amazonaws.com }
            Action: [sts:AssumeRole, sts:TagSession, sts:SetSourceIdentity]
            Condition:
              StringEquals:
                aws:PrincipalTag/x509Subject/CN: !Ref CommonName
              ArnEquals:
                aws:SourceArn: !GetAtt Anchor.TrustAnchorArn
"""


class RenderTemplates(TempDirTestCase):
    def test_each_distinct_rendering_is_written(self):
        tpl = self.write("aws/role.yaml", TEMPLATE)
        out = self.subdir("out")
        problems, summary = render_templates(out, [tpl])
        self.assertEqual(problems, [])
        self.assertEqual(summary, "1 JSON policy document(s) and 0 YAML trust policy document(s) in 1 template(s), "
                                  "2 distinct rendering(s)")
        rendered = sorted(p.name for p in out.iterdir())
        self.assertEqual(rendered, ["role.1.json", "role.2.json"])
        doc = json.loads((out / "role.2.json").read_text())["Resources"]["Role"]["Properties"]["AssumeRolePolicyDocument"]
        self.assertEqual(doc["Statement"][0]["Condition"]["StringEquals"]["x:aud"], "two")

    def test_invalid_json_after_substitution_is_reported_with_the_text(self):
        tpl = self.write("aws/role.yaml", TEMPLATE.replace('"Effect": "Allow",', '"Effect": "Allow"'))
        problems, _ = render_templates(self.subdir("out"), [tpl])
        # One per distinct rendered text (the two AllowedValues of Audience).
        self.assertEqual(len(problems), 2)
        for p in problems:
            self.assertIn("Resources/Role/Properties/AssumeRolePolicyDocument: not valid JSON", p)
        self.assertIn('"x:aud": "one"', problems[0])

    def test_the_same_problem_in_every_variant_is_reported_once(self):
        tpl = self.write("aws/role.yaml", TEMPLATE.replace("${AWS::AccountId}", "${Missing}"))
        problems, _ = render_templates(self.subdir("out"), [tpl])
        self.assertEqual(problems, ["%s: Resources/Role/Properties/AssumeRolePolicyDocument: cannot render: "
                                    "Ref to unknown name 'Missing'" % tpl])

    def test_an_unreadable_template_is_reported(self):
        tpl = self.write("aws/broken.yaml", "Resources: [\n")
        problems, summary = render_templates(self.subdir("out"), [tpl])
        self.assertIn("cannot be read", problems[0])
        self.assertTrue(summary.startswith("0 JSON policy document(s) and 0 YAML trust policy document(s) in 1 template(s)"))

    def test_a_yaml_trust_is_checked_in_every_variant_and_nothing_is_written(self):
        tpl = self.write("aws/ra.yaml", YAML_TEMPLATE)
        out = self.subdir("out")
        problems, summary = render_templates(out, [tpl])
        self.assertEqual(problems, [])
        self.assertEqual(summary, "0 JSON policy document(s) and 1 YAML trust policy document(s) in 1 template(s), "
                                  "0 distinct rendering(s)")
        self.assertEqual(list(out.iterdir()), [])

    def test_a_yaml_trust_problem_is_reported_once_with_the_first_parameters(self):
        tpl = self.write("aws/ra.yaml", YAML_TEMPLATE.replace("              ArnEquals:\n", "              ArnLike:\n"))
        problems, _ = render_templates(self.subdir("out"), [tpl])
        self.assertEqual(problems, ["%s: Resources/Role/Properties/AssumeRolePolicyDocument: Statement[0]: a Roles "
                                    "Anywhere trust must be conditioned on ArnEquals aws:SourceArn (the trust anchor) "
                                    "(parameters {'CommonName': 'validate-CommonName', 'Accept': 'false'})" % tpl])

    def test_a_yaml_trust_that_cannot_be_rendered_is_reported(self):
        tpl = self.write("aws/ra.yaml", YAML_TEMPLATE.replace("!Ref CommonName", "!Ref Missing"))
        problems, _ = render_templates(self.subdir("out"), [tpl])
        self.assertEqual(len(problems), 1)
        self.assertIn("AssumeRolePolicyDocument: cannot render: Ref to unknown name 'Missing'", problems[0])

    def test_check_policies_passes_and_lints_the_renderings(self):
        self.write("infra/aws/role.yaml", TEMPLATE)
        self.write("infra/aws/ra.yaml", YAML_TEMPLATE)
        self.assertEqual(check_policies(self), "policies: 1 JSON policy document(s) and 1 YAML trust policy "
                         "document(s) in 2 template(s), 2 distinct rendering(s); shapes valid, renderings cfn-lint clean")

    def test_check_policies_fails_with_the_problems_as_details(self):
        self.write("infra/aws/role.yaml", TEMPLATE.replace('"Effect": "Allow"', '"Effect": "Maybe"'))
        with self.assertRaises(CheckFailed) as cm:
            check_policies(self)
        self.assertTrue(cm.exception.summary.startswith("policies: 1 JSON policy document(s)"))
        self.assertIn("Effect must be Allow or Deny, not 'Maybe'", cm.exception.details)


def check_policies(test):
    return policies.check_policies(test.dir / "infra", test.subdir("work"))


if __name__ == "__main__":
    unittest.main()
