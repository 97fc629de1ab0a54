// Gust Node.js bootstrap: the runtime interface client for Node handlers.
//
// Launch (what crates/runtime is expected to run):
//
//     cwd = $LAMBDA_TASK_ROOT
//     node <dir>/bootstrap.js [<handler>]
//
// The file is CommonJS; keep it out of any directory whose package.json says
// "type": "module" (or hand it to node as bootstrap.cjs). Start node with a clean
// environment (NODE_OPTIONS, NODE_EXTRA_CA_CERTS etc. slow start-up).
//
// Environment read (as Lambda sets it):
//   AWS_LAMBDA_RUNTIME_API          host:port of the Runtime API (required)
//   _HANDLER                        "file.export" / "dir/file.a.b" (argv[2] wins)
//   LAMBDA_TASK_ROOT                code directory (default: cwd)
//   AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_VERSION,
//   AWS_LAMBDA_FUNCTION_MEMORY_SIZE, AWS_LAMBDA_LOG_GROUP_NAME,
//   AWS_LAMBDA_LOG_STREAM_NAME      copied onto the context (strings, as on Lambda)
//   AWS_LAMBDA_LOG_FORMAT           "JSON" for JSON log lines, else text
//   AWS_LAMBDA_LOG_LEVEL            TRACE|DEBUG|INFO|WARN|ERROR|FATAL filter for console.*
//   AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA, AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING
//
// Behaviour follows aws-lambda-nodejs-runtime-interface-client: handler
// resolution (extensionless, .js via require unless package.json "type":"module",
// then .js/.mjs via import(), .cjs, then node resolution), the Runtime.* error
// classes and messages, error bodies {"errorType","errorMessage","trace"}, console
// records "<ISO time>\t<request id>\t<LEVEL>\t<util.format(...)>" with "\n" turned
// into "\r" so a multi-line message stays one record.
//
// Completion rules (as the RIC):
//   - a handler returning a promise completes when it settles (no waiting for the
//     event loop);
//   - callback(err, result) / a sync handler: with context.callbackWaitsForEmptyEventLoop
//     (default true) the response is posted when the event loop has nothing left
//     to do (process 'beforeExit'; the idle keep-alive socket to the Runtime API is
//     unref'd, so it does not count); with false it is posted at once;
//   - context.succeed/fail/done post at once; only the first completion counts;
//   - a sync handler that never calls back gets a null response when the loop
//     empties; an async handler whose promise never settles gets
//     Runtime.NodeJsExit;
//   - an uncaught exception or unhandled rejection during an invocation is posted
//     as that invocation's error and the process exits (129 / 128), as on Lambda;
//     during init it is posted to /runtime/init/error and the process exits 129.
//   - a result JSON.stringify cannot encode (BigInt, cycles) fails the invocation
//     with Error "Unable to stringify response body", as on Lambda.
//   - Response streaming (awslambda.streamifyResponse) streams, as the RIC does:
//     at the handler's first byte the response is POSTed with
//     Lambda-Runtime-Function-Response-Mode: streaming, Transfer-Encoding: chunked,
//     the stream's Content-Type (application/octet-stream unless set) and
//     Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body;
//     every write goes out as a chunk when the handler makes it (a slow Runtime
//     API slows the handler's stream through its write callbacks). A handler that
//     fails after the stream started reports the error in those trailers (the
//     body base64 of the error JSON); one that fails before its first byte posts
//     to /error as a buffered handler does. HttpResponseStream.from writes its
//     JSON prelude and 8 NUL bytes before the first byte, with content type
//     application/vnd.awslambda.http-integration-response.
'use strict';

const net = require('net');
const util = require('util');

const env = process.env;
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const ERROR_BODY_TRAILER = 'Lambda-Runtime-Function-Error-Body';

// ---------------------------------------------------------------------------
// Errors (same names and messages as the RIC's Errors.js)

function defineError(name, ctor) {
  const cls = ctor || class extends Error {};
  Object.defineProperty(cls, 'name', { value: name });
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}
const ImportModuleError = defineError('ImportModuleError');
const HandlerNotFound = defineError('HandlerNotFound');
const MalformedHandlerName = defineError('MalformedHandlerName');
const UserCodeSyntaxError = defineError('UserCodeSyntaxError');
const MalformedStreamingHandler = defineError('MalformedStreamingHandler');
const InvalidStreamingOperation = defineError('InvalidStreamingOperation');
const NodeJsExit = defineError(
  'NodeJsExit',
  class extends Error {
    constructor() {
      super(
        'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
      );
    }
  },
);
const UnhandledPromiseRejection = defineError(
  'UnhandledPromiseRejection',
  class extends Error {
    constructor(reason, promise) {
      super(reason);
      this.reason = reason;
      this.promise = promise;
    }
  },
);

