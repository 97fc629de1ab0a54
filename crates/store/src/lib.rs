//! Gust's durable state, behind traits so a cluster can later keep it in a distributed engine.
//!
//! The traits here are the only way other crates reach stored state. [`SqliteStore`] is the
//! embedded implementation: one SQLite database (WAL, `synchronous=FULL`) in the data
//! directory, written by one writer thread that groups concurrent writes into one transaction
//! and one fsync (group commit), and read through a small pool of read connections.
//! Function code lives beside it as files (`code/<hex sha256>.zip` and the unpacked
//! `code/<hex sha256>/` directory), fsynced before the write that references them.
//!
//! HTTP APIs and function URLs ([`ApiStore`]) are JSON documents in their own tables, like
//! function records; the gateway watches [`ApiStore::config_generation`] to know when to
//! reload them.
//!
//! [`kv`] adds ordered key-value spaces (range scans, write closures run atomically on the
//! writer thread) for services that keep their own records, such as the tables service.
//!
//! Every method that returns `Ok` after a write has made that write durable.
//! This crate knows nothing of AWS wire formats or HTTP.

use std::path::PathBuf;

use async_trait::async_trait;
use gust_model::{
    ApiDefinition, FunctionRecord, FunctionUrlConfig, LogEntry, QueuedEvent, StoredLogEntry,
};

mod code;
pub mod kv;
mod readers;
mod reply;
mod schema;
mod sqlite;
mod writer;

