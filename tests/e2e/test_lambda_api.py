"""Lambda management API through boto3: CRUD, pagination, concurrency, error codes."""

import base64
import hashlib
import re

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import (
    NODE_RUNTIME,
    PY_RUNTIME,
    client_error,
    create_function,
    invoke,
    unique,
    zip_dir,
    zip_function,
)

ARN_RE = re.compile(r"^arn:aws:lambda:us-east-1:\d{12}:function:(?P<name>[A-Za-z0-9_-]+)$")


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.fixture(scope="module")
def lax(gust):
    """A client without botocore's own parameter validation, to reach the server's."""
    return gust.client(parameter_validation=False)


def test_create_returns_configuration(lam):
    name = unique("create")
    code = zip_function("py_basic")
    resp = create_function(
        lam, name=name, code=code, handler="app.hello", timeout=7, memory=256,
        Description="made by the e2e suite",
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert resp["FunctionName"] == name
    m = ARN_RE.match(resp["FunctionArn"])
    assert m and m["name"] == name, resp["FunctionArn"]
    assert resp["Runtime"] == PY_RUNTIME
    assert resp["Handler"] == "app.hello"
    assert resp["Timeout"] == 7
    assert resp["MemorySize"] == 256
    assert resp["Description"] == "made by the e2e suite"
    assert resp["CodeSha256"] == sha256_b64(code)
    assert resp["CodeSize"] == len(code)
    assert resp.get("Version", "$LATEST") == "$LATEST"
    assert resp.get("State", "Active") == "Active"


def test_defaults(lam):
    resp = create_function(lam, code=zip_function("py_basic"), handler="app.hello")
    assert resp["Timeout"] == 3
    assert resp["MemorySize"] == 128


def test_get_function_and_configuration(lam):
    name = unique("get")
    code = zip_function("py_basic")
    create_function(lam, name=name, code=code, handler="app.hello", env={"A": "1"})
    got = lam.get_function(FunctionName=name)
    assert got["Configuration"]["FunctionName"] == name
    assert got["Configuration"]["CodeSha256"] == sha256_b64(code)
    assert got["Configuration"]["Environment"]["Variables"] == {"A": "1"}
    assert "Code" in got
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["FunctionName"] == name
    assert cfg["Handler"] == "app.hello"
    # Lookups by ARN work as well as by name.
    by_arn = lam.get_function_configuration(FunctionName=cfg["FunctionArn"])
    assert by_arn["FunctionName"] == name


def test_code_location_downloads_the_package(lam):
    """Code.Location is a presigned URL, as Lambda's S3 links are: a plain GET fetches the zip."""
    import urllib.error
    import urllib.parse
    import urllib.request

    name = unique("code")
    code = zip_function("py_basic")
    create_function(lam, name=name, code=code, handler="app.hello")
    location = lam.get_function(FunctionName=name)["Code"]["Location"]
    assert "X-Amz-Signature=" in location
    with urllib.request.urlopen(location, timeout=10) as resp:
        assert resp.status == 200
        assert resp.read() == code
    # A tampered link is refused.
    tampered = location.replace(urllib.parse.quote(name), urllib.parse.quote(name + "x"))
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(tampered, timeout=10)
    assert err.value.code == 403


def test_list_functions_pagination(lam):
    prefix = unique("page")
    names = sorted(f"{prefix}-{i}" for i in range(5))
    for n in names:
        create_function(lam, name=n, code=zip_function("py_basic"), handler="app.hello")

    first = lam.list_functions(MaxItems=2)
    assert len(first["Functions"]) == 2
    assert first.get("NextMarker"), "a truncated page must carry NextMarker"

    seen = []
    marker = None
    pages = 0
    while True:
        kw = {"MaxItems": 2}
        if marker:
            kw["Marker"] = marker
        page = lam.list_functions(**kw)
        pages += 1
        assert len(page["Functions"]) <= 2
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
        assert pages < 1000
    assert len(seen) == len(set(seen)), "pages must not overlap"
    assert set(names) <= set(seen)

    paginated = []
    for page in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 3}):
        paginated += [f["FunctionName"] for f in page["Functions"]]
    assert set(names) <= set(paginated)
    assert len(paginated) == len(set(paginated))


def test_update_code(lam):
    name = unique("upcode")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    assert invoke(lam, name)["payload"] == {"hello": "world"}

    new_code = zip_dir(None, extra={"app.py": "def hello(e, c):\n    return {'hello': 'again'}\n"})
    resp = lam.update_function_code(FunctionName=name, ZipFile=new_code)
    assert resp["CodeSha256"] == sha256_b64(new_code)
    assert resp["CodeSize"] == len(new_code)
    assert invoke(lam, name)["payload"] == {"hello": "again"}


