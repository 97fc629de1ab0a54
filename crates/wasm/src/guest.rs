//! Runs one HTTP request in a fresh instance: a `wasi:http` component's
//! `incoming-handler.handle`, or a WAGI module's `_start` with the request in its environment
//! and on stdin. The store, the instance and every byte of guest memory are dropped at the
//! end; nothing survives to the next request.
//!
//! A component's response body is gathered whole, unless the caller asked for streaming and
//! the body is still unfinished [`STREAM_AFTER`] after the head (or is past
//! [`STREAM_ABOVE`] bytes): then the head goes to the caller at once and the body follows as
//! the guest writes it, its end saying whether the guest finished or failed.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, InstancePre, Store, UpdateDeadline};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{I32Exit, WasiCtx};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpView};

use crate::host::{AllowedHosts, CgiHost, Hooks, HttpHost, Limits, LogPipe};

/// Most bytes of a guest's stdout and stderr (its log) kept per request; output past it is
/// dropped (the guest's writes still succeed) and the log says how much was cut.
pub const MAX_LOG_BYTES: usize = 4 * 1024 * 1024;

/// What the guest gets for one request.
pub(crate) struct RunInput {
    pub request: http::Request<Bytes>,
    pub env: Arc<Vec<(String, String)>>,
    pub memory_bytes: usize,
    pub allowed: Arc<AllowedHosts>,
    pub deadline: Instant,
    /// `argv[0]` of a WAGI module (its file name).
    pub program: String,
    pub max_response_bytes: usize,
    /// Hand a response whose body is still unfinished [`STREAM_AFTER`] after its head (or
    /// past [`STREAM_ABOVE`] bytes) over here, and stream the rest (components only; a WAGI
    /// module's response is its whole stdout).
    pub stream: Option<tokio::sync::oneshot::Sender<StreamStart>>,
}

/// How long a component's response body may stay unfinished before it is streamed.
pub const STREAM_AFTER: std::time::Duration = std::time::Duration::from_millis(20);
/// Body bytes gathered beyond which a response is streamed even before [`STREAM_AFTER`].
pub const STREAM_ABOVE: usize = 256 * 1024;
/// Chunks in flight between a streaming guest and its reader (back-pressure beyond).
const STREAM_CHUNKS: usize = 16;

/// A response that is being streamed: its head, and the rest of its body.
pub(crate) struct StreamStart {
    pub parts: http::response::Parts,
    pub body: gust_runtime::BodyStream,
}

/// How the request ended.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The function's timeout passed.
    Timeout,
    /// A memory growth past the function's memory size was refused, and then the guest
    /// failed; the detail is what it failed with.
    OutOfMemory(String),
    /// The guest trapped (or a host call failed fatally); the message is the trap's.
    Trap { message: String, detail: String },
    /// A WAGI module exited with a non-zero status.
    Exit(i32),
    /// The guest's answer is not a valid response (none set, malformed CGI headers, too big).
    InvalidResponse(String),
}

impl Failure {
    /// One line saying what happened (the end of a streamed body that did not finish).
    pub(crate) fn summary(&self) -> String {
        match self {
            Failure::Timeout => "the function timed out".into(),
            Failure::OutOfMemory(_) => "the function ran out of memory".into(),
            Failure::Trap { message, .. } => format!("wasm trap: {message}"),
            Failure::Exit(code) => format!("the module exited with status {code}"),
            Failure::InvalidResponse(m) => m.clone(),
        }
    }
}

pub(crate) struct RunOutput {
    pub result: Result<http::Response<Bytes>, Failure>,
    /// Captured log output: stdout and stderr of a component (interleaved as written), or
    /// stderr of a WAGI module (whose stdout is the response).
    pub log: Bytes,
    /// Log bytes dropped past [`MAX_LOG_BYTES`].
    pub log_dropped: usize,
    pub peak_memory: usize,
    pub denied_hosts: Vec<String>,
}

