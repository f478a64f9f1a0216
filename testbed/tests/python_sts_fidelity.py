"""botocore (the AWS CLI's and boto3's SDK) against the test bed's STS/IAM front: the front checks
every Signature Version 4 as AWS does, and applies AWS's rules for session credentials.

Run by tests/fidelity.rs with STS_URL (the front), KEY_ID and SECRET (a long-lived key the front
knows). Any failed expectation raises; "ok" on the last line passes the test. Nothing secret is
printed.
"""
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

url, key_id, secret = os.environ["STS_URL"], os.environ["KEY_ID"], os.environ["SECRET"]
config = Config(retries={"max_attempts": 1})


def client(service, key, secret_key, token=None):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
        config=config,
    )


def refused(call, code, message=None):
    try:
        call()
    except ClientError as e:
        error = e.response["Error"]
        assert error["Code"] == code, (error["Code"], code)
        assert message is None or error["Message"] == message, (error["Message"], message)
        return
    raise AssertionError(f"expected {code}")


# The right secret is accepted, by STS and by IAM.
who = client("sts", key_id, secret).get_caller_identity()
assert who["Arn"].endswith(":user/stsbridge-minter"), who["Arn"]
client("iam", key_id, secret).list_access_keys()

# Any other secret is refused as AWS refuses it; so is a key the front does not know.
mismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
refused(lambda: client("sts", key_id, secret[::-1]).get_caller_identity(), "SignatureDoesNotMatch", mismatch)
refused(lambda: client("sts", key_id, secret[:-1]).get_caller_identity(), "SignatureDoesNotMatch", mismatch)
refused(lambda: client("iam", key_id, secret[::-1]).list_access_keys(), "SignatureDoesNotMatch", mismatch)
refused(
    lambda: client("sts", "AKIA" + "A" * 16, secret).get_caller_identity(),
    "InvalidClientTokenId",
    "The security token included in the request is invalid.",
)

# A GetSessionToken set: real shapes; STS AssumeRole/GetCallerIdentity only; no IAM without MFA.
s = client("sts", key_id, secret).get_session_token(DurationSeconds=900)["Credentials"]
assert s["AccessKeyId"].startswith("ASIA") and len(s["AccessKeyId"]) == 20
assert len(s["SecretAccessKey"]) == 40 and "+" in s["SecretAccessKey"] and "/" in s["SecretAccessKey"]
assert len(s["SessionToken"]) >= 356 and all(c in s["SessionToken"] for c in "+/=")
session = client("sts", s["AccessKeyId"], s["SecretAccessKey"], s["SessionToken"])
assert session.get_caller_identity()["Arn"] == who["Arn"]
refused(session.get_session_token, "AccessDenied", "Cannot call GetSessionToken with session credentials")
refused(lambda: client("iam", s["AccessKeyId"], s["SecretAccessKey"], s["SessionToken"]).list_access_keys(), "InvalidClientTokenId")
# The session's own secret must sign too, and its token must come with it.
refused(lambda: client("sts", s["AccessKeyId"], secret, s["SessionToken"]).get_caller_identity(), "SignatureDoesNotMatch")
refused(lambda: client("sts", s["AccessKeyId"], s["SecretAccessKey"]).get_caller_identity(), "InvalidClientTokenId")
print("ok")
