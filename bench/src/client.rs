//! The load generator: one HTTP/1.1 keep-alive connection per concurrent worker (raw hyper
//! client connections, no pool, no proxy logic), every request built and SigV4-signed on the
//! spot when the target wants signatures. The connection and its worker run in one task, so a
//! request costs no cross-thread wake-up on the client side.
//!
//! The same code drives Gust and the bare hyper baseline, so the difference between the two is
//! what Gust adds (signature verification included).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use gust_aws::sigv4::{sign_headers, Credentials, SigningParams};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go, and how they are signed.
pub struct Target {
    pub addr: SocketAddr,
    pub signer: Option<Signer>,
}

pub struct Signer {
    pub creds: Credentials,
    pub region: String,
    /// The service in the credential scope (`lambda`, `dynamodb`, ...).
    pub service: &'static str,
}

impl Target {
    pub fn new(addr: SocketAddr, signer: Option<Signer>) -> Arc<Target> {
        Arc::new(Target { addr, signer })
    }
}

/// One request, prepared once and sent many times.
#[derive(Clone)]
pub struct Req {
    method: Method,
    /// Absolute form, for the signature.
    full: Uri,
    /// Origin form, for the request line.
    path: Uri,
    host: HeaderValue,
    body: Bytes,
    /// `Content-Type` when there is a body.
    content_type: HeaderValue,
    /// Further headers, signed like the others (e.g. `X-Amz-Target`).
    extra: Vec<(http::HeaderName, HeaderValue)>,
}

impl Req {
    pub fn new(target: &Target, method: Method, path: &str, body: impl Into<Bytes>) -> Result<Req> {
        let authority = target.addr.to_string();
        let body = body.into();
        Ok(Req {
            method,
            full: format!("http://{authority}{path}")
                .parse()
                .context("request uri")?,
            path: path.parse().context("request path")?,
            host: HeaderValue::from_str(&authority)?,
            body,
            content_type: HeaderValue::from_static("application/json"),
            extra: Vec::new(),
        })
    }

    /// An AWS JSON-protocol request (`POST /` with `X-Amz-Target`), e.g. DynamoDB's JSON 1.0.
    pub fn aws_json(
        target: &Target,
        content_type: &'static str,
        amz_target: &str,
        body: impl Into<Bytes>,
    ) -> Result<Req> {
        let mut req = Req::new(target, Method::POST, "/", body)?;
        req.content_type = HeaderValue::from_static(content_type);
        req.extra.push((
            http::HeaderName::from_static("x-amz-target"),
            HeaderValue::from_str(amz_target)?,
        ));
        Ok(req)
    }

    /// The same request with another body (cheap: the URI and headers are shared).
    pub fn with_body(&self, body: impl Into<Bytes>) -> Req {
        Req {
            body: body.into(),
            ..self.clone()
        }
    }

    /// The request as sent: fresh date and signature every time.
    fn build(&self, target: &Target) -> http::Request<Full<Bytes>> {
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(http::header::HOST, self.host.clone());
        if !self.body.is_empty() {
            headers.insert(http::header::CONTENT_TYPE, self.content_type.clone());
        }
        for (k, v) in &self.extra {
            headers.insert(k.clone(), v.clone());
        }
        if let Some(s) = &target.signer {
            let params = SigningParams {
                region: &s.region,
                service: s.service,
                time: time::OffsetDateTime::now_utc(),
            };
            sign_headers(
                &self.method,
                &self.full,
                &mut headers,
                &self.body,
                &s.creds,
                &params,
            );
        }
        let mut req = http::Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.path.clone();
        *req.headers_mut() = headers;
        req
    }

    /// Builds and signs the request without sending it (to measure what signing costs).
    pub fn build_only(&self, target: &Target) -> usize {
        self.build(target).headers().len()
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("reply is not JSON: {}", self.snippet()))
    }

    pub fn snippet(&self) -> String {
        let s = String::from_utf8_lossy(&self.body);
        let s: String = s.chars().take(300).collect();
        format!("HTTP {} {s}", self.status.as_u16())
    }

    /// The server closes the connection after this reply (`Connection: close`).
    pub fn closes(&self) -> bool {
        self.headers
            .get(http::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"))
    }

    /// Lambda's `X-Amz-Function-Error` (Unhandled / Handled) if the function failed.
    pub fn function_error(&self) -> Option<&str> {
        self.headers
            .get("x-amz-function-error")
            .and_then(|v| v.to_str().ok())
    }
}

async fn handshake(
    addr: SocketAddr,
) -> Result<(
    SendRequest<Full<Bytes>>,
    hyper::client::conn::http1::Connection<TokioIo<TcpStream>, Full<Bytes>>,
)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    Ok((sender, conn))
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
) -> Result<Reply> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// A single keep-alive connection for control calls (create, delete, one-off invokes).
pub struct Conn {
    target: Arc<Target>,
    sender: SendRequest<Full<Bytes>>,
    /// The last reply said `Connection: close`.
    closing: bool,
}

