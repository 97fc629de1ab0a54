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
//   - Response streaming (awslambda.streamifyResponse) is buffered: the whole
//     stream is posted as one response with the stream's content type.
'use strict';

const http = require('http');
const util = require('util');

const env = process.env;
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';

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
// Runtime API client: one keep-alive connection (http.Agent, maxSockets 1)

class RuntimeClient {
  constructor(address) {
    const i = address.lastIndexOf(':');
    this.hostname = i >= 0 ? address.slice(0, i).replace(/^\[|\]$/g, '') : address;
    this.port = i >= 0 ? parseInt(address.slice(i + 1), 10) : 80;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.nextOptions = {
      hostname: this.hostname,
      port: this.port,
      path: '/2018-06-01/runtime/invocation/next',
      method: 'GET',
      agent: this.agent,
    };
  }

  // callback(bodyString, headers)
  next(callback) {
    const req = http.request(this.nextOptions, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = chunks.length === 1 ? chunks[0].toString() : Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) {
          fatal(`Failed to get next invocation: HTTP ${res.statusCode}: ${body}`);
          return;
        }
        callback(body, res.headers);
      });
    });
    req.on('error', (e) => fatal(`Failed to get next invocation: ${e}`));
    req.end();
  }

  post(path, body, headers, callback) {
    headers['Content-Length'] = Buffer.byteLength(body);
    const req = http.request(
      {
        hostname: this.hostname,
        port: this.port,
        path,
        method: 'POST',
        headers,
        agent: this.agent,
      },
      (res) => {
        res.on('data', nop);
        res.on('end', () => {
          if (res.statusCode < 200 || res.statusCode > 299) {
            process.stderr.write(
              `[gust bootstrap] POST ${path} failed: HTTP ${res.statusCode}\n`,
            );
          }
          if (callback) callback();
        });
      },
    );
    req.on('error', (e) => fatal(`POST ${path} failed: ${e}`));
    req.end(body);
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

  postRawResponse(body, contentType, id, callback) {
    this.post(
      `/2018-06-01/runtime/invocation/${encodeURIComponent(id)}/response`,
      body,
      { 'Content-Type': contentType },
      callback,
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
  return { streaming, isAsync, argsNum: handler.length };
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

// awslambda.streamifyResponse handlers: the stream is collected and posted whole.
function invokeStreaming(body, headers) {
  const invokeId = startInvocation(headers);
  const { Writable } = require('stream');
  const chunks = [];
  let contentType = 'application/octet-stream';
  let beforeFirstWrite = null;
  const responseStream = new Writable({
    write(chunk, encoding, cb) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : Buffer.from(chunk));
      cb();
    },
  });
  responseStream.setContentType = (type) => {
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
      fn((c) => chunks.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c)));
    }
  };
  responseStream.write = (...args) => {
    flushPrelude();
    return origWrite(...args);
  };
  responseStream.end = (...args) => {
    if (typeof args[0] !== 'function' && args[0] !== undefined) flushPrelude();
    return origEnd(...args);
  };

  let settled = false;
  const failWith = (err) => {
    if (settled) return;
    settled = true;
    setBeforeExit(NO_OP_LISTENER);
    const error = typeof err === 'string' ? new Error(err) : err;
    logError('Invoke Error', error);
    client.postInvocationError(error, invokeId, scheduleIteration);
  };
  const finish = () => {
    if (settled) return;
    settled = true;
    setBeforeExit(NO_OP_LISTENER);
    flushPrelude();
    const payload = Buffer.concat(chunks);
    client.postRawResponse(payload, contentType, invokeId, scheduleIteration);
  };
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
      failWith,
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
