# Gust Python bootstrap: the runtime interface client for Python handlers.
#
# Launch (what crates/runtime is expected to run):
#
#     cwd = $LAMBDA_TASK_ROOT
#     /usr/bin/python3 -u <dir>/bootstrap.py [<handler>]
#
# `-u` gives unbuffered stdout/stderr, as on Lambda (where every write is flushed at
# once); without `-u` the bootstrap wraps the streams itself. `-S` may be added to
# keep the host's site-packages out of sys.path (saves ~2.5 ms); the bootstrap does
# not need `site`. Spawn the real interpreter binary, never a pyenv shim.
#
# Environment read (as Lambda sets it):
#   AWS_LAMBDA_RUNTIME_API         host:port of the Runtime API (required)
#   _HANDLER                       "module.function" (argv[1] wins if given)
#   LAMBDA_TASK_ROOT               code directory, put first on sys.path (default: cwd)
#   AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION,
#   AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME,
#   AWS_LAMBDA_LOG_STREAM_NAME     copied onto the context object (strings, as on Lambda)
#   AWS_LAMBDA_LOG_FORMAT          "JSON" for JSON log lines, else text
#   AWS_LAMBDA_LOG_LEVEL           sets the root logger level (TRACE means DEBUG)
#   AWS_EXECUTION_ENV              AWS_Lambda_python3.12 and later: results are
#                                  encoded with ensure_ascii=False (as awslambdaric does);
#                                  when unset, decided by the interpreter version.
#
# Behaviour follows awslambdaric (aws/aws-lambda-python-runtime-interface-client):
# the same error types and messages, the same error body
# {"errorMessage","errorType","requestId","stackTrace"}, the same log formats
# (multi-line error records joined with "\r" so that one record stays one line),
# the root logger handler "[LEVEL]\t<time>Z\t<request id>\t<message>" at the
# default WARNING level. An init failure is logged, POSTed to /runtime/init/error
# and the process exits with status 1.
#
# Differences, on purpose: the Runtime API is spoken over one persistent HTTP/1.1
# keep-alive connection by a small client here (no C extension); error POSTs also
# carry the Lambda-Runtime-Function-Error-Type header; an event with no Content-Type
# (or "application/json; ...") is decoded as JSON; Decimal is encoded as a JSON
# number as awslambdaric does, but namedtuples encode as arrays (stdlib json).
# The `logging` module is configured when it is first imported (lazily), which
# saves its import time for handlers that never log.

import sys
import os
import io
import _socket  # not `socket`: that module pulls in selectors and enum (~3 ms)
import json

_BOOTSTRAP_FILE = os.path.abspath(__file__)
_BOOTSTRAP_FILES = (__file__, _BOOTSTRAP_FILE)
_environ = os.environ

# --------------------------------------------------------------------------
# Runtime API client: one keep-alive connection, hand-rolled HTTP/1.1.


class _ConnectionLost(Exception):
    pass


class RuntimeApiError(Exception):
    def __init__(self, endpoint, status, body):
        Exception.__init__(
            self,
            "Request to Lambda Runtime '%s' endpoint failed. Reason: '%s'. "
            "Response body: '%r'" % (endpoint, status, body),
        )