impl Conn {
    pub async fn connect(target: Arc<Target>) -> Result<Conn> {
        let (sender, conn) = handshake(target.addr).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            target,
            sender,
            closing: false,
        })
    }

    pub async fn send(&mut self, req: &Req) -> Result<Reply> {
        if self.closing || self.sender.is_closed() {
            let (sender, conn) = handshake(self.target.addr).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = sender;
        }
        let reply = send(&mut self.sender, req.build(&self.target)).await?;
        self.closing = reply.closes();
        Ok(reply)
    }

    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<Reply> {
        let req = Req::new(&self.target, method, path, body)?;
        self.send(&req).await
    }
}

/// When a load run ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this many requests in total.
    Count(u64),
    /// After this long (requests in flight at the deadline complete and count).
    For(Duration),
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Latency of every successful request.
    pub latencies: Vec<Duration>,
    pub ok: u64,
    /// HTTP 429 (Lambda's TooManyRequestsException).
    pub throttled: u64,
    /// Anything else: other statuses, function errors, transport errors.
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Connections opened during the run because the server closed the previous one after a
    /// reply (`Connection: close`; e.g. moto_server's werkzeug closes after every request). The
    /// reconnect is not inside any request's latency, but it is inside the throughput.
    pub reconnects: u64,
}

impl LoadResult {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn merge(&mut self, other: LoadResult) {
        self.latencies.extend(other.latencies);
        self.ok += other.ok;
        self.throttled += other.throttled;
        self.errors += other.errors;
        self.reconnects += other.reconnects;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Runs `concurrency` workers, each on its own connection, sending `req` back to back until
/// `stop`. Connections are opened before the clock starts.
pub async fn load(
    target: &Arc<Target>,
    req: &Req,
    concurrency: usize,
    stop: Stop,
) -> Result<LoadResult> {
    let req = req.clone();
    load_with(target, concurrency, stop, move |_, _| req.clone()).await
}

/// Like [`load`], but every request is made by `make(worker, ticket)`: `worker` is the worker's
/// index (0..concurrency), `ticket` a number unique across the run's requests (0, 1, 2, ...,
/// in the order they are issued), so requests can carry distinct or random keys.
pub async fn load_with<F>(
    target: &Arc<Target>,
    concurrency: usize,
    stop: Stop,
    make: F,
) -> Result<LoadResult>
where
    F: Fn(usize, u64) -> Req + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(handshake(target.addr).await?);
    }
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for (i, (sender, conn)) in conns.into_iter().enumerate() {
        let target = target.clone();
        let make = make.clone();
        let issued = issued.clone();
        tasks.push(tokio::spawn(worker(
            target,
            move |t| make(i, t),
            issued,
            stop,
            start,
            sender,
            conn,
        )));
    }
    let mut total = LoadResult::default();
    for t in tasks {
        total.merge(t.await.map_err(|e| anyhow!("load worker panicked: {e}"))?);
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

async fn worker(
    target: Arc<Target>,
    make: impl Fn(u64) -> Req,
    issued: Arc<AtomicU64>,
    stop: Stop,
    start: Instant,
    sender: SendRequest<Full<Bytes>>,
    conn: hyper::client::conn::http1::Connection<TokioIo<TcpStream>, Full<Bytes>>,
) -> LoadResult {
    let mut out = LoadResult {
        latencies: Vec::with_capacity(4096),
        ..Default::default()
    };
    // The next request's ticket, or None when the run is over.
    let more = |issued: &AtomicU64| match stop {
        Stop::Count(n) => Some(issued.fetch_add(1, Ordering::Relaxed)).filter(|&t| t < n),
        Stop::For(d) => (start.elapsed() < d).then(|| issued.fetch_add(1, Ordering::Relaxed)),
    };
    let mut next = Some((sender, conn));
    let mut reconnects = 0;
    let mut finished = true;
    while let Some((mut sender, conn)) = next.take() {
        // The connection is driven in this task, beside the requests.
        let requests = async {
            let mut broken = false;
            finished = true;
            while let Some(ticket) = more(&issued) {
                let req = make(ticket);
                let t0 = Instant::now();
                match send(&mut sender, req.build(&target)).await {
                    Ok(reply) => {
                        let dt = t0.elapsed();
                        let closes = reply.closes();
                        if reply.status == StatusCode::OK && reply.function_error().is_none() {
                            out.ok += 1;
                            out.latencies.push(dt);
                        } else if reply.status == StatusCode::TOO_MANY_REQUESTS {
                            out.throttled += 1;
                        } else {
                            out.errors += 1;
                            out.first_error.get_or_insert_with(|| reply.snippet());
                        }
                        if closes {
                            finished = false;
                            break;
                        }
                    }
                    Err(e) => {
                        out.errors += 1;
                        out.first_error
                            .get_or_insert_with(|| format!("transport: {e:#}"));
                        broken = true;
                        break;
                    }
                }
            }
            drop(sender);
            broken
        };
        let (broken, _) = tokio::join!(requests, conn);
        if broken && reconnects < 10 {
            reconnects += 1;
            next = handshake(target.addr).await.ok();
        } else if !broken && !finished {
            // The server closed the connection after a reply: open the next one.
            out.reconnects += 1;
            match handshake(target.addr).await {
                Ok(c) => next = Some(c),
                Err(e) => {
                    out.errors += 1;
                    out.first_error
                        .get_or_insert_with(|| format!("reconnect: {e:#}"));
                }
            }
        }
    }
    out
}
