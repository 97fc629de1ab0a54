//! The single writer thread and its group commit.
//!
//! Every write of the store is a closure sent to this thread together with a oneshot for its
//! reply. The thread takes everything queued (up to [`MAX_BATCH`] ops), runs each op inside its
//! own savepoint of one `BEGIN IMMEDIATE` transaction, commits once (one WAL fsync under
//! `synchronous=FULL`), and only then replies to every caller. An op that fails is rolled back
//! to its savepoint and reports its own error; the others in the batch still commit. An op
//! alone in its batch runs without a savepoint, and if it fails its transaction is rolled
//! back instead of committed (a failed conditional write costs no fsync).
//!
//! Log retention also runs here, after a batch has been answered, so pruning never delays a
//! reply and never contends with another writer. So do WAL checkpoints: SQLite's automatic
//! checkpoint would run inside a `COMMIT`, holding back that batch's replies for a few fsyncs
//! of the database file, so the writer instead checkpoints between batches, after replying
//! (with SQLite's automatic checkpoint left only as a backstop, see [`AUTOCHECKPOINT_PAGES`]).
//! Because nothing else writes while it runs, the checkpoint completes and the next commit
//! starts the WAL over from its beginning.
//!
//! **Durability and fsync latency.** A batch holding any durable job (every write except log
//! appends, see [`WriteJob::durable`]) commits under `synchronous=FULL`: SQLite syncs the WAL
//! inside `COMMIT`, before the batch becomes visible to readers, and the writer replies only
//! after that. Two things keep that sync short. At start the writer grows the
//! WAL file once to [`WAL_PREALLOCATE`] bytes of zeros, so commits overwrite blocks the file
//! already owns instead of appending: the sync of an append must also commit the file's new
//! size through the filesystem journal (on this project's ext4 machines about 0.8 ms on average
//! and 4 ms at p90, against 0.2 ms for an overwrite). Zeros past the last frame are not valid
//! frames, so recovery ignores them, as it ignores the stale frames a restarted WAL leaves
//! behind. And while a sync is in flight, a [`Ticker`] keeps a vCPU from going idle.
//!
//! **Log-only batches are not synced.** Function log lines are not acknowledged data: a batch
//! made only of non-durable jobs (log appends), and the writer's own log pruning, commit
//! under `synchronous=NORMAL`, which in WAL mode writes the frames without syncing them (and
//! without the ticker). The invariant: *a durable batch is never committed under anything
//! but `FULL`* (the pragma is switched, only when it changes, before `BEGIN`, since SQLite
//! refuses to change it inside a transaction). Because the WAL is one append-only file, the
//! sync of the next durable commit also makes every earlier log frame durable, so what
//! survives a power loss is always a prefix of the commit order: a data write never survives
//! without the log lines committed before it. Checkpoints sync the WAL and the database file
//! under both settings, and a clean shutdown syncs the WAL and checkpoints, so only
//! an OS crash or power loss can lose log lines (at most those committed since the last durable
//! commit or checkpoint); a process crash (`kill -9`) loses nothing, since committed frames
//! are in the kernel's page cache. Lines lost that way may see their seqs handed out again
//! after the restart (the `sqlite_sequence` update was lost with them).
//!
//! This module knows the tables only through the closures it runs, the log function ids it
//! caches for [`crate::sqlite`] ([`WriterState::log_function_id`]) and [`prune_logs`].

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};

use crate::readers::Readers;
use crate::{Result, StoreError, StoreOptions};

