"""botocore (the AWS CLI's SDK) against the test bed's IAM Identity Center fakes.

Run by tests/fidelity.rs with AWS_ENDPOINT_URL_SSO_OIDC and AWS_ENDPOINT_URL_SSO set. Every
answer and error must be read by botocore as it reads the real service's: modelled exceptions,
their codes, statuses and fields. Any exception fails the test; "ok" on the last line passes it.
"""
import time
import urllib.parse
import urllib.request

import botocore.session
from botocore import UNSIGNED
from botocore.config import Config

session = botocore.session.get_session()
config = Config(signature_version=UNSIGNED, region_name="us-east-1", retries={"max_attempts": 1})
oidc = session.create_client("sso-oidc", config=config)
portal = session.create_client("sso", config=config)
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


def expect(exception, call, **kwargs):
    try:
        call(**kwargs)
    except exception as e:
        return e.response
    raise AssertionError(f"{call.__name__} did not raise {exception.__name__}")


client = oidc.register_client(clientName="fidelity", clientType="public", scopes=["sso:account:access"])
assert client["clientSecretExpiresAt"] > client["clientIdIssuedAt"], client
creds = {"clientId": client["clientId"], "clientSecret": client["clientSecret"]}

device = oidc.start_device_authorization(startUrl="https://testbed.awsapps.com/start", **creds)
assert device["interval"] == 1 and device["expiresIn"] == 600, device
assert device["userCode"] in device["verificationUriComplete"], device

pending = expect(oidc.exceptions.AuthorizationPendingException, oidc.create_token,
                 grantType=DEVICE, deviceCode=device["deviceCode"], **creds)
assert pending["Error"]["Code"] == "AuthorizationPendingException", pending
assert pending["error"] == "authorization_pending", pending
assert pending["ResponseMetadata"]["HTTPStatusCode"] == 400, pending

bad_client = expect(oidc.exceptions.InvalidClientException, oidc.create_token,
                    grantType=DEVICE, deviceCode=device["deviceCode"],
                    clientId=client["clientId"], clientSecret="wrong")
assert bad_client["ResponseMetadata"]["HTTPStatusCode"] == 401, bad_client

bad_code = expect(oidc.exceptions.InvalidGrantException, oidc.create_token,
                  grantType=DEVICE, deviceCode="no-such-code", **creds)
assert bad_code["error"] == "invalid_grant", bad_code

# A person approves the code on the verification page.
form = urllib.parse.urlencode({"user_code": device["userCode"], "action": "approve"}).encode()
with urllib.request.urlopen(device["verificationUri"], data=form) as r:
    assert r.status == 200

time.sleep(1.1)  # the interval
token = oidc.create_token(grantType=DEVICE, deviceCode=device["deviceCode"], **creds)
assert token["tokenType"] == "Bearer" and token["expiresIn"] == 8 * 3600, token
assert token["refreshToken"], "scoped clients get a refresh token"

refreshed = oidc.create_token(grantType="refresh_token", refreshToken=token["refreshToken"], **creds)
assert refreshed["accessToken"] != token["accessToken"]
spent = expect(oidc.exceptions.InvalidGrantException, oidc.create_token,
               grantType="refresh_token", refreshToken=token["refreshToken"], **creds)

role = portal.get_role_credentials(roleName="DeveloperAccess", accountId="111122223333",
                                   accessToken=refreshed["accessToken"])["roleCredentials"]
now_ms = time.time() * 1000
assert now_ms + 50 * 60 * 1000 < role["expiration"] < now_ms + 70 * 60 * 1000, role["expiration"]
assert role["accessKeyId"].startswith("ASIA") and role["sessionToken"], role["accessKeyId"]

unauthorized = expect(portal.exceptions.UnauthorizedException, portal.get_role_credentials,
                      roleName="DeveloperAccess", accountId="111122223333", accessToken="nope")
assert unauthorized["ResponseMetadata"]["HTTPStatusCode"] == 401, unauthorized
try:
    portal.get_role_credentials(roleName="Admin", accountId="111122223333",
                                accessToken=refreshed["accessToken"])
    raise AssertionError("an unassigned role was granted")
except portal.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "ForbiddenException", e.response
    assert e.response["Error"]["Message"] == "No access", e.response

# Polling again sooner than the interval: slow_down.
slow_device = oidc.start_device_authorization(startUrl="https://testbed.awsapps.com/start", **creds)
oidc_poll = dict(grantType=DEVICE, deviceCode=slow_device["deviceCode"], **creds)
expect(oidc.exceptions.AuthorizationPendingException, oidc.create_token, **oidc_poll)
slow = expect(oidc.exceptions.SlowDownException, oidc.create_token, **oidc_poll)
assert slow["error"] == "slow_down", slow

denied_device = oidc.start_device_authorization(startUrl="https://testbed.awsapps.com/start", **creds)
form = urllib.parse.urlencode({"user_code": denied_device["userCode"], "action": "deny"}).encode()
urllib.request.urlopen(denied_device["verificationUri"], data=form).close()
denied = expect(oidc.exceptions.AccessDeniedException, oidc.create_token,
                grantType=DEVICE, deviceCode=denied_device["deviceCode"], **creds)
assert denied["error"] == "access_denied", denied

print("ok")
