"""Invoking nodejs functions through Gust's embedded bootstrap: CJS, ESM, callbacks."""

import os

import pytest

from conftest import report_metric, HOST_MARKER_VAR, NODE_RUNTIME, create_function, invoke, unique, zip_function


def node_fn(lam, fixture, handler, **kw):
    name = unique(f"node-{handler.split('.')[-1].lower()}")
    create_function(lam, name=name, code=zip_function(fixture), handler=handler, runtime=NODE_RUNTIME, **kw)
    return name


@pytest.fixture(scope="module")
def cjs(lam):
    return {
        h: node_fn(lam, "node_cjs", f"index.{h}", timeout=2, memory=256, env={"GREETING": "hi there"})
        for h in ("hello", "echo", "env", "tmp", "fail", "printer", "callback", "callbackError")
    }


def test_hello_cjs(lam, cjs):
    out = invoke(lam, cjs["hello"])
    assert (out["status"], out["error"]) == (200, None)
    assert out["payload"] == {"hello": "world", "flavour": "cjs"}


def test_echo_event_and_context(lam, cjs):
    event = {"a": 1, "nested": {"list": [1, 2, "three"]}, "unicode": "héllo ✓"}
    out = invoke(lam, cjs["echo"], event)
    body = out["payload"]
    assert out["error"] is None, body
    assert body["event"] == event
    assert body["function_name"] == cjs["echo"]
    assert body["function_version"] == "$LATEST"
    assert int(body["memory_limit_in_mb"]) == 256
    assert body["aws_request_id"] == out["request_id"]
    arn = lam.get_function_configuration(FunctionName=cjs["echo"])["FunctionArn"]
    assert body["invoked_function_arn"] == arn
    assert 0 < body["remaining_ms"] <= 2000


def test_environment(lam, cjs, gust):
    env = invoke(lam, cjs["env"])["payload"]["environ"]
    assert env["GREETING"] == "hi there"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == cjs["env"]
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["_HANDLER"] == "index.env"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["LAMBDA_TASK_ROOT"]
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{NODE_RUNTIME}"
    assert env["AWS_ENDPOINT_URL"].rstrip("/") == gust.endpoint
    assert HOST_MARKER_VAR not in env
    assert env.get("HOME") != os.environ.get("HOME")


def test_cwd_is_task_root(lam, cjs):
    out = invoke(lam, cjs["env"])["payload"]
    assert os.path.realpath(out["cwd"]) == os.path.realpath(out["environ"]["LAMBDA_TASK_ROOT"])


def test_tmp_is_writable(lam, cjs):
    assert invoke(lam, cjs["tmp"])["payload"] == {"tmp": "written"}


def test_handler_exception(lam, cjs):
    out = invoke(lam, cjs["fail"], {"why": "testing"})
    assert out["error"] == "Unhandled"
    body = out["payload"]
    assert body["errorType"] == "GustTestError", body
    assert body["errorMessage"] == "boom: testing"
    # Lambda's Node runtime calls the stack "trace"; accept the Python spelling too.
    trace = body.get("trace", body.get("stackTrace"))
    assert isinstance(trace, list) and trace, body


def test_callback(lam, cjs):
    out = invoke(lam, cjs["callback"], {"k": "v"})
    assert out["error"] is None, out["payload"]
    assert out["payload"] == {"via": "callback", "event": {"k": "v"}}


def test_callback_error(lam, cjs):
    out = invoke(lam, cjs["callbackError"])
    assert out["error"] == "Unhandled"
    assert out["payload"]["errorMessage"] == "callback failure"
    assert out["payload"]["errorType"] == "Error"


def test_callback_only_handler(lam):
    name = node_fn(lam, "node_callback", "index.handler")
    out = invoke(lam, name, {"a": 2, "b": 3})
    assert out["payload"] == {"via": "callback", "sum": 5}


def test_esm_handler(lam):
    name = node_fn(lam, "node_esm", "index.handler")
    out = invoke(lam, name, {"x": 1})
    assert out["error"] is None, out["payload"]
    body = out["payload"]
    assert body["flavour"] == "esm"
    assert body["event"] == {"x": 1}
    assert body["aws_request_id"] == out["request_id"]
    assert body["function_name"] == name


def test_import_module_error(lam):
    name = node_fn(lam, "node_import_error", "index.handler")
    out = invoke(lam, name)
    assert out["error"] == "Unhandled"
    assert out["payload"]["errorType"] == "Runtime.ImportModuleError", out["payload"]
    assert "gust-e2e-module-that-does-not-exist" in out["payload"]["errorMessage"]


def test_handler_not_found(lam):
    name = node_fn(lam, "node_cjs", "index.nope")
    out = invoke(lam, name)
    assert out["error"] == "Unhandled"
    assert out["payload"]["errorType"] == "Runtime.HandlerNotFound", out["payload"]
    assert "nope" in out["payload"]["errorMessage"]


def test_log_tail(lam, cjs):
    out = invoke(lam, cjs["printer"], {"marker": "plugh"}, LogType="Tail")
    rid = out["request_id"]
    log = out["log"]
    assert log is not None
    for line in (f"START RequestId: {rid}", f"END RequestId: {rid}", f"REPORT RequestId: {rid}"):
        assert line in log, log
    assert "gust-e2e-print-marker plugh" in log, log


def test_warm_invoke_is_faster_and_has_no_init_duration(lam):
    name = node_fn(lam, "node_cjs", "index.echo")
    cold = invoke(lam, name, LogType="Tail")
    assert cold["payload"]["cold"] is True
    assert "Init Duration" in cold["log"], cold["log"]
    warm = [invoke(lam, name, LogType="Tail") for _ in range(3)]
    for w in warm:
        assert w["payload"]["cold"] is False
        assert "Init Duration" not in w["log"], w["log"]
    fastest = min(w["seconds"] for w in warm)
    report_metric("node hello invoke via boto3", f"cold {cold['seconds'] * 1000:.1f} ms, warm {fastest * 1000:.1f} ms")
    assert fastest < cold["seconds"]


def test_esm_by_package_type(lam):
    name = node_fn(lam, "node_esm_pkg", "index.handler")
    out = invoke(lam, name, {"n": 21})
    assert out["error"] is None, out["payload"]
    assert out["payload"] == {"flavour": "esm-pkg", "doubled": 42}


def test_handler_in_subdirectory(lam):
    name = node_fn(lam, "node_subdir", "src/index.handler")
    out = invoke(lam, name)
    assert out["error"] is None, out["payload"]
    assert out["payload"] == {"where": "src"}