pub use kv::{KvAbort, KvCursor, KvRange, KvRow, KvTxn, KvValue, SpaceStats};
pub use sqlite::{SqliteStore, StoreStats};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("invalid code package: {0}")]
    InvalidPackage(String),
    #[error("the store is closed")]
    Closed,
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Function records (configuration + code identity), keyed by function name.
#[async_trait]
pub trait FunctionStore: Send + Sync {
    /// Inserts or replaces the record named `record.config.name`.
    async fn put_function(&self, record: &FunctionRecord) -> Result<()>;
    /// Inserts only if no function of that name exists; returns `false` if one does.
    async fn create_function(&self, record: &FunctionRecord) -> Result<bool>;
    async fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>>;
    /// Functions ordered by name, starting strictly after `after`, at most `limit`.
    async fn list_functions(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FunctionRecord>>;
    /// Returns whether a function was deleted. Its function URL (see [`ApiStore`]) and its
    /// policy ([`PolicyStore`]) go with it, in the same transaction.
    async fn delete_function(&self, name: &str) -> Result<bool>;
}

/// Deployment packages. A package is stored once per content hash.
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Stores a zip, unpacks it (rejecting path traversal, symlinks out of the tree and more
    /// than `max_unzipped` bytes), fsyncs both, and returns the hex SHA-256 that names it.
    /// A malformed zip is `StoreError::InvalidPackage`.
    async fn put_code(&self, zip: &[u8], max_unzipped: u64) -> Result<String>;
    /// The unpacked directory for a code id (read-only for functions).
    fn code_dir(&self, code_id: &str) -> PathBuf;
    /// The stored zip for a code id (served by `GetFunction`'s `Code.Location`).
    fn code_zip(&self, code_id: &str) -> PathBuf;
}

/// The durable queue of asynchronous (`Event`) invocations.
#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Durably enqueues; returns only after fsync.
    async fn enqueue(&self, event: &QueuedEvent) -> Result<()>;
    /// Up to `limit` events with `not_before_ms <= now_ms`, oldest first, which are then leased
    /// (not returned again by `due` for `lease_ms`, unless completed or retried). A lease that
    /// expires (e.g. the process died) makes the event due again.
    async fn due(&self, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<QueuedEvent>>;
    /// Removes a finished (or finally failed) event.
    async fn complete(&self, id: &str) -> Result<()>;
    /// Records a failed attempt: sets `attempts` and `not_before_ms` and releases the lease.
    async fn retry(&self, id: &str, attempts: u32, not_before_ms: i64) -> Result<()>;
    /// Events of one function still queued (for `DeleteFunction` and tests).
    async fn pending(&self, function: &str) -> Result<usize>;
}

/// Per-invocation function logs, with a retention limit.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Appends lines, in order; each gets a `seq` above every seq handed out before (even of
    /// lines since deleted), so readers can follow with `read_logs(after_seq)`. Lines are not
    /// acknowledged data: the return means they are committed and readable, and survive a
    /// process crash and a clean shutdown, but `SqliteStore` does not fsync a batch made only
    /// of log lines (the next durable write's sync covers them), so a power loss can lose
    /// the most recent ones.
    async fn append_logs(&self, entries: Vec<LogEntry>) -> Result<()>;
    /// Lines of `function` with `seq > after_seq`, oldest first, at most `limit`.
    async fn read_logs(
        &self,
        function: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredLogEntry>>;
    /// The last `limit` lines of `function`, oldest first.
    async fn tail_logs(&self, function: &str, limit: usize) -> Result<Vec<StoredLogEntry>>;
    /// Drops a deleted function's lines (their seqs are not handed out again).
    async fn delete_logs(&self, function: &str) -> Result<()>;
}

/// HTTP APIs and function URL configurations, which the gateway serves.
///
/// The gateway keeps compiled routing tables in memory and rebuilds them when
/// [`ApiStore::config_generation`] moves, so every write of an API, a function URL or a
/// function record must advance it.
#[async_trait]
pub trait ApiStore: Send + Sync {
    /// Inserts or replaces the API named `api.name`.
    async fn put_api(&self, api: &ApiDefinition) -> Result<()>;
    async fn get_api(&self, name: &str) -> Result<Option<ApiDefinition>>;
    /// Every API, ordered by name.
    async fn list_apis(&self) -> Result<Vec<ApiDefinition>>;
    /// Returns whether it existed.
    async fn delete_api(&self, name: &str) -> Result<bool>;
    /// Inserts or replaces the URL configuration of `url.function`.
    async fn put_function_url(&self, url: &FunctionUrlConfig) -> Result<()>;
    async fn get_function_url(&self, function: &str) -> Result<Option<FunctionUrlConfig>>;
    /// Every function URL, ordered by function name.
    async fn list_function_urls(&self) -> Result<Vec<FunctionUrlConfig>>;
    /// Returns whether it existed.
    async fn delete_function_url(&self, function: &str) -> Result<bool>;
    /// A counter that changes whenever an API, a function URL or a function record is written
    /// or deleted through this store (cheap: an atomic load). It moves after the write is
    /// committed, so a reader that sees the new value also reads the new data. It lives in
    /// memory only and never is 0.
    fn config_generation(&self) -> u64;
}

/// Resource-based policies of functions (Lambda's `AddPermission`), one document per function.
/// The store keeps each as opaque text; the Lambda API owns its format. Writes advance
/// [`ApiStore::config_generation`] too, since a policy can decide who may call a function URL.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Inserts or replaces the policy of `function`.
    async fn put_function_policy(&self, function: &str, policy: &str) -> Result<()>;
    async fn get_function_policy(&self, function: &str) -> Result<Option<String>>;
    /// Returns whether there was one.
    async fn delete_function_policy(&self, function: &str) -> Result<bool>;
}

/// Everything the server needs from a store, as one object.
pub trait Store:
    FunctionStore + CodeStore + EventQueue + LogStore + ApiStore + PolicyStore
{
}
impl<T: FunctionStore + CodeStore + EventQueue + LogStore + ApiStore + PolicyStore> Store for T {}

/// Options of the embedded store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Log lines kept per function; older ones are deleted in the background.
    pub log_retention_lines: usize,
    /// Log lines older than this are deleted, in milliseconds.
    pub log_retention_ms: i64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            log_retention_lines: 100_000,
            log_retention_ms: 7 * 24 * 3600 * 1000,
        }
    }
}