function isErrorLike(obj) {
  return (
    obj &&
    obj.name &&
    obj.message &&
    obj.stack &&
    typeof obj.name === 'string' &&
    typeof obj.message === 'string' &&
    typeof obj.stack === 'string'
  );
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

// The body posted to /error and /init/error.
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: error.name?.replaceAll('\x7F', '%7F'),
        errorMessage: error.message?.replaceAll('\x7F', '%7F'),
        trace: error.stack.replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(value) {
  if (value instanceof Error) {
    const ret = Object.assign(
      { errorType: value.name, errorMessage: value.message, code: value.code },
      value,
    );
    if (typeof value.stack === 'string') ret.stack = value.stack.split('\n');
    return ret;
  }
  return value;
}

// The error as written to the log ("\t" + JSON), like the RIC's toFormatted.
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

function xrayCause(err) {
  try {
    const stack = [];
    if (err.stack) {
      const lines = err.stack.replace(/\x7F/g, '%7F').split('\n');
      lines.shift();
      for (const stackLine of lines) {
        let line = stackLine.trim().replace(/\(|\)/g, '');
        line = line.substring(line.indexOf(' ') + 1);
        const label = line.lastIndexOf(' ') >= 0 ? line.slice(0, line.lastIndexOf(' ')) : null;
        let p = !label ? line : line.slice(line.lastIndexOf(' ') + 1);
        p = p.split(':');
        stack.push({ path: p[0], line: parseInt(p[1]), label: label || 'anonymous' });
      }
    }
    return JSON.stringify({
      working_directory: process.cwd(),
      exceptions: [
        {
          type: err.name?.replace(/\x7F/g, '%7F'),
          message: err.message?.replace(/\x7F/g, '%7F'),
          stack,
        },
      ],
      paths: Array.from(new Set(stack.map((e) => e.path))),
    });
  } catch (_) {
    return '';
  }
}

// ---------------------------------------------------------------------------
// Console patching (stdout, text or JSON), like the RIC's LogPatch.js

const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID = Symbol.for('aws.lambda.runtime.tenantId');
const JSON_LOGS = env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';
const stdout = process.stdout;

function jsonErrorReplacer(_k, value) {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value?.constructor?.name ?? 'UnknownError',
        errorMessage: value.message,
        stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      },
      value,
    );
  }
  return value;
}

function formatJson(requestId, timestamp, level, tenantId, params) {
  const result = { timestamp, level: level.name, requestId };
  if (tenantId !== undefined && tenantId !== null) result.tenantId = tenantId;
  if (params.length === 1) {
    result.message = params[0];
    try {
      return JSON.stringify(result, jsonErrorReplacer);
    } catch (_) {
      result.message = util.format(result.message);
      return JSON.stringify(result);
    }
  }
  result.message = util.format(...params);
  for (const param of params) {
    if (param instanceof Error) {
      result.errorType = param?.constructor?.name ?? 'UnknownError';
      result.errorMessage = param.message;
      result.stackTrace = typeof param.stack === 'string' ? param.stack.split('\n') : [];
      break;
    }
  }
  return JSON.stringify(result);
}

const NEWLINES = /\n/g;

function logText(level, params) {
  const line = `${new Date().toISOString()}\t${globalThis[REQUEST_ID]}\t${level.name}\t${util.format(...params)}`;
  stdout.write(line.replace(NEWLINES, '\r') + '\n');
}

function logJson(level, params) {
  const line = formatJson(
    globalThis[REQUEST_ID],
    new Date().toISOString(),
    level,
    globalThis[TENANT_ID],
    params,
  );
  stdout.write(line.replace(NEWLINES, '\r') + '\n');
}