/// Most ops committed in one transaction; more wait for the next commit.
pub(crate) const MAX_BATCH: usize = 1_000;
/// How often the writer prunes logs even when nothing asks it to.
const PRUNE_INTERVAL: Duration = Duration::from_secs(30);
/// Appended lines after which the writer prunes without waiting for the interval.
const PRUNE_EVERY_LINES: u64 = 10_000;
/// The size the WAL file is grown to at start (see the module comment): about 4,000 frames of
/// 4 KiB pages, more than the WAL holds between two of the writer's checkpoints.
pub(crate) const WAL_PREALLOCATE: u64 = 16 << 20;
/// The writer checkpoints once the WAL holds about this many pages (estimated from the pages
/// per commit the last checkpoint saw): each checkpoint costs fsyncs of the database file, so
/// fewer, larger ones are cheaper, as long as the WAL stays inside its preallocated size.
const CHECKPOINT_PAGES: f64 = 2_500.0;
/// Pages per commit assumed before the first checkpoint has measured them.
const INITIAL_PAGES_PER_COMMIT: f64 = 4.0;
/// ...or this long after the first commit since the last checkpoint, whichever comes first.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// SQLite's own checkpoint (inside a `COMMIT`) only if the WAL still grows past this many
/// pages, e.g. under one huge batch.
const AUTOCHECKPOINT_PAGES: u32 = 8_000;
/// After answering a batch, the writer polls its queue this long before it sleeps on it.
/// A client that writes one item at a time sends its next write about 0.2 ms after the reply;
/// waking a sleeping thread on a virtual machine costs a good part of that again (the vCPU may
/// have halted), which a durable write at concurrency 1 pays on every request. Polling yields
/// the CPU between checks, and it only follows a commit: an idle store does not spin.
const SPIN_AFTER_COMMIT: Duration = Duration::from_micros(300);
/// While an fsync is in flight, the ticker thread wakes this often (see [`Ticker`]).
const TICK: Duration = Duration::from_micros(100);

/// One queued write: run inside the batch transaction, or abandoned if the transaction could
/// not start.
pub(crate) trait WriteJob: Send {
    /// Runs the op; returns whether it succeeded and a completion that sends its reply once
    /// the fate of the commit is known.
    fn run(self: Box<Self>, conn: &Connection, state: &mut WriterState) -> (bool, Completion);
    /// Replies with an error without running the op.
    fn abort(self: Box<Self>, msg: &str);
    /// Whether the op's reply promises durability: a batch with a durable op commits under
    /// `synchronous=FULL`, one made only of non-durable ops (log appends) without a sync.
    fn durable(&self) -> bool {
        true
    }
}

pub(crate) type Job = Box<dyn WriteJob>;
/// Called with the commit's outcome; sends the reply.
pub(crate) type Completion = Box<dyn FnOnce(std::result::Result<(), &str>) + Send>;

fn commit_error(msg: &str) -> StoreError {
    StoreError::Io(std::io::Error::other(format!("commit failed: {msg}")))
}

struct TypedJob<T, F> {
    op: F,
    reply: tokio::sync::oneshot::Sender<Result<T>>,
    durable: bool,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection, state: &mut WriterState) -> (bool, Completion) {
        let TypedJob { op, reply, .. } = *self;
        let outcome = op(conn, state);
        let ok = outcome.is_ok();
        let completion: Completion = Box::new(move |commit| {
            let result = match (outcome, commit) {
                (Err(e), _) => Err(e),
                (Ok(v), Ok(())) => Ok(v),
                (Ok(_), Err(msg)) => Err(commit_error(msg)),
            };
            // The caller may have gone away (a cancelled request); the write stands regardless.
            let _ = reply.send(result);
        });
        (ok, completion)
    }

    fn abort(self: Box<Self>, msg: &str) {
        let _ = self.reply.send(Err(commit_error(msg)));
    }

    fn durable(&self) -> bool {
        self.durable
    }
}

/// Wraps a typed op into a [`Job`] whose reply goes to `reply`; `durable` says whether the
/// reply must wait for a synced commit (see [`WriteJob::durable`]).
pub(crate) fn job<T, F>(op: F, reply: tokio::sync::oneshot::Sender<Result<T>>, durable: bool) -> Job
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut WriterState) -> Result<T> + Send + 'static,
{
    Box::new(TypedJob { op, reply, durable })
}

/// Counters shared between the writer and [`crate::SqliteStore::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub commits: AtomicU64,
    pub ops: AtomicU64,
}

/// What the writer thread remembers between batches (for logs only).
#[derive(Debug)]
pub(crate) struct WriterState {
    lines_since_prune: u64,
    last_prune: Instant,
    /// `log_functions` ids by name, as committed or written by the open transaction.
    log_functions: HashMap<String, i64>,
    /// Names the open transaction added to `log_functions`, oldest first: forgotten again if
    /// their op or the transaction is rolled back (a missing entry is only looked up again).
    new_log_functions: Vec<String>,
}

