"""Invoking python3.x functions through Gust's embedded bootstrap."""

import os

import pytest

from conftest import report_metric, HOST_MARKER_VAR, PY_RUNTIME, create_function, invoke, unique, zip_function


@pytest.fixture(scope="module")
def basic(lam):
    """name of a function for each handler of py_basic/app.py"""
    code = zip_function("py_basic")
    names = {}
    for handler in ("hello", "echo", "env", "tmp", "fail", "printer"):
        name = unique(f"py-{handler}")
        create_function(
            lam, name=name, code=code, handler=f"app.{handler}", timeout=2, memory=192,
            env={"GREETING": "hi there", "EMPTY": ""},
        )
        names[handler] = name
    return names


def test_hello(lam, basic):
    out = invoke(lam, basic["hello"])
    assert out["status"] == 200
    assert out["error"] is None
    assert out["payload"] == {"hello": "world"}


def test_echo_event_and_context(lam, basic):
    event = {"a": 1, "nested": {"list": [1, 2, "three"]}, "unicode": "héllo ✓"}
    out = invoke(lam, basic["echo"], event)
    body = out["payload"]
    assert out["error"] is None, body
    assert body["event"] == event
    assert body["function_name"] == basic["echo"]
    assert body["function_version"] == "$LATEST"
    assert int(body["memory_limit_in_mb"]) == 192
    assert body["aws_request_id"] == out["request_id"]
    arn = lam.get_function_configuration(FunctionName=basic["echo"])["FunctionArn"]
    assert body["invoked_function_arn"] == arn
    assert 0 < body["remaining_ms"] <= 2000


@pytest.mark.parametrize("payload", [[1, 2, 3], "just a string", 42, None])
def test_non_object_events(lam, basic, payload):
    assert invoke(lam, basic["echo"], payload)["payload"]["event"] == payload


def test_empty_payload(lam, basic):
    resp = lam.invoke(FunctionName=basic["echo"])
    assert resp["StatusCode"] == 200
    import json

    assert json.loads(resp["Payload"].read())["event"] == {}


def test_request_ids_are_unique(lam, basic):
    ids = {invoke(lam, basic["echo"])["payload"]["aws_request_id"] for _ in range(3)}
    assert len(ids) == 3


def test_environment(lam, basic, gust):
    out = invoke(lam, basic["env"])["payload"]
    env = out["environ"]
    assert env["GREETING"] == "hi there"
    assert env["EMPTY"] == ""
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == basic["env"]
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "192"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["_HANDLER"] == "app.env"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["LAMBDA_TASK_ROOT"]
    assert env["AWS_LAMBDA_RUNTIME_API"]
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{PY_RUNTIME}"
    assert env["AWS_ENDPOINT_URL"].rstrip("/") == gust.endpoint
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]


def test_host_environment_does_not_leak(lam, basic):
    env = invoke(lam, basic["env"])["payload"]["environ"]
    assert HOST_MARKER_VAR not in env
    assert env.get("HOME") != os.environ.get("HOME"), "the host's HOME leaked into the function"
    for var in ("CARGO_HOME", "RUSTUP_HOME", "VIRTUAL_ENV", "PYENV_ROOT", "PYTEST_CURRENT_TEST"):
        assert var not in env, var


def test_cwd_is_task_root(lam, basic):
    out = invoke(lam, basic["env"])["payload"]
    assert os.path.realpath(out["cwd"]) == os.path.realpath(out["environ"]["LAMBDA_TASK_ROOT"])
    assert os.path.exists(os.path.join(out["environ"]["LAMBDA_TASK_ROOT"], "app.py"))


def test_tmp_is_writable(lam, basic):
    assert invoke(lam, basic["tmp"])["payload"] == {"tmp": "written"}


def test_handler_exception(lam, basic):
    out = invoke(lam, basic["fail"], {"why": "testing"})
    assert out["status"] == 200
    assert out["error"] == "Unhandled"
    body = out["payload"]
    assert body["errorType"] == "GustTestError"
    assert body["errorMessage"] == "boom: testing"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]
    assert any("app.py" in line for line in body["stackTrace"]), body["stackTrace"]


