"""Cold-start and warm-invoke measurements for Gust's bootstraps.

    python3 crates/runtime/bootstrap/tests/bench_bootstraps.py [--runs 20] [--warm 2000]

A minimal single-connection Runtime API server (raw sockets, no threads) hands
out invocations as fast as the bootstrap asks, so the numbers are the
bootstrap's cost plus loopback, not the fake server's. Reported per runtime:
  - spawn -> first GET /next      (interpreter start + bootstrap init + handler import)
  - spawn -> first response POST  (cold start end to end, invocation already queued)
  - warm invoke round trip        (GET /next -> event -> handler -> POST response), p50/p99
  - the runtime process's CPU time per warm invoke (scheduler statistics, all threads)
  - the bare interpreter start (`python3 -c pass`, `node -e 0`) in the same run, for scale
Standard library only.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BOOTSTRAP_DIR = os.path.dirname(HERE)
PY_BOOTSTRAP = os.environ.get("GUST_PY_BOOTSTRAP") or os.path.join(BOOTSTRAP_DIR, "python", "bootstrap.py")
NODE_BOOTSTRAP = os.environ.get("GUST_NODE_BOOTSTRAP") or os.path.join(BOOTSTRAP_DIR, "node", "bootstrap.js")
PY_FIXTURES = os.path.join(HERE, "fixtures", "python")
NODE_FIXTURES = os.path.join(HERE, "fixtures", "node", "cjs")
PYTHON = os.environ.get("GUST_TEST_PYTHON") or (
    "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
)
NODE = os.environ.get("GUST_TEST_NODE") or shutil.which("node")

EVENT = b'{"hello":"world"}'


def _next_response(request_id):
    deadline = str(int(time.time() * 1000) + 30000).encode()
    return b"".join(
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
            b"Lambda-Runtime-Aws-Request-Id: ", request_id, b"\r\n",
            b"Lambda-Runtime-Deadline-Ms: ", deadline, b"\r\n",
            b"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:fn\r\n",
            b"Lambda-Runtime-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1\r\n",
            b"Content-Length: ", str(len(EVENT)).encode(), b"\r\n\r\n",
            EVENT,
        )
    )


ACCEPTED = b'HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"OK"}'


def _read_request(rf):
    line = rf.readline()
    if not line:
        raise EOFError("runtime closed the connection")
    length = 0
    while True:
        h = rf.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    body = rf.read(length) if length else b""
    return line.split()[1], body


def _cpu_ns(pid):
    """CPU time of all threads of `pid` in nanoseconds (0 where unavailable)."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
    except OSError:
        pass
    return total


def run_one(cmd, cwd, handler, warm=0):
    """Spawn one runtime; return (first_next_ms, first_response_ms, warm_samples_s, cpu_us)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:%d" % lsock.getsockname()[1],
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": cwd,
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_REGION": "us-east-1",
    }
    conn = rf = None
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        lsock.settimeout(20)
        conn, _ = lsock.accept()
        conn.settimeout(20)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rf = conn.makefile("rb")
        path, _ = _read_request(rf)
        t_next = time.perf_counter()
        conn.sendall(_next_response(b"00000000-0000-0000-0000-000000000000"))
        path, body = _read_request(rf)
        t_resp = time.perf_counter()
        assert path.endswith(b"/response"), (path, body)
        conn.sendall(ACCEPTED)
        samples = []
        skip = warm // 10  # JIT warm-up, left out of the CPU figure too
        cpu0 = _cpu_ns(proc.pid)
        for i in range(warm):
            if i == skip:
                cpu0 = _cpu_ns(proc.pid)
            rid = ("00000000-0000-0000-0000-%012d" % (i + 1)).encode()
            nr = _next_response(rid)
            _read_request(rf)  # GET /next
            s = time.perf_counter()
            conn.sendall(nr)
            path, body = _read_request(rf)
            samples.append(time.perf_counter() - s)
            conn.sendall(ACCEPTED)
        cpu_us = (_cpu_ns(proc.pid) - cpu0) / 1e3 / max(1, warm - skip)
        return (t_next - t0) * 1000, (t_resp - t0) * 1000, samples, cpu_us
    finally:
        proc.kill()
        proc.wait()
        for c in (rf, conn, lsock):
            if c is not None:
                c.close()


def bare_start_ms(cmd, runs):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def measure(lang, runs=10, warm=1000):
    if lang == "python":
        cmd, root, handler, bare = [PYTHON, "-u", PY_BOOTSTRAP], PY_FIXTURES, "app.ok", [PYTHON, "-c", "pass"]
    else:
        cmd, root, handler, bare = [NODE, NODE_BOOTSTRAP], NODE_FIXTURES, "app.ok", [NODE, "-e", "0"]
    nexts, resps = [], []
    for _ in range(runs):
        n, r, _, _ = run_one(cmd, root, handler)
        nexts.append(n)
        resps.append(r)
    _, _, samples, cpu_us = run_one(cmd, root, handler, warm=warm)
    samples = sorted(samples[len(samples) // 10:])  # drop the first 10% (JIT warm-up)
    return {
        "lang": lang,
        "bare_start_ms": _median(bare_start_ms(bare, runs)),
        "first_next_ms": _median(nexts),
        "first_next_min_ms": min(nexts),
        "cold_start_ms": _median(resps),
        "cold_start_min_ms": min(resps),
        "warm_p50_us": samples[len(samples) // 2] * 1e6,
        "warm_p99_us": samples[int(len(samples) * 0.99)] * 1e6,
        "warm_cpu_us": cpu_us,
    }


def format_result(m):
    return (
        "[bench] %(lang)-6s bare interpreter start %(bare_start_ms).1f ms | spawn->first /next "
        "%(first_next_ms).1f ms (min %(first_next_min_ms).1f) | cold start to first response "
        "%(cold_start_ms).1f ms (min %(cold_start_min_ms).1f) | warm invoke round trip p50 "
        "%(warm_p50_us).0f us, p99 %(warm_p99_us).0f us, runtime CPU %(warm_cpu_us).0f us/invoke" % m
    )


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warm", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for lang in ("python", "node"):
        if lang == "node" and not NODE:
            continue
        m = measure(lang, args.runs, args.warm)
        print(json.dumps(m) if args.json else format_result(m), flush=True)