/// Runs `input` in a fresh instance of a `wasi:http` component.
pub(crate) async fn run_http(
    engine: &Engine,
    pre: &ProxyPre<HttpHost>,
    input: RunInput,
) -> RunOutput {
    let log = LogPipe::new(MAX_LOG_BYTES);
    let mut wasi = WasiCtx::builder();
    wasi.stdout(log.clone())
        .stderr(log.clone())
        .envs(&input.env[..]);
    let host = HttpHost {
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        hooks: Hooks {
            allowed: input.allowed.clone(),
            denied: Vec::new(),
        },
        limits: Limits::new(input.memory_bytes),
        timed_out: false,
    };
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limits);
    arm_deadline(&mut store, input.deadline, |h| &mut h.timed_out);

    let (parts, body) = input.request.into_parts();
    let body = Full::new(body)
        .map_err(|never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} });
    let req = hyper::Request::from_parts(parts, body);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let prepared = (|| -> wasmtime::Result<_> {
        let mut view = store.data_mut().http();
        let req = view.new_incoming_request(Scheme::Http, req)?;
        let out = view.new_response_outparam(tx)?;
        Ok((req, out))
    })();
    let (req, out) = match prepared {
        Ok(v) => v,
        Err(e) => {
            return RunOutput {
                result: Err(Failure::InvalidResponse(format!("request rejected: {e:#}"))),
                log: Bytes::new(),
                log_dropped: 0,
                peak_memory: 0,
                denied_hosts: Vec::new(),
            }
        }
    };
    let pre = pre.clone();
    let guest = async move {
        let result = async {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        }
        .await;
        // Dropping the store drops the response outparam if the guest never set it, which
        // ends the wait below; the rest of the state is read back first.
        let host = store.into_data();
        let summary = Summary {
            peak: host.limits.peak,
            denied_memory: host.limits.denied,
            timed_out: host.timed_out,
            denied_hosts: host.hooks.denied,
        };
        (result, summary)
    };
    let max = input.max_response_bytes;
    let stream = input.stream;
    // Where a streamed body's end is said, once the invocation's outcome is known.
    let end_slot: EndSlot = Arc::default();
    let end_in = end_slot.clone();
    let response = async move {
        let resp = match rx.await {
            Ok(Ok(resp)) => resp,
            Ok(Err(code)) => {
                return Err(Failure::InvalidResponse(format!(
                    "the guest answered with an error: {code:?}"
                )))
            }
            Err(_) => {
                return Err(Failure::InvalidResponse(
                    "the guest returned without setting a response".into(),
                ))
            }
        };
        let (parts, body) = resp.into_parts();
        match stream {
            None => match Limited::new(body, max).collect().await {
                Ok(b) => Ok(http::Response::from_parts(parts, b.to_bytes())),
                Err(e) => Err(Failure::InvalidResponse(format!(
                    "reading the response body failed: {e}"
                ))),
            },
            Some(start) => gather_or_stream(parts, body, max, start, &end_in).await,
        }
    };
    let joined = tokio::time::timeout_at(tokio::time::Instant::from_std(input.deadline), async {
        tokio::join!(guest, response)
    })
    .await;
    let Ok(((ran, summary), response)) = joined else {
        end_stream(&end_slot, &Err(Failure::Timeout));
        let (log, log_dropped) = log.contents();
        return RunOutput {
            result: Err(Failure::Timeout),
            log,
            log_dropped,
            peak_memory: 0,
            denied_hosts: Vec::new(),
        };
    };
    let result = match ran {
        Ok(()) => response,
        // `wasi:cli/exit` with success after answering is a normal end.
        Err(e) if e.downcast_ref::<I32Exit>().is_some_and(|x| x.0 == 0) => response,
        Err(e) => Err(classify(e, &summary)),
    };
    // A streamed body is complete only if the guest also returned normally (a guest that
    // fails leaves its body unfinished, which ends it like a finished one).
    end_stream(&end_slot, &result);
    // A response already sent stands even if the guest failed afterwards only when it was
    // complete; a failure before or during the body is the invocation's failure.
    let (log, log_dropped) = log.contents();
    RunOutput {
        result,
        log,
        log_dropped,
        peak_memory: summary.peak,
        denied_hosts: summary.denied_hosts,
    }
}

