"""Lambda response streaming against a real `gust up`: boto3's invoke_with_response_stream
(the event stream of PayloadChunk and InvokeComplete events, parsed by botocore) on Python and
Node functions, errors before and in the middle of a stream, and RESPONSE_STREAM function
URLs (awslambda.HttpResponseStream.from's status, headers and cookies; a function that does
not stream, mapped as a BUFFERED URL maps it).

Node's awslambda.streamifyResponse handlers stream through the Runtime API's streaming mode:
the tests check that the first chunk reaches the client while the function is still running
(it sleeps between writes)."""

import base64
import http.client
import json
import time
import urllib.parse
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import NODE_RUNTIME, create_function, unique, zip_dir, zip_function

NODE_STREAMING = r"""
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

exports.chunks = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType("text/plain");
  responseStream.write("first,");
  await sleep(event.pause_ms ?? 400);
  responseStream.write("second," + context.awsRequestId);
  responseStream.end();
});

exports.http = awslambda.streamifyResponse(async (event, responseStream) => {
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { "content-type": "text/plain", "x-streamed": "yes" },
    cookies: ["a=1", "b=2; Path=/"],
  });
  stream.write("hello ");
  await sleep(600);
  stream.write("from " + (event.rawPath || "?"));
  stream.end();
});

exports.midfail = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType("text/plain");
  responseStream.write("partial");
  await sleep(100);
  throw new Error("went wrong mid-stream");
});
"""

PY_URL_APP = """
def handler(event, context):
    return {"statusCode": 202, "headers": {"x-py": "1"}, "cookies": ["p=1"], "body": "from python"}
"""


def stream_invoke(lam, name, payload=None, **kw):
    """invoke_with_response_stream, read to the end: returns (response, chunks with their
    arrival times, the InvokeComplete event and its arrival time)."""
    started = time.monotonic()
    resp = lam.invoke_with_response_stream(
        FunctionName=name, Payload=json.dumps(payload or {}).encode(), **kw
    )
    chunks, complete, completed_at = [], None, None
    for event in resp["EventStream"]:
        now = time.monotonic() - started
        if "PayloadChunk" in event:
            assert complete is None, "no chunk after InvokeComplete"
            chunks.append((event["PayloadChunk"]["Payload"], now))
        elif "InvokeComplete" in event:
            complete, completed_at = event["InvokeComplete"], now
    assert complete is not None, "the stream ends with InvokeComplete"
    return resp, chunks, complete, completed_at


def body_of(chunks) -> bytes:
    return b"".join(c for c, _ in chunks)


def node_function(lam, handler: str) -> str:
    name = unique("stream-node")
    create_function(
        lam,
        name=name,
        runtime=NODE_RUNTIME,
        handler=handler,
        code=zip_dir(None, extra={"index.js": NODE_STREAMING}),
        timeout=10,
    )
    return name


@pytest.fixture(scope="module")
def node_stream(lam):
    return node_function(lam, "index.chunks")