impl WriterState {
    fn new() -> WriterState {
        WriterState {
            lines_since_prune: 0,
            last_prune: Instant::now(),
            log_functions: HashMap::new(),
            new_log_functions: Vec::new(),
        }
    }

    /// Notes `lines` appended lines, which bring the next retention pass closer.
    pub(crate) fn note_logs(&mut self, lines: usize) {
        self.lines_since_prune += lines as u64;
    }

    /// The `log_functions` id of `name`, added to the table if it has none yet: from the
    /// cache, so appends do not look names up in SQL.
    pub(crate) fn log_function_id(&mut self, conn: &Connection, name: &str) -> Result<i64> {
        if let Some(id) = self.log_functions.get(name) {
            return Ok(*id);
        }
        let found: Option<i64> = conn
            .prepare_cached("SELECT id FROM log_functions WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                conn.prepare_cached("INSERT INTO log_functions (name) VALUES (?1)")?
                    .execute([name])?;
                self.new_log_functions.push(name.to_string());
                conn.last_insert_rowid()
            }
        };
        self.log_functions.insert(name.to_string(), id);
        Ok(id)
    }

    /// Drops `name` from the cache (its `log_functions` row is being deleted).
    pub(crate) fn forget_log_function(&mut self, name: &str) {
        self.log_functions.remove(name);
    }

    /// Forgets the names added since `mark` (a length of `new_log_functions`): their rows
    /// were rolled back.
    fn undo_log_functions(&mut self, mark: usize) {
        for name in self.new_log_functions.drain(mark..) {
            self.log_functions.remove(&name);
        }
    }
}

/// A message to the writer thread.
pub(crate) enum Msg {
    Job(Job),
    /// Prune logs of every function after the preceding writes; reply with the lines deleted.
    Prune(tokio::sync::oneshot::Sender<Result<u64>>),
}