def test_handler_exception_then_success(lam, basic):
    """An exception leaves the environment usable (no new cold start needed)."""
    assert invoke(lam, basic["fail"])["error"] == "Unhandled"
    assert invoke(lam, basic["fail"])["payload"]["errorType"] == "GustTestError"


def test_import_module_error(lam):
    name = unique("py-import")
    create_function(lam, name=name, code=zip_function("py_import_error"), handler="app.handler")
    out = invoke(lam, name)
    assert out["error"] == "Unhandled"
    assert out["payload"]["errorType"] == "Runtime.ImportModuleError"
    msg = out["payload"]["errorMessage"]
    assert "Unable to import module 'app'" in msg, msg
    assert "gust_e2e_module_that_does_not_exist" in msg, msg


def test_missing_module_file_is_import_error(lam):
    name = unique("py-nomod")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="nosuchfile.handler")
    out = invoke(lam, name)
    assert out["error"] == "Unhandled"
    assert out["payload"]["errorType"] == "Runtime.ImportModuleError"


def test_handler_not_found(lam):
    name = unique("py-nohandler")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.nope")
    out = invoke(lam, name)
    assert out["error"] == "Unhandled"
    assert out["payload"]["errorType"] == "Runtime.HandlerNotFound"
    assert "nope" in out["payload"]["errorMessage"]


def test_log_tail(lam, basic):
    out = invoke(lam, basic["printer"], {"marker": "xyzzy"}, LogType="Tail")
    rid = out["request_id"]
    log = out["log"]
    assert log is not None, "LogType=Tail must return X-Amz-Log-Result"
    assert f"START RequestId: {rid}" in log, log
    assert f"END RequestId: {rid}" in log, log
    assert f"REPORT RequestId: {rid}" in log, log
    assert "gust-e2e-print-marker xyzzy" in log, log
    assert "Duration:" in log and "Memory Size:" in log, log
    assert log.index("START") < log.index("gust-e2e-print-marker") < log.index("END"), log


def test_log_tail_is_at_most_4kb(lam):
    name = unique("py-biglog")
    code = "def handler(e, c):\n    for i in range(2000):\n        print('line', i, 'x' * 20)\n    return 1\n"
    from conftest import zip_dir

    create_function(lam, name=name, code=zip_dir(None, extra={"app.py": code}), handler="app.handler")
    out = invoke(lam, name, LogType="Tail")
    assert out["payload"] == 1
    assert len(out["log"].encode()) <= 4096
    assert f"REPORT RequestId: {out['request_id']}" in out["log"]


def test_no_log_without_tail(lam, basic):
    assert invoke(lam, basic["printer"])["log"] is None


def test_warm_invoke_is_faster_and_has_no_init_duration(lam):
    name = unique("py-warm")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.echo")
    cold = invoke(lam, name, LogType="Tail")
    assert cold["payload"]["cold"] is True
    assert "Init Duration" in cold["log"], cold["log"]
    warm = [invoke(lam, name, LogType="Tail") for _ in range(3)]
    for w in warm:
        assert w["payload"]["cold"] is False, "second invoke must reuse the environment"
        assert "Init Duration" not in w["log"], w["log"]
    fastest = min(w["seconds"] for w in warm)
    report_metric("python hello invoke via boto3", f"cold {cold['seconds'] * 1000:.1f} ms, warm {fastest * 1000:.1f} ms")
    assert fastest < cold["seconds"]


def test_update_code_gives_fresh_environment(lam):
    name = unique("py-fresh")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.echo")
    assert invoke(lam, name)["payload"]["cold"] is True
    assert invoke(lam, name)["payload"]["cold"] is False
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"V": "2"}})
    assert invoke(lam, name)["payload"]["cold"] is True


def test_qualifier_latest(lam, basic):
    out = invoke(lam, basic["hello"], Qualifier="$LATEST")
    assert out["payload"] == {"hello": "world"}


def test_runtime_is_reported(lam, basic):
    assert lam.get_function_configuration(FunctionName=basic["hello"])["Runtime"] == PY_RUNTIME


def test_handler_in_package(lam):
    name = unique("py-pkg")
    create_function(lam, name=name, code=zip_function("py_package"), handler="pkg.mod.handler")
    out = invoke(lam, name)
    assert out["error"] is None, out["payload"]
    assert out["payload"] == {"where": "pkg.mod", "helper": 42}
