"""A wasi:http/proxy component in Python, built by componentize-py (see build.sh).

Answers every request with JSON: a greeting, the request's method and path, the event it
got (the body), and the CloudEvents id, so tests can check what the host handed over.
"""

import json
import sys

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


def read_body(request: IncomingRequest) -> bytes:
    body = request.consume()
    stream = body.stream()
    data = b""
    while True:
        try:
            data += stream.blocking_read(65536)
        except Exception:
            break
    return data


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        headers = {k: v.decode() for k, v in request.headers().entries()}
        raw = read_body(request)
        try:
            event = json.loads(raw) if raw else None
        except ValueError:
            event = raw.decode(errors="replace")
        print("hello from python in wasm", file=sys.stderr)
        answer = json.dumps(
            {
                "hello": "python",
                "method": request.method().__class__.__name__,
                "path": request.path_with_query(),
                "event": event,
                "ce_id": headers.get("ce-id"),
            }
        ).encode()
        response = OutgoingResponse(Fields.from_list([("content-type", b"application/json")]))
        response.set_status_code(200)
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(answer)
        stream.__exit__(None, None, None)
        OutgoingBody.finish(body, None)