/// The writer loop; returns when every sender is gone and the queue is drained.
pub(crate) fn run(
    conn: Connection,
    rx: Receiver<Msg>,
    counters: Arc<Counters>,
    readers: Arc<Readers>,
    opts: StoreOptions,
) {
    let mut state = WriterState::new();
    let wal = prepare_wal(&conn, readers);
    let mut checkpoints = Checkpoints::default();
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut prune_requests = Vec::new();
    // When the last batch was answered, while the writer may still spin for the next.
    let mut last_commit: Option<Instant> = None;
    loop {
        let mut wait = PRUNE_INTERVAL.saturating_sub(state.last_prune.elapsed());
        if let Some(due) = checkpoints.due_in() {
            wait = wait.min(due);
        }
        let spun = spin_recv(&rx, last_commit.map(|t| t + SPIN_AFTER_COMMIT));
        last_commit = None;
        match spun.map_or_else(|| rx.recv_timeout(wait), Ok) {
            Ok(Msg::Job(j)) => batch.push(j),
            Ok(Msg::Prune(reply)) => prune_requests.push(reply),
            Err(RecvTimeoutError::Timeout) => {
                if checkpoints.due_in() == Some(Duration::ZERO) {
                    wal.readers.release_stale();
                    checkpoints.run(&conn, &wal.ticker);
                }
                if state.last_prune.elapsed() >= PRUNE_INTERVAL {
                    let _ = prune(&conn, &wal, &mut state, &opts);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // A prune request ends the batch, so it sees every write queued before it.
        while prune_requests.is_empty() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => batch.push(j),
                Ok(Msg::Prune(reply)) => prune_requests.push(reply),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&conn, &wal, &mut state, &mut batch, &counters);
            checkpoints.committed();
            last_commit = Some(Instant::now());
        }
        if !prune_requests.is_empty() {
            let result = prune(&conn, &wal, &mut state, &opts);
            for reply in prune_requests.drain(..) {
                let reply_result = match &result {
                    Ok(n) => Ok(*n),
                    Err(e) => Err(StoreError::Io(std::io::Error::other(format!(
                        "pruning logs: {e}"
                    )))),
                };
                let _ = reply.send(reply_result);
            }
        } else if state.lines_since_prune >= PRUNE_EVERY_LINES
            || state.last_prune.elapsed() >= PRUNE_INTERVAL
        {
            let _ = prune(&conn, &wal, &mut state, &opts);
        }
        if checkpoints.due_in() == Some(Duration::ZERO) {
            wal.readers.release_stale();
            checkpoints.run(&conn, &wal.ticker);
        }
    }
    wal.sync_at_exit();
    tracing::debug!("store writer stopped");
}

/// Polls the queue until `until` before the writer goes to sleep on it (see
/// [`SPIN_AFTER_COMMIT`]); yields the CPU between polls, so a runnable thread is never held up.
fn spin_recv(rx: &Receiver<Msg>, until: Option<Instant>) -> Option<Msg> {
    let until = until?;
    loop {
        if let Ok(m) = rx.try_recv() {
            return Some(m);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::yield_now();
    }
}

/// What the writer needs around its commits: the ticker that keeps a vCPU awake while SQLite
/// syncs, and the connection's current `synchronous` setting.
struct Wal {
    ticker: Ticker,
    /// The read connections, whose snapshots every commit makes stale.
    readers: Arc<Readers>,
    /// Whether the connection is at `synchronous=FULL` (it is opened so).
    full: Cell<bool>,
    /// The WAL file (none for an in-memory database).
    path: Option<std::path::PathBuf>,
}

impl Wal {
    /// Runs `f` (a commit) with the ticker awake if the commit syncs, and with readers told
    /// that a commit is in flight (see [`Readers::commit`]).
    fn commit<T>(&self, f: impl FnOnce() -> T) -> T {
        self.readers.commit(|| {
            if self.full.get() {
                self.ticker.during(f)
            } else {
                f()
            }
        })
    }

    /// Switches `synchronous` to `FULL` for a batch with a durable op, to `NORMAL` (no sync
    /// at commit) otherwise; a no-op when it is already so. Must run outside a transaction.
    /// Only a failure to switch to `FULL` is an error: staying at `FULL` costs only time.
    fn set_durable(&self, conn: &Connection, durable: bool) -> rusqlite::Result<()> {
        if self.full.get() == durable {
            return Ok(());
        }
        let sql = if durable {
            "PRAGMA synchronous = FULL"
        } else {
            "PRAGMA synchronous = NORMAL"
        };
        match exec_cached(conn, sql) {
            Ok(()) => {
                self.full.set(durable);
                Ok(())
            }
            Err(e) if durable => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "store: cannot switch to synchronous=NORMAL");
                Ok(())
            }
        }
    }

    /// At a clean shutdown, syncs the WAL if the last commits were not synced (log-only):
    /// closing the connection checkpoints and syncs too, but that checkpoint cannot finish
    /// while a reader still holds an old snapshot, and then the frames would stay unsynced.
    fn sync_at_exit(&self) {
        if self.full.get() {
            return;
        }
        let Some(path) = &self.path else { return };
        match std::fs::File::open(path).and_then(|f| f.sync_data()) {
            Ok(()) => {}
            // Nothing to sync if there is no WAL.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, wal = %path.display(), "store: cannot sync the WAL")
            }
        }
    }
}

/// Leaves checkpoints to the writer loop (SQLite's automatic one only as a backstop) and
/// grows the WAL file to [`WAL_PREALLOCATE`]. Failures only cost speed, so they are logged.
fn prepare_wal(conn: &Connection, readers: Arc<Readers>) -> Wal {
    let ticker = Ticker::start();
    // Every statement the writer runs is cached: rusqlite's default of 16 is less than the
    // store's writes and the writer's own transaction statements together.
    conn.set_prepared_statement_cache_capacity(64);
    if let Err(e) = conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES) {
        tracing::warn!(error = %e, "store: cannot set wal_autocheckpoint");
    }
    let path = conn
        .path()
        .filter(|p| !p.is_empty())
        .map(|db| std::path::PathBuf::from(format!("{db}-wal")));
    if let Some(path) = &path {
        if let Err(e) = preallocate(path, WAL_PREALLOCATE) {
            tracing::warn!(error = %e, wal = %path.display(), "store: cannot preallocate the WAL");
        }
    }
    Wal {
        ticker,
        readers,
        full: Cell::new(true),
        path,
    }
}