def test_update_configuration(lam):
    name = unique("upcfg")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    resp = lam.update_function_configuration(
        FunctionName=name,
        Timeout=9,
        MemorySize=512,
        Description="changed",
        Handler="app.env",
        Environment={"Variables": {"COLOR": "blue"}},
    )
    assert resp["Timeout"] == 9
    assert resp["MemorySize"] == 512
    assert resp["Description"] == "changed"
    cfg = lam.get_function_configuration(FunctionName=name)
    assert (cfg["Timeout"], cfg["MemorySize"], cfg["Handler"]) == (9, 512, "app.env")
    out = invoke(lam, name)["payload"]
    assert out["environ"]["COLOR"] == "blue"
    assert out["environ"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"


def test_delete(lam):
    name = unique("del")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    resp = lam.delete_function(FunctionName=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as exc:
        lam.get_function(FunctionName=name)
    assert client_error(exc)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as exc:
        lam.delete_function(FunctionName=name)
    assert client_error(exc)[:2] == ("ResourceNotFoundException", 404)
    assert name not in [f["FunctionName"] for f in lam.list_functions(MaxItems=50)["Functions"]]


def test_function_concurrency(lam):
    name = unique("conc")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    resp = lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
    assert resp["ReservedConcurrentExecutions"] == 3
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 3
    assert lam.get_function(FunctionName=name)["Concurrency"]["ReservedConcurrentExecutions"] == 3
    lam.delete_function_concurrency(FunctionName=name)
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName=name)


def test_create_duplicate_is_conflict(lam):
    name = unique("dup")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    with pytest.raises(ClientError) as exc:
        create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    assert client_error(exc)[:2] == ("ResourceConflictException", 409)


def test_unknown_function_is_not_found(lam):
    name = unique("missing")
    for call in (
        lambda: lam.get_function(FunctionName=name),
        lambda: lam.get_function_configuration(FunctionName=name),
        lambda: lam.update_function_code(FunctionName=name, ZipFile=zip_function("py_basic")),
        lambda: lam.update_function_configuration(FunctionName=name, Timeout=5),
        lambda: lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        code, status, message = client_error(exc)
        assert (code, status) == ("ResourceNotFoundException", 404), message
        assert name in message


def test_bad_runtime_is_invalid_parameter(lam):
    with pytest.raises(ClientError) as exc:
        create_function(lam, code=zip_function("py_basic"), handler="app.hello", runtime="cobol85")
    assert client_error(exc)[:2] == ("InvalidParameterValueException", 400)


# AWS itself answers shape-constraint violations (timeout, memory, name) with
# ValidationException and semantic ones with InvalidParameterValueException;
# either is a correct 400 here.
BAD_PARAMETER = {"InvalidParameterValueException", "ValidationException"}


@pytest.mark.parametrize("timeout", [0, 901])
def test_bad_timeout_is_rejected(lax, timeout):
    with pytest.raises(ClientError) as exc:
        create_function(lax, code=zip_function("py_basic"), handler="app.hello", timeout=timeout)
    code, status, _ = client_error(exc)
    assert code in BAD_PARAMETER and status == 400, code


@pytest.mark.parametrize("memory", [64, 10241])
def test_bad_memory_is_rejected(lax, memory):
    with pytest.raises(ClientError) as exc:
        create_function(lax, code=zip_function("py_basic"), handler="app.hello", memory=memory)
    code, status, _ = client_error(exc)
    assert code in BAD_PARAMETER and status == 400, code


@pytest.mark.parametrize("name", ["has space", "slash/name", "x" * 65, "dot.name"])
def test_bad_name_is_rejected(lax, name):
    with pytest.raises(ClientError) as exc:
        create_function(lax, name=name, code=zip_function("py_basic"), handler="app.hello")
    code, status, _ = client_error(exc)
    assert code in BAD_PARAMETER and status == 400, code


def test_bad_update_is_rejected(lax, lam):
    name = unique("badupd")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    with pytest.raises(ClientError) as exc:
        lax.update_function_configuration(FunctionName=name, Timeout=0)
    code, status, _ = client_error(exc)
    assert code in BAD_PARAMETER and status == 400, code
    assert lam.get_function_configuration(FunctionName=name)["Timeout"] == 3


def test_malformed_zip_is_invalid_parameter(lam):
    with pytest.raises(ClientError) as exc:
        create_function(lam, code=b"this is not a zip file", handler="app.hello")
    assert client_error(exc)[:2] == ("InvalidParameterValueException", 400)


def test_node_function_round_trip(lam):
    name = unique("nodecrud")
    resp = create_function(
        lam, name=name, code=zip_function("node_cjs"), handler="index.hello", runtime=NODE_RUNTIME
    )
    assert resp["Runtime"] == NODE_RUNTIME
    assert invoke(lam, name)["payload"] == {"hello": "world", "flavour": "cjs"}