class RuntimeApi(object):
    def __init__(self, address):
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            host, port = address, "80"
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        self.addr = (host or "127.0.0.1", int(port))
        self.host_header = address.encode("latin-1")
        self.sock = None
        self.rfile = None
        self.next_request = (
            b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: "
            + self.host_header
            + b"\r\nUser-Agent: gust-python-bootstrap\r\n\r\n"
        )

    def _connect(self):
        host, port = self.addr
        try:
            family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
            _socket.inet_pton(family, host)
            candidates = [(family, (host, port))]
        except OSError:  # a name, not an address literal
            candidates = [
                (info[0], info[4])
                for info in _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM)
            ]
        error = None
        for family, sockaddr in candidates:
            sock = _socket.socket(family, _socket.SOCK_STREAM)
            try:
                sock.connect(sockaddr)
            except OSError as e:
                sock.close()
                error = e
                continue
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            self.sock = sock
            self.rfile = io.open(sock.fileno(), "rb", closefd=False)
            return
        raise error or OSError("cannot connect to the Runtime API at %s:%s" % self.addr)

    def _close(self):
        try:
            if self.rfile is not None:
                self.rfile.close()
            if self.sock is not None:
                self.sock.close()
        except OSError:
            pass
        self.sock = self.rfile = None

    def _roundtrip(self, head, body):
        # One retry, on a fresh connection, when a kept-alive connection turned out
        # to be closed before any response byte arrived.
        for attempt in (0, 1):
            if self.sock is None:
                self._connect()
            try:
                sock = self.sock
                if body is None:
                    sock.sendall(head)
                elif len(body) < 65536:
                    sock.sendall(head + body)
                else:
                    sock.sendall(head)
                    sock.sendall(body)
                return self._read_response()
            except (_ConnectionLost, ConnectionError, BrokenPipeError):
                self._close()
                if attempt:
                    raise

    def _read_response(self):
        rf = self.rfile
        while True:
            line = rf.readline(65537)
            if not line:
                raise _ConnectionLost()
            parts = line.split(None, 2)
            status = int(parts[1])
            headers = {}
            while True:
                h = rf.readline(65537)
                if h == b"\r\n" or h == b"\n":
                    break
                if not h:
                    raise ConnectionError("Runtime API closed the connection")
                k, _, v = h.partition(b":")
                headers[k.strip().lower().decode("latin-1")] = v.strip().decode(
                    "utf-8", "replace"
                )
            if 100 <= status < 200:
                continue  # 100 Continue and friends: the real response follows
            break
        keep = parts[0] != b"HTTP/1.0"
        conn = headers.get("connection")
        if conn is not None:
            conn = conn.lower()
            if "close" in conn:
                keep = False
            elif "keep-alive" in conn:
                keep = True
        te = headers.get("transfer-encoding")
        if te is not None and "chunked" in te.lower():
            chunks = []
            while True:
                size_line = rf.readline(65537)
                if not size_line:
                    raise ConnectionError("Runtime API closed the connection")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:  # trailers
                        t = rf.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                chunks.append(rf.read(size))
                rf.readline(3)
            body = b"".join(chunks)
        else:
            n = headers.get("content-length")
            if n is not None:
                n = int(n)
                body = rf.read(n) if n else b""
                if len(body) != n:
                    raise ConnectionError("Runtime API closed the connection")
            elif status == 204 or status == 304:
                body = b""
            else:
                body = rf.read()
                keep = False
        if not keep:
            self._close()
        return status, headers, body

    def next(self):
        status, headers, body = self._roundtrip(self.next_request, None)
        if status != 200:
            raise RuntimeApiError("/runtime/invocation/next", status, body)
        return headers, body

    def _post(self, path, body, content_type, extra=b""):
        head = b"".join(
            (
                b"POST ",
                path,
                b" HTTP/1.1\r\nHost: ",
                self.host_header,
                b"\r\nUser-Agent: gust-python-bootstrap\r\nContent-Type: ",
                content_type,
                b"\r\nContent-Length: ",
                str(len(body)).encode(),
                b"\r\n",
                extra,
                b"\r\n",
            )
        )
        status, _, resp = self._roundtrip(head, body)
        if status < 200 or status > 299:
            raise RuntimeApiError(path.decode(), status, resp)

    def post_response(self, request_id, body, content_type):
        self._post(
            b"/2018-06-01/runtime/invocation/" + request_id.encode() + b"/response",
            body,
            content_type,
        )

    def post_error(self, request_id, error, xray_cause=None):
        extra = _error_type_header(error)
        if xray_cause is not None and len(xray_cause) < 1024 * 1024:
            extra += b"Lambda-Runtime-Function-XRay-Error-Cause: " + xray_cause + b"\r\n"
        self._post(
            b"/2018-06-01/runtime/invocation/" + request_id.encode() + b"/error",
            to_json(error).encode("utf-8", "replace"),
            b"application/json",
            extra,
        )

    def post_init_error(self, error):
        self._post(
            b"/2018-06-01/runtime/init/error",
            to_json(error).encode("utf-8", "replace"),
            b"application/json",
            _error_type_header(error),
        )