/// Appends zeros to an existing file until it is at least `size` bytes long and syncs them;
/// `false` if there is no such file. Must run before anything writes past the file's current
/// end (here: before the writer's first commit).
pub(crate) fn preallocate(path: &std::path::Path, size: u64) -> std::io::Result<bool> {
    let file = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        // SQLite creates the WAL itself; without one there is nothing to grow yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut len = file.metadata()?.len();
    if len < size {
        let zeros = vec![0u8; 1 << 20];
        while len < size {
            let n = (size - len).min(zeros.len() as u64) as usize;
            file.write_all_at(&zeros[..n], len)?;
            len += n as u64;
        }
        file.sync_all()?;
    }
    Ok(true)
}

/// When the writer checkpoints the WAL.
#[derive(Debug)]
struct Checkpoints {
    /// Commits since the last checkpoint.
    commits: u64,
    /// When the first of them committed.
    since: Option<Instant>,
    /// WAL pages per commit, as the last checkpoint found.
    pages_per_commit: f64,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Checkpoints {
            commits: 0,
            since: None,
            pages_per_commit: INITIAL_PAGES_PER_COMMIT,
        }
    }
}

impl Checkpoints {
    fn committed(&mut self) {
        self.commits += 1;
        self.since.get_or_insert_with(Instant::now);
    }

    /// How long until a checkpoint is due; `None` when nothing was committed since the last.
    fn due_in(&self) -> Option<Duration> {
        let since = self.since?;
        if self.commits as f64 * self.pages_per_commit >= CHECKPOINT_PAGES {
            return Some(Duration::ZERO);
        }
        Some(CHECKPOINT_INTERVAL.saturating_sub(since.elapsed()))
    }

    /// Copies the WAL's pages into the database (`PASSIVE`: readers are never waited for).
    fn run(&mut self, conn: &Connection, ticker: &Ticker) {
        let started = Instant::now();
        let result = ticker.during(|| {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
        });
        let mut pages_per_commit = self.pages_per_commit;
        match result {
            Ok((log, done)) => {
                tracing::trace!(
                    commits = self.commits,
                    wal_pages = log,
                    checkpointed = done,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "checkpoint"
                );
                // `log` counts the pages since the WAL last started over, normally right
                // after the previous checkpoint; more (a reader kept it from starting over)
                // only makes the next checkpoint come sooner.
                if self.commits > 0 && log > 0 {
                    pages_per_commit = (log as f64 / self.commits as f64).max(1.0);
                }
            }
            Err(e) => tracing::warn!(error = %e, "store: checkpoint failed"),
        }
        *self = Checkpoints {
            pages_per_commit,
            ..Checkpoints::default()
        };
    }
}

/// A thread that wakes every [`TICK`] while the writer waits for an fsync, and sleeps
/// otherwise.
///
/// On virtual machines an idle vCPU is descheduled by the host once it has been halted for a
/// short while, and waking it for the disk's completion interrupt can take a scheduler tick:
/// on this project's 2-vCPU machines a lone `fdatasync` took 4 ms at the median when nothing
/// else ran, and 0.17 ms while another thread merely slept in 100 µs steps. The ticks keep a
/// vCPU from halting long enough to be descheduled; they cost a few microseconds of CPU per
/// tick, and only while a sync is in flight.
struct Ticker {
    state: Arc<AtomicU8>,
    thread: Option<std::thread::Thread>,
}

const TICKER_IDLE: u8 = 0;
const TICKER_ACTIVE: u8 = 1;
const TICKER_STOP: u8 = 2;

impl Ticker {
    fn start() -> Ticker {
        let state = Arc::new(AtomicU8::new(TICKER_IDLE));
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("gust-store-tick".into())
            .spawn(move || loop {
                match shared.load(Ordering::Acquire) {
                    TICKER_ACTIVE => std::thread::sleep(TICK),
                    TICKER_STOP => return,
                    _ => std::thread::park(),
                }
            })
            .map(|h| h.thread().clone());
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "store: cannot start the sync ticker");
                None
            }
        };
        Ticker { state, thread }
    }

    /// Runs `f` (an fsync) with the ticker awake.
    fn during<T>(&self, f: impl FnOnce() -> T) -> T {
        let Some(thread) = &self.thread else {
            return f();
        };
        self.state.store(TICKER_ACTIVE, Ordering::Release);
        thread.unpark();
        let out = f();
        self.state.store(TICKER_IDLE, Ordering::Release);
        out
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.state.store(TICKER_STOP, Ordering::Release);
        if let Some(t) = &self.thread {
            t.unpark();
        }
    }
}

