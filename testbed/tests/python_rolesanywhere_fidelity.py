"""AWS's own Python client for IAM Roles Anywhere (PyPI iam-rolesanywhere-session) against the
test bed's CreateSession endpoint.

Run by tests/fidelity.rs with ENDPOINT (host:port, HTTPS), CA_FILE (the bed's CA), STS_URL (the
STS front), REGION and CASES: a JSON list of {name, certificate, private_key, chain?, profile,
role, anchor, duration, tamper?} (files the test wrote: throw-away keys, not the vault's). For each
case one JSON line: {"name", "status", "message"} for a refusal, or {"name", "arn"} with the
GetCallerIdentity ARN the returned credentials get from the STS front (through boto3, signed with
them). Nothing secret is printed; "ok" on the last line.
"""
import json
import os

from botocore.awsrequest import AWSRequest
from botocore.httpsession import URLLib3Session
from iam_rolesanywhere_session import IAMRolesAnywhereSession, IAMRolesAnywhereSigner
from iam_rolesanywhere_session.exceptions import CredentialsRetrievalError

endpoint = os.environ["ENDPOINT"]
ca_file = os.environ["CA_FILE"]
region = os.environ["REGION"]


def tampered(case):
    """A request the library signs, with one hex digit of the signature changed before it is sent."""
    signer = IAMRolesAnywhereSigner(
        certificate=case["certificate"],
        private_key=case["private_key"],
        certificate_chain=case.get("chain"),
        region=region,
    )
    body = {
        "durationSeconds": case["duration"],
        "profileArn": case["profile"],
        "roleArn": case["role"],
        "trustAnchorArn": case["anchor"],
    }
    request = AWSRequest(method="POST", url=f"https://{endpoint}/sessions", data=json.dumps(body))
    signer.add_auth(request)
    authorization = request.headers["Authorization"]
    last = "1" if authorization.endswith("0") else "0"
    del request.headers["Authorization"]
    request.headers["Authorization"] = authorization[:-1] + last
    response = URLLib3Session(verify=ca_file).send(request.prepare())
    return {"name": case["name"], "status": response.status_code, "message": json.loads(response.text)["message"]}


def run(case):
    if case.get("tamper"):
        return tampered(case)
    session = IAMRolesAnywhereSession(
        profile_arn=case["profile"],
        role_arn=case["role"],
        trust_anchor_arn=case["anchor"],
        certificate=case["certificate"],
        private_key=case["private_key"],
        certificate_chain=case.get("chain"),
        session_duration=case["duration"],
        region=region,
        endpoint=endpoint,
        verify=ca_file,
    )
    try:
        sts = session.get_session().client("sts", endpoint_url=os.environ["STS_URL"], region_name=region)
        return {"name": case["name"], "arn": sts.get_caller_identity()["Arn"]}
    except CredentialsRetrievalError as e:
        return {"name": case["name"], "status": e.status_code, "message": e.message}


for case in json.loads(os.environ["CASES"]):
    print(json.dumps(run(case)))
print("ok")