function patchConsole() {
  const log = JSON_LOGS ? logJson : logText;
  const levels = {
    TRACE: { name: 'TRACE', priority: 1 },
    DEBUG: { name: 'DEBUG', priority: 2 },
    INFO: { name: 'INFO', priority: 3 },
    WARN: { name: 'WARN', priority: 4 },
    ERROR: { name: 'ERROR', priority: 5 },
    FATAL: { name: 'FATAL', priority: 6 },
  };
  const min = levels[env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? levels.TRACE;
  const nop = () => {};
  const make = (level) =>
    level.priority >= min.priority ? (...params) => log(level, params) : nop;
  console.trace = make(levels.TRACE);
  console.debug = make(levels.DEBUG);
  console.info = make(levels.INFO);
  console.log = console.info;
  console.warn = make(levels.WARN);
  console.error = make(levels.ERROR);
  console.fatal = (...params) => log(levels.FATAL, params);
}

function logError(message, err) {
  if (JSON_LOGS) console.error(intoError(err));
  else console.error(message, toFormatted(intoError(err)));
}

// ---------------------------------------------------------------------------
// Runtime API client: one keep-alive connection on a raw net.Socket with a minimal
// HTTP/1.1 client (node's http module costs a few hundred µs of CPU per request).
// Requests go one at a time (later ones queue, as with an http.Agent of maxSockets 1).
// The socket is ref'd while a request is outstanding and unref'd when idle, so an
// idle keep-alive connection does not keep the event loop alive (the completion
// rules for callbackWaitsForEmptyEventLoop rely on 'beforeExit'). A request whose
// kept-alive connection turns out to be closed before any byte of the response
// arrived is retried once on a fresh connection.

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_HEAD = 1024 * 1024;

class RuntimeClient {
  constructor(address) {
    const i = address.lastIndexOf(':');
    this.hostname = i >= 0 ? address.slice(0, i).replace(/^\[|\]$/g, '') : address;
    this.port = i >= 0 ? parseInt(address.slice(i + 1), 10) : 80;
    this.hostHeader = address;
    this.socket = null;
    this.reused = false; // the socket has carried a complete response
    this.buf = null; // received bytes not yet parsed
    this.current = null; // the request in flight
    this.queue = [];
    this.nextHead =
      'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: ' +
      address +
      '\r\nUser-Agent: gust-node-bootstrap\r\n\r\n';
  }

  // onResponse(status, headers, bodyBuffer); onError(error). body: null, string or Buffer.
  request(head, body, onResponse, onError) {
    const req = { head, body, onResponse, onError, retried: false, fresh: false, got: false, res: null };
    if (this.current) this.queue.push(req);
    else this._send(req);
  }

  _connect() {
    const s = net.connect({ host: this.hostname, port: this.port });
    s.setNoDelay(true);
    s.on('data', (d) => this._onData(s, d));
    s.on('error', (e) => this._onClose(s, e));
    s.on('close', () => this._onClose(s, null));
    this.socket = s;
    this.reused = false;
    this.buf = null;
    return s;
  }

  _send(req) {
    this.current = req;
    let s = this.socket;
    if (!s || s.destroyed) s = this._connect();
    req.fresh = !this.reused;
    req.got = false;
    req.res = null;
    s.ref();
    const body = req.body;
    if (req.stream) {
      s.write(req.head, 'latin1');
      const pending = req.stream.pending;
      req.stream.pending = null;
      for (const [data, cb] of pending) this._writeStream(req, data, cb);
    } else if (body === null) {
      s.write(req.head, 'latin1');
    } else if (typeof body === 'string') {
      s.write(body.length < 65536 ? req.head + body : req.head);
      if (body.length >= 65536) s.write(body);
    } else {
      s.cork();
      s.write(req.head, 'latin1');
      s.write(body);
      s.uncork();
    }
  }

  _onData(s, d) {
    if (s !== this.socket) return;
    const req = this.current;
    if (!req) {
      // Bytes nobody asked for: this connection is out of step; drop it.
      this.socket = null;
      s.destroy();
      return;
    }
    req.got = true;
    const res = req.res;
    if (res && !res.chunked && res.length >= 0) {
      // Collecting a body of known length: no copying until it is complete.
      res.chunks.push(d);
      res.have += d.length;
      if (res.have >= res.length) {
        const all = res.chunks.length === 1 ? res.chunks[0] : Buffer.concat(res.chunks, res.have);
        res.chunks = null;
        this.buf = all.length > res.length ? all.subarray(res.length) : null;
        this._complete(all.length > res.length ? all.subarray(0, res.length) : all);
        if (this.buf) this._parse();
      }
      return;
    }
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    this._parse();
  }

  // Parses this.buf for the request in flight; completes it when its body is whole.
  _parse() {
    for (;;) {
      const req = this.current;
      const buf = this.buf;
      if (!req || !buf) return;
      if (!req.res) {
        const end = buf.indexOf(CRLFCRLF);
        if (end < 0) {
          if (buf.length > MAX_HEAD) this._fail(new Error('Runtime API response head too large'));
          return;
        }
        const lines = buf.toString('latin1', 0, end).split('\r\n');
        this.buf = buf.length > end + 4 ? buf.subarray(end + 4) : null;
        const statusLine = lines[0];
        const status = parseInt(statusLine.split(' ', 2)[1], 10);
        const headers = {};
        for (let k = 1; k < lines.length; k++) {
          const line = lines[k];
          const c = line.indexOf(':');
          if (c <= 0) continue;
          const name = line.slice(0, c).trim().toLowerCase();
          const value = line.slice(c + 1).trim();
          headers[name] = headers[name] === undefined ? value : headers[name] + ', ' + value;
        }
        if (status >= 100 && status < 200) continue; // 100 Continue etc.: the response follows
        let keep = !statusLine.startsWith('HTTP/1.0');
        const conn = headers.connection;
        if (conn !== undefined) {
          const c = conn.toLowerCase();
          if (c.includes('close')) keep = false;
          else if (c.includes('keep-alive')) keep = true;
        }
        const res = { status, headers, keep, chunked: false, length: -1, chunks: [], have: 0, size: -1 };
        const te = headers['transfer-encoding'];
        if (te !== undefined && te.toLowerCase().includes('chunked')) res.chunked = true;
        else if (headers['content-length'] !== undefined) res.length = parseInt(headers['content-length'], 10) || 0;
        else if (status === 204 || status === 304) res.length = 0;
        else res.keep = false; // the body runs until the connection closes
        req.res = res;
        if (res.length === 0) {
          this._complete(Buffer.alloc(0));
          continue;
        }
        if (!res.chunked && res.length > 0 && this.buf) {
          const rest = this.buf;
          this.buf = null;
          this._onData(this.socket, rest);
          return;
        }
        continue;
      }
      const res = req.res;
      if (!res.chunked) {
        // Body until close: keep collecting.
        res.chunks.push(buf);
        res.have += buf.length;
        this.buf = null;
        return;
      }
      // Chunked: size line, data, CRLF; a zero size ends it (trailers skipped).
      if (res.size < 0) {
        const nl = buf.indexOf(CRLF);
        if (nl < 0) return;
        const line = buf.toString('latin1', 0, nl);
        this.buf = buf.length > nl + 2 ? buf.subarray(nl + 2) : null;
        if (res.trailers) {
          if (line === '') {
            const body = Buffer.concat(res.chunks, res.have);
            this._complete(body);
          }
          continue;
        }
        const size = parseInt(line.split(';', 1)[0].trim(), 16);
        if (!(size >= 0)) {
          this._fail(new Error('bad chunk size from the Runtime API'));
          return;
        }
        if (size === 0) res.trailers = true;
        else res.size = size;
        continue;
      }
      if (buf.length < res.size + 2) return;
      res.chunks.push(buf.subarray(0, res.size));
      res.have += res.size;
      this.buf = buf.length > res.size + 2 ? buf.subarray(res.size + 2) : null;
      res.size = -1;
    }
  }

  _complete(body) {
    const req = this.current;
    const res = req.res;
    this.current = null;
    if (res.keep) {
      this.reused = true;
    } else if (this.socket) {
      const s = this.socket;
      this.socket = null;
      this.buf = null;
      s.destroy();
    }
    if (this.queue.length) this._send(this.queue.shift());
    else if (this.socket) this.socket.unref();
    req.onResponse(res.status, res.headers, body);
  }

  _fail(error) {
    const req = this.current;
    const s = this.socket;
    this.socket = null;
    this.buf = null;
    this.current = null;
    if (s) s.destroy();
    if (req) req.onError(error);
  }

  _onClose(s, error) {
    if (s !== this.socket) return;
    this.socket = null;
    const req = this.current;
    if (!req) {
      this.buf = null;
      return; // an idle kept-alive connection went away: the next request reconnects
    }
    const res = req.res;
    if (!error && res && !res.chunked && res.length < 0) {
      if (this.buf) {
        res.chunks.push(this.buf);
        res.have += this.buf.length;
      }
      this.buf = null;
      this._complete(Buffer.concat(res.chunks, res.have));
      return;
    }
    this.buf = null;
    if (!req.got && !req.fresh && !req.retried && !req.stream) {
      req.retried = true;
      this._send(req);
      return;
    }
    this.current = null;
    req.onError(error || new Error('Runtime API closed the connection'));
  }

  // callback(bodyString, headers)
  next(callback) {
    this.request(
      this.nextHead,
      null,
      (status, headers, body) => {
        const text = body.toString();
        if (status !== 200) {
          fatal(`Failed to get next invocation: HTTP ${status}: ${text}`);
          return;
        }
        callback(text, headers);
      },
      (e) => fatal(`Failed to get next invocation: ${e}`),
    );
  }

  post(path, body, headers, callback) {
    let head = 'POST ' + path + ' HTTP/1.1\r\nHost: ' + this.hostHeader + '\r\nUser-Agent: gust-node-bootstrap\r\n';
    for (const name in headers) head += name + ': ' + headers[name] + '\r\n';
    head += 'Content-Length: ' + Buffer.byteLength(body) + '\r\n\r\n';
    this.request(
      head,
      body,
      (status) => {
        if (status < 200 || status > 299) {
          process.stderr.write(`[gust bootstrap] POST ${path} failed: HTTP ${status}\n`);
        }
        if (callback) callback();
      },
      (e) => fatal(`POST ${path} failed: ${e}`),
    );
  }

  // A streamed POST (chunked body, optional trailers). Returns { write(buf, cb), end(trailers,
  // cb) }: write sends one chunk (cb once it is handed to the kernel, so a slow reader slows
  // the writer down); end sends the last chunk and the trailers, and cb runs once the Runtime
  // API answered. Writes after end, or after the Runtime API answered early, are dropped.
  postStream(path, headers) {
    let head = 'POST ' + path + ' HTTP/1.1\r\nHost: ' + this.hostHeader + '\r\nUser-Agent: gust-node-bootstrap\r\n';
    for (const name in headers) head += name + ': ' + headers[name] + '\r\n';
    head += 'Transfer-Encoding: chunked\r\n\r\n';
    const stream = { pending: [], ended: false, answered: false, onEnd: null };
    const req = {
      head,
      body: null,
      stream,
      onResponse: (status) => {
        stream.answered = true;
        if (status < 200 || status > 299) {
          process.stderr.write(`[gust bootstrap] POST ${path} failed: HTTP ${status}\n`);
        }
        if (stream.ended) {
          if (stream.onEnd) stream.onEnd();
        } else {
          // Answered before the end (refused): the rest is dropped; the handler's own end
          // then completes at once.
          stream.ended = true;
        }
      },
      onError: (e) => fatal(`POST ${path} failed: ${e}`),
      retried: false,
      fresh: false,
      got: false,
      res: null,
    };
    if (this.current) this.queue.push(req);
    else this._send(req);
    const write = (data, cb) => {
      if (stream.ended) {
        if (cb) process.nextTick(cb);
      } else if (stream.pending) {
        stream.pending.push([data, cb]);
      } else {
        this._writeStream(req, data, cb);
      }
    };
    const end = (trailers, cb) => {
      if (stream.ended) {
        if (cb) process.nextTick(cb);
        return;
      }
      let tail = '0\r\n';
      if (trailers) for (const name in trailers) tail += name + ': ' + trailers[name] + '\r\n';
      tail += '\r\n';
      write(tail, null);
      stream.ended = true;
      stream.onEnd = cb;
    };
    return { write, end };
  }

  _writeStream(req, data, cb) {
    const s = this.socket;
    if (this.current !== req || !s || s.destroyed) {
      if (cb) process.nextTick(cb);
      return;
    }
    if (typeof data === 'string') {
      // The terminator and trailers, already framed.
      s.write(data, 'latin1', cb || undefined);
      return;
    }
    if (data.length === 0) {
      if (cb) process.nextTick(cb);
      return;
    }
    s.cork();
    s.write(data.length.toString(16) + '\r\n', 'latin1');
    s.write(data);
    s.write(CRLF, cb || undefined);
    s.uncork();
  }

  postInvocationResponse(response, id, callback) {
    const body = serializeResponse(response);
    this.post(
      `/2018-06-01/runtime/invocation/${encodeURIComponent(id)}/response`,
      body,
      { 'Content-Type': 'application/json' },
      callback,
    );
  }

  // Opens the streamed response of invocation `id`.
  streamInvocationResponse(contentType, id) {
    return this.postStream(
      `/2018-06-01/runtime/invocation/${encodeURIComponent(id)}/response`,
      {
        'Content-Type': headerSafe(contentType),
        'Lambda-Runtime-Function-Response-Mode': 'streaming',
        Trailer: `${ERROR_TYPE_HEADER}, ${ERROR_BODY_TRAILER}`,
      },
    );
  }

  postInvocationError(error, id, callback) {
    const response = toRapidResponse(error);
    const headers = {
      'Content-Type': 'application/json',
      [ERROR_TYPE_HEADER]: headerSafe(response.errorType),
    };
    const cause = xrayCause(error);
    if (cause && cause.length < 1024 * 1024) {
      headers['Lambda-Runtime-Function-XRay-Error-Cause'] = headerSafe(cause);
    }
    this.post(
      `/2018-06-01/runtime/invocation/${encodeURIComponent(id)}/error`,
      serializeResponse(response),
      headers,
      callback,
    );
  }

  postInitError(error, callback) {
    const response = toRapidResponse(error);
    this.post(
      '/2018-06-01/runtime/init/error',
      serializeResponse(response),
      { 'Content-Type': 'application/json', [ERROR_TYPE_HEADER]: headerSafe(response.errorType) },
      callback,
    );
  }
}

function nop() {}

function headerSafe(value) {
  return String(value ?? 'Unhandled').replace(/[^\x20-\x7e]/g, '');
}

function serializeResponse(body) {
  try {
    return JSON.stringify(body === undefined ? null : body);
  } catch (_) {
    throw new Error('Unable to stringify response body');
  }
}

function fatal(message) {
  process.stderr.write(`[gust bootstrap] ${message}\n`);
  process.exit(1);
}

// ---------------------------------------------------------------------------
// Loading the handler (same resolution order as the RIC's UserFunction.js)

const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';

function loadUserFunction(appRoot, fullHandlerString) {
  const path = require('path');
  const fs = require('fs');

  if (fullHandlerString.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandlerString}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const handlerString = path.basename(fullHandlerString);
  const moduleRoot = fullHandlerString.substring(0, fullHandlerString.indexOf(handlerString));
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match || match.length !== 3) throw new MalformedHandlerName('Bad handler');
  const [, moduleName, handlerPath] = match;

  const tryRequire = (file, ext) => {
    const p = file + (ext || '');
    return fs.existsSync(p) ? require(p) : undefined;
  };
  const tryImport = async (file, ext) => {
    const p = file + (ext || '');
    if (fs.existsSync(p)) return await import(require('url').pathToFileURL(p).href);
    return undefined;
  };
  const folderHasTypeModule = (folder) => {
    if (folder.endsWith('/node_modules')) return false;
    const pj = path.join(folder, '/package.json');
    if (fs.existsSync(pj)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(pj));
        if (pkg) return pkg.type === 'module';
      } catch (e) {
        console.warn(
          `${pj} cannot be read, it will be ignored for ES module detection purposes.`,
          e,
        );
        return false;
      }
    }
    if (folder === '/') return false;
    return folderHasTypeModule(path.resolve(folder, '..'));
  };

  const load = async () => {
    const lambdaStylePath = path.resolve(appRoot, moduleRoot, moduleName);
    const extensionless = tryRequire(lambdaStylePath);
    if (extensionless) return extensionless;
    const jsPath = lambdaStylePath + '.js';
    const typeModule = fs.existsSync(jsPath)
      ? folderHasTypeModule(path.resolve(path.dirname(jsPath)))
      : false;
    if (!typeModule) {
      const loaded = tryRequire(lambdaStylePath, '.js');
      if (loaded) return loaded;
    }
    const loaded =
      (typeModule && (await tryImport(lambdaStylePath, '.js'))) ||
      (await tryImport(lambdaStylePath, '.mjs')) ||
      tryRequire(lambdaStylePath, '.cjs');
    if (loaded) return loaded;
    const nodeStylePath = require.resolve(moduleName, { paths: [appRoot, moduleRoot] });
    return require(nodeStylePath);
  };

  if (!(env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA === '1' || env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA === 'true')) {
    globalThis.awslambda = {
      streamifyResponse: (handler, options) => {
        handler[HANDLER_STREAMING] = STREAM_RESPONSE;
        if (typeof options?.highWaterMark === 'number') {
          handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark);
        }
        return handler;
      },
      HttpResponseStream: HttpResponseStream,
    };
  }

  return load().then(
    (userApp) => {
      const handlerFunc = handlerPath
        .split('.')
        .reduce((nested, key) => nested && nested[key], userApp);
      if (!handlerFunc) {
        throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
      }
      if (typeof handlerFunc !== 'function') {
        throw new HandlerNotFound(`${fullHandlerString} is not a function`);
      }
      return handlerFunc;
    },
    (e) => {
      if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
      if (e && e.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
      throw e;
    },
  );
}

