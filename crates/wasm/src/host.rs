//! Per-request host state (the `T` of a `Store<T>`): WASI contexts, the memory limiter, the
//! outbound-HTTP policy and the flags the executor reads back after the guest ran.
//!
//! A store and its state live exactly as long as one request; nothing here is shared
//! between requests.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

/// Enforces the function's memory size over all linear memories of the instance together
/// (a component may have several), and records the peak and whether a growth was refused.
#[derive(Debug)]
pub(crate) struct Limits {
    pub max_bytes: usize,
    pub total: usize,
    pub peak: usize,
    pub denied: bool,
}

/// Largest table (in elements) a guest may grow to.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl Limits {
    pub(crate) fn new(max_bytes: usize) -> Limits {
        Limits {
            max_bytes,
            total: 0,
            peak: 0,
            denied: false,
        }
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.total - current.min(self.total) + desired;
        if total > self.max_bytes {
            self.denied = true;
            return Ok(false);
        }
        self.total = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Which hosts a guest may send HTTP requests to (`GUST_WASM_ALLOWED_HOSTS`).
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    any: bool,
    /// Lowercase patterns: `host`, `host:port`, or `*.suffix` (any subdomain).
    patterns: Vec<String>,
}

impl AllowedHosts {
    /// Parses a comma-separated list: `example.com`, `api.example.com:8080`,
    /// `*.example.com`, `127.0.0.1:9000`, or `*` for any host. Empty: none.
    pub fn parse(list: &str) -> AllowedHosts {
        let mut hosts = AllowedHosts::default();
        for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if p == "*" {
                hosts.any = true;
            } else {
                hosts.patterns.push(p.to_ascii_lowercase());
            }
        }
        hosts
    }

    /// Whether `host` (no port) on `port` is allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        if self.any {
            return true;
        }
        let host = host.to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.patterns.iter().any(|p| {
            let (pat_host, pat_port) = match p.rsplit_once(':') {
                Some((h, port_s)) if !h.contains(':') || h.ends_with(']') => {
                    (h, port_s.parse::<u16>().ok())
                }
                _ => (p.as_str(), None),
            };
            let pat_host = pat_host.trim_start_matches('[').trim_end_matches(']');
            if pat_port.is_some_and(|pp| pp != port) {
                return false;
            }
            match pat_host.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => pat_host == host,
            }
        })
    }
}

/// `wasi:http` hooks: outbound requests only to allowed hosts.
pub(crate) struct Hooks {
    pub allowed: Arc<AllowedHosts>,
    /// Hosts refused during this request, for the function's log.
    pub denied: Vec<String>,
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let uri = request.uri();
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !self.allowed.allows(&host, port) {
            self.denied.push(format!("{host}:{port}"));
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// State of a `wasi:http` component's store.
pub(crate) struct HttpHost {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub hooks: Hooks,
    pub limits: Limits,
    pub timed_out: bool,
}

impl WasiView for HttpHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HttpHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// State of a WAGI module's store.
pub(crate) struct CgiHost {
    pub wasi: WasiP1Ctx,
    pub limits: Limits,
    pub timed_out: bool,
}

/// Captures a guest's log output (stdout/stderr) up to a limit and silently drops the rest,
/// as Lambda truncates an oversized log instead of failing the function. Clones share the
/// buffer.
#[derive(Clone)]
pub(crate) struct LogPipe {
    inner: Arc<std::sync::Mutex<LogBuf>>,
}

struct LogBuf {
    bytes: bytes::BytesMut,
    capacity: usize,
    dropped: usize,
}

impl LogPipe {
    pub(crate) fn new(capacity: usize) -> LogPipe {
        LogPipe {
            inner: Arc::new(std::sync::Mutex::new(LogBuf {
                bytes: bytes::BytesMut::new(),
                capacity,
                dropped: 0,
            })),
        }
    }

    fn push(&self, data: &[u8]) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = b.capacity.saturating_sub(b.bytes.len());
        let keep = data.len().min(room);
        b.bytes.extend_from_slice(&data[..keep]);
        b.dropped += data.len() - keep;
    }

    /// Takes what was kept, and how many bytes were dropped past the limit.
    pub(crate) fn contents(&self) -> (Bytes, usize) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut b.bytes).freeze(), b.dropped)
    }
}

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always writable: bytes past the limit are counted and dropped.
        Ok(1 << 20)
    }
}

#[async_trait::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Splits captured output into log lines (a last line without newline included).
pub(crate) fn lines(out: &Bytes) -> impl Iterator<Item = String> + '_ {
    let text = out.strip_suffix(b"\n").unwrap_or(out);
    let empty = text.is_empty();
    text.split(|b| *b == b'\n')
        .filter(move |_| !empty)
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts() {
        let a = AllowedHosts::parse("example.com, *.svc.local ,127.0.0.1:9000");
        assert!(a.allows("example.com", 443));
        assert!(a.allows("EXAMPLE.com", 80));
        assert!(!a.allows("evil.com", 443));
        assert!(!a.allows("notexample.com", 443));
        assert!(a.allows("db.svc.local", 80));
        assert!(!a.allows("svc.local", 80));
        assert!(a.allows("127.0.0.1", 9000));
        assert!(!a.allows("127.0.0.1", 9001));
        assert!(!AllowedHosts::parse("").allows("example.com", 80));
        assert!(AllowedHosts::parse("*").allows("anything", 1));
    }

    #[test]
    fn memory_limit_counts_all_memories() {
        let mut l = Limits::new(100);
        assert!(l.memory_growing(0, 60, None).unwrap());
        assert!(!l.memory_growing(0, 60, None).unwrap());
        assert!(l.denied);
        assert!(l.memory_growing(0, 40, None).unwrap());
        assert_eq!(l.peak, 100);
    }

    #[test]
    fn log_pipe_truncates_instead_of_failing() {
        let mut p = LogPipe::new(8);
        p.write(Bytes::from_static(b"12345")).unwrap();
        p.write(Bytes::from_static(b"67890")).unwrap();
        assert!(p.check_write().unwrap() > 0);
        p.write(Bytes::from_static(b"abc")).unwrap();
        let (kept, dropped) = p.contents();
        assert_eq!(kept, Bytes::from_static(b"12345678"));
        assert_eq!(dropped, 5);
    }

    #[test]
    fn output_lines() {
        let v: Vec<String> = lines(&Bytes::from_static(b"a\r\nb\nc")).collect();
        assert_eq!(v, ["a", "b", "c"]);
        assert_eq!(lines(&Bytes::new()).count(), 0);
        assert_eq!(
            lines(&Bytes::from_static(b"x\n\n")).collect::<Vec<_>>(),
            ["x", ""]
        );
    }
}
