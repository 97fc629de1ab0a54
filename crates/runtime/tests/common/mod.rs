//! Fakes shared by the process runtime's integration tests: an in-memory log store, a code
//! store over a plain directory, and the invocation request they send.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use gust_model::{FunctionRecord, LogEntry, StoredLogEntry};
use gust_runtime::InvokeRequest;
use gust_store::{CodeStore, LogStore};
use serde_json::Value;

/// An invocation of `f` with `event`, a fresh request id and the log tail asked for.
pub fn request(f: &FunctionRecord, event: Value) -> InvokeRequest {
    InvokeRequest {
        function: Arc::new(f.clone()),
        payload: Bytes::from(event.to_string()),
        request_id: gust_model::new_request_id(),
        client_context: None,
        tail_log: true,
    }
}

#[derive(Default)]
pub struct MemLogs {
    pub lines: Mutex<Vec<StoredLogEntry>>,
}

#[async_trait]
impl LogStore for MemLogs {
    async fn append_logs(&self, entries: Vec<LogEntry>) -> gust_store::Result<()> {
        let mut lines = self.lines.lock().unwrap();
        for entry in entries {
            let seq = lines.len() as i64 + 1;
            lines.push(StoredLogEntry { seq, entry });
        }
        Ok(())
    }
    async fn read_logs(
        &self,
        function: &str,
        after_seq: i64,
        limit: usize,
    ) -> gust_store::Result<Vec<StoredLogEntry>> {
        let lines = self.lines.lock().unwrap();
        Ok(lines
            .iter()
            .filter(|l| l.entry.function == function && l.seq > after_seq)
            .take(limit)
            .cloned()
            .collect())
    }
    async fn tail_logs(
        &self,
        function: &str,
        limit: usize,
    ) -> gust_store::Result<Vec<StoredLogEntry>> {
        let lines = self.lines.lock().unwrap();
        let mine: Vec<_> = lines
            .iter()
            .filter(|l| l.entry.function == function)
            .cloned()
            .collect();
        Ok(mine[mine.len().saturating_sub(limit)..].to_vec())
    }
    async fn delete_logs(&self, function: &str) -> gust_store::Result<()> {
        self.lines
            .lock()
            .unwrap()
            .retain(|l| l.entry.function != function);
        Ok(())
    }
}

pub struct DirCode {
    pub root: PathBuf,
}

#[async_trait]
impl CodeStore for DirCode {
    async fn put_code(&self, _zip: &[u8], _max: u64) -> gust_store::Result<String> {
        Err(gust_store::StoreError::InvalidPackage(
            "not in tests".into(),
        ))
    }
    fn code_dir(&self, code_id: &str) -> PathBuf {
        self.root.join(code_id)
    }
    fn code_zip(&self, code_id: &str) -> PathBuf {
        self.root.join(format!("{code_id}.zip"))
    }
}