class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType('application/vnd.awslambda.http-integration-response');
    const metadataPrelude = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadataPrelude);
      write(new Uint8Array(8));
    };
    return underlyingStream;
  }
}

function handlerMetadata(handler) {
  let streaming = false;
  const mark = handler[HANDLER_STREAMING];
  if (mark !== undefined && mark !== null && mark !== false) {
    if (mark !== STREAM_RESPONSE) {
      throw new MalformedStreamingHandler('Only response streaming is supported.');
    }
    streaming = true;
  }
  let isAsync = false;
  try {
    isAsync = handler.constructor?.name === 'AsyncFunction';
  } catch (_) {}
  const highWaterMark = streaming ? handler[HANDLER_HIGHWATERMARK] : undefined;
  return { streaming, isAsync, argsNum: handler.length, highWaterMark };
}

// ---------------------------------------------------------------------------
// Invocation loop

const BEFORE_EXIT = Symbol.for('aws.lambda.beforeExit');
const NO_OP_LISTENER = () => {};
let client;
let handler;
let metadata;
const errorCallbacks = {
  uncaughtException: (error) => client.postInitError(error, () => process.exit(129)),
  unhandledRejection: (error) => client.postInitError(error, () => process.exit(128)),
};

function setBeforeExit(listener) {
  globalThis[BEFORE_EXIT] = listener;
}