fn commit_batch(
    conn: &Connection,
    wal: &Wal,
    state: &mut WriterState,
    batch: &mut Vec<Job>,
    counters: &Counters,
) {
    let n = batch.len();
    let durable = batch.iter().any(|j| j.durable());
    if let Err(e) = wal
        .set_durable(conn, durable)
        .and_then(|()| exec_cached(conn, "BEGIN IMMEDIATE"))
    {
        let msg = e.to_string();
        tracing::error!(error = %msg, ops = n, "store: cannot begin transaction");
        for j in batch.drain(..) {
            j.abort(&msg);
        }
        return;
    }
    let mut completions = Vec::with_capacity(n);
    // A lone op needs no savepoint: if it fails, the whole transaction is rolled back
    // (and nothing is synced).
    let mut any_ok = n > 1;
    if n == 1 {
        if let Some(j) = batch.pop() {
            let (ok, done) = j.run(conn, state);
            if !ok {
                state.undo_log_functions(0);
            }
            any_ok = ok;
            completions.push(done);
        }
    } else {
        for j in batch.drain(..) {
            completions.push(run_in_savepoint(conn, j, state));
        }
    }
    let commit = if any_ok {
        match wal.commit(|| exec_cached(conn, "COMMIT")) {
            Ok(()) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::error!(error = %msg, ops = n, "store: commit failed");
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %e, "store: rollback failed");
                }
                state.undo_log_functions(0);
                Err(msg)
            }
        }
    } else {
        // The op reports its own error; a failed rollback only leaves the next `BEGIN` to
        // fail, which reports to its callers.
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "store: rollback failed");
        }
        Ok(())
    };
    state.new_log_functions.clear();
    counters.ops.fetch_add(n as u64, Ordering::Relaxed);
    let commit = commit.as_ref().map(|_| ()).map_err(String::as_str);
    for done in completions {
        done(commit);
    }
}

/// Runs a statement without parsing it again (`BEGIN`, `COMMIT` and savepoints run for every
/// batch).
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs one job between `SAVEPOINT` and `RELEASE`, so its failure undoes only its own changes.
fn run_in_savepoint(conn: &Connection, j: Job, state: &mut WriterState) -> Completion {
    if let Err(e) = exec_cached(conn, "SAVEPOINT op") {
        let msg = e.to_string();
        j.abort(&msg);
        return Box::new(|_| {});
    }
    let mark = state.new_log_functions.len();
    let (ok, done) = j.run(conn, state);
    let end = if ok {
        exec_cached(conn, "RELEASE op")
    } else {
        exec_cached(conn, "ROLLBACK TO op").and_then(|()| exec_cached(conn, "RELEASE op"))
    };
    if !ok || end.is_err() {
        state.undo_log_functions(mark);
    }
    if let Err(e) = end {
        tracing::error!(error = %e, "store: ending savepoint failed");
    }
    done
}

/// Deletes log lines beyond the per-function line limit and older than the age limit.
fn prune(
    conn: &Connection,
    wal: &Wal,
    state: &mut WriterState,
    opts: &StoreOptions,
) -> Result<u64> {
    let started = Instant::now();
    state.lines_since_prune = 0;
    state.last_prune = Instant::now();
    // Not acknowledged data: pruning commits without a sync, like log appends.
    let result = wal
        .set_durable(conn, false)
        .map_err(StoreError::from)
        .and_then(|()| wal.commit(|| prune_logs(conn, opts)));
    match &result {
        Ok(deleted) => {
            tracing::debug!(
                deleted,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "pruned logs"
            );
        }
        Err(e) => tracing::warn!(error = %e, "store: log pruning failed"),
    }
    result
}

