//! [`RoutingInvoker`]: one [`Invoker`] in front of the executors, choosing by runtime family.
//!
//! `wasm` functions go to the Wasm executor, everything else to the process executor. The
//! executors keep their own pools and per-function accounting (reserved concurrency); the
//! account-wide limit (`--max-concurrency`, Lambda's `ConcurrentExecutions`) is one
//! [`ConcurrencyBudget`] shared by both, taken here for every invocation and, through
//! [`LimitedHttpHandler`], for every raw HTTP request the gateway hands to a Wasm function.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use gust_model::{FunctionRecord, RuntimeKind};

use crate::{
    HttpBody, HttpHandler, InvokeError, InvokeRequest, InvokeResponse, InvokeStream, Invoker,
    GLOBAL_LIMIT,
};

/// Invocations running at once across all executors, and their limit.
#[derive(Debug)]
pub struct ConcurrencyBudget {
    max: u32,
    busy: AtomicU32,
}

/// One running invocation's share of the budget, given back on drop.
#[derive(Debug)]
pub struct Permit(Arc<ConcurrencyBudget>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConcurrencyBudget {
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(ConcurrencyBudget {
            max,
            busy: AtomicU32::new(0),
        })
    }

    /// Takes a share, or throttles as Lambda does at the account limit.
    pub fn take(self: &Arc<Self>) -> Result<Permit, InvokeError> {
        self.busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .map(|_| Permit(self.clone()))
            .map_err(|_| InvokeError::Throttled {
                reason: GLOBAL_LIMIT,
            })
    }

    /// Invocations holding a share now.
    pub fn busy(&self) -> u32 {
        self.busy.load(Ordering::Acquire)
    }
}

/// Sends each invocation to the executor of its function's runtime family.
pub struct RoutingInvoker {
    process: Arc<dyn Invoker>,
    wasm: Arc<dyn Invoker>,
    budget: Option<Arc<ConcurrencyBudget>>,
}

impl std::fmt::Debug for RoutingInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingInvoker").finish_non_exhaustive()
    }
}

impl RoutingInvoker {
    /// A router without a shared limit (each executor enforces its own).
    pub fn new(process: Arc<dyn Invoker>, wasm: Arc<dyn Invoker>) -> Arc<Self> {
        Arc::new(RoutingInvoker {
            process,
            wasm,
            budget: None,
        })
    }

    /// A router whose invocations, whatever their executor, share `budget`.
    pub fn with_budget(
        process: Arc<dyn Invoker>,
        wasm: Arc<dyn Invoker>,
        budget: Arc<ConcurrencyBudget>,
    ) -> Arc<Self> {
        Arc::new(RoutingInvoker {
            process,
            wasm,
            budget: Some(budget),
        })
    }

    fn is_wasm(record: &FunctionRecord) -> bool {
        matches!(
            RuntimeKind::parse(&record.config.runtime),
            Some(RuntimeKind::Wasm)
        )
    }
}

#[async_trait]
impl Invoker for RoutingInvoker {
    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, InvokeError> {
        let _permit = self.budget.as_ref().map(|b| b.take()).transpose()?;
        if Self::is_wasm(&req.function) {
            self.wasm.invoke(req).await
        } else {
            self.process.invoke(req).await
        }
    }

    async fn invoke_stream(&self, req: InvokeRequest) -> Result<InvokeStream, InvokeError> {
        // The share is held by the stream, so it is given back when the caller has read it
        // (or gone away), not when the function starts its response.
        let permit = self.budget.as_ref().map(|b| b.take()).transpose()?;
        let mut stream = if Self::is_wasm(&req.function) {
            self.wasm.invoke_stream(req).await?
        } else {
            self.process.invoke_stream(req).await?
        };
        if let Some(permit) = permit {
            stream.hold = Some(Box::new((permit, stream.hold.take())));
        }
        Ok(stream)
    }

    async fn function_changed(&self, name: &str, record: Option<Arc<FunctionRecord>>) {
        // The other executor forgets the function: its runtime may just have changed family.
        match record {
            Some(r) if Self::is_wasm(&r) => {
                self.process.function_changed(name, None).await;
                self.wasm.function_changed(name, Some(r)).await;
            }
            Some(r) => {
                self.wasm.function_changed(name, None).await;
                self.process.function_changed(name, Some(r)).await;
            }
            None => {
                self.wasm.function_changed(name, None).await;
                self.process.function_changed(name, None).await;
            }
        }
    }