/// Where the end of a streamed body is said (empty unless the body is being streamed).
type EndSlot = Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<Result<(), String>>>>>;

/// Tells a streamed body's reader how it ended: cleanly if `result` is a response.
fn end_stream(slot: &EndSlot, result: &Result<http::Response<Bytes>, Failure>) {
    let end = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(end) = end {
        let _ = end.send(result.as_ref().map(|_| ()).map_err(Failure::summary));
    }
}

/// Reads a component's response body: whole, if it is finished within [`STREAM_AFTER`] and
/// [`STREAM_ABOVE`] bytes; otherwise the head and the bytes so far go to `start` and the
/// rest follows as the guest writes it; the stream's end goes into `end_slot`, for the
/// caller to send when the invocation's outcome is known. A streamed response's result here
/// has an empty body (the bytes went to the reader).
async fn gather_or_stream<B>(
    parts: http::response::Parts,
    body: B,
    max: usize,
    start: tokio::sync::oneshot::Sender<StreamStart>,
    end_slot: &EndSlot,
) -> Result<http::Response<Bytes>, Failure>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut body = body;
    let mut gathered: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    let read_failed = |e: &dyn std::fmt::Display| {
        Failure::InvalidResponse(format!("reading the response body failed: {e}"))
    };
    let too_big =
        || Failure::InvalidResponse(format!("the response body is larger than {max} bytes"));
    let linger = tokio::time::sleep(STREAM_AFTER);
    tokio::pin!(linger);
    while total <= STREAM_ABOVE {
        tokio::select! {
            biased;
            frame = body.frame() => match frame {
                None => {
                    let whole = match gathered.len() {
                        0 => Bytes::new(),
                        1 => gathered.pop().unwrap_or_default(),
                        _ => Bytes::from(gathered.concat()),
                    };
                    return Ok(http::Response::from_parts(parts, whole));
                }
                Some(Err(e)) => return Err(read_failed(&e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        total += data.len();
                        if total > max {
                            return Err(too_big());
                        }
                        gathered.push(data);
                    }
                }
            },
            () = &mut linger => break,
        }
    }
    // Still being written: hand the head and the bytes so far over, then forward the rest.
    let (tx, chunks) = tokio::sync::mpsc::channel(STREAM_CHUNKS);
    let (end_tx, end) = tokio::sync::oneshot::channel();
    *end_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(end_tx);
    let head = http::Response::from_parts(parts.clone(), Bytes::new());
    let so_far = Bytes::from(gathered.concat());
    if !so_far.is_empty() {
        // Cannot fail: the channel is new and has room.
        let _ = tx.try_send(so_far);
    }
    let body_stream = gust_runtime::BodyStream {
        chunks,
        end,
        hold: None,
    };
    // A reader that is gone does not stop the guest: the rest is read and dropped.
    let mut reader = start
        .send(StreamStart {
            parts,
            body: body_stream,
        })
        .is_ok()
        .then_some(tx);
    loop {
        match body.frame().await {
            None => return Ok(head),
            Some(Err(e)) => return Err(read_failed(&e)),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                total += data.len();
                if total > max {
                    return Err(too_big());
                }
                if let Some(tx) = &reader {
                    if tx.send(data).await.is_err() {
                        reader = None;
                    }
                }
            }
        }
    }
}

