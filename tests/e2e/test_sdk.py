"""The AWS SDKs, as application code uses them against Gust's tables:

* inside functions: a Python handler with boto3's `Table` resource and a Node handler
  with the SDK for JavaScript v3 document client reach the tables with no endpoint or
  credentials in their code, and without bundling the SDK (it comes from the
  platform's SDK directory, filled by `gust sdk install`; scripts/test.sh installs it
  and exports GUST_SDK_DIR, which `gust up` reads);
* from outside: the SDK for JavaScript v3 (`@aws-sdk/client-dynamodb`,
  `@aws-sdk/lib-dynamodb`) drives every table operation (tests/e2e/node_sdk).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REGION, create_function, invoke, unique, zip_function
from dynamodb_fixtures import ddb, ddb_resource, make_table  # noqa: F401

SDK_DIR = os.environ.get("GUST_SDK_DIR")
NODE_SDK_CASES = Path(__file__).parent / "node_sdk" / "dynamodb_v3.cjs"

needs_sdk = pytest.mark.skipif(
    not SDK_DIR and not os.environ.get("GUST_E2E_REQUIRE_ALL"),
    reason="GUST_SDK_DIR not set (scripts/test.sh installs the SDKs with `gust sdk install`)",
)


@pytest.fixture(scope="module")
def sdk_dir() -> Path:
    assert SDK_DIR, "GUST_SDK_DIR must name the directory `gust sdk install` filled"
    d = Path(SDK_DIR)
    assert (d / "python" / "boto3").is_dir(), f"no boto3 in {d}/python"
    assert (d / "node" / "node_modules" / "@aws-sdk" / "client-dynamodb").is_dir()
    return d


@needs_sdk
def test_python_function_uses_boto3_from_the_platform(gust, lam, ddb, make_table, sdk_dir):
    table = make_table(sk="N")
    name = unique("py-boto3")
    create_function(lam, name=name, code=zip_function("py_boto3_table"), handler="app.handler",
                    env={"TABLE_NAME": table.name}, timeout=30)
    for sk in (2, 1):
        r = invoke(lam, name, {"op": "put", "pk": "users", "sk": sk})
        assert r["error"] is None, r["raw"]
    r = invoke(lam, name, {"op": "list", "pk": "users"})
    assert r["error"] is None, r["raw"]
    assert r["payload"]["items"] == [{"sk": 1, "by": name}, {"sk": 2, "by": name}]
    assert r["payload"]["boto3_from"].startswith(str(sdk_dir / "python"))
    # The writes are real: the client outside sees them.
    got = ddb.get_item(TableName=table.name, Key={"pk": {"S": "users"}, "sk": {"N": "2"}})["Item"]
    assert got["by"] == {"S": name}


@needs_sdk
def test_node_function_uses_the_js_sdk_from_the_platform(gust, lam, ddb, make_table, sdk_dir):
    table = make_table(sk="N")
    name = unique("node-sdk")
    create_function(lam, name=name, code=zip_function("node_sdk_table"), handler="index.handler",
                    runtime="nodejs20.x", env={"TABLE_NAME": table.name}, timeout=30)
    r = invoke(lam, name, {"op": "put", "pk": "orders", "sk": 7})
    assert r["error"] is None, r["raw"]
    r = invoke(lam, name, {"op": "list", "pk": "orders"})
    assert r["error"] is None, r["raw"]
    assert r["payload"]["items"] == [{"sk": 7, "by": name}]
    assert r["payload"]["sdkFrom"].startswith(str(sdk_dir / "node" / "node_modules"))
    got = ddb.get_item(TableName=table.name, Key={"pk": {"S": "orders"}, "sk": {"N": "7"}})["Item"]
    assert got["by"] == {"S": name}


@needs_sdk
@pytest.mark.parametrize(
    "case",
    ["tables", "items", "conditions_and_updates", "query_and_scan", "batch_and_transactions",
     "document_client", "bad_credentials"],
)
def test_js_sdk_v3_against_tables(gust, sdk_dir, case):
    node = shutil.which("node") or "/usr/bin/node"
    creds = gust.credentials()
    env = dict(
        os.environ,
        NODE_PATH=str(sdk_dir / "node" / "node_modules"),
        AWS_ENDPOINT_URL=gust.endpoint,
        AWS_ACCESS_KEY_ID=creds["access_key_id"],
        AWS_SECRET_ACCESS_KEY=creds["secret_access_key"],
        AWS_REGION=REGION,
    )
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    proc = subprocess.run([node, str(NODE_SDK_CASES), case], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"{case} failed:\n{proc.stderr}\n{proc.stdout}"
    assert json.loads(proc.stdout.strip().splitlines()[-1])["ok"] is True
