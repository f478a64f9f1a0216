"""Check `certificate policies`: every Key Vault certificate policy in INFRA/azure
(*certificate-policy*.json) creates the certificate roles-anywhere mode needs.

Key Vault certificates are not ARM resources: the operator creates the one whose key signs Roles
Anywhere requests with `az keyvault certificate create --policy @<file>` (docs/credential-modes.md),
and the policy file is all that says what kind of key it gets. A policy that drifted would create
a key that can leave the vault, or a certificate stsbridge cannot use, and nothing else would
notice before a deployment. So each policy must have:
- keyProperties: exportable false, keyType RSA-HSM or EC-HSM (an HSM key of a premium vault:
  never exported); EC-HSM on curve P-256 (stsbridge signs ES256, and refuses other curves),
  RSA-HSM of at least 2048 bits;
- secretProperties.contentType application/x-pem-file (RolesAnywhereChain=certificate reads the
  intermediates from the certificate's secret, as PEM);
- x509CertificateProperties: a subject with a CN (the role's trust policy conditions on it, and
  sessions carry it as their source identity) and keyUsage digitalSignature (Key Vault maps it
  to the key's sign operation; Roles Anywhere requires it of the end-entity certificate);
- issuerParameters.name; with Unknown (your own CA: a CSR you have signed, then merged) no
  AutoRenew lifetime action, which Key Vault performs only with an integrated CA;
- only the keys of the shape `az keyvault certificate get-default-policy` prints (camelCase),
  so a misspelt or REST-style key (key_props) cannot silently leave a default in place.
Called by runner.py (the `certificate policies` line) and self_test.py; check_policy() is
unit-tested in tests/test_certificate_policy.py.
Certificate policy: https://learn.microsoft.com/azure/key-vault/certificates/about-certificates#certificate-policy
Roles Anywhere certificate requirements: https://docs.aws.amazon.com/rolesanywhere/latest/userguide/trust-model.html
"""

import json
import re
from pathlib import Path

from .common import CheckFailed, sorted_glob

KNOWN = {
    None: {"issuerParameters", "keyProperties", "secretProperties", "x509CertificateProperties",
           "lifetimeActions", "attributes"},
    "issuerParameters": {"name", "certificateType", "certificateTransparency"},
    "keyProperties": {"exportable", "keyType", "keySize", "curve", "reuseKey"},
    "secretProperties": {"contentType"},
    "x509CertificateProperties": {"subject", "keyUsage", "ekus", "subjectAlternativeNames", "validityInMonths"},
}
HSM_KEY_TYPES = ("RSA-HSM", "EC-HSM")
PEM = "application/x-pem-file"
CN = re.compile(r"(^|[,/+]\s*)CN\s*=\s*[^,/+\s]", re.IGNORECASE)


def section(doc, name, problems):
    """doc[name] if it is an object (problems gets a line if it is not); {} otherwise."""
    value = doc.get(name)
    if not isinstance(value, dict):
        problems.append("%s must be an object" % name)
        return {}
    unknown = sorted(set(value) - KNOWN[name])
    if unknown:
        problems.append("%s: unknown keys %s (the shape az keyvault certificate get-default-policy "
                        "prints)" % (name, unknown))
    return value


def check_policy(doc):
    """The problems of one certificate policy document (empty: it fits roles-anywhere)."""
    if not isinstance(doc, dict):
        return ["the policy is not a JSON object"]
    p = []
    unknown = sorted(set(doc) - KNOWN[None])
    if unknown:
        p.append("unknown top-level keys %s (the shape az keyvault certificate get-default-policy "
                 "prints: issuerParameters, keyProperties, ...)" % unknown)
    key = section(doc, "keyProperties", p)
    if key.get("exportable") is not False:
        p.append("keyProperties.exportable must be false: the signing key never leaves the vault")
    kty = key.get("keyType")
    if kty not in HSM_KEY_TYPES:
        p.append("keyProperties.keyType must be RSA-HSM or EC-HSM (a non-exportable HSM key of a "
                 "premium vault), not %r" % kty)
    if kty == "EC-HSM" and key.get("curve") != "P-256":
        p.append("keyProperties.curve must be P-256 for EC-HSM (stsbridge signs ES256 only), not %r"
                 % key.get("curve"))
    if kty == "RSA-HSM" and not (isinstance(key.get("keySize"), int) and key["keySize"] >= 2048):
        p.append("keyProperties.keySize must be at least 2048 for RSA-HSM, not %r" % key.get("keySize"))
    secret = section(doc, "secretProperties", p)
    if secret.get("contentType") != PEM:
        p.append("secretProperties.contentType must be %s (RolesAnywhereChain=certificate reads the "
                 "intermediates from the certificate's secret as PEM), not %r" % (PEM, secret.get("contentType")))
    x509 = section(doc, "x509CertificateProperties", p)
    subject = x509.get("subject")
    if not (isinstance(subject, str) and CN.search(subject)):
        p.append("x509CertificateProperties.subject must have a CN (the role's trust policy conditions "
                 "on it), not %r" % subject)
    usage = x509.get("keyUsage")
    if not (isinstance(usage, list) and "digitalSignature" in usage):
        p.append("x509CertificateProperties.keyUsage must include digitalSignature (the key's sign "
                 "operation; Roles Anywhere requires it), not %r" % usage)
    issuer = section(doc, "issuerParameters", p)
    name = issuer.get("name")
    if not (isinstance(name, str) and name):
        p.append("issuerParameters.name must name the issuer (Unknown: your own CA)")
    actions = doc.get("lifetimeActions", [])
    if not isinstance(actions, list):
        p.append("lifetimeActions must be a list")
        actions = []
    for i, a in enumerate(actions):
        kind = ((a or {}).get("action") or {}).get("actionType") if isinstance(a, dict) else None
        if kind not in ("EmailContacts", "AutoRenew"):
            p.append("lifetimeActions[%d].action.actionType must be EmailContacts or AutoRenew, not %r" % (i, kind))
        elif kind == "AutoRenew" and isinstance(name, str) and name.lower() == "unknown":
            p.append("lifetimeActions[%d]: AutoRenew needs an integrated CA; with issuer Unknown Key "
                     "Vault cannot renew: use EmailContacts" % i)
    return p


def policy_files(infra):
    """The certificate policies: INFRA/azure/*certificate-policy*.json."""
    return sorted_glob(Path(infra) / "azure", "*certificate-policy*.json")


def check_certificate_policies(infra):
    """infra: holds azure/*certificate-policy*.json. Returns the summary; raises CheckFailed."""
    files = policy_files(infra)
    problems = []
    for path in files:
        try:
            with open(path) as f:
                doc = json.load(f)
        except ValueError as e:
            problems.append("%s: not JSON: %s" % (path, e))
            continue
        problems += ["%s: %s" % (path, m) for m in check_policy(doc)]
    summary = "certificate policies: %d Key Vault certificate policy file(s)" % len(files)
    if problems:
        raise CheckFailed(summary, "\n".join(problems))
    return summary + ": non-exportable HSM keys, PEM secrets, a CN, digitalSignature"
