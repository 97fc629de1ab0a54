"""WebAssembly functions (`Runtime="wasm"`) through the Lambda API with boto3.

The guests are the WAT-built ones committed under crates/wasm/tests/guests/built (checked
against their source by `cargo test -p gust-wasm`); the componentize-py component is used
when scripts/test.sh has built it (GUST_WASM_PY_COMPONENT).
"""

import io
import json
import os
import threading
import time
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import REPO, client_error, create_function, invoke, unique

GUESTS = REPO / "crates/wasm/tests/guests/built"


def wasm_zip(name: str, inner: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(inner or name, (GUESTS / name).read_bytes())
    return buf.getvalue()


def wasm_fn(lam, guest: str, **kw) -> str:
    name = unique("wasm")
    create_function(lam, name=name, code=wasm_zip(guest), handler="", runtime="wasm", **kw)
    return name


def test_hello_component(lam):
    name = wasm_fn(lam, "hello.wasm")
    conf = lam.get_function_configuration(FunctionName=name)
    assert conf["Runtime"] == "wasm"
    out = invoke(lam, name, {"any": "event"}, LogType="Tail")
    assert (out["status"], out["error"], out["payload"]) == (200, None, "hello from wasm")
    assert "hello log line" in out["log"], out["log"]
    assert f"REPORT RequestId: {out['request_id']}" in out["log"], out["log"]


def test_event_is_the_body_and_cloudevents_headers(lam):
    name = wasm_fn(lam, "echo.wasm")
    event = {"Records": [{"body": "x" * 1000}], "n": 1}
    out = invoke(lam, name, event)
    assert out["payload"] == event
    name = wasm_fn(lam, "cgi-env.wasm", env={"GREETING": "hi"})
    out = invoke(lam, name, {"k": "v"})
    text = out["raw"].decode()
    assert "REQUEST_METHOD=POST" in text, text
    assert f"HTTP_CE_ID={out['request_id']}" in text, text
    assert "HTTP_CE_TYPE=com.amazonaws.lambda.invoke" in text, text
    assert f"HTTP_CE_SOURCE=arn:aws:lambda:us-east-1:000000000000:function:{name}" in text, text
    assert "HTTP_CE_SPECVERSION=1.0" in text, text
    assert "GREETING=hi" in text, text
    assert text.endswith('---\n{"k": "v"}'), text


def test_no_state_between_requests(lam):
    name = wasm_fn(lam, "counter.wasm")
    assert [invoke(lam, name)["payload"] for _ in range(3)] == [[1, 1]] * 3


def test_timeout_trap_and_memory_errors(lam):
    spin = wasm_fn(lam, "spin.wasm", timeout=1)
    hello = wasm_fn(lam, "hello.wasm")
    results = {}
    t = threading.Thread(target=lambda: results.update(out=invoke(lam, spin)))
    t.start()
    time.sleep(0.2)
    # The host answers while the guest spins.
    assert invoke(lam, hello)["payload"] == "hello from wasm"
    t.join()
    out = results["out"]
    assert out["error"] == "Unhandled"
    assert out["payload"]["errorType"] == "Sandbox.Timedout", out["payload"]
    assert out["payload"]["errorMessage"] == (
        f"RequestId: {out['request_id']} Error: Task timed out after 1.00 seconds"
    )
    trap = invoke(lam, wasm_fn(lam, "trap.wasm"))
    assert trap["error"] == "Unhandled"
    assert trap["payload"]["errorType"] == "Runtime.WasmTrap"
    assert "unreachable" in trap["payload"]["errorMessage"]
    oom = invoke(lam, wasm_fn(lam, "grow.wasm", memory=128), LogType="Tail")
    assert oom["payload"]["errorType"] == "Runtime.OutOfMemory", oom["payload"]
    assert "Max Memory Used: 128 MB" in oom["log"], oom["log"]


def test_malformed_module(lam):
    """A module that cannot compile is refused by CreateFunction and UpdateFunctionCode (before
    anything is stored), not discovered by every invoke."""
    name = unique("wasm")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bad.wasm", b"\0asm\x01\0\0\0not really")
    bad = buf.getvalue()
    with pytest.raises(ClientError) as e:
        create_function(lam, name=name, code=bad, handler="", runtime="wasm")
    err = e.value.response["Error"]
    assert err["Code"] == "InvalidParameterValueException", err
    assert "The function's code cannot be run" in err["Message"], err
    assert "invalid WebAssembly" in err["Message"], err
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=name)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"

    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("hello.wasm", (GUESTS / "hello.wasm").read_bytes())
    create_function(lam, name=name, code=good.getvalue(), handler="", runtime="wasm")
    with pytest.raises(ClientError) as e:
        lam.update_function_code(FunctionName=name, ZipFile=bad)
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    # The function keeps its working code.
    assert invoke(lam, name)["payload"] == "hello from wasm"


def test_handler_names_the_module(lam):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("lib/hello.wasm", (GUESTS / "hello.wasm").read_bytes())
        z.writestr("other.wasm", (GUESTS / "trap.wasm").read_bytes())
    name = unique("wasm")
    create_function(lam, name=name, code=buf.getvalue(), handler="lib/hello.wasm", runtime="wasm")
    assert invoke(lam, name)["payload"] == "hello from wasm"


def test_unknown_runtime_still_refused(lam):
    with pytest.raises(ClientError) as e:
        create_function(lam, code=wasm_zip("hello.wasm"), handler="", runtime="wasm2")
    assert client_error(e)[0] == "InvalidParameterValueException"


def test_restart_keeps_compiled_artifacts(gust_factory):
    server = gust_factory()
    lam = server.client()
    name = wasm_fn(lam, "hello.wasm")
    assert invoke(lam, name)["payload"] == "hello from wasm"
    cache = list((server.data_dir / "wasm-cache").glob("*.cwasm"))
    assert len(cache) == 1, cache
    stamp = cache[0].stat().st_mtime_ns
    server.stop()
    server.start()
    out = invoke(server.client(), name, LogType="Tail")
    assert out["payload"] == "hello from wasm"
    assert "Init Duration" in out["log"], out["log"]
    assert cache[0].stat().st_mtime_ns == stamp, "the artifact was not rewritten"


@pytest.mark.skipif(
    not os.environ.get("GUST_WASM_PY_COMPONENT"),
    reason="GUST_WASM_PY_COMPONENT not built (scripts/test.sh builds it with componentize-py)",
)
def test_componentize_py_component(gust):
    # CreateFunction compiles the 18 MB component before it answers: seconds in a debug build
    # on a busy machine, so this client waits longer than the suite's default.
    lam = gust.client(read_timeout=180)
    wasm = Path(os.environ["GUST_WASM_PY_COMPONENT"]).read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("app.wasm", wasm)
    name = unique("wasmpy")
    create_function(lam, name=name, code=buf.getvalue(), handler="", runtime="wasm", timeout=30)
    out = invoke(lam, name, {"from": "boto3"}, LogType="Tail")
    assert out["error"] is None, out["payload"]
    assert out["payload"]["event"] == {"from": "boto3"}
    assert out["payload"]["ce_id"] == out["request_id"]
    assert "hello from python in wasm" in out["log"]
