//! The executor's log writer: every invocation hands over all its lines (`START`, the
//! guest's output, `END`, `REPORT`) at once, into one in-memory buffer, and a single writer
//! task stores whatever has gathered in one `append_logs` call (one durable group commit for
//! the lines of many invocations).
//!
//! The request path takes one short mutex and never waits for the store: the writer wakes
//! when the buffer goes from empty to non-empty, lingers [`LINGER`] to gather more, and
//! starts at once for a flush or a full batch. Only when the store falls behind by more than
//! [`MAX_PENDING`] lines does an invocation wait (after its answer is computed) for room,
//! so a slow disk slows invocations down instead of growing memory without bound.
//! [`LogBuffer::flush`] returns once every line handed over before it is stored; `shutdown`
//! calls it, so a clean shutdown loses no line.
//!
//! Not here: reading logs back (the log store), tails for `LogType=Tail` (the invoker keeps
//! them), per-line channels.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gust_model::LogEntry;
use gust_store::LogStore;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// How long the writer gathers lines after the first one before committing.
const LINGER: Duration = Duration::from_millis(10);
/// Lines that make the writer commit without lingering.
const BATCH: usize = 4096;
/// Lines waiting for the store beyond which invocations wait for room.
const MAX_PENDING: usize = 256 * 1024;

#[derive(Default)]
struct State {
    pending: Vec<LogEntry>,
    /// Lines ever handed over (the sequence number of the last one).
    pushed: u64,
    /// Commit without lingering (a flush or a full batch is waiting).
    urgent: bool,
}

/// The shared buffer; cheap to share behind an `Arc`.
pub(crate) struct LogBuffer {
    state: Mutex<State>,
    /// Wakes the writer.
    wake: Notify,
    /// Lines stored so far (the writer's progress); flushes and full buffers wait on it.
    stored: watch::Sender<u64>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LogBuffer {
    /// Starts the writer task; its owner ends it by aborting the returned handle (after a
    /// [`LogBuffer::flush`], for a clean shutdown).
    pub(crate) fn start(store: Arc<dyn LogStore>) -> (Arc<LogBuffer>, JoinHandle<()>) {
        let buffer = Arc::new(LogBuffer {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            stored: watch::channel(0).0,
        });
        let writer = tokio::spawn(writer(buffer.clone(), store));
        (buffer, writer)
    }

    /// Hands over an invocation's lines. Waits only if the store is far behind.
    pub(crate) async fn append(&self, lines: Vec<LogEntry>) {
        if lines.is_empty() {
            return;
        }
        let (wake, wait_for) = {
            let mut s = lock(&self.state);
            let was_empty = s.pending.is_empty();
            s.pushed += lines.len() as u64;
            if was_empty {
                s.pending = lines;
            } else {
                s.pending.extend(lines);
            }
            let full = s.pending.len() >= BATCH;
            if full && !s.urgent {
                s.urgent = true;
            }
            let behind = s.pending.len() > MAX_PENDING;
            (
                was_empty || full,
                behind.then(|| s.pushed - s.pending.len() as u64 + 1),
            )
        };
        if wake {
            self.wake.notify_one();
        }
        if let Some(target) = wait_for {
            self.wait_stored(target).await;
        }
    }

    /// Returns once every line handed over before this call is stored (or failed to store).
    pub(crate) async fn flush(&self) {
        let target = {
            let mut s = lock(&self.state);
            s.urgent = true;
            s.pushed
        };
        self.wake.notify_one();
        self.wait_stored(target).await;
    }

    async fn wait_stored(&self, target: u64) {
        let mut rx = self.stored.subscribe();
        let _ = rx.wait_for(|n| *n >= target).await;
    }
}

async fn writer(b: Arc<LogBuffer>, store: Arc<dyn LogStore>) {
    loop {
        let notified = b.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (has, urgent) = {
            let s = lock(&b.state);
            (!s.pending.is_empty(), s.urgent)
        };
        if !has {
            notified.await;
            continue;
        }
        if !urgent {
            tokio::select! {
                () = tokio::time::sleep(LINGER) => {}
                () = notified => {}
            }
        }
        let batch = {
            let mut s = lock(&b.state);
            s.urgent = false;
            std::mem::take(&mut s.pending)
        };
        let n = batch.len();
        if let Err(error) = store.append_logs(batch).await {
            tracing::warn!(%error, lines = n, "storing function logs failed; lines dropped");
        }
        b.stored.send_modify(|s| *s += n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use gust_model::LogStream;
    use gust_model::StoredLogEntry;

    #[derive(Default)]
    struct Memory(Mutex<Vec<(usize, String)>>);

    #[async_trait]
    impl LogStore for Memory {
        async fn append_logs(&self, entries: Vec<LogEntry>) -> gust_store::Result<()> {
            let mut v = self.0.lock().unwrap();
            let batch = v.len();
            v.extend(entries.into_iter().map(|e| (batch, e.message)));
            Ok(())
        }
        async fn read_logs(
            &self,
            _: &str,
            _: i64,
            _: usize,
        ) -> gust_store::Result<Vec<StoredLogEntry>> {
            Ok(Vec::new())
        }
        async fn tail_logs(&self, _: &str, _: usize) -> gust_store::Result<Vec<StoredLogEntry>> {
            Ok(Vec::new())
        }
        async fn delete_logs(&self, _: &str) -> gust_store::Result<()> {
            Ok(())
        }
    }

    fn line(m: &str) -> LogEntry {
        LogEntry {
            ts_ms: 0,
            function: "f".into(),
            request_id: "r".into(),
            stream: LogStream::Platform,
            message: m.into(),
        }
    }

    #[tokio::test]
    async fn lines_are_stored_in_order_and_flush_waits_for_them() {
        let store = Arc::new(Memory::default());
        let (buffer, writer) = LogBuffer::start(store.clone());
        for i in 0..1000 {
            buffer
                .append(vec![line(&format!("a{i}")), line(&format!("b{i}"))])
                .await;
        }
        buffer.flush().await;
        let stored = store.0.lock().unwrap().clone();
        assert_eq!(stored.len(), 2000);
        assert!(stored
            .iter()
            .map(|(_, m)| m.clone())
            .eq((0..1000).flat_map(|i| [format!("a{i}"), format!("b{i}")])));
        // Batched: far fewer commits than invocations.
        let first_of_batch = stored.iter().filter(|(b, _)| *b == 0).count();
        assert!(first_of_batch > 1, "the first commit carried one line only");
        buffer.flush().await;
        writer.abort();
    }
}
