//! Records of invocations: queued asynchronous events and log lines.

use serde::{Deserialize, Serialize};

/// An `Event` (asynchronous) invocation waiting in the durable queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedEvent {
    /// The request id returned to the caller with the 202.
    pub id: String,
    pub function: String,
    pub payload: Vec<u8>,
    /// Attempts already made (0 for a fresh event).
    pub attempts: u32,
    /// Not to be run before this time (ms since epoch); retries back off through it.
    pub not_before_ms: i64,
    pub enqueued_ms: i64,
}

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Lines Gust writes itself: `START`, `END`, `REPORT`, timeouts.
    Platform,
}

/// One line of a function's log, as the runtime hands it to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub ts_ms: i64,
    pub function: String,
    /// Empty for lines written outside any invocation (e.g. during init).
    pub request_id: String,
    pub stream: LogStream,
    pub message: String,
}

/// A log line with its position in the store, for paging and `--follow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLogEntry {
    /// Increases with every line stored; `gust logs --follow` asks for lines after the last seen.
    pub seq: i64,
    #[serde(flatten)]
    pub entry: LogEntry,
}
