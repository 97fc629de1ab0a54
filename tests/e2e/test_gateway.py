"""The API gateway of a real `gust up`: HTTP APIs stored through `/gust/v1/apis` answering
over plain HTTP with API Gateway's payload 1.0 and 2.0 events, MOCK routes, CORS
preflights, API Gateway's error answers, and function URLs with AWS_IAM auth signed by
botocore."""

import base64
import json
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import NODE_RUNTIME, REGION, create_function, unique, zip_dir

PY_APP = r'''
import base64, json

def handler(event, context):
    qs = event.get("queryStringParameters") or {}
    mode = qs.get("mode", "echo")
    if mode == "echo":
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps({"event": event, "request_id": context.aws_request_id})}
    if mode == "shortcut":
        return {"hello": "world"}
    if mode == "malformed":
        return {"statusCode": "nope"} if event.get("version") == "2.0" else {"body": "x"}
    if mode == "raise":
        raise RuntimeError("boom")
    if mode == "binary":
        return {"statusCode": 200, "headers": {"content-type": "image/png"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if mode == "cookies":
        return {"statusCode": 200, "cookies": ["a=1", "b=2; Path=/"], "body": "ok"}
    return {"statusCode": 400, "body": "unknown mode"}
'''

NODE_APP = r'''
exports.handler = async (event, context) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ event, request_id: context.awsRequestId, runtime: "node" }),
});
'''


@pytest.fixture(scope="module")
def gateway(gust):
    if not gust.gateway:
        pytest.skip("this build of gust up runs no gateway")
    return gust.gateway


@pytest.fixture(scope="module")
def py_fn(gust, lam, gateway):
    name = unique("gw-py")
    create_function(lam, name=name, code=zip_dir(None, extra={"app.py": PY_APP}), handler="app.handler")
    return name


def signed(gust, method, url, body=b"", service="lambda", headers=None):
    """A urllib request signed with the root credentials for `service`."""
    creds = gust.credentials()
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(creds["access_key_id"], creds["secret_access_key"]), service, REGION).add_auth(req)
    return urllib.request.Request(url, data=body or None, headers=dict(req.headers.items()), method=method)


