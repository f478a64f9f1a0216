"""The official Azure SDK for Python against the test bed's Key Vault and identity endpoint.

Run by tests/fidelity.rs with IDENTITY_ENDPOINT, IDENTITY_HEADER, VAULT_URL (the vault's name
inside the challenge resource's domain), HTTPS_PROXY / NO_PROXY (the bed's proxy, which tunnels
that name) and the CA in REQUESTS_CA_BUNDLE / SSL_CERT_FILE. Any exception fails the test; "ok" on the last line passes it.
"""
import datetime
import os

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

vault = os.environ["VAULT_URL"]
# The challenge check at its default (on): the vault's host ends with the resource's domain.
client = SecretClient(vault, ManagedIdentityCredential())

expires = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(hours=2)
first = client.set_secret("py-secret", "v1", content_type="text/plain", tags={"a": "1"}, expires_on=expires)
assert first.value == "v1", first
assert first.properties.tags == {"a": "1"}, first.properties.tags
assert first.properties.expires_on == expires, (first.properties.expires_on, expires)
assert len(first.properties.version) == 32
second = client.set_secret("py-secret", "v2")

latest = client.get_secret("py-secret")
assert latest.value == "v2" and latest.properties.version == second.properties.version
pinned = client.get_secret("py-secret", first.properties.version)
assert pinned.value == "v1" and pinned.properties.content_type == "text/plain"

for i in range(3, 8):
    client.set_secret("py-secret", f"v{i}")
versions = list(client.list_properties_of_secret_versions("py-secret", max_page_size=2))
assert len(versions) == 7, len(versions)
assert all(v.version for v in versions)

client.update_secret_properties("py-secret", first.properties.version, enabled=False)
try:
    client.get_secret("py-secret", first.properties.version)
    raise AssertionError("a disabled version was readable")
except HttpResponseError as e:
    assert e.status_code == 403, e.status_code

try:
    client.get_secret("no-such-secret")
    raise AssertionError("a missing secret was found")
except ResourceNotFoundError as e:
    assert e.status_code == 404
    assert "SecretNotFound" in str(e), str(e)

try:
    client.set_secret("bad_name", "x")
    raise AssertionError("an invalid name was accepted")
except HttpResponseError as e:
    assert e.status_code == 400, e.status_code

print("ok")
