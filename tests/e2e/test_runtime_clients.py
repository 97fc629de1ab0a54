"""The official Lambda runtime interface clients, unmodified, as provided.al2023 bootstraps.

(a) awslambdaric (PyPI) run by the suite's virtualenv python
(b) aws-lambda-ric (npm) from tests/e2e/node/node_modules
(c) a Rust binary built on the lambda_runtime crate (tests/fixtures/rust-hello)

scripts/test.sh installs (a) and (b); with GUST_E2E_REQUIRE_ALL=1 (set by
scripts/test.sh) a missing client fails the test instead of skipping it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import E2E, cargo_bin, create_function, invoke, unique, zip_function

RIC_NODE_BIN = E2E / "node" / "node_modules" / "aws-lambda-ric" / "bin" / "index.mjs"


def missing(what: str):
    if os.environ.get("GUST_E2E_REQUIRE_ALL"):
        pytest.fail(f"{what} is not installed (run scripts/test.sh)")
    pytest.skip(f"{what} is not installed (run scripts/test.sh)")


def shell_bootstrap(command: str) -> str:
    # Lambda starts a provided runtime in LAMBDA_TASK_ROOT; both clients load
    # the handler relative to the working directory.
    return f'#!/bin/sh\ncd "$LAMBDA_TASK_ROOT" || exit 1\nexec {command}\n'


def venv_python() -> str:
    """The suite's interpreter (the .venv), as an absolute path baked into the bootstrap."""
    return sys.executable


@pytest.fixture(scope="module")
def awslambdaric_zip():
    check = subprocess.run([venv_python(), "-c", "import awslambdaric"], capture_output=True)
    if check.returncode != 0:
        missing("awslambdaric")
    return zip_function(
        "ric_python",
        extra={"bootstrap": shell_bootstrap(f"{venv_python()} -m awslambdaric \"$_HANDLER\"")},
    )


def test_awslambdaric(lam, awslambdaric_zip):
    name = unique("ric-py")
    create_function(lam, name=name, code=awslambdaric_zip, handler="app.handler",
                    runtime="provided.al2023", timeout=5)
    out = invoke(lam, name, {"from": "boto3"})
    assert out["error"] is None, out["payload"]
    assert out["payload"] == {
        "client": "awslambdaric",
        "event": {"from": "boto3"},
        "request_id": out["request_id"],
        "function_name": name,
    }
    # Warm: the same client process serves the next invocation.
    again = invoke(lam, name, {"n": 2})
    assert again["payload"]["event"] == {"n": 2}
    assert again["payload"]["request_id"] == again["request_id"]


def test_awslambdaric_error(lam, awslambdaric_zip):
    name = unique("ric-py-err")
    create_function(lam, name=name, code=awslambdaric_zip, handler="app.nope",
                    runtime="provided.al2023", timeout=5)
    out = invoke(lam, name)
    assert out["error"] == "Unhandled"
    assert out["payload"]["errorType"] == "Runtime.HandlerNotFound", out["payload"]


def test_function_calls_back_with_its_credentials(lam, awslambdaric_zip):
    """boto3 inside a function reaches Gust through AWS_ENDPOINT_URL and the given keys."""
    name = unique("ric-py-boto3")
    create_function(lam, name=name, code=awslambdaric_zip, handler="app.list_functions",
                    runtime="provided.al2023", timeout=10)
    out = invoke(lam, name)
    assert out["error"] is None, out["payload"]
    assert name in out["payload"]["names"]


def test_aws_lambda_ric_node(lam):
    if not RIC_NODE_BIN.exists():
        missing("aws-lambda-ric (npm)")
    node = os.path.realpath(shutil.which("node") or "/usr/bin/node")
    code = zip_function(
        "ric_node", extra={"bootstrap": shell_bootstrap(f"{node} {RIC_NODE_BIN} \"$_HANDLER\"")}
    )
    name = unique("ric-node")
    create_function(lam, name=name, code=code, handler="app.handler", runtime="provided.al2023", timeout=5)
    out = invoke(lam, name, {"from": "boto3"})
    assert out["error"] is None, out["payload"]
    assert out["payload"] == {
        "client": "aws-lambda-ric",
        "event": {"from": "boto3"},
        "request_id": out["request_id"],
        "function_name": name,
    }
    again = invoke(lam, name, {"n": 2})
    assert again["payload"]["event"] == {"n": 2}


@pytest.fixture(scope="module")
def rust_zip():
    binary = cargo_bin("gust-fixture-rust-hello", "gust-fixture-rust-hello")
    with tempfile.TemporaryDirectory() as d:
        boot = Path(d) / "bootstrap"
        shutil.copy(binary, boot)
        if shutil.which("strip"):
            # A debug build is ~40 MB; stripped it is ~4 MB.
            subprocess.run(["strip", str(boot)], check=True)
        boot.chmod(0o755)
        from conftest import zip_dir

        return zip_dir(d, executables=("bootstrap",))


@pytest.mark.parametrize("runtime", ["provided.al2023", "provided"])
def test_rust_lambda_runtime(lam, rust_zip, runtime):
    name = unique("rust")
    resp = create_function(lam, name=name, code=rust_zip, handler="bootstrap", runtime=runtime,
                           timeout=5, memory=256)
    out = invoke(lam, name, {"hello": "rust"})
    assert out["error"] is None, out["payload"]
    body = out["payload"]
    assert body["client"] == "lambda_runtime"
    assert body["event"] == {"hello": "rust"}
    assert body["request_id"] == out["request_id"]
    assert body["function_name"] == name
    assert body["memory"] == 256
    assert body["invoked_function_arn"] == resp["FunctionArn"]


def test_rust_lambda_runtime_error(lam, rust_zip):
    name = unique("rust-err")
    create_function(lam, name=name, code=rust_zip, handler="bootstrap", runtime="provided.al2023", timeout=5)
    out = invoke(lam, name, {"fail": True})
    assert out["error"] == "Unhandled"
    assert out["payload"]["errorMessage"] == "asked to fail", out["payload"]
    assert invoke(lam, name, {"ok": 1})["payload"]["event"] == {"ok": 1}


def test_provided_without_bootstrap_fails_cleanly(lam):
    name = unique("noboot")
    create_function(lam, name=name, code=zip_function("ric_node"), handler="x", runtime="provided.al2023")
    try:
        out = invoke(lam, name)
    except Exception as e:  # an API error is acceptable too, as long as the server lives
        assert "bootstrap" in str(e).lower() or "InvalidRuntime" in str(e), e
        return
    assert out["error"] == "Unhandled", out["payload"]
