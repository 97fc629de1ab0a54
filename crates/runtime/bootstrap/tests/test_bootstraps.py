"""Tests for Gust's Python and Node bootstraps against a fake Runtime API.

Run: python3 -m unittest discover -s crates/runtime/bootstrap/tests -v
Standard library only. Node tests are skipped when no `node` is found.
Set GUST_TEST_PYTHON / GUST_TEST_NODE to choose the interpreters under test.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fake_runtime_api import FakeRuntimeAPI  # noqa: E402

BOOTSTRAP_DIR = os.path.dirname(HERE)
PY_BOOTSTRAP = os.path.join(BOOTSTRAP_DIR, "python", "bootstrap.py")
NODE_BOOTSTRAP = os.path.join(BOOTSTRAP_DIR, "node", "bootstrap.js")
PY_FIXTURES = os.path.join(HERE, "fixtures", "python")
NODE_FIXTURES = os.path.join(HERE, "fixtures", "node")


def _find_python():
    for c in (os.environ.get("GUST_TEST_PYTHON"), "/usr/bin/python3"):
        if c and os.path.exists(c):
            return c
    return sys.executable


PYTHON = _find_python()
NODE = os.environ.get("GUST_TEST_NODE") or shutil.which("node")

REQUEST_ID_RE = r"[0-9a-f-]{36}"
ISO_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


class Runtime(object):
    """A bootstrap process attached to its own fake Runtime API."""

    def __init__(self, lang, handler, task_root, extra_env=None):
        self.api = FakeRuntimeAPI().start()
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": task_root,
            "AWS_LAMBDA_FUNCTION_NAME": "my-fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/my-fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]abc",
            "AWS_REGION": "us-east-1",
        }
        env.update(extra_env or {})
        if lang == "python":
            cmd = [PYTHON, "-u", PY_BOOTSTRAP]
        else:
            cmd = [NODE, NODE_BOOTSTRAP]
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            cwd=task_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._out = []
        self._err = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream, sink):
        while True:
            data = stream.read1(65536) if hasattr(stream, "read1") else stream.read(1)
            if not data:
                return
            with self._lock:
                sink.append(data)

    def stdout(self, settle=0.05):
        time.sleep(settle)  # let the reader thread catch up with the pipe
        with self._lock:
            return b"".join(self._out).decode("utf-8", "replace")

    def stderr(self, settle=0.05):
        time.sleep(settle)
        with self._lock:
            return b"".join(self._err).decode("utf-8", "replace")

    def invoke(self, event, headers=None, timeout=10.0, **kw):
        return self.api.invoke(event, headers, timeout=timeout, **kw)

    def wait_exit(self, timeout=10.0):
        return self.proc.wait(timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for t in self._threads:
            t.join(2)
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.api.stop()


class BootstrapCase(unittest.TestCase):
    lang = None
    fixtures = None

    def start(self, handler, task_root=None, env=None):
        rt = Runtime(self.lang, handler, task_root or self.fixtures, env)
        self.addCleanup(rt.close)
        return rt

    def assertInitError(self, rt, error_type, timeout=10.0):
        posted = rt.api.wait_init_error(timeout)
        self.assertEqual(posted.headers.get("lambda-runtime-function-error-type"), error_type)
        self.assertEqual(posted.headers.get("content-type"), "application/json")
        body = posted.json()
        self.assertEqual(body["errorType"], error_type)
        return body


# ---------------------------------------------------------------------------
# Python


class PythonBootstrapTest(BootstrapCase):
    lang = "python"
    fixtures = PY_FIXTURES

    def test_ok_and_keepalive(self):
        rt = self.start("app.ok")
        for _ in range(3):
            r = rt.invoke({"a": 1})
            self.assertEqual(r.kind, "response")
            self.assertEqual(r.body, b'{"ok": true}')
            self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(rt.api.connections, 1, "one persistent connection")
        deadline = time.monotonic() + 5
        while rt.api.next_requests < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(rt.api.next_requests, 4)

    def test_context_fields(self):
        rt = self.start("app.echo")
        deadline = int(time.time() * 1000) + 5000
        r = rt.invoke(
            {"k": "v"},
            headers={
                "Lambda-Runtime-Client-Context": json.dumps(
                    {"custom": {"c": 1}, "env": {"e": 2}, "client": {"installation_id": "inst"}}
                ),
                "Lambda-Runtime-Cognito-Identity": json.dumps(
                    {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
                ),
            },
            deadline_ms=deadline,
        )
        self.assertEqual(r.kind, "response")
        body = r.json()
        self.assertEqual(body["event"], {"k": "v"})
        self.assertEqual(body["aws_request_id"], r.request_id)
        self.assertEqual(body["function_name"], "my-fn")
        self.assertEqual(body["function_version"], "$LATEST")
        self.assertEqual(body["invoked_function_arn"], "arn:aws:lambda:us-east-1:000000000000:function:fn")
        self.assertEqual(body["memory_limit_in_mb"], "256")  # a string, as in awslambdaric
        self.assertEqual(body["log_group_name"], "/aws/lambda/my-fn")
        self.assertEqual(body["log_stream_name"], "2024/01/01/[$LATEST]abc")
        self.assertTrue(4000 < body["remaining"] <= 5000, body["remaining"])
        self.assertEqual(body["identity"], ["id-1", "pool-1"])
        self.assertEqual(
            body["client_context"], {"custom": {"c": 1}, "env": {"e": 2}, "installation_id": "inst"}
        )
        self.assertTrue(body["trace_env"].startswith("Root=1-"))
        self.assertEqual(body["sys_path0"], PY_FIXTURES)
        self.assertEqual(body["cwd"], PY_FIXTURES)
        # without the optional headers
        r = rt.invoke({}, headers={"Lambda-Runtime-Trace-Id": None})
        body = r.json()
        self.assertEqual(body["identity"], [None, None])
        self.assertIsNone(body["client_context"])
        self.assertIsNone(body["trace_env"])

    def test_bad_client_context(self):
        rt = self.start("app.echo")
        r = rt.invoke({}, headers={"Lambda-Runtime-Client-Context": "{not json"})
        self.assertEqual(r.kind, "error")
        body = r.json()
        self.assertEqual(body["errorType"], "Runtime.LambdaContextUnmarshalError")
        self.assertTrue(body["errorMessage"].startswith("Unable to parse Client Context JSON: "))

    def test_handler_exception(self):
        rt = self.start("app.raises")
        r = rt.invoke({"x": 7})
        self.assertEqual(r.kind, "error")
        self.assertEqual(r.headers["lambda-runtime-function-error-type"], "ValueError")
        app = os.path.join(PY_FIXTURES, "app.py")
        self.assertEqual(
            r.json(),
            {
                "errorMessage": "bad value 7",
                "errorType": "ValueError",
                "requestId": r.request_id,
                "stackTrace": [
                    '  File "%s", line 43, in raises\n    _inner(event.get("x"))\n' % app,
                    '  File "%s", line 39, in _inner\n    raise ValueError("bad value %%s" %% x)\n' % app,
                ],
            },
        )
        cause = json.loads(r.headers["lambda-runtime-function-xray-error-cause"])
        self.assertEqual(cause["exceptions"][0]["type"], "ValueError")
        out = rt.stdout()
        nb = "\u00a0"
        expected = (
            "[ERROR] ValueError: bad value 7\rTraceback (most recent call last):\r"
            + nb * 2 + 'File "%s", line 43, in raises\r' % app
            + nb * 4 + '_inner(event.get("x"))\r'
            + nb * 2 + 'File "%s", line 39, in _inner\r' % app
            + nb * 4 + 'raise ValueError("bad value %s" % x)\n'
        )
        self.assertIn(expected, out)
        # the runtime keeps serving after an error
        self.assertEqual(rt.invoke({"x": 1}).kind, "error")

    def test_marshal_error(self):
        rt = self.start("app.marshal")
        r = rt.invoke({})
        self.assertEqual(r.kind, "error")
        self.assertEqual(r.headers["lambda-runtime-function-error-type"], "Runtime.MarshalError")
        self.assertEqual(
            r.json(),
            {
                "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
                "errorType": "Runtime.MarshalError",
                "requestId": r.request_id,
                "stackTrace": [],
            },
        )
        self.assertIn(
            "[ERROR] Runtime.MarshalError: Unable to marshal response: Object of type set is not "
            "JSON serializable\rTraceback (most recent call last):\n",
            rt.stdout(),
        )

    def test_decimal_unicode_nan(self):
        rt = self.start("app.decimals")
        r = rt.invoke({})
        self.assertEqual(r.body, b'{"d": 1.10, "n": NaN, "u": "h\\u00e9", "f": 1.5}')
        rt2 = self.start("app.decimals", env={"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"})
        r = rt2.invoke({})
        self.assertEqual(r.body, '{"d": 1.10, "n": NaN, "u": "h\u00e9", "f": 1.5}'.encode())

    def test_bytes_none_and_raw_event(self):
        rt = self.start("app.raw_bytes")
        r = rt.invoke({})
        self.assertEqual(r.body, b"\x00raw")
        self.assertEqual(r.headers["content-type"], "application/unknown")
        rt = self.start("app.none")
        self.assertEqual(rt.invoke({}).body, b"null")
        rt = self.start("app.event_type")
        r = rt.invoke(b"abc", headers={"Content-Type": "application/octet-stream"}, raw=True)
        self.assertEqual(r.json(), {"type": "bytes", "repr": "b'abc'"})
        r = rt.invoke(b"{bad", raw=True)
        self.assertEqual(r.json()["errorType"], "Runtime.UnmarshalError")
        self.assertTrue(r.json()["errorMessage"].startswith("Unable to unmarshal input: Expecting"))

    def test_logging_and_prints(self):
        rt = self.start("app.logs")
        r = rt.invoke({})
        self.assertEqual(r.body, b'"done"')
        # everything is written before the response is posted
        out = rt.stdout(settle=0.0)
        rid = r.request_id
        self.assertIn("print line\n", out)
        self.assertRegex(out, r"\[WARNING\]\t%s\t%s\twarn arg\n" % (ISO_RE, rid))
        self.assertNotIn("info is dropped", out)
        self.assertRegex(out, r"\[INFO\]\t%s\t%s\tinfo after setLevel\n" % (ISO_RE, rid))
        self.assertIn("context.log line\n", out)
        self.assertIn("stderr line\n", rt.stderr(settle=0.0))

    def test_init_logging_and_log_level(self):
        rt = self.start("init_logging.handler")
        r = rt.invoke({})
        self.assertEqual(r.body, b"30")  # root logger stays at WARNING, as on Lambda
        out = rt.stdout()
        self.assertRegex(out, r"\[WARNING\]\t%s\t\tinit warning\n" % ISO_RE)
        self.assertNotIn("init info", out)
        self.assertIn("init print\n", out)
        rt = self.start("init_logging.handler", env={"AWS_LAMBDA_LOG_LEVEL": "INFO"})
        self.assertEqual(rt.invoke({}).body, b"20")
        self.assertRegex(rt.stdout(), r"\[INFO\]\t%s\t\tinit info\n" % ISO_RE)

    def test_json_log_format(self):
        rt = self.start("app.logs", env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
        r = rt.invoke({})
        lines = [json.loads(l) for l in rt.stdout().splitlines() if l.startswith("{")]
        warn = [l for l in lines if l.get("message") == "warn arg"][0]
        self.assertEqual(warn["level"], "WARNING")
        self.assertEqual(warn["requestId"], r.request_id)
        self.assertEqual(warn["logger"], "root")
        rt = self.start("app.raises", env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
        r = rt.invoke({"x": 1})
        rec = [json.loads(l) for l in rt.stdout().splitlines() if '"log_level"' in l][0]
        self.assertEqual(rec["log_level"], "ERROR")
        self.assertEqual(rec["errorType"], "ValueError")
        self.assertEqual(rec["requestId"], r.request_id)

    def test_dotted_and_path_handlers(self):
        rt = self.start("pkg/sub/mod.handler")
        self.assertEqual(rt.invoke({}).json(), {"module": "pkg.sub.mod"})
        rt = self.start("pkg.sub.mod.handler")
        self.assertEqual(rt.invoke({}).json(), {"module": "pkg.sub.mod"})

    def test_import_module_error(self):
        rt = self.start("nope.handler")
        body = self.assertInitError(rt, "Runtime.ImportModuleError")
        self.assertEqual(
            body,
            {
                "errorMessage": "Unable to import module 'nope': No module named 'nope'",
                "errorType": "Runtime.ImportModuleError",
                "requestId": "",
                "stackTrace": [],
            },
        )
        self.assertEqual(rt.wait_exit(), 1)
        out = rt.stdout()
        self.assertIn("\t\tLAMBDA_WARNING: Unhandled exception.", out)
        self.assertIn(
            "[ERROR] Runtime.ImportModuleError: Unable to import module 'nope': No module named "
            "'nope'\rTraceback (most recent call last):\n",
            out,
        )
        rt = self.start("imports_missing.handler")
        body = self.assertInitError(rt, "Runtime.ImportModuleError")
        self.assertEqual(
            body["errorMessage"],
            "Unable to import module 'imports_missing': No module named 'does_not_exist_anywhere'",
        )

    def test_handler_not_found(self):
        rt = self.start("app.nope")
        body = self.assertInitError(rt, "Runtime.HandlerNotFound")
        self.assertEqual(body["errorMessage"], "Handler 'nope' missing on module 'app'")
        self.assertEqual(body["stackTrace"], [])

    def test_syntax_error(self):
        rt = self.start("syntax_err.handler")
        body = self.assertInitError(rt, "Runtime.UserCodeSyntaxError")
        self.assertEqual(
            body["errorMessage"],
            "Syntax error in module 'syntax_err': '(' was never closed (syntax_err.py, line 2)",
        )
        self.assertEqual(
            body["stackTrace"],
            ['  File "%s" Line 2\n        x = (\n' % os.path.join(PY_FIXTURES, "syntax_err.py")],
        )

    def test_malformed_handler_and_builtin_conflict(self):
        rt = self.start("app")
        body = self.assertInitError(rt, "Runtime.MalformedHandlerName")
        self.assertEqual(
            body["errorMessage"], "Bad handler 'app': not enough values to unpack (expected 2, got 1)"
        )
        rt = self.start("sys.handler")
        body = self.assertInitError(rt, "Runtime.BuiltInModuleConflict")
        self.assertEqual(body["errorMessage"], "Cannot use built-in module sys as a handler module")

    def test_exception_at_import(self):
        rt = self.start("import_raises.handler")
        body = self.assertInitError(rt, "RuntimeError")
        self.assertEqual(body["errorMessage"], "init failed here")
        self.assertIn("import_raises.py", body["stackTrace"][-1])
        self.assertEqual(rt.wait_exit(), 1)

    def test_sys_exit_in_handler_ends_process(self):
        rt = self.start("app.exits")
        rt.api.enqueue({})
        self.assertEqual(rt.wait_exit(), 3)


# ---------------------------------------------------------------------------
# Node


@unittest.skipUnless(NODE, "node not found")
class NodeBootstrapTest(BootstrapCase):
    lang = "node"
    fixtures = os.path.join(NODE_FIXTURES, "cjs")

    def log_lines(self, rt):
        return rt.stdout().split("\n")

    def test_async_ok_and_keepalive(self):
        rt = self.start("app.ok")
        for i in range(3):
            r = rt.invoke({"i": i})
            self.assertEqual(r.kind, "response")
            self.assertEqual(r.json(), {"ok": True, "event": {"i": i}})
            self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(rt.api.connections, 1, "one persistent connection")

    def test_context_fields(self):
        rt = self.start("app.echo")
        r = rt.invoke(
            {"k": 1},
            headers={
                "Lambda-Runtime-Client-Context": '{"custom":{"a":1}}',
                "Lambda-Runtime-Cognito-Identity": '{"cognitoIdentityId":"id"}',
            },
            deadline_ms=int(time.time() * 1000) + 5000,
        )
        body = r.json()
        self.assertEqual(body["awsRequestId"], r.request_id)
        self.assertEqual(body["functionName"], "my-fn")
        self.assertEqual(body["functionVersion"], "$LATEST")
        self.assertEqual(body["memoryLimitInMB"], "256")
        self.assertEqual(body["logGroupName"], "/aws/lambda/my-fn")
        self.assertEqual(body["logStreamName"], "2024/01/01/[$LATEST]abc")
        self.assertEqual(body["invokedFunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:fn")
        self.assertTrue(4000 < body["remaining"] <= 5000)
        self.assertEqual(body["clientContext"], {"custom": {"a": 1}})
        self.assertEqual(body["identity"], {"cognitoIdentityId": "id"})
        self.assertTrue(body["callbackWaitsForEmptyEventLoop"])
        self.assertTrue(body["traceEnv"].startswith("Root=1-"))
        self.assertEqual(
            list(body["contextJson"].keys()),
            [
                "callbackWaitsForEmptyEventLoop",
                "functionVersion",
                "functionName",
                "memoryLimitInMB",
                "logGroupName",
                "logStreamName",
                "clientContext",
                "identity",
                "invokedFunctionArn",
                "awsRequestId",
            ],
        )

    def test_callback_styles(self):
        rt = self.start("app.callback")
        self.assertEqual(rt.invoke({"n": 3}).json(), {"via": "callback", "n": 3})
        self.assertIn("WARN\tAWS Lambda plans to remove support for callback-based", rt.stdout())
        for handler, expected in (
            ("app.succeed", {"via": "succeed"}),
            ("app.done", "via done"),
            ("app.syncUndefined", None),
        ):
            rt = self.start(handler)
            r = rt.invoke({})
            self.assertEqual(r.kind, "response", handler)
            self.assertEqual(r.json(), expected, handler)
        rt = self.start("app.fail")
        r = rt.invoke({})
        self.assertEqual(r.kind, "error")
        self.assertEqual(r.json()["errorMessage"], "via fail")
        rt = self.start("app.callbackError")
        r = rt.invoke({})
        self.assertEqual(r.json()["errorType"], "TypeError")
        self.assertEqual(r.json()["errorMessage"], "callback failed")
        rt = self.start("app.callbackString")
        r = rt.invoke({})
        self.assertEqual(
            r.json(), {"errorType": "string", "errorMessage": "plain string error", "trace": []}
        )

    def test_callback_waits_for_empty_event_loop(self):
        rt = self.start("app.callbackWaits")
        r = rt.invoke({})
        waited_ms = (r.received_at - r.sent_at) * 1000
        self.assertGreaterEqual(waited_ms, 140)
        self.assertIn("timer fired", rt.stdout(settle=0))
        rt = self.start("app.callbackNoWait")
        r = rt.invoke({})
        self.assertLess((r.received_at - r.sent_at) * 1000, 100)
        # and the next invocation still works
        self.assertEqual(rt.invoke({}).kind, "response")

    def test_esm_mjs(self):
        rt = self.start("app.handler", os.path.join(NODE_FIXTURES, "esm"))
        self.assertEqual(rt.invoke({"e": 1}).json(), {"esm": True, "file": "app.mjs", "event": {"e": 1}})

    def test_package_type_module(self):
        rt = self.start("app.handler", os.path.join(NODE_FIXTURES, "esmpkg"))
        self.assertEqual(rt.invoke({}).json(), {"typeModule": True, "top": "top-level await ok"})

    def test_nested_and_dir_handlers(self):
        rt = self.start("app.nested.deep.handler")
        self.assertEqual(rt.invoke({}).json(), "nested ok")
        rt = self.start("lib/sub.fn")
        self.assertEqual(rt.invoke({}).json(), {"from": "lib/sub"})

    def test_throws(self):
        rt = self.start("app.throws")
        r = rt.invoke({})
        self.assertEqual(r.kind, "error")
        self.assertEqual(r.headers["lambda-runtime-function-error-type"], "Error")
        body = r.json()
        self.assertEqual(list(body.keys()), ["errorType", "errorMessage", "trace"])
        self.assertEqual(body["errorType"], "Error")
        self.assertEqual(body["errorMessage"], "boom")
        self.assertEqual(body["trace"][0], "Error: boom")
        self.assertIn("app.js:", body["trace"][1])
        out = rt.stdout()
        m = re.search(r"(%s)\t%s\tERROR\tInvoke Error \t(\{.*\})\n" % (ISO_RE, r.request_id), out)
        self.assertIsNotNone(m, out)
        logged = json.loads(m.group(2))
        self.assertEqual(logged["errorType"], "Error")
        self.assertEqual(logged["code"], "E_BOOM")
        self.assertEqual(logged["stack"][0], "Error: boom")
        rt = self.start("app.throwsSync")
        body = rt.invoke({}).json()
        self.assertEqual((body["errorType"], body["errorMessage"]), ("RangeError", "sync boom"))

    def test_rejects(self):
        rt = self.start("app.rejects")
        r = rt.invoke({})
        self.assertEqual(r.headers["lambda-runtime-function-error-type"], "CustomError")
        body = r.json()
        self.assertEqual(body["errorType"], "CustomError")
        self.assertEqual(body["errorMessage"], "custom rejection")
        self.assertEqual(body["trace"][0], "CustomError: custom rejection")

    def test_unserializable_result(self):
        for handler in ("app.bigint", "app.circular"):
            rt = self.start(handler)
            r = rt.invoke({})
            self.assertEqual(r.kind, "error")
            body = r.json()
            self.assertEqual(body["errorType"], "Error")
            self.assertEqual(body["errorMessage"], "Unable to stringify response body")
            self.assertEqual(rt.invoke({}).kind, "error")  # still alive

    def test_unhandled_rejection(self):
        rt = self.start("app.unhandled")
        r = rt.invoke({})
        self.assertEqual(r.kind, "error")
        self.assertEqual(
            r.headers["lambda-runtime-function-error-type"], "Runtime.UnhandledPromiseRejection"
        )
        body = r.json()
        self.assertEqual(body["errorType"], "Runtime.UnhandledPromiseRejection")
        self.assertEqual(body["errorMessage"], "Error: nobody handles me")
        self.assertEqual(rt.wait_exit(), 128)
        self.assertIn("\tERROR\tUnhandled Promise Rejection \t{", rt.stdout())

    def test_never_settles(self):
        rt = self.start("app.neverSettles")
        r = rt.invoke({})
        body = r.json()
        self.assertEqual(body["errorType"], "Runtime.NodeJsExit")
        self.assertTrue(body["errorMessage"].startswith("The Lambda runtime client detected"))

    def test_console_format(self):
        rt = self.start("app.logs")
        r = rt.invoke({})
        self.assertEqual(r.json(), "logged")
        out = rt.stdout(settle=0)  # written before the response
        rid = r.request_id
        self.assertRegex(out, r"%s\tundefined\tINFO\tinit log from cjs\n" % ISO_RE)
        for level, msg in (
            ("INFO", "hello world { a: 1 }"),
            ("INFO", "info line"),
            ("WARN", "warn line"),
            ("ERROR", "error line"),
            ("DEBUG", "debug line"),
            ("INFO", "multi\rline\rmessage"),
        ):
            self.assertRegex(out, r"%s\t%s\t%s\t%s\n" % (ISO_RE, rid, level, re.escape(msg)))
        self.assertIn("raw stdout\n", out)

    def test_log_level_and_json_format(self):
        rt = self.start("app.logs", env={"AWS_LAMBDA_LOG_LEVEL": "WARN"})
        rt.invoke({})
        out = rt.stdout()
        self.assertIn("\tWARN\twarn line", out)
        self.assertNotIn("info line", out)
        self.assertNotIn("debug line", out)
        rt = self.start("app.logs", env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
        r = rt.invoke({})
        recs = [json.loads(l) for l in rt.stdout().splitlines() if l.startswith("{")]
        warn = [x for x in recs if x.get("message") == "warn line"][0]
        self.assertEqual(warn["level"], "WARN")
        self.assertEqual(warn["requestId"], r.request_id)

    def test_missing_module(self):
        rt = self.start("nomod.handler")
        body = self.assertInitError(rt, "Runtime.ImportModuleError")
        self.assertTrue(
            body["errorMessage"].startswith("Error: Cannot find module 'nomod'\nRequire stack:\n- "),
            body["errorMessage"],
        )
        self.assertEqual(body["trace"][0], "Runtime.ImportModuleError: Error: Cannot find module 'nomod'")
        self.assertEqual(rt.wait_exit(), 129)
        self.assertRegex(
            rt.stdout(),
            r"%s\tundefined\tERROR\tUncaught Exception \t\{\"errorType\":\"Runtime.ImportModuleError\"" % ISO_RE,
        )
        rt = self.start("missing_dep.handler", os.path.join(NODE_FIXTURES, "bad"))
        body = self.assertInitError(rt, "Runtime.ImportModuleError")
        self.assertIn("Cannot find module 'does-not-exist-anywhere'", body["errorMessage"])

    def test_missing_export(self):
        rt = self.start("app.nope")
        body = self.assertInitError(rt, "Runtime.HandlerNotFound")
        self.assertEqual(body["errorMessage"], "app.nope is undefined or not exported")
        rt = self.start("app.notAFunction")
        body = self.assertInitError(rt, "Runtime.HandlerNotFound")
        self.assertEqual(body["errorMessage"], "app.notAFunction is not a function")

    def test_malformed_and_syntax(self):
        rt = self.start("app")
        body = self.assertInitError(rt, "Runtime.MalformedHandlerName")
        self.assertEqual(body["errorMessage"], "Bad handler")
        rt = self.start("../app.handler")
        body = self.assertInitError(rt, "Runtime.MalformedHandlerName")
        rt = self.start("syntax.handler", os.path.join(NODE_FIXTURES, "bad"))
        body = self.assertInitError(rt, "Runtime.UserCodeSyntaxError")
        self.assertTrue(body["errorMessage"].startswith("SyntaxError: Unexpected token"), body)
        rt = self.start("init_throws.handler", os.path.join(NODE_FIXTURES, "bad"))
        body = self.assertInitError(rt, "TypeError")
        self.assertEqual(body["errorMessage"], "init exploded")


# ---------------------------------------------------------------------------
# Start-up and warm-invoke measurements (printed, not asserted)


class ZBenchmark(unittest.TestCase):
    """Runs last; see bench_bootstraps.py for the method (and for longer runs)."""

    def _measure(self, lang):
        import bench_bootstraps

        m = bench_bootstraps.measure(lang, runs=5, warm=500)
        sys.stderr.write("\n" + bench_bootstraps.format_result(m) + "\n")

    def test_python(self):
        self._measure("python")

    @unittest.skipUnless(NODE, "node not found")
    def test_node(self):
        self._measure("node")


if __name__ == "__main__":
    unittest.main()
