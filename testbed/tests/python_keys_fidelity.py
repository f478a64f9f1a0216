"""The official Azure SDK for Python's keys client against the test bed's Key Vault keys.

Run by tests/fidelity.rs like python_sdk_fidelity.py (the vault by name through the bed's proxy,
the challenge check on), with CERT_NAME: a certificate the bed made in the vault (a
non-exportable P-256 key issued by its Roles Anywhere intermediate CA). Prints nothing secret;
any exception fails the test; "ok" on the last line passes it.
"""
import hashlib
import os

from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

vault = os.environ["VAULT_URL"]
credential = ManagedIdentityCredential()
keys = KeyClient(vault, credential)
digest = hashlib.sha256(b"AWS4-X509-ECDSA-SHA256\n20261206T083900Z\n...").digest()

# Keys made through the SDK: only the public part comes back.
ec_key = keys.create_ec_key("py-ec", curve="P-256", exportable=False, key_operations=["sign", "verify"])
assert ec_key.key_type == "EC" and ec_key.key.crv == "P-256", ec_key.key_type
assert ec_key.properties.exportable is False
assert ec_key.key.d is None and len(ec_key.key.x) == 32 and len(ec_key.key.y) == 32
rsa_key = keys.create_rsa_key("py-rsa", size=2048)
assert rsa_key.key.d is None and len(rsa_key.key.n) == 256 and rsa_key.key.e == b"\x01\x00\x01"
assert keys.get_key("py-ec").key.x == ec_key.key.x
assert keys.get_key("py-rsa", rsa_key.properties.version).id == rsa_key.id

# The vault signs; the SDK verifies locally with the public JWK the vault returned.
for key, algorithm, length in ((ec_key, SignatureAlgorithm.es256, 64), (rsa_key, SignatureAlgorithm.rs256, 256)):
    crypto = CryptographyClient(key, credential)
    signed = crypto.sign(algorithm, digest)
    assert signed.key_id == key.id, signed.key_id
    assert len(signed.signature) == length, len(signed.signature)  # ES256: raw r||s
    assert crypto.verify(algorithm, digest, signed.signature).is_valid
    tampered = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
    assert not crypto.verify(algorithm, digest, tampered).is_valid

# An algorithm the key cannot do, and a digest of the wrong length, are refused by the vault.
for key, algorithm, value in ((rsa_key, SignatureAlgorithm.es256, digest), (ec_key, SignatureAlgorithm.es256, digest[:20])):
    try:
        CryptographyClient(key.id, credential).sign(algorithm, value)
        raise AssertionError("the vault signed what Key Vault refuses")
    except HttpResponseError as e:
        assert e.status_code == 400, e.status_code

# The private key never leaves: release is refused; an exportable key needs a release policy.
try:
    keys.release_key("py-ec", "an-attestation-token")
    raise AssertionError("a non-exportable key was released")
except HttpResponseError as e:
    assert e.status_code == 400 and "not exportable" in e.message, e.message
try:
    keys.create_rsa_key("py-exportable", hardware_protected=True, exportable=True)
    raise AssertionError("an exportable key without a release policy was made")
except HttpResponseError as e:
    assert "AKV.SKR.1004" in e.message, e.message

# A certificate's key (managed) and secret (the chain, no private key).
name = os.environ["CERT_NAME"]
cert_key = keys.get_key(name)
assert cert_key.properties.managed is True
secret = SecretClient(vault, credential).get_secret(name)
assert secret.properties.content_type == "application/x-pem-file", secret.properties.content_type
assert secret.properties.key_id == cert_key.id, (secret.properties.key_id, cert_key.id)
assert "PRIVATE KEY" not in secret.value
chain = x509.load_pem_x509_certificates(secret.value.encode())
assert len(chain) == 3, len(chain)  # leaf, intermediate, root
assert chain[0].issuer == chain[1].subject and chain[1].issuer == chain[2].subject
signed = CryptographyClient(cert_key, credential).sign(SignatureAlgorithm.es256, digest)
r, s = int.from_bytes(signed.signature[:32], "big"), int.from_bytes(signed.signature[32:], "big")
chain[0].public_key().verify(encode_dss_signature(r, s), digest, ec.ECDSA(Prehashed(hashes.SHA256())))

print("ok")
