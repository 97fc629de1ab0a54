//! [`RoutingInvoker`]: one [`Invoker`] in front of the executors, choosing by runtime family.
//!
//! `wasm` functions go to the Wasm executor, everything else to the process executor. The
//! executors keep their own pools and concurrency accounting; this type only dispatches.

use std::sync::Arc;

use async_trait::async_trait;
use gust_model::{FunctionRecord, RuntimeKind};

use crate::{InvokeError, InvokeRequest, InvokeResponse, Invoker};

/// Sends each invocation to the executor of its function's runtime family.
pub struct RoutingInvoker {
    process: Arc<dyn Invoker>,
    wasm: Arc<dyn Invoker>,
}

impl std::fmt::Debug for RoutingInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingInvoker").finish_non_exhaustive()
    }
}

impl RoutingInvoker {
    pub fn new(process: Arc<dyn Invoker>, wasm: Arc<dyn Invoker>) -> Arc<Self> {
        Arc::new(RoutingInvoker { process, wasm })
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
        if Self::is_wasm(&req.function) {
            self.wasm.invoke(req).await
        } else {
            self.process.invoke(req).await
        }
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