/// Runs `input` in a fresh instance of a WAGI (WASI preview-1 command) module.
pub(crate) async fn run_cgi(
    engine: &Engine,
    pre: &InstancePre<CgiHost>,
    input: RunInput,
) -> RunOutput {
    let stdout = MemoryOutputPipe::new(input.max_response_bytes + 64 * 1024);
    let stderr = LogPipe::new(MAX_LOG_BYTES);
    let (parts, body) = input.request.into_parts();
    let mut env = cgi_env(&parts, body.len());
    env.extend(input.env.iter().cloned());
    let mut wasi = WasiCtx::builder();
    wasi.stdin(MemoryInputPipe::new(body))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .envs(&env)
        .arg(&input.program);
    let host = CgiHost {
        wasi: wasi.build_p1(),
        limits: Limits::new(input.memory_bytes),
        timed_out: false,
    };
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limits);
    arm_deadline(&mut store, input.deadline, |h| &mut h.timed_out);
    let pre = pre.clone();
    let run = async {
        let instance = pre.instantiate_async(&mut store).await?;
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start.call_async(&mut store, ()).await
    };
    let ran = tokio::time::timeout_at(tokio::time::Instant::from_std(input.deadline), run).await;
    let host = store.into_data();
    let summary = Summary {
        peak: host.limits.peak,
        denied_memory: host.limits.denied,
        timed_out: host.timed_out,
        denied_hosts: Vec::new(),
    };
    let result = match ran {
        Err(_) => Err(Failure::Timeout),
        Ok(Ok(())) => parse_cgi(stdout.contents()),
        Ok(Err(e)) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(0)) => parse_cgi(stdout.contents()),
            Some(I32Exit(code)) if !summary.denied_memory => Err(Failure::Exit(*code)),
            _ => Err(classify(e, &summary)),
        },
    };
    let (log, log_dropped) = stderr.contents();
    RunOutput {
        result,
        log,
        log_dropped,
        peak_memory: summary.peak,
        denied_hosts: summary.denied_hosts,
    }
}

struct Summary {
    peak: usize,
    denied_memory: bool,
    timed_out: bool,
    denied_hosts: Vec<String>,
}

/// Checks the deadline at every epoch tick and yields to the executor in between, so a
/// spinning guest neither overruns its timeout nor holds a worker thread.
fn arm_deadline<T: Send + 'static>(
    store: &mut Store<T>,
    deadline: Instant,
    flag: fn(&mut T) -> &mut bool,
) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut cx| {
        if Instant::now() >= deadline {
            *flag(cx.data_mut()) = true;
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(UpdateDeadline::Yield(1))
    });
}

fn classify(e: wasmtime::Error, summary: &Summary) -> Failure {
    if summary.timed_out {
        return Failure::Timeout;
    }
    let message = match e.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => format!("wasm trap: {trap}"),
        None => format!("{}", e.root_cause()),
    };
    if summary.denied_memory {
        return Failure::OutOfMemory(message);
    }
    Failure::Trap {
        message,
        detail: format!("{e:?}"),
    }
}

/// The CGI/1.1 request variables WAGI defines, from the request.
fn cgi_env(parts: &http::request::Parts, body_len: usize) -> Vec<(String, String)> {
    let uri = &parts.uri;
    let path = uri.path().to_string();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost")
        .to_string();
    let (server_name, server_port) = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h.to_string(), p.to_string()),
        _ => (host.clone(), "80".to_string()),
    };
    let version = match parts.version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    };
    let mut env = vec![
        ("AUTH_TYPE".into(), String::new()),
        ("CONTENT_LENGTH".into(), body_len.to_string()),
        (
            "CONTENT_TYPE".into(),
            parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
        ),
        ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
        ("PATH_INFO".into(), path.clone()),
        ("PATH_TRANSLATED".into(), path.clone()),
        ("QUERY_STRING".into(), uri.query().unwrap_or("").to_string()),
        ("REMOTE_ADDR".into(), "127.0.0.1".into()),
        ("REMOTE_HOST".into(), "127.0.0.1".into()),
        ("REMOTE_USER".into(), String::new()),
        ("REQUEST_METHOD".into(), parts.method.as_str().to_string()),
        ("SCRIPT_NAME".into(), String::new()),
        ("SERVER_NAME".into(), server_name),
        ("SERVER_PORT".into(), server_port),
        ("SERVER_PROTOCOL".into(), version.into()),
        ("SERVER_SOFTWARE".into(), "Gust".into()),
        ("X_MATCHED_ROUTE".into(), "/...".into()),
        ("X_RAW_PATH_INFO".into(), path),
        (
            "X_FULL_URL".into(),
            format!(
                "http://{host}{}",
                uri.path_and_query().map_or("/", |p| p.as_str())
            ),
        ),
    ];
    for (name, value) in &parts.headers {
        let Ok(value) = value.to_str() else { continue };
        let key = format!(
            "HTTP_{}",
            name.as_str().to_ascii_uppercase().replace('-', "_")
        );
        env.push((key, value.to_string()));
    }
    env
}

