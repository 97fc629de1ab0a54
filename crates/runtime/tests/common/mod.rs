//! Fakes shared by the process runtime's integration tests: an in-memory log store and a
//! code store over a plain directory.

use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use gust_model::{LogEntry, StoredLogEntry};
use gust_store::{CodeStore, LogStore};

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