def put_api(gust, name, definition):
    body = json.dumps(definition).encode()
    req = signed(gust, "PUT", f"{gust.endpoint}/gust/v1/apis/{name}", body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        assert resp.status in (200, 201), resp.read()


def fetch(url, method="GET", body=None, headers=None):
    """(status, headers, body bytes) without raising on error statuses."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_payload_2_0_route(gust, gateway, py_fn):
    api = unique("v2")
    stage = "s" + api.replace("-", "")
    put_api(gust, api, {
        "payload_format": "2.0",
        "stage": stage,
        "stage_variables": {"color": "blue"},
        "routes": [{"route_key": "GET /items/{id}", "function": py_fn},
                   {"route_key": "ANY /modes", "function": py_fn}],
    })
    status, headers, body = fetch(
        f"{gateway}/{stage}/items/a%20b?tag=x&tag=y",
        headers={"Cookie": "c1=v1; c2=v2", "User-Agent": "e2e-gateway"},
    )
    assert status == 200, body
    doc = json.loads(body)
    ev = doc["event"]
    rid = headers["apigw-requestid"]
    assert doc["request_id"] == rid == ev["requestContext"]["requestId"]
    assert ev["version"] == "2.0"
    assert ev["routeKey"] == "GET /items/{id}"
    assert ev["rawPath"] == f"/{stage}/items/a%20b"
    assert ev["rawQueryString"] == "tag=x&tag=y"
    assert ev["queryStringParameters"] == {"tag": "x,y"}
    assert ev["pathParameters"] == {"id": "a b"}
    assert ev["cookies"] == ["c1=v1", "c2=v2"]
    assert "cookie" not in ev["headers"]
    assert ev["headers"]["user-agent"] == "e2e-gateway"
    assert ev["stageVariables"] == {"color": "blue"}
    ctx = ev["requestContext"]
    assert ctx["stage"] == stage
    assert ctx["apiId"] == api
    assert ctx["accountId"] == "000000000000"
    assert ctx["http"]["method"] == "GET"
    assert ctx["http"]["sourceIp"] == "127.0.0.1"

    # The 2.0 shortcut, cookies, binary both ways, and the HTTP API's error answers.
    status, headers, body = fetch(f"{gateway}/{stage}/modes?mode=shortcut")
    assert (status, json.loads(body), headers["content-type"]) == (200, {"hello": "world"}, "application/json")
    status, headers, body = fetch(f"{gateway}/{stage}/modes?mode=cookies")
    assert headers.get_all("set-cookie") == ["a=1", "b=2; Path=/"]
    status, headers, body = fetch(f"{gateway}/{stage}/modes?mode=binary")
    assert (status, body) == (200, bytes(range(256)))
    status, _, body = fetch(f"{gateway}/{stage}/modes?mode=echo", method="POST", body=bytes([0, 255, 1]),
                            headers={"content-type": "application/octet-stream"})
    ev = json.loads(body)["event"]
    assert ev["isBase64Encoded"] is True
    assert base64.b64decode(ev["body"]) == bytes([0, 255, 1])
    for mode in ("malformed", "raise"):
        status, _, body = fetch(f"{gateway}/{stage}/modes?mode={mode}")
        assert (status, body) == (502, b'{"message":"Internal Server Error"}'), mode
    status, _, body = fetch(f"{gateway}/{stage}/items/1", method="DELETE")
    assert (status, body) == (404, b'{"message":"Not Found"}')
    status, _, body = fetch(f"{gateway}/{stage}/nothing")
    assert (status, body) == (404, b'{"message":"Not Found"}')


def test_payload_1_0_route(gust, gateway, py_fn):
    api = unique("v1")
    stage = "s" + api.replace("-", "")
    put_api(gust, api, {
        "payload_format": "1.0",
        "stage": stage,
        "routes": [{"route_key": "ANY /{proxy+}", "function": py_fn}],
    })
    status, headers, body = fetch(f"{gateway}/{stage}/a/b?k=1&k=2", headers={"X-Custom": "v"})
    assert status == 200, body
    doc = json.loads(body)
    ev = doc["event"]
    assert doc["request_id"] == headers["x-amzn-RequestId"] == ev["requestContext"]["requestId"]
    assert ev["resource"] == "/{proxy+}"
    assert ev["path"] == "/a/b"
    assert ev["httpMethod"] == "GET"
    assert ev["pathParameters"] == {"proxy": "a/b"}
    assert ev["queryStringParameters"] == {"k": "2"}
    assert ev["multiValueQueryStringParameters"] == {"k": ["1", "2"]}
    assert ev["headers"]["X-Custom"] == "v"
    assert ev["multiValueHeaders"]["X-Custom"] == ["v"]
    assert ev["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert ev["requestContext"]["path"] == f"/{stage}/a/b"
    assert ev["body"] is None
    status, _, body = fetch(f"{gateway}/{stage}/x?mode=malformed")
    assert (status, body) == (502, b'{"message": "Internal server error"}')


def test_node_function_behind_a_route(gust, lam, gateway):
    name = unique("gw-node")
    create_function(lam, name=name, code=zip_dir(None, extra={"index.js": NODE_APP}),
                    handler="index.handler", runtime=NODE_RUNTIME)
    api = unique("node")
    put_api(gust, api, {"stage": "n" + api.replace("-", ""), "routes": [{"route_key": "POST /echo", "function": name}]})
    status, _, body = fetch(f"{gateway}/n{api.replace('-', '')}/echo", method="POST", body=b'{"x":1}',
                            headers={"content-type": "application/json"})
    assert status == 200, body
    doc = json.loads(body)
    assert doc["runtime"] == "node"
    assert doc["event"]["body"] == '{"x":1}'
    assert doc["event"]["isBase64Encoded"] is False


def test_mock_routes_domains_and_cors(gust, gateway):
    api = unique("mock")
    domain = f"{api}.example.test"
    put_api(gust, api, {
        "domains": [domain],
        "cors": {"AllowOrigins": ["https://app.example.com"], "AllowMethods": ["GET"], "MaxAge": 60},
        "routes": [{"route_key": "GET /health", "mock": {"status": 200, "body": "ok",
                                                         "headers": {"content-type": "text/plain"}}}],
    })
    status, headers, body = fetch(f"{gateway}/health", headers={"Host": domain, "Origin": "https://app.example.com"})
    assert (status, body) == (200, b"ok")
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    status, headers, _ = fetch(f"{gateway}/health", method="OPTIONS", headers={
        "Host": domain, "Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"})
    assert status == 204
    assert headers["access-control-allow-methods"] == "GET"
    assert headers["access-control-max-age"] == "60"
    status, _, _ = fetch(f"{gateway}/missing", headers={"Host": domain})
    assert status == 404


def test_function_url_with_aws_iam(gust, lam, gateway, py_fn):
    url = lam.create_function_url_config(FunctionName=py_fn, AuthType="AWS_IAM")["FunctionUrl"]
    try:
        assert url.startswith(gateway + "/lambda-url/")
        status, _, body = fetch(url + "p?mode=echo")
        assert (status, body) == (403, b'{"Message":"Forbidden"}')
        req = signed(gust, "POST", url + "p?mode=echo", b"signed body")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
            rid = resp.headers["x-amzn-RequestId"]
            doc = json.loads(resp.read())
        ev = doc["event"]
        assert ev["rawPath"] == "/p"
        assert ev["routeKey"] == "$default"
        assert ev["body"] == "signed body"
        assert ev["requestContext"]["requestId"] == rid == doc["request_id"]
        assert ev["requestContext"]["authorizer"]["iam"]["accessKey"] == gust.credentials()["access_key_id"]
        # Signed for another service: refused.
        req = signed(gust, "GET", url + "p", service="s3")
        status = fetch(req.full_url, headers=dict(req.headers))[0]
        assert status == 403
    finally:
        lam.delete_function_url_config(FunctionName=py_fn)