/// Parses a CGI response: header lines (`Content-Type`, `Status: 404 Not Found`,
/// `Location`, any other header), a blank line, the body. Output without a header block
/// (its first line is not `Name: value`) is taken as a `200` body, as most WAGI hosts do.
pub(crate) fn parse_cgi(out: Bytes) -> Result<http::Response<Bytes>, Failure> {
    let split = find_blank_line(&out);
    let looks_like_header = {
        let first = out.split(|b| *b == b'\n').next().unwrap_or_default();
        let first = String::from_utf8_lossy(first);
        first.split_once(':').is_some_and(|(n, _)| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    };
    let Some((head_end, body_start)) = split.filter(|_| looks_like_header) else {
        let mut resp = http::Response::new(out);
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        return Ok(resp);
    };
    let head = String::from_utf8_lossy(&out[..head_end]).into_owned();
    let mut builder = http::Response::builder();
    let mut status = None;
    let mut location = false;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Failure::InvalidResponse(format!(
                "malformed CGI header line: {line:?}"
            )));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("");
            status = Some(
                code.parse::<u16>()
                    .ok()
                    .filter(|c| (100..1000).contains(c))
                    .ok_or_else(|| {
                        Failure::InvalidResponse(format!("malformed CGI Status header: {value:?}"))
                    })?,
            );
            continue;
        }
        if name.eq_ignore_ascii_case("location") {
            location = true;
        }
        builder = builder.header(name.trim(), value);
    }
    let status = status.unwrap_or(if location { 302 } else { 200 });
    builder
        .status(status)
        .body(out.slice(body_start..))
        .map_err(|e| Failure::InvalidResponse(format!("malformed CGI headers: {e}")))
}

/// The end of the header block and the start of the body (`\n\n` or `\r\n\r\n`).
fn find_blank_line(out: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < out.len() {
        if out[i] == b'\n' {
            if out.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if out.get(i + 1) == Some(&b'\r') && out.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_responses() {
        let r = parse_cgi(Bytes::from_static(
            b"Content-Type: application/json\nStatus: 201 Created\n\n{\"a\":1}",
        ))
        .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.body(), &Bytes::from_static(b"{\"a\":1}"));
        let r = parse_cgi(Bytes::from_static(b"Location: /x\r\n\r\n")).unwrap();
        assert_eq!(r.status(), 302);
        let r = parse_cgi(Bytes::from_static(b"just text\n\nmore")).unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.body(), &Bytes::from_static(b"just text\n\nmore"));
        assert!(parse_cgi(Bytes::from_static(b"Status: abc\n\n")).is_err());
    }

    #[test]
    fn cgi_variables() {
        let req = http::Request::post("/a/b?x=1")
            .header("host", "fn.local:8080")
            .header("x-thing", "v")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let env: std::collections::HashMap<_, _> = cgi_env(&parts, 3).into_iter().collect();
        assert_eq!(env["REQUEST_METHOD"], "POST");
        assert_eq!(env["PATH_INFO"], "/a/b");
        assert_eq!(env["QUERY_STRING"], "x=1");
        assert_eq!(env["CONTENT_LENGTH"], "3");
        assert_eq!(env["SERVER_NAME"], "fn.local");
        assert_eq!(env["SERVER_PORT"], "8080");
        assert_eq!(env["HTTP_X_THING"], "v");
        assert_eq!(env["X_FULL_URL"], "http://fn.local:8080/a/b?x=1");
    }
}
