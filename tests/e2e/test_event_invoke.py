"""Asynchronous invocations (InvocationType=Event): side effects, durability, retries.

The retry test relies on `gust up --event-retry-delays-ms 100,200` (passed by
conftest when the binary has the flag), so that 3 attempts take well under a
second instead of Lambda's minutes.
"""

import json
import os
import time

import pytest

from conftest import (
    EVENT_RETRY_FLAG,
    create_function,
    unique,
    up_supports,
    wait_for,
    zip_function,
)


def files(d, prefix=""):
    return sorted(p for p in os.listdir(d) if p.startswith(prefix) and not p.endswith(".tmp"))


def test_event_invoke_is_202_and_runs(lam, out_dir):
    name = unique("event")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.write_file",
                    env={"OUT_DIR": str(out_dir)})
    resp = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": "one"}))
    assert resp["StatusCode"] == 202
    assert resp["Payload"].read() == b""
    assert "FunctionError" not in resp
    wait_for(lambda: (out_dir / "one").exists(), 10, "the event's side effect")
    written = json.loads((out_dir / "one").read_text())
    assert written["event"] == {"id": "one"}
    assert written["request_id"] == resp["ResponseMetadata"]["RequestId"]


def test_many_events_all_run(lam, out_dir):
    name = unique("event-many")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.write_file",
                    env={"OUT_DIR": str(out_dir)})
    ids = [f"e{i}" for i in range(10)]
    for i in ids:
        assert lam.invoke(FunctionName=name, InvocationType="Event",
                          Payload=json.dumps({"id": i}))["StatusCode"] == 202
    wait_for(lambda: set(files(out_dir)) >= set(ids), 15, "all 10 events")


def test_dry_run_is_204_and_does_not_run(lam, out_dir):
    name = unique("event-dry")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.write_file",
                    env={"OUT_DIR": str(out_dir)})
    resp = lam.invoke(FunctionName=name, InvocationType="DryRun", Payload=b'{"id": "dry"}')
    assert resp["StatusCode"] == 204


def test_event_invoke_validates_like_sync(lam):
    from botocore.exceptions import ClientError

    from conftest import client_error

    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=unique("nobody"), InvocationType="Event", Payload=b"{}")
    assert client_error(exc)[:2] == ("ResourceNotFoundException", 404)
    name = unique("event-badjson")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{nope")
    assert client_error(exc)[:2] == ("InvalidRequestContentException", 400)


def test_events_survive_sigkill(gust_factory, out_dir):
    server = gust_factory()
    lam = server.client()
    name = unique("durable")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.write_file",
                    env={"OUT_DIR": str(out_dir)}, timeout=5)
    # One at a time and slow: most events are still queued when gust dies.
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    ids = [f"d{i}" for i in range(6)]
    for i in ids:
        resp = lam.invoke(FunctionName=name, InvocationType="Event",
                          Payload=json.dumps({"id": i, "seconds": 0.4}))
        assert resp["StatusCode"] == 202
    server.kill()
    done_before = files(out_dir)
    assert len(done_before) < len(ids), "all events ran before the crash; the test proves nothing"

    restarted = gust_factory(data_dir=server.data_dir)
    wait_for(lambda: set(files(out_dir)) >= set(ids), 20,
             lambda: f"queued events to run after restart (done before the crash: {done_before}, "
                     f"done now: {files(out_dir)}, of {ids})")
    assert restarted.running()


def test_retries_then_success(gust, lam, out_dir):
    if not up_supports(EVENT_RETRY_FLAG):
        pytest.skip(f"gust up has no {EVENT_RETRY_FLAG}; retries would take minutes")
    name = unique("flaky")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.flaky",
                    env={"OUT_DIR": str(out_dir)})
    started = time.monotonic()
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"succeed_on": 3}))
    wait_for(lambda: (out_dir / "success").exists(), 10, "the third attempt to succeed")
    elapsed = time.monotonic() - started
    assert files(out_dir, "attempt-") == ["attempt-1", "attempt-2", "attempt-3"]
    assert elapsed >= 0.3, f"3 attempts in {elapsed:.2f}s: retry delays 100,200 ms not honoured"


def test_retries_stop_after_two(gust, lam, out_dir):
    """Lambda retries a failing asynchronous invocation twice: 3 attempts in all."""
    if not up_supports(EVENT_RETRY_FLAG):
        pytest.skip(f"gust up has no {EVENT_RETRY_FLAG}; retries would take minutes")
    name = unique("always-fails")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.flaky",
                    env={"OUT_DIR": str(out_dir)})
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps({"succeed_on": 0}))
    wait_for(lambda: len(files(out_dir, "attempt-")) >= 3, 10, "three attempts")
    # Give a 4th attempt (which must not come) more than the longest retry delay.
    time.sleep(0.8)
    assert files(out_dir, "attempt-") == ["attempt-1", "attempt-2", "attempt-3"]
