"""SigV4 on the control endpoint: every request is verified, errors look like AWS's."""

import datetime
import json
import urllib.error
import urllib.request

import botocore.auth
import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import PY_RUNTIME, client_error, create_function, unique, zip_function


def http(method, url, headers=None, data=None):
    """Plain HTTP (no signing): returns (status, headers, body bytes)."""
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def error_code(headers, body) -> str:
    """The AWS error code the way botocore finds it for rest-json services."""
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("x-amzn-errortype"):
        return lower["x-amzn-errortype"].split(":")[0]
    doc = json.loads(body or b"{}")
    code = doc.get("__type") or doc.get("code") or doc.get("Code") or ""
    return code.split("#")[-1]


def test_boto3_signed_request_works(lam):
    resp = lam.list_functions()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert isinstance(resp["Functions"], list)


def test_unsigned_request_is_403_missing_token(gust):
    status, headers, body = http("GET", f"{gust.endpoint}/2015-03-31/functions/")
    assert status == 403, body
    assert error_code(headers, body) == "MissingAuthenticationTokenException", (headers, body)
    doc = json.loads(body)
    assert doc.get("message") or doc.get("Message"), doc


def test_wrong_secret_is_invalid_signature(gust):
    creds = gust.credentials()
    bad = gust.client(access_key=creds["access_key_id"], secret_key="x" * 40)
    with pytest.raises(ClientError) as exc:
        bad.list_functions()
    code, status, _ = client_error(exc)
    assert (code, status) == ("InvalidSignatureException", 403)


def test_unknown_access_key_is_unrecognized_client(gust):
    bad = gust.client(access_key="AKIAGUSTE2EUNKNOWN00", secret_key="y" * 40)
    with pytest.raises(ClientError) as exc:
        bad.list_functions()
    code, status, _ = client_error(exc)
    assert (code, status) == ("UnrecognizedClientException", 403)


def _presign(gust, url, expires=60, secret=None):
    creds = gust.credentials()
    credentials = Credentials(creds["access_key_id"], secret or creds["secret_access_key"])
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(credentials, "lambda", "us-east-1", expires=expires).add_auth(request)
    return request.prepare().url


def test_presigned_query_get_function(gust, lam):
    name = unique("presign")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    url = _presign(gust, f"{gust.endpoint}/2015-03-31/functions/{name}")
    assert "X-Amz-Signature=" in url
    status, _, body = http("GET", url)
    assert status == 200, body
    assert json.loads(body)["Configuration"]["FunctionName"] == name


def test_presigned_query_tampered_is_rejected(gust, lam):
    url = _presign(gust, f"{gust.endpoint}/2015-03-31/functions/")
    status, headers, body = http("GET", url + "&MaxItems=1")
    assert status == 403, body
    assert error_code(headers, body) == "InvalidSignatureException", (headers, body)


def test_presigned_query_wrong_secret_is_rejected(gust):
    url = _presign(gust, f"{gust.endpoint}/2015-03-31/functions/", secret="z" * 40)
    status, headers, body = http("GET", url)
    assert status == 403, body
    assert error_code(headers, body) == "InvalidSignatureException", (headers, body)


@pytest.mark.parametrize("skew_minutes", [-20, 20])
def test_clock_skew_over_15_minutes_is_rejected(gust, monkeypatch, skew_minutes):
    real = botocore.auth.get_current_datetime

    def skewed(*args, **kwargs):
        return real(*args, **kwargs) + datetime.timedelta(minutes=skew_minutes)

    monkeypatch.setattr(botocore.auth, "get_current_datetime", skewed)
    client = gust.client()
    with pytest.raises(ClientError) as exc:
        client.list_functions()
    code, status, message = client_error(exc)
    assert status == 403, (code, message)
    # AWS answers InvalidSignatureException "Signature expired: ..." for Lambda.
    assert code in {"InvalidSignatureException", "SignatureDoesNotMatch", "RequestExpired"}, code


def test_small_clock_skew_is_accepted(gust, monkeypatch):
    real = botocore.auth.get_current_datetime
    monkeypatch.setattr(
        botocore.auth,
        "get_current_datetime",
        lambda *a, **k: real(*a, **k) - datetime.timedelta(minutes=5),
    )
    assert gust.client().list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_signed_for_other_service_is_rejected(gust):
    """A signature scoped to another service must not authorize Lambda calls."""
    creds = gust.credentials()
    credentials = Credentials(creds["access_key_id"], creds["secret_access_key"])
    request = AWSRequest(method="GET", url=f"{gust.endpoint}/2015-03-31/functions/")
    botocore.auth.SigV4Auth(credentials, "s3", "us-east-1").add_auth(request)
    prepared = request.prepare()
    status, headers, body = http("GET", prepared.url, headers=dict(prepared.headers))
    assert status == 403, body


def test_signed_request_body_tamper_is_rejected(gust):
    """The payload hash covers the body: changing it after signing fails."""
    creds = gust.credentials()
    credentials = Credentials(creds["access_key_id"], creds["secret_access_key"])
    payload = json.dumps({
        "FunctionName": unique("tamper"), "Runtime": PY_RUNTIME,
        "Role": "arn:aws:iam::000000000000:role/x", "Handler": "app.hello",
        "Code": {"ZipFile": ""},
    }).encode()
    request = AWSRequest(
        method="POST", url=f"{gust.endpoint}/2015-03-31/functions",
        data=payload, headers={"Content-Type": "application/json"},
    )
    botocore.auth.SigV4Auth(credentials, "lambda", "us-east-1").add_auth(request)
    prepared = request.prepare()
    tampered = payload.replace(b"app.hello", b"app.HELLO")
    status, headers, body = http("POST", prepared.url, headers=dict(prepared.headers), data=tampered)
    assert status == 403, body
    assert error_code(headers, body) == "InvalidSignatureException", (headers, body)