/// One retention pass in its own transaction; returns the number of deleted lines.
///
/// Each function with lines loses, in one range delete on its `(fid, seq)` index, every
/// line before the first one at or after the age cutoff and every line beyond its newest
/// `log_retention_lines`, and `log_functions.lines` goes down by as many. Both limits cost
/// about one index entry per deleted line: the count limit from the stored line count (the
/// excess lines are the oldest ones, found from the start of the function's index range),
/// the age limit by walking the function's lines in seq order from the oldest and stopping
/// at the first one newer than the cutoff, so no `ts_ms` index is needed. The age limit
/// relies on timestamps growing with seq, which holds up to the small disorder of lines
/// handed over by concurrent invocations: a line older than the cutoff that follows a newer
/// line of its function is kept until that newer line is old enough too.
fn prune_logs(conn: &Connection, opts: &StoreOptions) -> Result<u64> {
    let keep = i64::try_from(opts.log_retention_lines).unwrap_or(i64::MAX);
    let cutoff = gust_model::now_ms().saturating_sub(opts.log_retention_ms);
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<u64> {
        let functions: Vec<(i64, i64)> = conn
            .prepare_cached("SELECT id, lines FROM log_functions WHERE lines > 0")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut first_new = conn.prepare_cached(
            "SELECT seq FROM logs WHERE fid = ?1 AND ts_ms >= ?2 ORDER BY seq LIMIT 1",
        )?;
        let mut last_excess = conn
            .prepare_cached("SELECT seq FROM logs WHERE fid = ?1 ORDER BY seq LIMIT 1 OFFSET ?2")?;
        let mut delete = conn.prepare_cached("DELETE FROM logs WHERE fid = ?1 AND seq < ?2")?;
        let mut count =
            conn.prepare_cached("UPDATE log_functions SET lines = lines - ?2 WHERE id = ?1")?;
        let mut deleted = 0u64;
        for (fid, lines) in functions {
            // Delete below this seq; with no line newer than the cutoff, every line.
            let mut below: i64 = first_new
                .query_row(rusqlite::params![fid, cutoff], |r| r.get(0))
                .optional()?
                .unwrap_or(i64::MAX);
            if lines > keep {
                let last: Option<i64> = last_excess
                    .query_row(rusqlite::params![fid, lines - keep - 1], |r| r.get(0))
                    .optional()?;
                if let Some(last) = last {
                    below = below.max(last.saturating_add(1));
                }
            }
            let n = delete.execute(rusqlite::params![fid, below])?;
            if n > 0 {
                count.execute(rusqlite::params![fid, n as i64])?;
                deleted += n as u64;
            }
        }
        Ok(deleted)
    })();
    match result {
        Ok(n) => {
            conn.execute_batch("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KvAbort, KvValue, SqliteStore};

    #[test]
    fn preallocate_appends_zeros_and_keeps_the_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        assert!(!preallocate(&path, 1 << 20).expect("missing file"));
        std::fs::write(&path, b"frames").expect("write");
        assert!(preallocate(&path, 3 << 20).expect("grow"));
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(bytes.len(), 3 << 20);
        assert_eq!(&bytes[..6], b"frames");
        assert!(bytes[6..].iter().all(|b| *b == 0));
        // Never shrinks.
        assert!(preallocate(&path, 1 << 20).expect("again"));
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), 3 << 20);
    }

    /// Queues a job that reports the `synchronous` setting its batch runs under (1 = NORMAL,
    /// 2 = FULL), sleeping `hold` first.
    fn sync_probe(
        store: &SqliteStore,
        durable: bool,
        hold: Duration,
    ) -> tokio::sync::oneshot::Receiver<Result<i64>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let op = move |conn: &Connection, _: &mut WriterState| -> Result<i64> {
            std::thread::sleep(hold);
            Ok(conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?)
        };
        store.submit(job(op, tx, durable)).expect("submit");
        rx
    }

    async fn probe(store: &SqliteStore, durable: bool) -> i64 {
        sync_probe(store, durable, Duration::ZERO)
            .await
            .expect("reply")
            .expect("probe")
    }

    /// A batch commits without a sync only if every op in it is non-durable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_batches_without_durable_ops_skip_the_sync() {
        const NORMAL: i64 = 1;
        const FULL: i64 = 2;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path(), crate::StoreOptions::default()).expect("open");
        assert_eq!(probe(&store, false).await, NORMAL);
        assert_eq!(probe(&store, false).await, NORMAL);
        assert_eq!(probe(&store, true).await, FULL);
        assert_eq!(probe(&store, false).await, NORMAL);
        // While a slow op holds the writer, a non-durable and a durable op queue up and share
        // the next batch: it syncs.
        let slow = sync_probe(&store, false, Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let lazy = sync_probe(&store, false, Duration::ZERO);
        let durable = sync_probe(&store, true, Duration::ZERO);
        assert_eq!(slow.await.expect("reply").expect("slow"), NORMAL);
        assert_eq!(lazy.await.expect("reply").expect("lazy"), FULL);
        assert_eq!(durable.await.expect("reply").expect("durable"), FULL);
        // Pruning commits unsynced; the next durable op is back at FULL.
        store.prune_logs().await.expect("prune");
        assert_eq!(probe(&store, true).await, FULL);
        store.close();
    }

    /// Queues a job that adds `function` to `log_functions` (and the writer's cache), then
    /// fails, so its changes are rolled back.
    fn failing_log_job(
        store: &SqliteStore,
        function: &'static str,
    ) -> tokio::sync::oneshot::Receiver<Result<()>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let op = move |conn: &Connection, state: &mut WriterState| -> Result<()> {
            state.log_function_id(conn, function)?;
            Err(StoreError::Corrupt("fails on purpose".into()))
        };
        store.submit(job(op, tx, false)).expect("submit");
        rx
    }

    /// A function id whose row was rolled back is not reused from the cache.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rolled_back_log_function_ids_are_forgotten() {
        use crate::LogStore;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path(), crate::StoreOptions::default()).expect("open");
        let entry = |function: &str| gust_model::LogEntry {
            ts_ms: gust_model::now_ms(),
            function: function.into(),
            request_id: String::new(),
            stream: gust_model::LogStream::Stdout,
            message: "m".into(),
        };
        // Alone in its batch: the whole transaction is rolled back.
        assert!(failing_log_job(&store, "alone")
            .await
            .expect("reply")
            .is_err());
        store
            .append_logs(vec![entry("alone")])
            .await
            .expect("append");
        assert_eq!(
            store.read_logs("alone", 0, 10).await.expect("read").len(),
            1
        );
        // Inside a batch: only its savepoint is.
        let slow = sync_probe(&store, false, Duration::from_millis(200));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let failing = failing_log_job(&store, "batched");
        let other = sync_probe(&store, true, Duration::ZERO);
        slow.await.expect("reply").expect("slow");
        assert!(failing.await.expect("reply").is_err());
        other.await.expect("reply").expect("other");
        store
            .append_logs(vec![entry("batched")])
            .await
            .expect("append");
        assert_eq!(
            store.read_logs("batched", 0, 10).await.expect("read").len(),
            1
        );
        store.close();
    }

    async fn put(store: &SqliteStore, i: u32) {
        store
            .kv_write(move |t| -> std::result::Result<(), KvAbort<()>> {
                t.put(
                    1,
                    format!("key{i:06}").as_bytes(),
                    b"",
                    b"",
                    &KvValue {
                        value: vec![b'x'; 300],
                        weight: 300,
                        expires_at: None,
                    },
                )?;
                Ok(())
            })
            .await
            .expect("store")
            .expect("op");
    }

    /// Acknowledged writes are in the WAL as SQLite recovers it: a copy of the files taken
    /// while the store is open (no checkpoint, no clean close, the zero tail included) opens
    /// with every row. The WAL stays inside its preallocated size through checkpoints.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledged_writes_recover_from_the_preallocated_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let store = SqliteStore::open(&data, crate::StoreOptions::default()).expect("open");
        let n = 3_000u32;
        let tasks: Vec<_> = (0..8u32)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in (w..n).step_by(8) {
                        put(&store, i).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("join");
        }
        let wal = data.join("gust.db-wal");
        assert_eq!(
            std::fs::metadata(&wal).expect("wal").len(),
            WAL_PREALLOCATE,
            "the WAL grew past its preallocation"
        );
        let copy = dir.path().join("copy");
        std::fs::create_dir_all(&copy).expect("mkdir");
        std::fs::copy(data.join("gust.db"), copy.join("gust.db")).expect("copy db");
        std::fs::copy(&wal, copy.join("gust.db-wal")).expect("copy wal");
        let conn = Connection::open(copy.join("gust.db")).expect("open copy");
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM kv WHERE space = 1", [], |r| r.get(0))
            .expect("count");
        assert_eq!(rows, i64::from(n));
        drop(conn);
        store.close();
    }
}