function scheduleIteration() {
  setImmediate(nextInvocation);
}

function nextInvocation() {
  client.next(metadata.streaming ? invokeStreaming : invoke);
}

function isPromise(obj) {
  return obj && obj.then && typeof obj.then === 'function';
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

function startInvocation(headers) {
  const invokeId = headers['lambda-runtime-aws-request-id'];
  if (!invokeId) fatal('invocation id is missing or invalid');
  globalThis[REQUEST_ID] = invokeId;
  globalThis[TENANT_ID] = headers['lambda-runtime-aws-tenant-id'];
  errorCallbacks.uncaughtException = (error) =>
    client.postInvocationError(error, invokeId, () => process.exit(129));
  errorCallbacks.unhandledRejection = (error) =>
    client.postInvocationError(error, invokeId, () => process.exit(128));
  return invokeId;
}

// Fills the context object with environment and header data (throws on bad headers).
function attachEnvironmentData(ctx, headers) {
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) env._X_AMZN_TRACE_ID = trace;
  else delete env._X_AMZN_TRACE_ID;
  const deadline = headers['lambda-runtime-deadline-ms'];
  ctx.functionVersion = env.AWS_LAMBDA_FUNCTION_VERSION;
  ctx.functionName = env.AWS_LAMBDA_FUNCTION_NAME;
  ctx.memoryLimitInMB = env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
  ctx.logGroupName = env.AWS_LAMBDA_LOG_GROUP_NAME;
  ctx.logStreamName = env.AWS_LAMBDA_LOG_STREAM_NAME;
  ctx.clientContext = parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext');
  ctx.identity = parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity');
  ctx.invokedFunctionArn = headers['lambda-runtime-invoked-function-arn'];
  ctx.awsRequestId = headers['lambda-runtime-aws-request-id'];
  ctx.tenantId = headers['lambda-runtime-aws-tenant-id'];
  ctx.getRemainingTimeInMillis = function () {
    return deadline - Date.now();
  };
  return ctx;
}

