//! In-memory fakes of the store traits and the invoker, so the API tests need neither SQLite
//! nor processes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gust_model::{
    ApiDefinition, FunctionRecord, FunctionUrlConfig, LogEntry, QueuedEvent, StoredLogEntry,
};
use gust_runtime::{InvokeError, InvokeRequest, InvokeResponse, Invoker};
use gust_store::{
    ApiStore, CodeStore, EventQueue, FunctionStore, LogStore, PolicyStore, Result, StoreError,
};
use sha2::Digest as _;

#[derive(Default)]
struct Inner {
    functions: BTreeMap<String, FunctionRecord>,
    /// Queued events in enqueue order, with their lease expiry.
    events: Vec<(QueuedEvent, i64)>,
    logs: Vec<StoredLogEntry>,
    apis: BTreeMap<String, ApiDefinition>,
    urls: BTreeMap<String, FunctionUrlConfig>,
    policies: BTreeMap<String, String>,
    generation: u64,
}

/// The store traits over maps; code files go to a temporary directory.
pub struct MemStore {
    inner: Mutex<Inner>,
    dir: tempfile::TempDir,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore {
            inner: Mutex::new(Inner::default()),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("store lock")
    }

    /// The queued events, as the queue holds them.
    pub fn events(&self) -> Vec<QueuedEvent> {
        self.lock().events.iter().map(|(e, _)| e.clone()).collect()
    }
}

#[async_trait]
impl FunctionStore for MemStore {
    async fn put_function(&self, record: &FunctionRecord) -> Result<()> {
        let mut inner = self.lock();
        inner.generation += 1;
        inner
            .functions
            .insert(record.config.name.clone(), record.clone());
        Ok(())
    }
    async fn create_function(&self, record: &FunctionRecord) -> Result<bool> {
        let mut inner = self.lock();
        inner.generation += 1;
        if inner.functions.contains_key(&record.config.name) {
            return Ok(false);
        }
        inner
            .functions
            .insert(record.config.name.clone(), record.clone());
        Ok(true)
    }
    async fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>> {
        Ok(self.lock().functions.get(name).cloned())
    }
    async fn list_functions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FunctionRecord>> {
        let inner = self.lock();
        Ok(inner
            .functions
            .values()
            .filter(|r| after.is_none_or(|a| r.config.name.as_str() > a))
            .take(limit)
            .cloned()
            .collect())
    }
    async fn delete_function(&self, name: &str) -> Result<bool> {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.urls.remove(name);
        inner.policies.remove(name);
        Ok(inner.functions.remove(name).is_some())
    }
}

#[async_trait]
impl PolicyStore for MemStore {
    async fn put_function_policy(&self, function: &str, policy: &str) -> Result<()> {
        let mut inner = self.lock();
        inner.generation += 1;
        inner
            .policies
            .insert(function.to_string(), policy.to_string());
        Ok(())
    }
    async fn get_function_policy(&self, function: &str) -> Result<Option<String>> {
        Ok(self.lock().policies.get(function).cloned())
    }
    async fn delete_function_policy(&self, function: &str) -> Result<bool> {
        let mut inner = self.lock();
        inner.generation += 1;
        Ok(inner.policies.remove(function).is_some())
    }
}

#[async_trait]
impl ApiStore for MemStore {
    async fn put_api(&self, api: &ApiDefinition) -> Result<()> {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.apis.insert(api.name.clone(), api.clone());
        Ok(())
    }
    async fn get_api(&self, name: &str) -> Result<Option<ApiDefinition>> {
        Ok(self.lock().apis.get(name).cloned())
    }
    async fn list_apis(&self) -> Result<Vec<ApiDefinition>> {
        Ok(self.lock().apis.values().cloned().collect())
    }
    async fn delete_api(&self, name: &str) -> Result<bool> {
        let mut inner = self.lock();
        inner.generation += 1;
        Ok(inner.apis.remove(name).is_some())
    }
    async fn put_function_url(&self, url: &FunctionUrlConfig) -> Result<()> {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.urls.insert(url.function.clone(), url.clone());
        Ok(())
    }
    async fn get_function_url(&self, function: &str) -> Result<Option<FunctionUrlConfig>> {
        Ok(self.lock().urls.get(function).cloned())
    }
    async fn list_function_urls(&self) -> Result<Vec<FunctionUrlConfig>> {
        Ok(self.lock().urls.values().cloned().collect())
    }
    async fn delete_function_url(&self, function: &str) -> Result<bool> {
        let mut inner = self.lock();
        inner.generation += 1;
        Ok(inner.urls.remove(function).is_some())
    }
    fn config_generation(&self) -> u64 {
        self.lock().generation + 1
    }
}

#[async_trait]
impl CodeStore for MemStore {
    async fn put_code(&self, zip: &[u8], _max_unzipped: u64) -> Result<String> {
        if zip::ZipArchive::new(std::io::Cursor::new(zip)).is_err() {
            return Err(StoreError::InvalidPackage(
                "Could not unzip uploaded file. Please check your file, then try to upload again."
                    .into(),
            ));
        }
        let id = hex::encode(sha2::Sha256::digest(zip));
        std::fs::write(self.code_zip(&id), zip)?;
        Ok(id)
    }
    fn code_dir(&self, code_id: &str) -> PathBuf {
        self.dir.path().join(code_id)
    }
    fn code_zip(&self, code_id: &str) -> PathBuf {
        self.dir.path().join(format!("{code_id}.zip"))
    }
}

