"""Made the known-answer fixtures next to it (run once; its output is committed, not re-made):
a P-256 root CA, an RSA-2048 leaf (serial 0x0123456789ABCDEF0123, the research's example), the
leaf's throw-away key (test-only), and kat.json: a CreateSession request signed by AWS's own
Python client (PyPI iam-rolesanywhere-session 3.0.0) at a fixed time -- its canonical request,
string to sign, signature and headers. Used by testbed/src/rolesanywhere.rs's unit tests.

Usage: .venv/bin/python testbed/testdata/rolesanywhere/make_kat.py (in this directory).
"""
import datetime, json
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from botocore.awsrequest import AWSRequest
from iam_rolesanywhere_session import IAMRolesAnywhereSigner

nb = datetime.datetime(2026,1,1,tzinfo=datetime.timezone.utc); na = datetime.datetime(2036,1,1,tzinfo=datetime.timezone.utc)
ca_key = ec.generate_private_key(ec.SECP256R1())
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kat root CA")])
ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
      .serial_number(0x1001).not_valid_before(nb).not_valid_after(na)
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(True,False,False,False,False,True,True,False,False), critical=True)
      .sign(ca_key, hashes.SHA256()))
leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kat-workload")]))
      .issuer_name(ca_name).public_key(leaf_key.public_key())
      .serial_number(0x0123456789ABCDEF0123).not_valid_before(nb).not_valid_after(na)
      .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(True,False,False,False,False,False,False,False,False), critical=True)
      .sign(ca_key, hashes.SHA256()))
pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()
open("root.pem","w").write(pem(ca)); open("leaf.pem","w").write(pem(leaf))
open("leaf-key.test-only.pem","w").write(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())

signer = IAMRolesAnywhereSigner(certificate=pem(leaf).encode(), private_key=open("leaf-key.test-only.pem","rb").read(), certificate_chain=pem(ca).encode(), region="us-east-1")
body = json.dumps({"durationSeconds": 900, "profileArn": "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p", "roleArn": "arn:aws:iam::123456789012:role/r", "trustAnchorArn": "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/t"})
req = AWSRequest(method="POST", url="https://127.0.0.1:8443/sessions", data=body)
req.context["timestamp"] = "20261206T083900Z"
signer._modify_request_before_signing(req)
cr = signer.canonical_request(req)
sts = signer.string_to_sign(req, cr)
sig = signer.signature(sts)
signer._inject_signature_to_request(req, sig)
out = {"body": body, "canonical": cr, "sts": sts, "signature": sig, "authorization": req.headers["Authorization"], "x509": req.headers["X-Amz-X509"], "chain": req.headers["X-Amz-X509-Chain"], "content_type": req.headers["Content-Type"]}
json.dump(out, open("kat.json","w"), indent=1)
print(sts); print(req.headers["Authorization"][:160])