def _error_type_header(error):
    t = error.get("errorType") or "Unhandled"
    t = "".join(c for c in t if " " <= c <= "~")
    return b"Lambda-Runtime-Function-Error-Type: " + t.encode("ascii") + b"\r\n"


# --------------------------------------------------------------------------
# JSON marshalling (awslambdaric uses simplejson; this matches its output with
# the standard library, including Decimal as a raw number).


class FaultException(Exception):
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        Exception.__init__(self, msg)
        self.msg = msg
        self.exception_type = exception_type
        self.trace = trace


def _ensure_ascii():
    env = _environ.get("AWS_EXECUTION_ENV", "")
    prefix = "AWS_Lambda_python3."
    if env.startswith(prefix):
        minor = env[len(prefix):]
        if minor.isdigit():
            return int(minor) < 12
    return sys.version_info < (3, 12)


_DECIMAL_MARK = "\x00gust-decimal-%d\x00"
_DECIMAL_MARK_JSON = '"\\u0000gust-decimal-%d\\u0000"'


class _Encoder(object):
    """json.JSONEncoder with simplejson's Decimal handling, reusable."""

    def __init__(self, ensure_ascii):
        self.decimals = None
        self.encoder = json.JSONEncoder(
            ensure_ascii=ensure_ascii, allow_nan=True, default=self.default
        )

    def default(self, obj):
        dec = sys.modules.get("decimal")
        if dec is not None and isinstance(obj, dec.Decimal):
            if obj.is_nan():
                return float("nan")
            if self.decimals is None:
                self.decimals = []
            self.decimals.append(str(obj))
            return _DECIMAL_MARK % (len(self.decimals) - 1)
        raise TypeError(
            "Object of type %s is not JSON serializable" % obj.__class__.__name__
        )

    def encode(self, obj):
        self.decimals = None
        try:
            out = self.encoder.encode(obj)
        except BaseException:
            self.decimals = None
            raise
        decimals = self.decimals
        if decimals is not None:
            self.decimals = None
            for i, text in enumerate(decimals):
                out = out.replace(_DECIMAL_MARK_JSON % i, text, 1)
        return out


_result_encoder = _Encoder(_ensure_ascii())
_error_encoder = _Encoder(_ensure_ascii())


def to_json(obj):
    return _error_encoder.encode(obj)


# --------------------------------------------------------------------------
# Context object (same attributes as awslambdaric's LambdaContext).

_function_name = _environ.get("AWS_LAMBDA_FUNCTION_NAME")
_function_version = _environ.get("AWS_LAMBDA_FUNCTION_VERSION")
_memory_limit_in_mb = _environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
_log_group_name = _environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
_log_stream_name = _environ.get("AWS_LAMBDA_LOG_STREAM_NAME")

from time import time as _now


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __init__(self, d=None):
        d = d or {}
        self.cognito_identity_id = d.get("cognitoIdentityId")
        self.cognito_identity_pool_id = d.get("cognitoIdentityPoolId")

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client(object):
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]

    def __repr__(self):
        return "Client([%s])" % ",".join(
            "%s=%s" % (f, getattr(self, f)) for f in self.__slots__
        )


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (
            self.custom,
            self.env,
            self.client,
        )


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    get = d.get if isinstance(d, dict) else (lambda k, default=None: None)
    for f in cls.__slots__:
        setattr(obj, f, get(f, None))
    return obj


def _parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            "Unable to parse %s JSON: %s" % (name, e),
            None,
        )


