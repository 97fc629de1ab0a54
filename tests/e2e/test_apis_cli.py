"""HTTP APIs from the manifest: `gust deploy` with `routes`, `url` and `[apis.*]`, the
`/gust/v1/apis` extension it stores them through (signed like every control request), and
(when this build runs a gateway) the deployed routes answering over HTTP."""

import json
import re
import shutil
import textwrap
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import FUNCTIONS, REGION, unique
from test_cli import base_env, gust_cmd, run


def signed(gust, method: str, path: str, body: bytes | None = None):
    """A SigV4-signed request to the control endpoint: (status, headers, parsed JSON or None)."""
    creds = gust.credentials()
    url = gust.endpoint + path
    headers = {"content-type": "application/json"} if body is not None else {}
    req = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(Credentials(creds["access_key_id"], creds["secret_access_key"]), "lambda", REGION).add_auth(req)
    prepared = urllib.request.Request(url, data=body, method=method, headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=20) as resp:
            raw = resp.read()
            return resp.status, lower(resp.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, lower(e.headers), json.loads(raw) if raw else None


def lower(headers) -> dict:
    return {k.lower(): v for k, v in headers.items()}


def project(tmp_path, users: str, items: str, *, users_url="url = true", extra=""):
    proj = tmp_path / "proj"
    if not proj.exists():
        shutil.copytree(FUNCTIONS / "py_basic", proj / "py")
        # A REST-style (payload 1.0) handler must answer with a statusCode.
        (proj / "py" / "web.py").write_text(
            "import json\n\n\ndef handler(event, context):\n"
            "    return {'statusCode': 200, 'headers': {'content-type': 'application/json'}, 'body': json.dumps(event)}\n"
        )
    manifest = proj / "gust.toml"
    manifest.write_text(
        textwrap.dedent(f"""\
            [functions.{users}]
            runtime = "python3.11"
            handler = "app.echo"
            code = "py"
            routes = ["GET /users", "POST /users", "GET /users/{{id}}"]
            {users_url}

            [functions.{items}]
            runtime = "python3.11"
            handler = "web.handler"
            code = "py"
            api = "{items}-shop"
            routes = ["DELETE /items/{{id}}"]

            [apis.{items}-shop]
            payload_format = "1.0"
            stage = "prod"
            domains = ["{items}.localhost"]
            integration_timeout_ms = 10000
            cors = {{ allow_origins = ["*"], allow_methods = ["GET", "POST"], max_age = 300 }}
            routes = {{ "GET /items/{{id}}" = "{items}", "GET /health" = {{ mock = {{ status = 200, body = "ok" }} }} }}
            """)
        + extra
    )
    return manifest


def test_deploy_stores_apis_and_urls(gust_factory, tmp_path):
    # Its own server: the API "default" is shared by everything deployed to one Gust.
    gust = gust_factory()
    lam = gust.client()
    env = base_env(tmp_path)
    users, items = unique("api-users"), unique("api-items")
    manifest = project(tmp_path, users, items)

    out = run(gust_cmd(gust, "deploy", str(manifest)), env).stderr
    assert "function URL created" in out, out
    assert f"[api] {items}-shop (3 routes) ... created" in out, out
    assert "[api] default" in out, out
    assert re.search(rf"GET\s+\S*/prod/items/\{{id\}}\s+-> {items}\s+\[api {items}-shop\]", out), out
    assert "-> mock 200" in out, out

    url = lam.get_function_url_config(FunctionName=users)
    assert url["AuthType"] == "NONE"
    assert url["FunctionUrl"] in out
    assert url["FunctionUrl"] in run(gust_cmd(gust, "ls"), env).stdout

    status, _, shop = signed(gust, "GET", f"/gust/v1/apis/{items}-shop")
    assert status == 200, shop
    assert shop["payload_format"] == "1.0"
    assert shop["stage"] == "prod"
    assert shop["domains"] == [f"{items}.localhost"]
    assert shop["integration_timeout_ms"] == 10000
    assert shop["cors"] == {"AllowCredentials": False, "AllowOrigins": ["*"], "AllowMethods": ["GET", "POST"], "MaxAge": 300}
    routes = {r["route_key"]: r for r in shop["routes"]}
    assert set(routes) == {"GET /items/{id}", "GET /health", "DELETE /items/{id}"}
    assert routes["GET /health"]["mock"] == {"status": 200, "body": "ok"}
    assert routes["DELETE /items/{id}"]["function"] == items

    status, _, default = signed(gust, "GET", "/gust/v1/apis/default")
    assert status == 200
    assert default["payload_format"] == "2.0"
    assert {r["route_key"] for r in default["routes"] if r["function"] == users} == {
        "GET /users",
        "POST /users",
        "GET /users/{id}",
    }

    status, _, listing = signed(gust, "GET", "/gust/v1/apis")
    assert status == 200
    assert f"{items}-shop" in [a["name"] for a in listing["apis"]]

    # Deploying again updates in place; `url = false` deletes the URL.
    manifest = project(tmp_path, users, items, users_url="url = false")
    out = run(gust_cmd(gust, "deploy", str(manifest)), env).stderr
    assert f"[api] {items}-shop (3 routes) ... updated" in out, out
    assert "function URL deleted" in out, out
    assert lam.list_function_url_configs(FunctionName=users)["FunctionUrlConfigs"] == []


def test_apis_endpoint_errors(gust, lam):
    status, headers, body = signed(gust, "GET", f"/gust/v1/apis/{unique('nope')}")
    assert status == 404
    assert headers["x-amzn-errortype"].startswith("ResourceNotFoundException")
    assert body["message"].startswith("API not found")

    missing = unique("missing-fn")
    doc = {"routes": [{"route_key": "GET /x", "function": missing}]}
    status, _, body = signed(gust, "PUT", f"/gust/v1/apis/{unique('bad')}", json.dumps(doc).encode())
    assert status == 404
    assert missing in body["message"]

    doc = {"routes": [{"route_key": "GET x", "function": missing}]}
    status, _, body = signed(gust, "PUT", f"/gust/v1/apis/{unique('bad')}", json.dumps(doc).encode())
    assert status == 400
    assert "Invalid route key" in body["message"]

    # Unsigned requests are refused like every other control request.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(gust.endpoint + "/gust/v1/apis", timeout=20)
    assert e.value.code == 403


def test_manifest_errors_name_the_line(gust, tmp_path):
    env = base_env(tmp_path)
    users, items = unique("api-users"), unique("api-items")
    manifest = project(tmp_path, users, items, extra='\n[apis.broken]\nroutes = { "FETCH /x" = "f" }\n')
    proc = run(gust_cmd(gust, "deploy", str(manifest)), env, check=False)
    assert proc.returncode != 0
    line = manifest.read_text().splitlines().index('routes = { "FETCH /x" = "f" }') + 1
    assert f"{manifest}:{line}:" in proc.stderr, proc.stderr
    assert "Invalid route key" in proc.stderr


def test_deployed_routes_answer_through_the_gateway(gust_factory, tmp_path):
    gust = gust_factory()
    if not gust.gateway:
        pytest.skip("this build of gust up runs no gateway")
    env = base_env(tmp_path)
    users, items = unique("api-users"), unique("api-items")
    manifest = project(tmp_path, users, items)
    run(gust_cmd(gust, "deploy", str(manifest)), env)

    with urllib.request.urlopen(gust.gateway + "/users/42?q=1", timeout=20) as resp:
        assert resp.status == 200
        event = json.loads(resp.read())["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /users/{id}"
    assert event["pathParameters"] == {"id": "42"}

    req = urllib.request.Request(gust.gateway + "/prod/health", headers={"Host": f"{items}.localhost"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        assert (resp.status, resp.read()) == (200, b"ok")
    req = urllib.request.Request(gust.gateway + "/prod/items/7", headers={"Host": f"{items}.localhost"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        event = json.loads(resp.read())
    assert event["httpMethod"] == "GET"
    assert event["resource"].endswith("/items/{id}")
    assert event["pathParameters"] == {"id": "7"}
    assert event["requestContext"]["stage"] == "prod"
