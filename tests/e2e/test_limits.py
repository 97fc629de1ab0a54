"""Limits: timeouts, crashes, memory, payload size, bad input, throttling.

Each failure mode is followed by a normal invoke of the same function, and the
module ends by checking that the server still answers.
"""

import json
import threading

import pytest
from botocore.exceptions import ClientError

from conftest import client_error, create_function, invoke, unique, wait_for, zip_function


def action_fn(lam, **kw):
    name = unique("limits")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.action", **kw)
    return name


def test_timeout_then_recovery(lam):
    name = action_fn(lam, timeout=1)
    out = invoke(lam, name, {"action": "loop"})
    assert out["status"] == 200
    assert out["error"] == "Unhandled"
    assert out["payload"]["errorType"] == "Sandbox.Timedout", out["payload"]
    assert "Task timed out after 1.00 seconds" in out["payload"]["errorMessage"]
    assert 0.9 <= out["seconds"] < 5.0, f"timed out after {out['seconds']:.2f}s"
    again = invoke(lam, name, {"action": "hello"})
    assert (again["error"], again["payload"]) == (None, {"hello": "world"})


def test_timeout_log_tail(lam):
    name = action_fn(lam, timeout=1)
    out = invoke(lam, name, {"action": "loop"}, LogType="Tail")
    assert "Task timed out after 1.00 seconds" in out["log"], out["log"]
    assert f"REPORT RequestId: {out['request_id']}" in out["log"], out["log"]


def test_exit_mid_invocation_is_exit_error(lam):
    name = action_fn(lam, timeout=2)
    out = invoke(lam, name, {"action": "exit", "code": 3})
    assert out["error"] == "Unhandled"
    assert out["payload"]["errorType"] == "Runtime.ExitError", out["payload"]
    assert "exit status 3" in out["payload"]["errorMessage"], out["payload"]
    again = invoke(lam, name, {"action": "hello"})
    assert (again["error"], again["payload"]) == (None, {"hello": "world"})


def test_out_of_memory(lam):
    name = action_fn(lam, timeout=5, memory=128)
    out = invoke(lam, name, {"action": "alloc", "mb": 300})
    assert out["error"] == "Unhandled", out["payload"]
    body = out["payload"]
    # Runtime.OutOfMemory when the environment is killed (cgroup / watchdog);
    # MemoryError when an address-space limit makes the allocation itself fail.
    assert body["errorType"] in {"Runtime.OutOfMemory", "MemoryError"}, body
    again = invoke(lam, name, {"action": "alloc", "mb": 10})
    assert (again["error"], again["payload"]) == (None, {"allocated_mb": 10})


def test_memory_within_limit_is_fine(lam):
    name = action_fn(lam, timeout=5, memory=512)
    out = invoke(lam, name, {"action": "alloc", "mb": 300})
    assert (out["error"], out["payload"]) == (None, {"allocated_mb": 300})


def test_payload_over_6mb_is_413(lam):
    name = action_fn(lam)
    big = json.dumps({"action": "hello", "pad": "x" * (6 * 1024 * 1024 + 100)}).encode()
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=big)
    assert client_error(exc)[:2] == ("RequestTooLargeException", 413)


def test_payload_just_under_6mb_is_accepted(lam):
    name = unique("limits-echo")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello", timeout=5)
    ok = json.dumps({"pad": "x" * (6 * 1024 * 1024 - 1024)}).encode()
    out = invoke(lam, name, raw_payload=ok)
    assert (out["error"], out["payload"]) == (None, {"hello": "world"})


def test_response_over_6mb_is_an_error(lam):
    name = unique("limits-bigresp")
    from conftest import zip_dir

    code = "def handler(e, c):\n    return 'x' * (7 * 1024 * 1024)\n"
    create_function(lam, name=name, code=zip_dir(None, extra={"app.py": code}), handler="app.handler", timeout=5)
    try:
        out = invoke(lam, name)
    except ClientError as e:
        # AWS answers 413 RequestTooLargeException for an oversized response too.
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 413
        return
    assert out["error"] == "Unhandled", "a 7 MB response must not be returned as a success"


def test_invalid_json_payload_is_400(lam):
    name = action_fn(lam)
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=b"{not json")
    assert client_error(exc)[:2] == ("InvalidRequestContentException", 400)


def test_unknown_function_is_404(lam):
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=unique("nobody"), Payload=b"{}")
    assert client_error(exc)[:2] == ("ResourceNotFoundException", 404)


def test_reserved_concurrency_throttles(gust, lam, out_dir):
    name = unique("limits-reserved")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.sleep", timeout=5,
                    env={"OUT_DIR": str(out_dir)})
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    first = {}

    def call():
        first["out"] = invoke(gust.client(), name, {"id": "first", "seconds": 1.5})

    t = threading.Thread(target=call)
    t.start()
    # The second call goes out only once the first is surely running (its handler
    # has started), so the outcome does not depend on how busy the machine is.
    wait_for(lambda: (out_dir / "first.started").exists(), 10, "the first invocation to start")
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=b'{"id": "second", "seconds": 0}')
    code, status, _ = client_error(exc)
    assert (code, status) == ("TooManyRequestsException", 429)
    reason = exc.value.response.get("Reason")
    assert reason in (None, "ReservedFunctionConcurrentInvocationLimitExceeded"), reason
    t.join(timeout=15)
    assert first["out"]["payload"] == {"slept": 1.5, "id": "first"}
    assert not (out_dir / "second.started").exists()
    # Once the slot is free the function runs again.
    assert invoke(lam, name, {"id": "third", "seconds": 0})["payload"] == {"slept": 0, "id": "third"}


def test_zero_reserved_concurrency_throttles_everything(lam):
    name = action_fn(lam)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, Payload=b"{}")
    assert client_error(exc)[:2] == ("TooManyRequestsException", 429)
    lam.delete_function_concurrency(FunctionName=name)
    assert invoke(lam, name, {"action": "hello"})["payload"] == {"hello": "world"}


def test_concurrent_invokes_without_limit_run_in_parallel(gust, lam, out_dir):
    name = action_fn(lam, timeout=6, env={"OUT_DIR": str(out_dir)})
    results = []

    def call():
        results.append(invoke(gust.client(), name, {"action": "rendezvous", "n": 3, "wait": 4})["payload"])

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    # Each handler waits until all three have arrived: they only meet if they ran at once.
    assert results == [{"met": True}] * 3, results


def test_server_still_answers(gust, lam):
    """Runs last in this module: everything above must have left the server healthy."""
    assert gust.running()
    assert lam.list_functions(MaxItems=1)["ResponseMetadata"]["HTTPStatusCode"] == 200
    name = action_fn(lam)
    assert invoke(lam, name, {"action": "hello"})["payload"] == {"hello": "world"}