class LambdaContext(object):
    __slots__ = [
        "aws_request_id",
        "log_group_name",
        "log_stream_name",
        "function_name",
        "memory_limit_in_mb",
        "function_version",
        "invoked_function_arn",
        "tenant_id",
        "client_context",
        "identity",
        "_epoch_deadline_time_in_ms",
        "__dict__",  # user code sometimes sets its own attributes on the context
    ]

    def __init__(
        self,
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn=None,
        tenant_id=None,
    ):
        self.aws_request_id = invoke_id
        self.log_group_name = _log_group_name
        self.log_stream_name = _log_stream_name
        self.function_name = _function_name
        self.memory_limit_in_mb = _memory_limit_in_mb
        self.function_version = _function_version
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        if client_context is not None:
            cc = _obj_from_dict(ClientContext, client_context)
            cc.client = _obj_from_dict(Client, cc.client)
            self.client_context = cc
        else:
            self.client_context = None
        self.identity = CognitoIdentity(cognito_identity)
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        delta = self._epoch_deadline_time_in_ms - int(_now() * 1000)
        return delta if delta > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,"
            "function_name=%s,memory_limit_in_mb=%s,function_version=%s,"
            "invoked_function_arn=%s,client_context=%s,identity=%s,tenant_id=%s])"
            % (
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
                self.tenant_id,
            )
        )


# --------------------------------------------------------------------------
# Logging: stdout records like awslambdaric's StandardLogSink.

_JSON_LOGS = (_environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
_current = {"request_id": None, "tenant_id": None}
_ERROR_LINE_TERMINATOR = "\r"
_ERROR_INDENT = "\u00a0"  # NO-BREAK SPACE, as awslambdaric indents tracebacks
_LAMBDA_WARNING = "LAMBDA_WARNING"
_UNHANDLED_EXCEPTION_WARNING = (
    _LAMBDA_WARNING + ": "
    "Unhandled exception. "
    "The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, or can be applied automatically. "
    "To determine if the runtime has been updated, check the runtime version in the INIT_START log entry. "
    "If this error correlates with a change in the runtime version, you may be able to mitigate this error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)


def _setup_logging(logging):
    """Configure the root logger as awslambdaric does."""
    import time

    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record):
            try:
                msg = self.format(record)
                sys.stdout.write(msg)
            except Exception:
                self.handleError(record)

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _current["request_id"] or ""
            record.tenant_id = _current["tenant_id"]
            return True

    handler = LambdaLoggerHandler()
    if _JSON_LOGS:
        handler.setFormatter(_make_json_formatter(logging))
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    level = _environ.get("AWS_LAMBDA_LOG_LEVEL")
    level = {None: "", "TRACE": "DEBUG"}.get(level, level).upper()
    if level in logging._nameToLevel:
        root.setLevel(level)
    handler.addFilter(LambdaLoggerFilter())
    root.addHandler(handler)


_RESERVED_LOG_FIELDS = frozenset(
    (
        "name msg args levelname levelno pathname filename module exc_info exc_text "
        "stack_info lineno funcName created msecs relativeCreated thread threadName "
        "processName process aws_request_id tenant_id _frame_type taskName"
    ).split()
)


def _make_json_formatter(logging):
    encode = json.JSONEncoder(ensure_ascii=False, default=str).encode

    class JsonFormatter(logging.Formatter):
        def __init__(self):
            logging.Formatter.__init__(self, datefmt="%Y-%m-%dT%H:%M:%SZ")

        def format(self, record):
            record.levelno = min(50, max(0, record.levelno)) // 10 * 10
            record.levelname = logging.getLevelName(record.levelno)
            exc = record.exc_info
            result = {
                "timestamp": self.formatTime(record, self.datefmt),
                "level": record.levelname,
                "message": record.getMessage(),
                "logger": record.name,
                "stackTrace": None,
                "errorType": None,
                "errorMessage": None,
                "requestId": getattr(record, "aws_request_id", None),
                "location": None,
            }
            if exc:
                import traceback

                result["stackTrace"] = traceback.format_tb(exc[2])
                result["errorType"] = exc[0].__name__
                result["errorMessage"] = str(exc[1])
                result["location"] = "%s:%s:%s" % (
                    record.pathname,
                    record.funcName,
                    record.lineno,
                )
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.tenant_id
            for key, value in record.__dict__.items():
                if key not in _RESERVED_LOG_FIELDS and key not in result:
                    result[key] = value
            return encode({k: v for k, v in result.items() if v is not None}) + "\n"

    return JsonFormatter()


class _LoggingImportHook(object):
    """Configures `logging` right after it is first imported, by anyone."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != "logging":
            return None
        try:
            sys.meta_path.remove(cls)
        except ValueError:
            pass
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_setup(module):
            exec_module(module)
            _setup_logging(module)

        loader.exec_module = exec_and_setup
        return spec


def _install_logging():
    if "logging" in sys.modules:
        _setup_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, _LoggingImportHook)


def _replace_indent(line):
    n = len(line) - len(line.lstrip(" "))
    return _ERROR_INDENT * n + line[n:]


def log_error(error):
    """Write an error record the way awslambdaric's log_error does."""
    if _JSON_LOGS:
        import time

        record = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time())),
            "log_level": "ERROR",
        }
        record.update(error)
        line = to_json(record) + "\n"
    else:
        description = "[ERROR]"
        etype = error.get("errorType")
        if etype:
            description += " " + etype
        emsg = error.get("errorMessage")
        if emsg:
            if etype:
                description += ":"
            description += " " + emsg
        lines = [description]
        stack = error.get("stackTrace")
        if stack is not None:
            lines.append("Traceback (most recent call last):")
            for element in stack:
                if element == "":
                    lines.append("")
                else:
                    for trace_line in element.splitlines():
                        lines.append(_replace_indent(trace_line))
        line = _ERROR_LINE_TERMINATOR.join(lines) + "\n"
    sys.stdout.write(line)


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


