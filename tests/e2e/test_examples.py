"""The apps in examples/, deployed as their READMEs say (`gust deploy <manifest>`) to a
fresh `gust up`, then used over HTTP through the gateway like a user would."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from test_cli import base_env, gust_cmd, run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def http(method: str, url: str, body: dict | str | None = None):
    data = None
    if body is not None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.mark.skipif(not os.environ.get("GUST_SDK_DIR") and not os.environ.get("GUST_E2E_REQUIRE_ALL"),
                    reason="the example's function imports boto3 from the SDK dir (GUST_SDK_DIR)")
def test_users_api(gust_factory, tmp_path):
    gust = gust_factory()
    assert gust.gateway, "this build must run a gateway"
    env = base_env(tmp_path)
    out = run(gust_cmd(gust, "deploy", str(EXAMPLES / "users-api" / "gust.toml")), env)
    assert "users" in out.stdout + out.stderr

    base = gust.gateway
    status, _, raw = http("GET", f"{base}/users")
    assert (status, json.loads(raw)) == (200, [])

    created = []
    for name, email in [("Ada", "ada@example.com"), ("Grace", None)]:
        body = {"name": name} | ({"email": email} if email else {})
        status, headers, raw = http("POST", f"{base}/users", body)
        assert status == 201, raw
        user = json.loads(raw)
        assert user["name"] == name and len(user["id"]) == 32
        assert headers["location"] == f"/users/{user['id']}"
        assert headers.get("apigw-requestid")
        created.append(user)

    status, _, raw = http("GET", f"{base}/users")
    assert status == 200
    assert [u["name"] for u in json.loads(raw)] == ["Ada", "Grace"]

    status, _, raw = http("GET", f"{base}/users/{created[0]['id']}")
    assert (status, json.loads(raw)["email"]) == (200, "ada@example.com")

    # Bad input gets the app's 400, unknown users its 404, unknown routes the gateway's 404.
    status, _, raw = http("POST", f"{base}/users", "not json")
    assert status == 400 and "JSON object" in json.loads(raw)["message"]
    status, _, raw = http("POST", f"{base}/users", {"email": "x@example.com"})
    assert status == 400 and "name" in json.loads(raw)["message"]
    status, _, _ = http("GET", f"{base}/users/nope")
    assert status == 404
    status, _, raw = http("GET", f"{base}/groups")
    assert (status, json.loads(raw)) == (404, {"message": "Not Found"})

    status, _, _ = http("DELETE", f"{base}/users/{created[1]['id']}")
    assert status == 204
    status, _, _ = http("DELETE", f"{base}/users/{created[1]['id']}")
    assert status == 404

    # The users are in a real table: boto3 from outside sees what the function wrote.
    ddb = gust.client("dynamodb")
    items = ddb.scan(TableName="users")["Items"]
    assert [i["name"]["S"] for i in items] == ["Ada"]

    # And they survive a restart of the platform.
    gust.stop()
    gust.start()
    status, _, raw = http("GET", f"{gust.gateway}/users")
    assert status == 200 and [u["name"] for u in json.loads(raw)] == ["Ada"]


def test_deploy_tables_is_additive(gust_factory, tmp_path):
    """`[tables.*]`: created once, indexes and TTL added later, keys never rewritten."""
    gust = gust_factory()
    env = base_env(tmp_path)
    manifest = tmp_path / "gust.toml"
    manifest.write_text('[tables.orders]\npartition_key = "customer"\nsort_key = "at:N"\n')
    out = run(gust_cmd(gust, "deploy", str(manifest)), env)
    assert "[table] orders ... created" in out.stderr
    ddb = gust.client("dynamodb")
    ddb.put_item(TableName="orders", Item={"customer": {"S": "c1"}, "at": {"N": "1"}, "sku": {"S": "x"}})

    manifest.write_text(
        '[tables.orders]\npartition_key = "customer"\nsort_key = "at:N"\nttl_attribute = "expires"\n'
        '[tables.orders.indexes.by-sku]\npartition_key = "sku"\nsort_key = "at:N"\n'
    )
    out = run(gust_cmd(gust, "deploy", str(manifest)), env)
    assert "updated (added index by-sku, TTL on expires)" in out.stderr, out.stderr
    got = ddb.query(TableName="orders", IndexName="by-sku", KeyConditionExpression="sku = :s",
                    ExpressionAttributeValues={":s": {"S": "x"}})["Items"]
    assert [i["customer"]["S"] for i in got] == ["c1"]
    assert ddb.describe_time_to_live(TableName="orders")["TimeToLiveDescription"]["AttributeName"] == "expires"
    out = run(gust_cmd(gust, "deploy", str(manifest)), env)
    assert "[table] orders ... unchanged" in out.stderr

    manifest.write_text('[tables.orders]\npartition_key = "id"\n')
    out = run(gust_cmd(gust, "deploy", str(manifest)), env, check=False)
    assert out.returncode != 0
    assert "never changes a table's keys" in out.stderr
    assert ddb.scan(TableName="orders")["Count"] == 1


def test_streaming(gust_factory, tmp_path):
    import http.client
    import re
    import time
    import urllib.parse

    gust = gust_factory()
    env = base_env(tmp_path)
    out = run(gust_cmd(gust, "deploy", str(EXAMPLES / "streaming" / "gust.toml")), env)
    urls = re.findall(r"http://\S+/lambda-url/\S+/", out.stdout + out.stderr)
    assert urls, out.stdout + out.stderr
    url = urllib.parse.urlsplit(urls[0])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("GET", url.path + "?count=3&interval_ms=400")
    started = time.monotonic()
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("content-type") == "text/event-stream"
    assert resp.getheader("transfer-encoding") == "chunked"
    pieces = []
    while True:
        data = resp.read1(65536)
        if not data:
            break
        pieces.append((data, time.monotonic() - started))
    body = b"".join(p for p, _ in pieces).decode()
    events = [e for e in body.split("\n\n") if e]
    assert [e.splitlines()[0] for e in events] == ["id: 1", "id: 2", "id: 3", "event: done"], body
    assert json.loads(events[0].splitlines()[1].removeprefix("data: "))["tick"] == 1
    # The first event came while the function was still writing the others.
    assert b"id: 1" in pieces[0][0] and b"event: done" not in pieces[0][0], pieces
    assert pieces[-1][1] - pieces[0][1] >= 0.6, pieces