// Builds callback, context (callbackWaitsForEmptyEventLoop, succeed, fail, done)
// and markCompleted for one invocation; only the first completion counts.
function buildCallbackContext(invokeId) {
  const postError = (err, callback) => {
    logError('Invoke Error', err);
    client.postInvocationError(err, invokeId, callback);
  };
  let completeInvoked = false;
  const complete = (result, callback) => {
    if (completeInvoked) {
      console.error(
        'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
      );
      return;
    }
    completeInvoked = true;
    client.postInvocationResponse(result, invokeId, callback);
  };
  let waitForEmptyEventLoop = true;

  const callback = (err, result) => {
    setBeforeExit(NO_OP_LISTENER);
    if (err !== undefined && err !== null) {
      postError(err, scheduleIteration);
    } else if (!waitForEmptyEventLoop) {
      complete(result, scheduleIteration);
    } else {
      setBeforeExit(() => {
        setImmediate(() => complete(result, scheduleIteration));
      });
    }
  };
  const done = (err, result) => {
    setBeforeExit(NO_OP_LISTENER);
    if (err !== undefined && err !== null) postError(err, scheduleIteration);
    else complete(result, scheduleIteration);
  };

  let finished = false;
  const once = (fn) =>
    function () {
      if (!finished) {
        fn.apply(null, arguments);
        finished = true;
      }
    };
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: once((result) => done(null, result)),
    fail: once((err) => (err === undefined || err === null ? done('handled') : done(err, null))),
    done: once(done),
  };
  return [once(callback), context, () => (completeInvoked = true)];
}