class _Unbuffered(object):
    """Flush after every write, like awslambdaric (used when not started with -u)."""

    def __init__(self, stream):
        self.stream = stream

    def __getattr__(self, attr):
        return getattr(self.stream, attr)

    def write(self, msg):
        n = self.stream.write(msg)
        self.stream.flush()
        return n

    def writelines(self, msgs):
        self.stream.writelines(msgs)
        self.stream.flush()


# --------------------------------------------------------------------------
# Errors.


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _user_frames(tb):
    import traceback

    frames = [
        (f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)
    ]
    for i in range(len(frames)):
        if frames[i][0] not in _BOOTSTRAP_FILES:
            return frames[i:]
    return frames


def _exception_error(exc, invoke_id=None):
    import traceback

    frames = _user_frames(exc.__traceback__)
    return (
        make_error(str(exc), type(exc).__name__, traceback.format_list(frames), invoke_id),
        frames,
    )


def _xray_cause(exc_type, message, frames):
    stack = []
    paths = []
    for path, line, label, _ in frames:
        stack.append({"label": label, "path": path, "line": line})
        if path not in paths:
            paths.append(path)
    cause = {
        "working_directory": os.getcwd(),
        "exceptions": [{"message": message, "type": exc_type, "stack": stack}],
        "paths": paths,
    }
    try:
        return json.dumps(cause).encode("ascii")
    except Exception:
        return None


# --------------------------------------------------------------------------
# Loading the handler.


def get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(
            FaultException.MALFORMED_HANDLER_NAME,
            "Bad handler '%s': %s" % (handler, e),
        )
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module %s as a handler module" % modname,
            )
        import importlib

        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR,
            "Unable to import module '%s': %s" % (modname, e),
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '%s': %s" % (modname, e),
            trace,
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND,
            "Handler '%s' missing on module '%s'" % (fname, modname),
        )


# --------------------------------------------------------------------------
# Main loop.


