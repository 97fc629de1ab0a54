//! Lambda's documented quotas, enforced by the API and the runtime.

/// Default function timeout in seconds.
pub const DEFAULT_TIMEOUT_S: u32 = 3;
/// Maximum function timeout in seconds.
pub const MAX_TIMEOUT_S: u32 = 900;
/// Default memory size in MB.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Smallest memory size in MB.
pub const MIN_MEMORY_MB: u32 = 128;
/// Largest memory size in MB.
pub const MAX_MEMORY_MB: u32 = 10_240;
/// Largest synchronous invocation payload (request and response), bytes.
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Largest asynchronous (`Event`) invocation payload, bytes.
pub const MAX_ASYNC_PAYLOAD: usize = 256 * 1024;
/// Largest zipped deployment package accepted inline by `CreateFunction`, bytes.
pub const MAX_ZIP_INLINE: usize = 50 * 1024 * 1024;
/// Largest unzipped deployment package, bytes.
pub const MAX_UNZIPPED: u64 = 250 * 1024 * 1024;
/// Total size of a function's environment variables, bytes.
pub const MAX_ENV_BYTES: usize = 4 * 1024;
/// Bytes of log returned with `LogType=Tail`.
pub const LOG_TAIL_BYTES: usize = 4 * 1024;
/// Default regional concurrency limit (Lambda's default account quota is 1,000; a small box
/// gets a smaller default, configurable with `gust up --max-concurrency`).
pub const DEFAULT_GLOBAL_CONCURRENCY: u32 = 64;
/// Retries of a failed asynchronous invocation (Lambda retries twice).
pub const ASYNC_RETRIES: u32 = 2;
