"""A fake Lambda Runtime API (2018-06-01) server for testing Gust's bootstraps.

Standard library only. Threaded; keeps connections alive (HTTP/1.1).

    api = FakeRuntimeAPI().start()
    env["AWS_LAMBDA_RUNTIME_API"] = api.address
    result = api.invoke({"x": 1})          # blocks until /response or /error
    result.kind, result.headers, result.body, result.json()
    api.wait_init_error(timeout)           # the /init/error post, if any
    api.stop()
"""

import json
import queue
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: F401

PREFIX = "/2018-06-01/runtime"


class Posted(object):
    """What the runtime posted for an invocation (or for init)."""

    def __init__(self, kind, request_id, headers, body, received_at):
        self.kind = kind  # "response", "error" or "init_error"
        self.request_id = request_id
        self.headers = headers  # dict, lower-case names
        self.body = body  # bytes
        self.received_at = received_at  # time.perf_counter()
        self.sent_at = None  # when /next handed the invocation out

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Posted(%s, %s, %r, %r)" % (
            self.kind,
            self.request_id,
            self.headers,
            self.body[:500],
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeRuntimeAPI"
    sys_version = ""

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        # One write for head and body (with TCP_NODELAY): no Nagle/delayed-ACK stalls.
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(body)
        data = b"".join(self._headers_buffer)
        self._headers_buffer = []
        self.wfile.write(data)

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def setup(self):
        BaseHTTPRequestHandler.setup(self)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        api = self.server.api
        with api.lock:
            api.connections += 1

    def do_GET(self):
        api = self.server.api
        if self.path != PREFIX + "/invocation/next":
            self._send(404, b'{"errorMessage":"not found"}')
            return
        now = time.perf_counter()
        with api.lock:
            api.next_requests += 1
            if api.first_next_at is None:
                api.first_next_at = now
                api.first_next_event.set()
        inv = api.pending.get()
        if inv is None:  # shutting down
            self.close_connection = True
            self._send(500, b"")
            return
        request_id, body, headers = inv
        with api.lock:
            api.in_flight[request_id] = time.perf_counter()
        self._send(200, body, headers)

    def do_POST(self):
        api = self.server.api
        now = time.perf_counter()
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path
        if path == PREFIX + "/init/error":
            api._post(Posted("init_error", None, headers, body, now))
            self._send(202, b'{"status":"OK"}')
            return
        if path.startswith(PREFIX + "/invocation/"):
            rest = path[len(PREFIX + "/invocation/"):]
            request_id, _, kind = rest.partition("/")
            if kind in ("response", "error"):
                with api.lock:
                    sent_at = api.in_flight.pop(request_id, None)
                if sent_at is None:
                    self._send(
                        400,
                        b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}',
                    )
                    return
                posted = Posted(kind, request_id, headers, body, now)
                posted.sent_at = sent_at
                api._post(posted)
                self._send(202, b'{"status":"OK"}')
                return
        self._send(404, b'{"errorMessage":"not found"}')


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # runtimes killed mid-request at the end of a test are expected


class FakeRuntimeAPI(object):
    def __init__(self, host="127.0.0.1", port=0):
        self.lock = threading.Lock()
        self.pending = queue.Queue()
        self.in_flight = {}
        self.results = {}
        self.result_cond = threading.Condition(self.lock)
        self.init_errors = []
        self.connections = 0
        self.next_requests = 0
        self.first_next_at = None
        self.first_next_event = threading.Event()
        self.server = _Server((host, port), _Handler)
        self.server.api = self
        self.thread = None

    @property
    def address(self):
        host, port = self.server.server_address[:2]
        return "%s:%d" % (host, port)

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        for _ in range(4):
            self.pending.put(None)
        self.server.server_close()

    def _post(self, posted):
        with self.result_cond:
            if posted.kind == "init_error":
                self.init_errors.append(posted)
            else:
                self.results[posted.request_id] = posted
            self.result_cond.notify_all()

    def enqueue(self, event, headers=None, request_id=None, deadline_ms=None, raw=False):
        request_id = request_id or str(uuid.uuid4())
        body = event if raw else json.dumps(event).encode()
        if deadline_ms is None:
            deadline_ms = int(time.time() * 1000) + 30000
        h = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            (
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:000000000000:function:fn",
            ),
            ("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
        ]
        if headers:
            names = {k.lower() for k, _ in headers.items()}
            h = [(k, v) for k, v in h if k.lower() not in names]
            h.extend((k, v) for k, v in headers.items() if v is not None)
        self.pending.put((request_id, body, h))
        return request_id

    def wait_result(self, request_id, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.result_cond:
            while request_id not in self.results:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no result for %s" % request_id)
                self.result_cond.wait(left)
            return self.results.pop(request_id)

    def invoke(self, event, headers=None, timeout=10.0, **kw):
        return self.wait_result(self.enqueue(event, headers, **kw), timeout)

    def wait_init_error(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.result_cond:
            while not self.init_errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no init error")
                self.result_cond.wait(left)
            return self.init_errors[0]


if __name__ == "__main__":
    api = FakeRuntimeAPI(port=9001).start()
    print("listening on", api.address)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        api.stop()