def _init_error(client, error):
    import logging  # configured by the hook

    logging.warning(_UNHANDLED_EXCEPTION_WARNING)
    log_error(error)
    _flush()
    client.post_init_error(error)
    sys.exit(1)


def run():
    # Under -u (or PYTHONUNBUFFERED) the text streams write straight to the fd.
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if type(getattr(stream, "buffer", None)).__name__ != "FileIO":
            setattr(sys, name, _Unbuffered(stream))

    task_root = _environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    # sys.path[0] is this script's directory: replace it with the task root.
    script_dir = os.path.dirname(_BOOTSTRAP_FILE)
    if sys.path and sys.path[0] in (script_dir, ""):
        sys.path[0] = task_root
    else:
        sys.path.insert(0, task_root)

    handler_name = sys.argv[1] if len(sys.argv) > 1 else _environ.get("_HANDLER", "")
    client = RuntimeApi(_environ["AWS_LAMBDA_RUNTIME_API"])
    _install_logging()

    try:
        request_handler = get_handler(handler_name)
    except FaultException as e:
        _init_error(client, make_error(e.msg, e.exception_type, e.trace))
    except Exception as e:
        _init_error(client, _exception_error(e)[0])

    loads = json.loads
    encode = _result_encoder.encode
    environ = _environ
    current = _current
    flush = _flush

    while True:
        try:
            headers, body = client.next()
        except (OSError, RuntimeApiError) as e:
            sys.stderr.write("[gust bootstrap] Failed to get next invocation: %s\n" % e)
            sys.exit(1)
        get = headers.get
        invoke_id = get("lambda-runtime-aws-request-id")
        current["request_id"] = invoke_id
        tenant_id = get("lambda-runtime-aws-tenant-id")
        current["tenant_id"] = tenant_id
        trace_id = get("lambda-runtime-trace-id")
        if trace_id:
            environ["_X_AMZN_TRACE_ID"] = trace_id
        elif "_X_AMZN_TRACE_ID" in environ:
            del environ["_X_AMZN_TRACE_ID"]

        error = None
        try:
            client_context = get("lambda-runtime-client-context")
            if client_context:
                client_context = _parse_json_header(client_context, "Client Context")
            else:
                client_context = None
            identity = get("lambda-runtime-cognito-identity")
            if identity:
                identity = _parse_json_header(identity, "Cognito Identity")
            else:
                identity = None
            context = LambdaContext(
                invoke_id,
                client_context,
                identity,
                int(get("lambda-runtime-deadline-ms") or 0),
                get("lambda-runtime-invoked-function-arn"),
                tenant_id,
            )
            content_type = get("content-type")
            if content_type is None or content_type.startswith("application/json"):
                try:
                    event = loads(body)
                except Exception as e:
                    raise FaultException(
                        FaultException.UNMARSHAL_ERROR,
                        "Unable to unmarshal input: %s" % e,
                    )
            else:
                event = body
            response = request_handler(event, context)
            if isinstance(response, bytes):
                result, result_type = response, b"application/unknown"
            else:
                try:
                    result = encode(response).encode("utf-8")
                except Exception as e:
                    raise FaultException(
                        FaultException.MARSHAL_ERROR,
                        "Unable to marshal response: %s" % e,
                    )
                result_type = b"application/json"
        except FaultException as e:
            error = make_error(e.msg, e.exception_type, e.trace, invoke_id)
            cause = _xray_cause("LambdaValidationError", e.msg, [])
        except Exception as e:
            error, frames = _exception_error(e, invoke_id)
            cause = _xray_cause(type(e).__name__, str(e), frames)
        try:
            if error is None:
                flush()
                client.post_response(invoke_id, result, result_type)
            else:
                log_error(error)
                flush()
                client.post_error(invoke_id, error, cause)
        except RuntimeApiError as e:
            # e.g. 413 for an oversized response: the server has the answer; go on.
            sys.stderr.write("[gust bootstrap] %s\n" % e)
        response = result = event = context = None


if __name__ == "__main__":
    run()