def test_python_function_streams_its_result_as_one_chunk(lam):
    name = unique("stream-py")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.echo")
    resp, chunks, complete, _ = stream_invoke(lam, name, {"k": "v"}, LogType="Tail")
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert resp["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    assert len(chunks) == 1
    result = json.loads(body_of(chunks))
    assert result["event"] == {"k": "v"}
    assert result["aws_request_id"] == resp["ResponseMetadata"]["RequestId"]
    assert "ErrorCode" not in complete
    log = base64.b64decode(complete["LogResult"]).decode()
    assert "START RequestId: " + result["aws_request_id"] in log
    assert "REPORT RequestId: " in log

    # Without LogType there is no LogResult.
    _, chunks, complete, _ = stream_invoke(lam, name, {"again": True})
    assert json.loads(body_of(chunks))["event"] == {"again": True}
    assert complete == {}


def test_python_function_error_is_in_invoke_complete(lam):
    name = unique("stream-py-fail")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.fail")
    resp, chunks, complete, _ = stream_invoke(lam, name, {"why": "testing"})
    assert resp["StatusCode"] == 200
    assert chunks == []
    assert complete["ErrorCode"] == "GustTestError"
    assert complete["ErrorDetails"] == "boom: testing"


def test_refusals_are_errors_before_the_stream(lam):
    with pytest.raises(ClientError) as e:
        lam.invoke_with_response_stream(FunctionName=unique("missing"), Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    name = unique("stream-py")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.echo")
    with pytest.raises(ClientError) as e:
        lam.invoke_with_response_stream(FunctionName=name, Payload=b"{not json")
    assert e.value.response["Error"]["Code"] == "InvalidRequestContentException"
    with pytest.raises(ClientError) as e:
        lam.invoke_with_response_stream(FunctionName=name, InvocationType="Event", Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.invoke_with_response_stream(FunctionName=name, Qualifier="7", Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"

    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as e:
        lam.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    lam.delete_function_concurrency(FunctionName=name)

    dry = lam.invoke_with_response_stream(FunctionName=name, InvocationType="DryRun", Payload=b"{}")
    assert dry["StatusCode"] == 204


def test_node_stream_arrives_in_order(lam, node_stream):
    resp, chunks, complete, completed_at = stream_invoke(lam, node_stream, {"pause_ms": 800})
    assert resp["StatusCode"] == 200
    body = body_of(chunks).decode()
    assert body == "first,second," + resp["ResponseMetadata"]["RequestId"]
    assert "ErrorCode" not in complete
    assert len(chunks) >= 2, chunks
    assert chunks[0][0] == b"first,"
    # The first chunk came while the function was still sleeping.
    first_at = chunks[0][1]
    assert completed_at - first_at >= 0.3, (first_at, completed_at)


def test_node_error_mid_stream_is_in_invoke_complete(lam):
    name = node_function(lam, "index.midfail")
    resp, chunks, complete, _ = stream_invoke(lam, name)
    assert resp["StatusCode"] == 200
    # What was written before the failure was already sent.
    assert body_of(chunks) == b"partial"
    assert complete["ErrorCode"] == "Error"
    assert "went wrong mid-stream" in complete["ErrorDetails"]


def stream_url(gust, lam, name) -> str:
    if not gust.gateway:
        pytest.skip("this build of gust up runs no gateway")
    url = lam.create_function_url_config(FunctionName=name, AuthType="NONE", InvokeMode="RESPONSE_STREAM")
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    return url["FunctionUrl"]


def test_http_response_stream_through_a_function_url(gust, lam):
    name = node_function(lam, "index.http")
    url = stream_url(gust, lam, name)
    parts = urllib.parse.urlsplit(url + "some/path")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        conn.request("GET", parts.path, headers={"Origin": "https://app.example"})
        resp = conn.getresponse()
        assert resp.status == 201
        assert resp.getheader("content-type") == "text/plain"
        assert resp.getheader("x-streamed") == "yes"
        assert resp.headers.get_all("set-cookie") == ["a=1", "b=2; Path=/"]
        assert resp.getheader("x-amzn-requestid")
        assert resp.getheader("transfer-encoding") == "chunked"
        started = time.monotonic()
        first = resp.read1(64)
        first_at = time.monotonic() - started
        rest = resp.read()
        done_at = time.monotonic() - started
        assert first == b"hello "
        assert first + rest == b"hello from /some/path"
        # The first chunk came well before the function's 600 ms sleep was over.
        assert done_at - first_at >= 0.25, (first_at, done_at)
    finally:
        conn.close()


def test_function_that_does_not_stream_through_a_stream_url(gust, lam):
    name = unique("stream-url-py")
    create_function(lam, name=name, code=zip_dir(None, extra={"app.py": PY_URL_APP}), handler="app.handler")
    url = stream_url(gust, lam, name)
    with urllib.request.urlopen(url, timeout=20) as resp:
        assert resp.status == 202
        assert resp.headers["x-py"] == "1"
        assert resp.headers.get_all("set-cookie") == ["p=1"]
        assert resp.read() == b"from python"


def test_error_through_a_stream_url(gust, lam):
    name = node_function(lam, "index.midfail")
    url = stream_url(gust, lam, name)
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        conn.request("GET", parts.path)
        resp = conn.getresponse()
        # The head went out with the first byte; the failure then cuts the body short.
        assert resp.status == 200
        assert resp.getheader("content-type") == "text/plain"
        with pytest.raises(http.client.IncompleteRead) as e:
            resp.read()
        assert e.value.partial == b"partial"
    finally:
        conn.close()


def gust_invoke_stream(gust, name, payload, *extra):
    """Runs `gust invoke NAME --stream`, reading its stdout as it is written: returns the
    exit code, stdout's pieces with their arrival times (s), and stderr."""
    import os
    import subprocess

    from conftest import gust_bin

    started = time.monotonic()
    proc = subprocess.Popen(
        [str(gust_bin()), "invoke", name, "--stream", "--payload", json.dumps(payload),
         *extra, "--data-dir", str(gust.data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(gust.data_dir)},
    )
    pieces = []
    while True:
        data = os.read(proc.stdout.fileno(), 65536)
        if not data:
            break
        pieces.append((data, time.monotonic() - started))
    stderr = proc.stderr.read().decode()
    return proc.wait(timeout=30), pieces, stderr


def test_gust_invoke_stream_prints_chunks_as_they_arrive(gust, node_stream):
    code, pieces, stderr = gust_invoke_stream(gust, node_stream, {"pause_ms": 800})
    assert code == 0, stderr
    out = b"".join(p for p, _ in pieces).decode()
    assert out.startswith("first,second,"), out
    # "first," was printed while the function was still sleeping.
    assert pieces[0][0] == b"first,", pieces
    assert pieces[-1][1] - pieces[0][1] >= 0.6, pieces


def test_gust_invoke_stream_reports_errors_and_logs(gust, lam):
    code, pieces, stderr = gust_invoke_stream(gust, node_function(lam, "index.midfail"), {})
    assert code == 1
    assert b"".join(p for p, _ in pieces) == b"partial"
    assert "function error (Error):" in stderr and "went wrong mid-stream" in stderr, stderr

    name = unique("stream-py")
    create_function(lam, name=name, code=zip_function("py_basic"), handler="app.echo")
    code, pieces, stderr = gust_invoke_stream(gust, name, {"k": 1}, "--log")
    assert code == 0, stderr
    assert json.loads(b"".join(p for p, _ in pieces))["event"] == {"k": 1}
    assert "REPORT RequestId: " in stderr, stderr
