"""`gust up` start-up, restart and graceful shutdown."""

import json
import os
import signal
import stat
import threading

from conftest import report_metric, create_function, invoke, stop_and_check, unique, wait_for, zip_function


def test_ready_time_on_empty_data_dir(gust_factory, tmp_path):
    server = gust_factory(data_dir=tmp_path / "fresh")
    report_metric("gust up ready on an empty data dir", f"{server.ready_seconds * 1000:.1f} ms")
    assert server.ready_seconds < 1.0
    assert server.client().list_functions()["Functions"] == []


def test_first_start_writes_credentials_and_endpoint(gust_factory, tmp_path):
    server = gust_factory(data_dir=tmp_path / "fresh")
    creds_file = server.data_dir / "credentials.json"
    mode = stat.S_IMODE(creds_file.stat().st_mode)
    assert mode == 0o600, oct(mode)
    creds = json.loads(creds_file.read_text())
    assert creds["access_key_id"] and creds["secret_access_key"]
    assert (server.data_dir / "endpoint").read_text().strip().rstrip("/") == server.endpoint
    assert server.credentials()["access_key_id"] in server.log_text(), "first start prints the keys"
    assert server.client().list_functions()["Functions"] == []


def test_ready_file_pid(gust_factory):
    server = gust_factory()
    assert server.pid == server.proc.pid
    server.client().list_functions()


def test_restart_keeps_functions_and_credentials(gust_factory):
    server = gust_factory()
    creds = server.credentials()
    lam = server.client()
    name = unique("persist")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello",
                    env={"KEEP": "me"}, timeout=4)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    stop_and_check(server)

    server.start()
    assert server.credentials() == creds
    lam = server.client()
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["Environment"]["Variables"] == {"KEEP": "me"}
    assert cfg["Timeout"] == 4
    assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 2
    assert invoke(lam, name)["payload"] == {"hello": "world"}


def test_restart_after_sigkill_keeps_functions(gust_factory):
    server = gust_factory()
    lam = server.client()
    name = unique("crash")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.hello")
    server.kill()
    server.start()
    assert invoke(server.client(), name)["payload"] == {"hello": "world"}


def test_sigterm_waits_for_in_flight_invocation(gust_factory, out_dir):
    server = gust_factory()
    lam = server.client()
    name = unique("drain")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.sleep",
                    env={"OUT_DIR": str(out_dir)}, timeout=5)
    result = {}

    def call():
        try:
            result["out"] = invoke(lam, name, {"id": "inflight", "seconds": 1.0})
        except Exception as e:  # reported by the assertion below
            result["exc"] = e

    t = threading.Thread(target=call)
    t.start()
    wait_for(lambda: (out_dir / "inflight.started").exists(), 10, "the invocation to start")
    server.proc.send_signal(signal.SIGTERM)
    t.join(timeout=15)
    assert "exc" not in result, f"in-flight invocation failed during shutdown: {result.get('exc')!r}"
    assert result["out"]["payload"] == {"slept": 1.0, "id": "inflight"}
    assert (out_dir / "inflight.done").exists()
    rc = server.stop()
    assert rc == 0, server.log_tail()


def test_sigint_is_graceful(gust_factory):
    server = gust_factory()
    server.client().list_functions()
    rc = server.stop(sig=signal.SIGINT)
    assert rc == 0, server.log_tail()


def test_signal_right_after_ready_is_graceful(gust_factory):
    """Once the ready file exists a SIGTERM must already mean a graceful stop."""
    for _ in range(5):
        server = gust_factory()
        rc = server.stop()
        assert rc == 0, f"gust exited {rc} on a SIGTERM sent right after ready:\n{server.log_tail()}"


def _processes_with(env_entry: str) -> list[str]:
    """Pids of processes whose environment holds exactly `env_entry` (VAR=value)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if (env_entry + "\0").encode() in b"\0" + f.read() + b"\0":
                    found.append(pid)
        except OSError:
            pass
    return found


def function_processes(runtime_api: str) -> list[str]:
    """Pids of the processes of the environment serving this Runtime API address."""
    return _processes_with(f"AWS_LAMBDA_RUNTIME_API={runtime_api}")


def function_processes_of(name: str) -> list[str]:
    """Pids of the processes of any environment of the function `name`."""
    return _processes_with(f"AWS_LAMBDA_FUNCTION_NAME={name}")


def test_shutdown_stops_function_processes(gust_factory):
    """After a graceful exit no function process of that server is left behind."""
    server = gust_factory()
    lam = server.client()
    name = unique("orphan")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.env")
    runtime_api = invoke(lam, name)["payload"]["environ"]["AWS_LAMBDA_RUNTIME_API"]
    assert function_processes(runtime_api), "cannot find the function's process"
    stop_and_check(server)
    wait_for(lambda: not function_processes(runtime_api), 5, "function processes to exit")


def test_sigkill_leaves_no_function_processes(gust_factory):
    """A crashed gust must not leave environments running (they would hold memory and
    could run an event a second time beside its redelivery)."""
    server = gust_factory()
    lam = server.client()
    name = unique("orphan-kill")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.env")
    runtime_api = invoke(lam, name)["payload"]["environ"]["AWS_LAMBDA_RUNTIME_API"]
    assert function_processes(runtime_api), "cannot find the function's process"
    server.kill()
    try:
        wait_for(lambda: not function_processes(runtime_api), 3,
                 lambda: f"function processes to exit after SIGKILL: {function_processes(runtime_api)}")
    finally:
        for pid in function_processes(runtime_api):  # clean up what the test found
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