    async fn shutdown(&self) {
        tokio::join!(self.process.shutdown(), self.wasm.shutdown());
    }

    async fn validate(&self, record: &FunctionRecord) -> Result<(), String> {
        if Self::is_wasm(record) {
            self.wasm.validate(record).await
        } else {
            self.process.validate(record).await
        }
    }
}

/// An [`HttpHandler`] whose requests take a share of a [`ConcurrencyBudget`] (the gateway's
/// path to Wasm functions, which does not go through [`RoutingInvoker`]).
pub struct LimitedHttpHandler {
    inner: Arc<dyn HttpHandler>,
    budget: Arc<ConcurrencyBudget>,
}

impl LimitedHttpHandler {
    pub fn new(inner: Arc<dyn HttpHandler>, budget: Arc<ConcurrencyBudget>) -> Arc<Self> {
        Arc::new(LimitedHttpHandler { inner, budget })
    }
}

#[async_trait]
impl HttpHandler for LimitedHttpHandler {
    async fn handle_http(
        &self,
        function: Arc<FunctionRecord>,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, InvokeError> {
        let _permit = self.budget.take()?;
        self.inner.handle_http(function, request).await
    }

    async fn handle_http_stream(
        &self,
        function: Arc<FunctionRecord>,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<HttpBody>, InvokeError> {
        let permit = self.budget.take()?;
        let mut resp = self.inner.handle_http_stream(function, request).await?;
        // A body still being written holds the share until it is done (or dropped).
        if let HttpBody::Stream(s) = resp.body_mut() {
            s.hold = Some(Box::new((permit, s.hold.take())));
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use gust_model::FunctionConfig;
    use tokio::sync::Semaphore;

    /// An executor whose invocations wait until the test lets them go.
    struct Gate(Arc<Semaphore>);

    #[async_trait]
    impl Invoker for Gate {
        async fn invoke(&self, _req: InvokeRequest) -> Result<InvokeResponse, InvokeError> {
            let _p = self
                .0
                .acquire()
                .await
                .map_err(|e| InvokeError::Internal(e.to_string()))?;
            Ok(InvokeResponse {
                payload: Bytes::from_static(b"1"),
                function_error: None,
                log_tail: None,
                cold_start: false,
                duration: Duration::ZERO,
            })
        }
        async fn function_changed(&self, _: &str, _: Option<Arc<FunctionRecord>>) {}
        async fn shutdown(&self) {}
    }

    #[async_trait]
    impl HttpHandler for Gate {
        async fn handle_http(
            &self,
            _function: Arc<FunctionRecord>,
            _request: http::Request<Bytes>,
        ) -> Result<http::Response<Bytes>, InvokeError> {
            let _p = self
                .0
                .acquire()
                .await
                .map_err(|e| InvokeError::Internal(e.to_string()))?;
            Ok(http::Response::new(Bytes::new()))
        }
    }

    fn record(runtime: &str) -> Arc<FunctionRecord> {
        Arc::new(FunctionRecord::new(
            FunctionConfig::new(format!("f-{runtime}"), runtime, ""),
            "c",
        ))
    }

    fn request(runtime: &str) -> InvokeRequest {
        InvokeRequest {
            function: record(runtime),
            payload: Bytes::new(),
            request_id: "id".into(),
            client_context: None,
            tail_log: false,
        }
    }

    #[tokio::test]
    async fn the_limit_is_shared_by_both_executors_and_the_gateway_path() {
        let gate = Arc::new(Semaphore::new(0));
        let exec = Arc::new(Gate(gate.clone()));
        let budget = ConcurrencyBudget::new(2);
        let router = RoutingInvoker::with_budget(exec.clone(), exec.clone(), budget.clone());
        let http = LimitedHttpHandler::new(exec, budget.clone());
        let start = |runtime: &str| {
            let router = router.clone();
            let req = request(runtime);
            tokio::spawn(async move { router.invoke(req).await })
        };
        // One process and one Wasm invocation hold the two shares...
        let a = start("python3.12");
        let b = start("wasm");
        while budget.busy() < 2 {
            tokio::task::yield_now().await;
        }
        // ...so a third is throttled, whichever its executor or path.
        for runtime in ["python3.12", "wasm"] {
            let r = router.invoke(request(runtime)).await;
            assert!(
                matches!(
                    r,
                    Err(InvokeError::Throttled {
                        reason: GLOBAL_LIMIT
                    })
                ),
                "{runtime}: {r:?}"
            );
        }
        let r = http
            .handle_http(record("wasm"), http::Request::new(Bytes::new()))
            .await;
        assert!(matches!(r, Err(InvokeError::Throttled { .. })), "{r:?}");
        // Finished invocations give their shares back.
        gate.add_permits(2);
        a.await.expect("task").expect("a");
        b.await.expect("task").expect("b");
        assert_eq!(budget.busy(), 0);
        gate.add_permits(1);
        assert!(http
            .handle_http(record("wasm"), http::Request::new(Bytes::new()))
            .await
            .is_ok());
        assert_eq!(budget.busy(), 0);
    }

    #[tokio::test]
    async fn a_stream_holds_its_share_until_dropped_and_carries_the_whole_result() {
        let gate = Arc::new(Semaphore::new(1));
        let exec = Arc::new(Gate(gate));
        let budget = ConcurrencyBudget::new(1);
        let router = RoutingInvoker::with_budget(exec.clone(), exec, budget.clone());
        let mut stream = router
            .invoke_stream(request("python3.12"))
            .await
            .expect("stream");
        // The executor finished, but the caller has not read the stream yet.
        assert_eq!(budget.busy(), 1);
        let r = router.invoke(request("wasm")).await;
        assert!(matches!(r, Err(InvokeError::Throttled { .. })), "{r:?}");
        assert!(!stream.streamed);
        assert_eq!(stream.chunks.recv().await.as_deref(), Some(&b"1"[..]));
        assert_eq!(stream.chunks.recv().await, None);
        let end = (&mut stream.end).await.expect("end");
        assert!(end.function_error.is_none());
        assert!(end.payload.is_empty());
        drop(stream);
        assert_eq!(budget.busy(), 0);
    }

    #[test]
    fn a_failed_result_streams_no_chunk_and_ends_with_its_error_document() {
        let mut s = InvokeStream::whole(InvokeResponse {
            payload: Bytes::from_static(b"{\"errorMessage\":\"boom\"}"),
            function_error: Some("Unhandled".into()),
            log_tail: None,
            cold_start: false,
            duration: Duration::ZERO,
        });
        assert!(s.chunks.try_recv().is_err());
        let end = s.end.try_recv().expect("end");
        assert_eq!(end.function_error.as_deref(), Some("Unhandled"));
        assert_eq!(&end.payload[..], b"{\"errorMessage\":\"boom\"}");
    }

    /// Answers with a body it is still writing: the chunk "a", then whatever the test sends.
    struct Streamer(std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Bytes>>>);

    #[async_trait]
    impl HttpHandler for Streamer {
        async fn handle_http(
            &self,
            _function: Arc<FunctionRecord>,
            _request: http::Request<Bytes>,
        ) -> Result<http::Response<Bytes>, InvokeError> {
            Err(InvokeError::Internal("streams only".into()))
        }

        async fn handle_http_stream(
            &self,
            _function: Arc<FunctionRecord>,
            _request: http::Request<Bytes>,
        ) -> Result<http::Response<HttpBody>, InvokeError> {
            let chunks = self.0.lock().expect("lock").take().expect("one request");
            let (end_tx, end) = tokio::sync::oneshot::channel();
            let _ = end_tx.send(Ok(()));
            Ok(http::Response::new(HttpBody::Stream(crate::BodyStream {
                chunks,
                end,
                hold: None,
            })))
        }
    }

    #[tokio::test]
    async fn a_streamed_body_holds_its_share_until_it_is_done() {
        use http_body_util::BodyExt;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let budget = ConcurrencyBudget::new(1);
        let http = LimitedHttpHandler::new(
            Arc::new(Streamer(std::sync::Mutex::new(Some(rx)))),
            budget.clone(),
        );
        let resp = http
            .handle_http_stream(record("wasm"), http::Request::new(Bytes::new()))
            .await
            .expect("response");
        // The head is out, the body is still being written: the share is still taken.
        assert_eq!(budget.busy(), 1);
        let again = http
            .handle_http_stream(record("wasm"), http::Request::new(Bytes::new()))
            .await;
        assert!(
            matches!(again, Err(InvokeError::Throttled { .. })),
            "{again:?}"
        );
        tx.send(Bytes::from_static(b"a")).await.expect("send");
        drop(tx);
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&body[..], b"a");
        assert_eq!(budget.busy(), 0);
    }
}
