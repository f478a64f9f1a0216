"""Tests of certificate_policy.py: the rules one Key Vault certificate policy must meet for
roles-anywhere, and the check over INFRA/azure/*certificate-policy*.json."""

import copy
import json
import unittest

from infra_checks.certificate_policy import check_certificate_policies, check_policy
from infra_checks.common import CheckFailed
from infra_checks.tests.fixtures import TempDirTestCase

GOOD = {
    "issuerParameters": {"name": "Unknown"},
    "keyProperties": {"exportable": False, "keyType": "EC-HSM", "curve": "P-256", "reuseKey": False},
    "secretProperties": {"contentType": "application/x-pem-file"},
    "x509CertificateProperties": {"subject": "CN=stsbridge", "keyUsage": ["digitalSignature"],
                                  "validityInMonths": 12},
    "lifetimeActions": [{"trigger": {"daysBeforeExpiry": 30}, "action": {"actionType": "EmailContacts"}}],
}


def changed(**sections):
    """GOOD with the given sections' keys replaced (a value None deletes the key)."""
    doc = copy.deepcopy(GOOD)
    for name, values in sections.items():
        for k, v in values.items():
            if v is None:
                doc[name].pop(k, None)
            else:
                doc[name][k] = v
    return doc


class Policy(unittest.TestCase):
    def test_a_non_exportable_ec_hsm_p256_policy_passes(self):
        self.assertEqual(check_policy(GOOD), [])

    def test_a_non_exportable_rsa_hsm_policy_passes(self):
        doc = changed(keyProperties={"keyType": "RSA-HSM", "curve": None, "keySize": 3072})
        self.assertEqual(check_policy(doc), [])

    def test_an_exportable_or_missing_exportable_key_fails(self):
        for value in (True, None):
            problems = check_policy(changed(keyProperties={"exportable": value}))
            self.assertEqual(problems, ["keyProperties.exportable must be false: the signing key never leaves "
                                        "the vault"])

    def test_a_software_key_fails(self):
        problems = check_policy(changed(keyProperties={"keyType": "EC"}))
        self.assertEqual(problems, ["keyProperties.keyType must be RSA-HSM or EC-HSM (a non-exportable HSM key "
                                    "of a premium vault), not 'EC'"])

    def test_another_curve_or_a_short_rsa_key_fails(self):
        self.assertIn("keyProperties.curve must be P-256 for EC-HSM (stsbridge signs ES256 only), not 'P-384'",
                      check_policy(changed(keyProperties={"curve": "P-384"})))
        rsa = changed(keyProperties={"keyType": "RSA-HSM", "curve": None, "keySize": 1024})
        self.assertEqual(check_policy(rsa), ["keyProperties.keySize must be at least 2048 for RSA-HSM, not 1024"])

    def test_a_pkcs12_secret_fails(self):
        problems = check_policy(changed(secretProperties={"contentType": "application/x-pkcs12"}))
        self.assertEqual(len(problems), 1)
        self.assertIn("secretProperties.contentType must be application/x-pem-file", problems[0])

    def test_a_subject_without_cn_or_a_key_usage_without_digital_signature_fails(self):
        problems = check_policy(changed(x509CertificateProperties={"subject": "O=Contoso",
                                                                   "keyUsage": ["keyEncipherment"]}))
        self.assertEqual(len(problems), 2)
        self.assertIn("subject must have a CN", problems[0])
        self.assertIn("keyUsage must include digitalSignature", problems[1])
        self.assertEqual(check_policy(changed(x509CertificateProperties={"subject": "O=Contoso, CN=app"})), [])

    def test_auto_renew_with_issuer_unknown_fails_but_not_with_an_integrated_ca(self):
        renew = [{"trigger": {"lifetimePercentage": 80}, "action": {"actionType": "AutoRenew"}}]
        doc = copy.deepcopy(GOOD)
        doc["lifetimeActions"] = renew
        self.assertEqual(check_policy(doc), ["lifetimeActions[0]: AutoRenew needs an integrated CA; with issuer "
                                             "Unknown Key Vault cannot renew: use EmailContacts"])
        doc["issuerParameters"] = {"name": "DigiCertIssuer"}
        self.assertEqual(check_policy(doc), [])

    def test_unknown_keys_are_reported_in_every_section(self):
        doc = changed(keyProperties={"kty": "EC-HSM"})
        doc["key_props"] = {}
        problems = check_policy(doc)
        self.assertTrue(any(p.startswith("unknown top-level keys ['key_props']") for p in problems), problems)
        self.assertTrue(any(p.startswith("keyProperties: unknown keys ['kty']") for p in problems), problems)

    def test_missing_sections_and_a_non_object_are_reported(self):
        self.assertEqual(check_policy([]), ["the policy is not a JSON object"])
        problems = check_policy({})
        for expected in ("keyProperties must be an object", "secretProperties must be an object",
                         "x509CertificateProperties must be an object", "issuerParameters must be an object",
                         "issuerParameters.name must name the issuer (Unknown: your own CA)"):
            self.assertIn(expected, problems)

    def test_a_lifetime_action_of_another_kind_fails(self):
        doc = copy.deepcopy(GOOD)
        doc["lifetimeActions"] = [{"action": {"actionType": "Renew"}}, "x"]
        problems = check_policy(doc)
        self.assertEqual(problems, ["lifetimeActions[0].action.actionType must be EmailContacts or AutoRenew, not 'Renew'",
                                    "lifetimeActions[1].action.actionType must be EmailContacts or AutoRenew, not None"])


class Files(TempDirTestCase):
    def test_every_policy_file_is_checked(self):
        self.write("infra/azure/roles-anywhere-certificate-policy.json", json.dumps(GOOD))
        self.write("infra/azure/main.parameters.example.json", "{}")  # not a policy: ignored
        self.assertEqual(check_certificate_policies(self.dir / "infra"),
                         "certificate policies: 1 Key Vault certificate policy file(s): non-exportable HSM keys, "
                         "PEM secrets, a CN, digitalSignature")

    def test_no_policy_file_passes(self):
        self.subdir("infra/azure")
        self.assertTrue(check_certificate_policies(self.dir / "infra").startswith("certificate policies: 0 "))

    def test_a_failing_or_unreadable_file_fails_with_its_path(self):
        bad = self.write("infra/azure/a-certificate-policy.json",
                         json.dumps(changed(keyProperties={"exportable": True})))
        broken = self.write("infra/azure/b-certificate-policy.json", "{")
        with self.assertRaises(CheckFailed) as cm:
            check_certificate_policies(self.dir / "infra")
        self.assertEqual(cm.exception.summary, "certificate policies: 2 Key Vault certificate policy file(s)")
        details = cm.exception.details.splitlines()
        self.assertEqual(details[0], "%s: keyProperties.exportable must be false: the signing key never leaves "
                                     "the vault" % bad)
        self.assertTrue(details[1].startswith("%s: not JSON" % broken))


if __name__ == "__main__":
    unittest.main()