function invoke(body, headers) {
  const invokeId = startInvocation(headers);
  const [callback, context, markCompleted] = buildCallbackContext(invokeId);
  const succeed = context.succeed;
  const fail = context.fail;
  try {
    const isAsync = metadata.isAsync;
    setBeforeExit(() => {
      markCompleted();
      if (isAsync) {
        const error = new NodeJsExit();
        logError('Invoke Error', error);
        client.postInvocationError(error, invokeId, scheduleIteration);
      } else {
        client.postInvocationResponse(null, invokeId, scheduleIteration);
      }
    });
    const result = handler(JSON.parse(body), attachEnvironmentData(context, headers), callback);
    if (isPromise(result)) {
      result.then(succeed, fail).catch(fail);
    }
  } catch (err) {
    callback(err);
  }
}

// awslambda.streamifyResponse handlers: the response is POSTed in streaming mode,
// opened at the first byte (or at the end, for an empty stream), so an error before
// any byte is a plain /error post and one after it goes in the trailers.
function invokeStreaming(body, headers) {
  const invokeId = startInvocation(headers);
  const { Writable } = require('stream');
  let contentType = 'application/octet-stream';
  let beforeFirstWrite = null;
  let rapid = null;
  const open = () => {
    if (!rapid) rapid = client.streamInvocationResponse(contentType, invokeId);
    return rapid;
  };
  const options = {
    write(chunk, encoding, cb) {
      open().write(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk, cb);
    },
  };
  if (typeof metadata.highWaterMark === 'number') options.highWaterMark = metadata.highWaterMark;
  const responseStream = new Writable(options);
  responseStream.setContentType = (type) => {
    if (rapid) throw new InvalidStreamingOperation('Cannot set content-type, too late.');
    contentType = type;
  };
  Object.defineProperty(responseStream, '_onBeforeFirstWrite', {
    set(fn) {
      beforeFirstWrite = fn;
    },
    get() {
      return beforeFirstWrite;
    },
  });
  const origWrite = responseStream.write.bind(responseStream);
  const origEnd = responseStream.end.bind(responseStream);
  const flushPrelude = () => {
    if (beforeFirstWrite) {
      const fn = beforeFirstWrite;
      beforeFirstWrite = null;
      fn((c) => open().write(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c), null));
    }
  };
  // As the RIC: anything but a string or bytes is written as its JSON.
  const asChunk = (chunk) =>
    typeof chunk === 'string' || chunk instanceof Uint8Array ? chunk : JSON.stringify(chunk);
  responseStream.write = (chunk, ...rest) => {
    flushPrelude();
    return origWrite(asChunk(chunk), ...rest);
  };
  responseStream.end = (...args) => {
    if (typeof args[0] !== 'function' && args[0] !== undefined && args[0] !== null) {
      flushPrelude();
      args[0] = asChunk(args[0]);
    }
    return origEnd(...args);
  };

  let settled = false;
  // Ends the invocation with `err`: in the trailers once the stream is open, else on /error.
  const failWith = (err, after, logged) => {
    if (settled) return;
    settled = true;
    setBeforeExit(NO_OP_LISTENER);
    const error = typeof err === 'string' ? new Error(err) : err;
    if (!logged) logError('Invoke Error', error);
    const then = after || scheduleIteration;
    if (!rapid) {
      client.postInvocationError(error, invokeId, then);
      return;
    }
    const response = toRapidResponse(error);
    let encoded;
    try {
      encoded = serializeResponse(response);
    } catch (_) {
      encoded = JSON.stringify({ errorType: String(response.errorType), errorMessage: String(response.errorMessage) });
    }
    rapid.end(
      {
        [ERROR_TYPE_HEADER]: headerSafe(response.errorType),
        [ERROR_BODY_TRAILER]: Buffer.from(encoded).toString('base64'),
      },
      then,
    );
  };
  const finish = () => {
    if (settled) return;
    settled = true;
    setBeforeExit(NO_OP_LISTENER);
    flushPrelude();
    open().end(null, scheduleIteration);
  };
  // A crash mid-stream ends the stream with the error, then the process.
  errorCallbacks.uncaughtException = (error) =>
    settled ? process.exit(129) : failWith(error, () => process.exit(129), true);
  errorCallbacks.unhandledRejection = (error) =>
    settled ? process.exit(128) : failWith(error, () => process.exit(128), true);
  setBeforeExit(() => failWith('Response stream is not finished.'));
  try {
    const ctx = attachEnvironmentData({}, headers);
    const result = handler(JSON.parse(body), responseStream, ctx);
    if (!isPromise(result)) {
      failWith('Streaming does not support non-async handlers.');
      return;
    }
    result.then(
      (value) => {
        if (value !== undefined) console.warn('Streaming handlers ignore return values.');
        if (responseStream.writableFinished) finish();
        else responseStream.once('finish', finish);
      },
      (err) => failWith(err),
    );
  } catch (err) {
    failWith(err);
  }
}