#[async_trait]
impl EventQueue for MemStore {
    async fn enqueue(&self, event: &QueuedEvent) -> Result<()> {
        self.lock().events.push((event.clone(), 0));
        Ok(())
    }
    async fn due(&self, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<QueuedEvent>> {
        let mut inner = self.lock();
        let mut out = Vec::new();
        for (event, lease) in inner.events.iter_mut() {
            if out.len() == limit {
                break;
            }
            if event.not_before_ms <= now_ms && *lease <= now_ms {
                *lease = now_ms + lease_ms;
                out.push(event.clone());
            }
        }
        Ok(out)
    }
    async fn complete(&self, id: &str) -> Result<()> {
        self.lock().events.retain(|(e, _)| e.id != id);
        Ok(())
    }
    async fn retry(&self, id: &str, attempts: u32, not_before_ms: i64) -> Result<()> {
        for (event, lease) in self.lock().events.iter_mut() {
            if event.id == id {
                event.attempts = attempts;
                event.not_before_ms = not_before_ms;
                *lease = 0;
            }
        }
        Ok(())
    }
    async fn pending(&self, function: &str) -> Result<usize> {
        Ok(self
            .lock()
            .events
            .iter()
            .filter(|(e, _)| e.function == function)
            .count())
    }
}

#[async_trait]
impl LogStore for MemStore {
    async fn append_logs(&self, entries: Vec<LogEntry>) -> Result<()> {
        let mut inner = self.lock();
        for entry in entries {
            let seq = inner.logs.len() as i64 + 1;
            inner.logs.push(StoredLogEntry { seq, entry });
        }
        Ok(())
    }
    async fn read_logs(
        &self,
        function: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredLogEntry>> {
        let inner = self.lock();
        Ok(inner
            .logs
            .iter()
            .filter(|l| l.entry.function == function && l.seq > after_seq)
            .take(limit)
            .cloned()
            .collect())
    }
    async fn tail_logs(&self, function: &str, limit: usize) -> Result<Vec<StoredLogEntry>> {
        let inner = self.lock();
        let mine: Vec<_> = inner
            .logs
            .iter()
            .filter(|l| l.entry.function == function)
            .cloned()
            .collect();
        Ok(mine[mine.len().saturating_sub(limit)..].to_vec())
    }
    async fn delete_logs(&self, function: &str) -> Result<()> {
        self.lock().logs.retain(|l| l.entry.function != function);
        Ok(())
    }
}

/// An invoker whose behaviour depends on the function's name:
/// `echo*` returns the payload, `fail*` always raises, `flaky*` raises the first two times,
/// `throttle*` is throttled, `noruntime*` has no runtime, `down*` is shutting down,
/// `slow*` takes 200 ms then echoes.
#[derive(Default)]
pub struct FakeInvoker {
    /// (function, request id, payload) of every invocation, in order.
    pub calls: Mutex<Vec<(String, String, Bytes)>>,
    /// (function, whether a record came with it) of every `function_changed`.
    pub changes: Mutex<Vec<(String, bool)>>,
}

impl FakeInvoker {
    pub fn calls_of(&self, function: &str) -> usize {
        self.calls
            .lock()
            .expect("calls")
            .iter()
            .filter(|(f, _, _)| f == function)
            .count()
    }
}

#[async_trait]
impl Invoker for FakeInvoker {
    async fn invoke(&self, req: InvokeRequest) -> std::result::Result<InvokeResponse, InvokeError> {
        let name = req.function.config.name.clone();
        let n = {
            let mut calls = self.calls.lock().expect("calls");
            calls.push((name.clone(), req.request_id.clone(), req.payload.clone()));
            calls.iter().filter(|(f, _, _)| *f == name).count()
        };
        let ok = |payload: Bytes| InvokeResponse {
            payload,
            function_error: None,
            log_tail: req.tail_log.then(|| {
                format!(
                    "START RequestId: {} Version: $LATEST\nEND RequestId: {}\n",
                    req.request_id, req.request_id
                )
            }),
            cold_start: n == 1,
            duration: Duration::from_millis(1),
        };
        let unhandled = || InvokeResponse {
            payload: Bytes::from_static(br#"{"errorMessage":"boom","errorType":"Exception"}"#),
            function_error: Some("Unhandled".into()),
            ..ok(Bytes::new())
        };
        if name.starts_with("fail") || (name.starts_with("flaky") && n <= 2) {
            return Ok(unhandled());
        }
        if name.starts_with("throttle") {
            return Err(InvokeError::Throttled {
                reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
            });
        }
        if name.starts_with("noruntime") {
            return Err(InvokeError::RuntimeUnavailable(
                "python3.12 is not installed on this machine".into(),
            ));
        }
        if name.starts_with("down") {
            return Err(InvokeError::ShuttingDown);
        }
        if name.starts_with("slow") {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(ok(req.payload.clone()))
    }

    async fn function_changed(&self, name: &str, record: Option<Arc<FunctionRecord>>) {
        self.changes
            .lock()
            .expect("changes")
            .push((name.to_string(), record.is_some()));
    }

    async fn shutdown(&self) {}
}

/// A zip holding one file.
pub fn zip_with(name: &str, contents: &str) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        w.start_file(name, opts).expect("zip entry");
        w.write_all(contents.as_bytes()).expect("zip write");
        w.finish().expect("zip finish");
    }
    buf.into_inner()
}
