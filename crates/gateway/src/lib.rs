//! Gust's API gateway data plane: the listener that application traffic reaches.
//!
//! Requests are matched to an HTTP API (by `Host`, then the optional stage prefix, then the
//! route with API Gateway's most-specific-match precedence) or to a Lambda function URL (by
//! `Host` `<url-id>.lambda-url.<region>.<anything>`, or by the path form
//! `/lambda-url/<url-id>/<rest>` for clients that cannot set `Host`). A route's function gets
//! an API Gateway event (payload 1.0 or 2.0, exactly as AWS documents them) through the
//! [`Invoker`], and its result is mapped back to HTTP; `wasm` functions get the raw request
//! through the [`HttpHandler`] instead; MOCK routes are answered by the gateway itself.
//! CORS preflights are answered here, every response carries a request id, and one access-log
//! line per request goes to `tracing` target `gust::access`. Function URLs whose `InvokeMode`
//! is `RESPONSE_STREAM` stream the function's response as it is written (`stream`, `body`).
//!
//! # Wiring (the server)
//! ```ignore
//! let gateway = gust_gateway::Gateway::new(
//!     gust_gateway::GatewayConfig::new(region, "http://127.0.0.1:8080"),
//!     gust_gateway::GatewayDeps { apis, functions, invoker, http, credentials },
//! );
//! let listener = tokio::net::TcpListener::bind(addr).await?;
//! tokio::spawn(gateway.clone().serve(listener, shutdown_signal));
//! ```
//! [`Gateway::serve`] returns once `shutdown` resolved and every in-flight request finished
//! (connections are closed gracefully). Tests may call [`Gateway::handle`] without a socket.
//!
//! Routing tables and the function records they name are compiled in memory and rebuilt only
//! when [`ApiStore::config_generation`] moves, so a request costs one atomic load, not a
//! store read. This crate does not manage APIs (the control plane writes them to the store)
//! and does not run functions (the invokers do).

mod body;
mod cors;
mod event_v1;
mod event_v2;
mod request;
mod response;
mod routes;
mod service;
mod stream;
mod url;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use gust_aws::sigv4::CredentialLookup;
use gust_runtime::{HttpHandler, Invoker};
use gust_store::{ApiStore, FunctionStore};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::routes::Snapshot;

pub use body::{ResponseBody, StreamError};
pub use url::function_url;

/// The largest request body accepted (API Gateway's payload quota: 10 MB).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// The largest request line plus header values (API Gateway: 10,240 bytes).
pub const MAX_HEADER_BYTES: usize = 10_240;

/// Settings of the gateway, chosen by the server.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Region reported in function URL domain names (`<id>.lambda-url.<region>.on.aws`).
    pub region: String,
    /// Where clients reach this listener (`http://127.0.0.1:8080`); function URLs are
    /// `<public_url>/lambda-url/<url-id>/`.
    pub public_url: String,
    /// Request bodies above this are refused with 413.
    pub max_body_bytes: usize,
    /// Request line plus headers above this are refused with 431.
    pub max_header_bytes: usize,
}

impl GatewayConfig {
    pub fn new(region: impl Into<String>, public_url: impl Into<String>) -> Self {
        GatewayConfig {
            region: region.into(),
            public_url: public_url.into().trim_end_matches('/').to_string(),
            max_body_bytes: MAX_BODY_BYTES,
            max_header_bytes: MAX_HEADER_BYTES,
        }
    }
}

/// What the gateway reads and calls; the server passes its concrete backends.
#[derive(Clone)]
pub struct GatewayDeps {
    /// APIs, function URLs and the configuration generation.
    pub apis: Arc<dyn ApiStore>,
    /// Function records (read only when the generation moves).
    pub functions: Arc<dyn FunctionStore>,
    /// Runs non-`wasm` functions with an API Gateway event.
    pub invoker: Arc<dyn Invoker>,
    /// Runs `wasm` functions on the raw HTTP request.
    pub http: Arc<dyn HttpHandler>,
    /// Secrets for verifying SigV4 on `AWS_IAM` function URLs.
    pub credentials: Arc<dyn CredentialLookup>,
}

impl std::fmt::Debug for GatewayDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayDeps").finish_non_exhaustive()
    }
}

/// The two ends of the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

/// The gateway: compiled routing state plus its dependencies. Cheap to share (`Arc`).
pub struct Gateway {
    config: GatewayConfig,
    deps: GatewayDeps,
    snapshot: RwLock<Arc<Snapshot>>,
    rebuild: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(config: GatewayConfig, deps: GatewayDeps) -> Arc<Gateway> {
        Arc::new(Gateway {
            config,
            deps,
            snapshot: RwLock::new(Arc::new(Snapshot::empty())),
            rebuild: tokio::sync::Mutex::new(()),
        })
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The address clients use for a function URL (`<public_url>/lambda-url/<url-id>/`).
    pub fn function_url(&self, url_id: &str) -> String {
        function_url(&self.config.public_url, url_id)
    }

    /// Answers one request. Never fails: every problem becomes the HTTP error API Gateway
    /// (or Lambda, for function URLs) would give.
    pub async fn handle<B>(
        &self,
        req: http::Request<B>,
        conn: ConnInfo,
    ) -> http::Response<ResponseBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        service::handle(self, req, conn).await
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` resolves, then stops accepting, lets
    /// in-flight requests finish (idle keep-alive connections are closed) and returns.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let local = listener.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // Every connection task holds a sender; `recv` returns `None` once all are gone.
        let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "gateway accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let gateway = self.clone();
            let mut stop = stop_rx.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                let conn_info = ConnInfo { peer, local };
                let svc = hyper::service::service_fn(move |req| {
                    let gateway = gateway.clone();
                    async move { Ok::<_, Infallible>(gateway.handle(req, conn_info).await) }
                });
                // The timer enables hyper's header read timeout (30 s): a client that never
                // finishes its request head cannot hold a connection, or the drain, forever.
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), svc);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
                drop(done);
            });
        }
        drop(listener);
        let _ = stop_tx.send(true);
        drop(done_tx);
        let _ = done_rx.recv().await;
        Ok(())
    }

    /// The compiled routing state for the store's current generation, rebuilt if it moved.
    /// `None` when it could never be built (the store failed before the first success).
    async fn snapshot(&self) -> Option<Arc<Snapshot>> {
        let generation = self.deps.apis.config_generation();
        if let Some(s) = self.current_if(generation) {
            return Some(s);
        }
        let _rebuilding = self.rebuild.lock().await;
        if let Some(s) = self.current_if(generation) {
            return Some(s);
        }
        match Snapshot::build(
            generation,
            self.deps.apis.as_ref(),
            self.deps.functions.as_ref(),
        )
        .await
        {
            Ok(s) => {
                let s = Arc::new(s);
                *self
                    .snapshot
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = s.clone();
                Some(s)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the gateway's routes; serving the previous ones");
                let cur = self
                    .snapshot
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                cur.generation.is_some().then_some(cur)
            }
        }
    }

    fn current_if(&self, generation: u64) -> Option<Arc<Snapshot>> {
        let s = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
        (s.generation == Some(generation)).then(|| s.clone())
    }
}