function main() {
  patchConsole();
  const api = env.AWS_LAMBDA_RUNTIME_API;
  if (!api) fatal('AWS_LAMBDA_RUNTIME_API is not set');
  client = new RuntimeClient(api);

  process.on('uncaughtException', (error) => {
    logError('Uncaught Exception', error);
    errorCallbacks.uncaughtException(error);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new UnhandledPromiseRejection(reason, promise);
    logError('Unhandled Promise Rejection', error);
    errorCallbacks.unhandledRejection(error);
  });
  setBeforeExit(NO_OP_LISTENER);
  process.on('beforeExit', () => globalThis[BEFORE_EXIT]());

  const appRoot = env.LAMBDA_TASK_ROOT || process.cwd();
  const handlerString = process.argv[2] || env._HANDLER || '';
  let loading;
  try {
    loading = loadUserFunction(appRoot, handlerString);
  } catch (e) {
    loading = Promise.reject(e);
  }
  loading
    .then((fn) => {
      handler = fn;
      metadata = handlerMetadata(fn);
      if (
        env.AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING === undefined &&
        metadata.argsNum === 3 &&
        !metadata.isAsync &&
        !metadata.streaming
      ) {
        console.warn(
          'AWS Lambda plans to remove support for callback-based function handlers starting with Node.js 24. You will need to update this function to use an async handler to use Node.js 24 or later. For more information and to provide feedback on this change, see https://github.com/aws/aws-lambda-nodejs-runtime-interface-client/issues/137. To disable this warning, set the AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING environment variable.',
        );
      }
    })
    .then(scheduleIteration, (error) => {
      logError('Uncaught Exception', error);
      errorCallbacks.uncaughtException(error);
    });
}

main();
